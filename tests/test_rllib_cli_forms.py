"""Our ``rllib`` command takes what RLlib's own ``rllib train`` / ``rllib evaluate`` documented
(Ray <= 2.39): classic tuned-example files with old-stack key names, classic stop keys,
``env`` inside ``config:``, ``-f``, grid searches, ``--framework``, and ``rllib evaluate
CK --algo PPO --env CartPole-v1 --steps N``.  The files in ``tests/data/rllib_classic``
are written in RLlib's classic format with the keys its own files used."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rllib_metamapg import rllib_cli
from rllib_metamapg.rllib_experiments import load_experiments, param_space, prepare_experiments
from rllib_metamapg.rllib_legacy import RENAMED, STOP_KEYS, translate_config

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = ROOT / "tests" / "data" / "rllib_classic"


def prepared(name, **overrides):
    path = str(CLASSIC / name)
    return prepare_experiments(load_experiments(path), overrides, path)


def test_old_key_names_take_their_new_stack_meaning(capsys):
    (exp,) = prepared("cartpole-ppo-classic.yaml", framework="torch")
    cfg = exp.config
    assert (cfg.num_env_runners, cfg.num_envs_per_env_runner) == (0, 2)
    assert (cfg.num_epochs, cfg.minibatch_size, cfg.lambda_) == (2, 64, 0.95)
    assert cfg.model_config["fcnet_hiddens"] == [32]
    assert cfg.model_config["vf_share_layers"] is True
    # Classic stop keys, under the names results carry now.
    assert exp.stop == {"env_runners/episode_return_mean": 150,
                        "num_env_steps_sampled_lifetime": 100000}
    err = capsys.readouterr().err
    for old in ("num_workers", "num_envs_per_worker", "num_sgd_iter", "sgd_minibatch_size",
                "model", "enable_connectors", "stop.episode_reward_mean"):
        assert f"{old} is" in err, old
    assert {"num_env_runners", "num_epochs"} <= exp.explicit


def test_new_stack_model_config_is_kept_as_given():
    # Only the old `model` dict is checked against the default RLModule's keys: a
    # model_config may hold a custom module's own settings.
    from ray.rllib.algorithms.ppo import PPOConfig

    settings, notes = translate_config({"model_config": {"init_logit": 0.4},
                                        "vf_share_layers": True}, PPOConfig())
    assert settings == {"model_config": {"init_logit": 0.4, "vf_share_layers": True}}
    assert len(notes) == 1


def test_env_in_config_filter_and_sampler_results_stop():
    from ray.rllib.connectors.env_to_module import MeanStdFilter

    (exp,) = prepared("pendulum-ppo-filter.yaml")
    assert exp.config.env == "Pendulum-v1"
    assert exp.stop["env_runners/episode_return_mean"] == -500
    assert isinstance(exp.config._env_to_module_connector(None, None, None), MeanStdFilter)


def test_grid_search_over_old_names_reaches_tune():
    (exp,) = prepared("cartpole-ppo-grid.yaml")
    assert exp.grid == {"num_epochs": [1, 2], "minibatch_size": [32, 64]}
    space = param_space(exp.config, exp.grid)
    assert space["num_epochs"] == {"grid_search": [1, 2]}
    assert space["minibatch_size"] == {"grid_search": [32, 64]}


def test_stop_flag_replaces_the_files_stop():
    (exp,) = prepared("cartpole-ppo-grid.yaml", stop={"training_iteration": 1})
    assert exp.stop == {"training_iteration": 1}


def test_every_rename_names_a_real_setting():
    from ray.rllib.algorithms.ppo import PPOConfig

    base = PPOConfig()
    for old, new in RENAMED.items():
        assert new in vars(base) or isinstance(getattr(type(base), new, None), property), old
    from ray.rllib.utils import metrics

    heads = {v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str)}
    for old, new in STOP_KEYS.items():
        assert new.split("/")[-1] in heads, old
    # RLlib's own deprecations name the new key; we follow them.
    settings, _ = translate_config({"num_cpus_per_worker": 2, "num_gpus_per_worker": 0}, base)
    assert settings == {"num_cpus_per_env_runner": 2, "num_gpus_per_env_runner": 0}


@pytest.mark.parametrize("argv, message", [
    (["train", "-f", str(CLASSIC / "cartpole-ppo-classic.yaml")],
     "config.framework='tf': only 'torch' is installed"),
    (["train", "-f", str(CLASSIC / "cartpole-ppo-classic.yaml"), "file", "x.yaml"],
     "give the file once"),
    (["train", "--env", "CartPole-v1", "--algo", "PPO", "--local-mode"],
     "--local-mode is one of RLlib's older 'rllib' flags"),
    (["train", "--env", "CartPole-v1", "--algo", "PPO", "--scheduler", "FIFO"],
     "trial schedulers are Tune's"),
    (["train", "--env", "CartPole-v1", "--algo", "PPO", "-s", '{"training_iteration": 1}',
      "-c", '{"model": {"custom_model": "x"}}'], "['custom_model'] are old-stack model"),
    (["train", "--env", "CartPole-v1", "--algo", "PPO", "-s", '{"training_iteration": 1}',
      "-c", '{"num_sgd_iter": {"grid_search": []}}'], "write a grid as"),
    (["evaluate", "--steps", "5", "--episodes", "2"], "give --episodes or --steps, not both"),
    (["evaluate", "--steps", "0"], "--steps=0 must be >= 1"),
    (["evaluate", "--env", "CartPole-v1"], "without a checkpoint, give --algo and --env"),
    (["evaluate", "/nope", "--render"], "--render is one of RLlib's older"),
    (["evaluate", "/nope", "--config", "[1]"], "--config must be a JSON object"),
])
def test_refusals_name_the_flag_and_the_fix(argv, message, capsys):
    import ray

    assert rllib_cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not ray.is_initialized()


def test_classic_file_trains_and_rllibs_evaluate_form_runs(tmp_path):
    exe = shutil.which("rllib", path=str(Path(sys.executable).parent))
    base = [exe] if exe else [sys.executable, "-m", "rllib_metamapg.rllib_cli"]
    proc = subprocess.run(base + ["train", "-f", str(CLASSIC / "cartpole-ppo-classic.yaml"),
                                  "--framework", "torch", "--stop",
                                  '{"training_iteration": 1}', "-n", "classic",
                                  "--storage-path", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "classic: 1 iterations" in proc.stdout
    (checkpoint,) = tmp_path.glob("classic/*/checkpoint_*")
    out = tmp_path / "eval.json"
    proc = subprocess.run(base + ["evaluate", str(checkpoint), "--algo", "PPO", "--env",
                                  "CartPole-v1", "--steps", "501", "--config",
                                  '{"num_envs_per_worker": 1}', "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    # CartPole-v1 episodes last 8 to 500 steps (it truncates at 500), so 501 steps always
    # finish 1 to 62 of them, however well (greedily) one training iteration balances.
    assert 1 <= result["episodes"] <= 62 and result["return_min"] >= 8
    assert "num_envs_per_worker is RLlib's old name" in proc.stderr


def test_ray_ui_starts_the_dashboard_only_when_asked():
    """As RLlib's own command: a local Ray without its dashboard unless --ray-ui."""
    from rllib_metamapg.rllib_cli import _parser, _ray_init

    base = ["train", "--algo", "PPO", "--env", "CartPole-v1"]
    assert _ray_init(_parser().parse_args(base)) == {"include_dashboard": False}
    assert _ray_init(_parser().parse_args(base + ["--ray-ui"]))["include_dashboard"] is True
    # A cluster keeps its own dashboard: include_dashboard is ignored when connecting.
    assert _ray_init(_parser().parse_args(base + ["--ray-address", "auto"])) == {
        "include_dashboard": False}
