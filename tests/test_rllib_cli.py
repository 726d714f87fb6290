"""The ``rllib`` console script: tuned examples validate, bad input exits 2 before Ray,
smoke run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rllib_metamapg import rllib_cli
from rllib_metamapg.envs import CREATORS
from rllib_metamapg.registry import arm_names, get_arm, method_of
from rllib_metamapg.env_specs import ENV_SPECS
from env_support import skip_unless_installed

ROOT = Path(__file__).resolve().parents[1]
RLLIB_EXAMPLES = sorted(p for p in (ROOT / "tuned_examples").rglob("*.yaml")
                        if p.parent.name != "tabular" and p.name != "base.yaml")


@pytest.mark.parametrize("env", sorted(e for e, s in ENV_SPECS.items() if s.tuned_examples))
def test_every_sweepable_env_has_every_arm_and_its_smoke(env):
    names = {p.stem for p in (ROOT / "tuned_examples" / env).glob("*.yaml")}
    assert {f"{arm}{suffix}" for arm in arm_names(engine="rllib")
            for suffix in ("", "-smoke")} <= names


@pytest.mark.parametrize("path", RLLIB_EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_tuned_example_passes_config_validation(path):
    skip_unless_installed(path.parent.name)
    prepared = rllib_cli.prepare(rllib_cli.load_experiments(str(path)), {}, str(path))
    for name, config, stop in prepared:
        # The file's arm, as the registry defines it: its method's config class with
        # the arm's own settings.
        arm = get_arm(path.stem.removesuffix("-smoke"))
        assert stop and type(config) is type(method_of(arm).algorithm_class()
                                             .get_default_config())
        assert all(getattr(config, k) == v for k, v in arm.rllib.items()), arm
        env = CREATORS[config.env]({})
        # One module per agent, in the env's agent order (paired seeds depend on it).
        assert list(config.policies) == list(env.possible_agents)


BAD = {
    "syntax.yaml": ("x: [1, 2\n", "not valid YAML"),
    "key.yaml": ("x: {run: MetaMAPG, env: stag_hunt, stop: {training_iteration: 1}, "
                 "budget: 3}\n", "unknown key(s) ['budget']"),
    "dead.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, "
                  "config: {inner_lrr: 0.1}}\n", "config.inner_lrr is not a MetaMAPGConfig "
                                                 "setting. Did you mean 'inner_lr'?"),
    "type.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, config: {lr: fast}}\n",
                  "config.lr='fast' must be a number"),
    "env.yaml": ("x: {env: pong, stop: {training_iteration: 1}}\n", "env='pong' is not a "
                                                                    "registered environment"),
    "arm.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, config: {arm: sarsa}}\n",
                 "arm='sarsa' is unknown"),
    # a tabular-only arm is refused by name, with the arms RLlib does run
    "tabular_arm.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, "
                         "config: {arm: lola}}\n", "arm='lola' is implemented in ['tabular']"),
    "stop.yaml": ("x: {env: stag_hunt, config: {arm: ippo}}\n", "stop is empty"),
    "run.yaml": ("x: {run: PPOO, env: stag_hunt, stop: {training_iteration: 1}}\n",
                 "run='PPOO' is not an RLlib algorithm. Did you mean 'PPO'?"),
    "yamlpos.yaml": ("x:\n  run: PPO\n  stop: {a: 1\n", "not valid YAML at line 4, column 1"),
    "ckptfreq.yaml": ("x: {env: CartPole-v1, run: PPO, stop: {training_iteration: 1}, "
                      "checkpoint_freq: -1}\n", "checkpoint_freq=-1 must be an integer >= 0"),
    "ppokey.yaml": ("x: {env: CartPole-v1, run: PPO, stop: {training_iteration: 1}, "
                    "config: {arm: ippo}}\n", "config.arm is not a PPOConfig setting"),
    # matrix_game has no T_warm of its own (stag_hunt would lend its EnvSpec.t_warm).
    "handoff.yaml": ("x: {env: matrix_game, stop: {training_iteration: 1}, "
                     "config: {arm: handoff, env_config: {game: stag_hunt}}}\n",
                     "handoff trigger"),
    "stopkey.yaml": ("x: {env: stag_hunt, stop: {training_iteratoin: 2}}\n",
                     "stop.training_iteratoin: no result holds this key, so the run would "
                     "never stop. Did you mean 'training_iteration'?"),
    "nestedstop.yaml": ("x: {env: stag_hunt, stop: {env_runner/episode_return_mean: 2}}\n",
                        "Did you mean 'env_runners'?"),
    "lr.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, config: {lr: -3.0e-4}}\n",
                "lr=-0.0003 must be a finite number >= 0"),
    "lrnan.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, config: {lr: .nan}}\n",
                   "lr=nan must be a finite number"),
    "entropy.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, "
                     "config: {entropy_coeff: .nan}}\n", "entropy_coeff=nan"),
    "gamma.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, config: {gamma: 1.5}}\n",
                   "gamma=1.5 must lie in [0, 1]"),
    "clip.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, "
                  "config: {clip_param: -0.2}}\n", "clip_param=-0.2 must be a finite number > 0"),
    "players.yaml": ("x: {env: stag_hunt, stop: {training_iteration: 1}, config: {env_config: "
                     "{game: {payoffs: [[[[1, 2], [3, 4]], [[1, 2], [3, 4]]], "
                     "[[[1, 2], [3, 4]], [[1, 2], [3, 4]]], [[[1, 2], [3, 4]], "
                     "[[1, 2], [3, 4]]]]}}}}\n",
                     "env='stag_hunt' is a 2-player game but env_config.game has 3 players"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_exit_2_naming_the_key_before_ray_starts(name, tmp_path, capsys):
    import ray

    text, message = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    assert rllib_cli.main(["train", "file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rllib: error: ") and message in err, err
    assert not ray.is_initialized()


@pytest.mark.parametrize("argv, message", [
    (["train", "--env", "stag_hunt", "--stop", "{oops"], "--stop: not valid JSON"),
    (["train", "--env", "stag_hunt", "--stop", '{"training_iteration": "x"}'],
     "--stop.training_iteration='x' must be a finite number"),
    (["train", "--env", "stag_hunt", "--config", "[1]", "--stop", '{"training_iteration": 1}'],
     "config must be a mapping"),
    (["train", "--stop", '{"training_iteration": 1}'], "--env is required"),
    (["train", "-a", "PPO", "-e", "CartPol-v1", "-s", '{"training_iteration": 1}'],
     "Did you mean 'CartPole-v1'?"),
    (["train", "-e", "stag_hunt", "-s", '{"training_iteration": 1}', "--restore", "/nope"],
     "--restore: /nope: not an RLlib algorithm checkpoint"),
    (["train", "nofile", "x.yaml"], "use 'rllib train file <yaml>'"),
    (["train", "file", "missing.yaml"], "no such file"),
    (["evaluate", "/nonexistent"], "not an RLlib algorithm checkpoint"),
    (["evaluate", str(ROOT), "--episodes", "0"], "--episodes=0 must be >= 1"),
])
def test_bad_flags_exit_2(argv, message, capsys):
    assert rllib_cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_env_whose_package_is_missing_exits_2_with_the_install_command(monkeypatch,
                                                                          capsys):
    import dataclasses

    import ray

    monkeypatch.setitem(ENV_SPECS, "stag_hunt", dataclasses.replace(
        ENV_SPECS["stag_hunt"], requires="no_such_package_here", install="pip install it"))
    argv = ["train", "file", str(ROOT / "tuned_examples/stag_hunt/ippo-smoke.yaml")]
    assert rllib_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "'no_such_package_here' package, which is not installed: pip install it" in err
    assert not ray.is_initialized()


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        rllib_cli.main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--algo", "--run", "-a", "--env", "-e", "--config", "-c", "--stop", "-s",
                 "-v", "--framework", "--checkpoint-freq", "--checkpoint-at-end",
                 "--num-samples", "--restore", "--resume", "--experiment-name",
                 "--storage-path", "--local-dir", "--ray-address"):
        assert flag in out


def test_smoke_example_trains_end_to_end(tmp_path):
    exe = shutil.which("rllib", path=str(Path(sys.executable).parent))
    cmd = ([exe] if exe else [sys.executable, "-m", "rllib_metamapg.rllib_cli"]) + [
        "train", "file", str(ROOT / "tuned_examples/stag_hunt/meta_mapg-smoke.yaml"),
        "--storage-path", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Quiet by default; the last iteration is evaluated and its return printed.
    assert "stag-hunt-meta-mapg-smoke: 4 iterations" in proc.stdout
    assert "evaluation_return_mean=n/a" not in proc.stdout
    assert len(proc.stdout.splitlines()) + len(proc.stderr.splitlines()) < 40
    (checkpoint,) = tmp_path.glob("stag-hunt-meta-mapg-smoke/*/checkpoint_*")

    # A trial folder is refused with a pointer to its checkpoint, before Ray starts.
    ev = cmd[:-5] + ["evaluate", str(checkpoint.parent)]
    proc = subprocess.run(ev, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and f"Did you mean {checkpoint}?" in proc.stderr
    out = tmp_path / "eval.json"
    ev = cmd[:-5] + ["evaluate", str(checkpoint), "--episodes", "7", "--out", str(out)]
    proc = subprocess.run(ev, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    # Greedy play of a one-step game: every episode ends in one joint action.
    assert result["episodes"] == 7 and result["return_min"] == result["return_max"]
    assert result["return_mean"] in (8.0, 3.0, 4.0)  # stag-stag, mixed, hare-hare
    assert set(result["agent_return_mean"]) == {"player_0", "player_1"}
    # Another env with other spaces is refused before Ray, not by a torch size mismatch.
    ev = cmd[:-5] + ["evaluate", str(checkpoint), "--env", "climbing"]
    proc = subprocess.run(ev, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "spaces differ" in proc.stderr, proc.stderr[-2000:]


def test_rllib_s_own_algorithms_and_gymnasium_envs_train(tmp_path):
    exe = shutil.which("rllib", path=str(Path(sys.executable).parent))
    base = [exe] if exe else [sys.executable, "-m", "rllib_metamapg.rllib_cli"]
    proc = subprocess.run(base + ["train", "--algo", "PPO", "--env", "CartPole-v1", "--stop",
                                  '{"training_iteration": 1}', "--storage-path", str(tmp_path),
                                  "-c", '{"num_env_runners": 0, "train_batch_size_per_learner": '
                                  '200, "minibatch_size": 100}'],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CartPole-v1-PPO: 1 iterations" in proc.stdout
    # A tuned example for RLlib's own PPO with the keys RLlib's files had.
    yaml_file = tmp_path / "ppo.yaml"
    yaml_file.write_text(
        "cartpole-ppo:\n  run: PPO\n  env: CartPole-v1\n  stop: {training_iteration: 2}\n"
        "  checkpoint_freq: 1\n  checkpoint_at_end: false\n  num_samples: 1\n"
        "  config: {framework: torch, num_env_runners: 0, train_batch_size_per_learner: 200,"
        " minibatch_size: 100}\n")
    proc = subprocess.run(base + ["train", "file", str(yaml_file), "--local-dir",
                                  str(tmp_path / "r")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / "r" / "cartpole-ppo").glob("*/checkpoint_*"))) == 2


def test_handoff_without_handoff_steps_takes_the_envs_t_warm():
    from rllib_metamapg import MetaMAPGConfig
    from rllib_metamapg.env_specs import ENV_SPECS

    for env in ("stag_hunt", "ipd"):
        config = MetaMAPGConfig().environment(env).training(arm="handoff")
        config.validate()
        assert config.cooldown_controller().handoff_steps == ENV_SPECS[env].t_warm
    given = MetaMAPGConfig().environment("ipd").training(arm="handoff", handoff_steps=7)
    assert given.cooldown_controller().handoff_steps == 7
    # Other arms never hand off, whatever the env.
    assert MetaMAPGConfig().environment("ipd").training(
        arm="meta_mapg").cooldown_controller().handoff_steps is None
