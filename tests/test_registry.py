"""The method registry is the one extension point.

A toy method ("PG with a scaled step", ``tests/toy_scaled_pg``) is registered
inside the tests -- no package file mentions it -- and runs through
``metamapg tabular basin``, a paired ``metamapg sweep`` with ``ippo`` (two
algorithm classes in one experiment) and ``metamapg report``.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from rllib_metamapg import registry
from rllib_metamapg.cli import main
from rllib_metamapg.registry import ArmSpec, MethodSpec, RegistryError
from rllib_metamapg.forms import CORRECTION_FORMS, TABULAR_ONLY_FORMS

ALL_FORMS = CORRECTION_FORMS + TABULAR_ONLY_FORMS

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def toy():
    from toy_scaled_pg.method import METHOD

    spec = registry.register_method(METHOD)
    yield spec
    registry.unregister_method(spec.name)


def test_arms_know_their_method_and_aliases_resolve():
    assert registry.get_arm("pg").name == "ippo" == registry.reference_arm()
    assert registry.get_arm("full").method == "meta_mapg"
    assert registry.arm_names("meta_mapg")[0] == "ippo"
    assert registry.experiment_arms("ablation")[0] == "ippo"
    with pytest.raises(RegistryError, match="more than once"):
        registry.parse_arms(["ippo", "pg"])


def test_the_toy_method_is_the_docs_recipe_file_for_file():
    """docs/methods.md's "Adding a method" table lists the files of a method's folder;
    the toy has exactly those, and they are small."""
    docs = (ROOT / "docs" / "methods.md").read_text()
    section = docs[docs.index("## Adding a method"):docs.index("## Adding an environment")]
    table = re.findall(r"^\| `([^`]+\.py)` \|", section, flags=re.M)
    files = sorted(p.name for p in (TESTS / "toy_scaled_pg").glob("*.py"))
    assert sorted(table) == files == ["algorithm.py", "method.py", "tabular_update.py"]
    lines = [ln for p in (TESTS / "toy_scaled_pg").glob("*.py")
             for ln in p.read_text().splitlines() if ln.strip()]
    assert len(lines) <= 60, len(lines)


def test_clashing_or_malformed_methods_are_refused(toy):
    clash = MethodSpec("other", "x", arms=(ArmSpec("scaled_pg"),), tabular="m:a",
                       algorithm="m:b")
    with pytest.raises(RegistryError, match=r"arm name\(s\) \['scaled_pg'\] are taken"):
        registry.register_method(clash)
    alias = MethodSpec("other", "x", arms=(ArmSpec("y", aliases=("pg",)),), tabular="m:a",
                       algorithm="m:b")
    with pytest.raises(RegistryError, match=r"\['pg'\] are taken"):
        registry.register_method(alias)
    with pytest.raises(RegistryError, match="already registered"):
        registry.register_method(toy)
    with pytest.raises(RegistryError, match="reference='z' is not one of its arms"):
        registry.register_method(MethodSpec("o", "x", arms=(ArmSpec("y"),), tabular="m:a",
                                            algorithm="m:b", reference="z"))
    assert "other" not in registry.methods() and "y" not in registry.arm_names()


def test_a_sampler_that_needs_on_policy_learners_refuses_others(toy):
    import dataclasses

    registry.register_sampler(registry.SamplerSpec("joint", "test", needs_on_policy=True))
    off = dataclasses.replace(toy, name="off", on_policy=False,
                              arms=(ArmSpec("off_arm"),))
    registry.register_method(off)
    try:
        registry.check_combination("scaled_pg", "joint")
        with pytest.raises(RegistryError, match="on-policy learners only"):
            registry.check_combination("off_arm", "joint")
        with pytest.raises(RegistryError, match="sampler='nope' is unknown"):
            registry.check_combination("scaled_pg", "nope")
    finally:
        registry.unregister_method("off")
        registry._REGISTRY.samplers.pop("joint")


def test_toy_method_runs_in_the_tabular_engine_as_pg_with_a_scaled_step(toy, tmp_path, capsys):
    small = ["--mode", "exact", "--grid", "7", "--steps", "30", "--game", "stag_hunt"]
    assert main(["tabular", "basin", "--arms", "ippo,scaled_pg", "--out",
                 str(tmp_path / "toy"), *small]) == 0
    doc = json.loads((tmp_path / "toy" / "basin.json").read_text())
    assert list(doc["arms"]) == ["ippo", "scaled_pg"]
    # Oracle: scale * v with step alpha is ippo with step 2 * alpha (exact mode).
    assert main(["tabular", "basin", "--arms", "ippo", "--lr", str(2 * 0.9), "--out",
                 str(tmp_path / "double"), *small]) == 0
    double = json.loads((tmp_path / "double" / "basin.json").read_text())
    assert doc["outcome_grid"]["scaled_pg"] == double["outcome_grid"]["ippo"]
    assert doc["outcome_grid"]["scaled_pg"] != doc["outcome_grid"]["ippo"]
    # Without --arms, a registered method's experiment arms join the defaults.
    assert main(["tabular", "basin", "--out", str(tmp_path / "all"), *small]) == 0
    assert "scaled_pg" in json.loads((tmp_path / "all" / "basin.json").read_text())["arms"]


def test_a_methods_own_setting_is_an_option_a_config_key_and_a_record_field(toy, tmp_path,
                                                                           capsys):
    """The toy declares ``step_scale`` in its spec, nowhere else: it becomes a ``metamapg
    tabular`` option and ``--config`` key, reaches the toy's update (oracle: step_scale
    s with step alpha is ippo with step s * alpha, exact mode) and is recorded; it leaves
    the options with the method."""
    from rllib_metamapg.tabular.settings import fields

    small = ["--mode", "exact", "--grid", "7", "--steps", "30", "--game", "stag_hunt"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("step-scale: 3.0\n")
    assert main(["tabular", "basin", "--arms", "scaled_pg", "--config", str(cfg), "--out",
                 str(tmp_path / "toy"), *small]) == 0
    doc = json.loads((tmp_path / "toy" / "basin.json").read_text())
    assert doc["settings"]["step_scale"] == 3.0
    assert main(["tabular", "basin", "--arms", "ippo", "--lr", str(3 * 0.9), "--out",
                 str(tmp_path / "triple"), *small]) == 0
    triple = json.loads((tmp_path / "triple" / "basin.json").read_text())
    assert doc["outcome_grid"]["scaled_pg"] == triple["outcome_grid"]["ippo"]
    capsys.readouterr()
    assert main(["tabular", "basin", "--step-scale", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "step_scale=0.0 must be > 0" in capsys.readouterr().err
    registry.unregister_method("scaled_pg")
    try:
        assert "step_scale" not in [f.name for f in fields()]
        with pytest.raises(SystemExit):
            main(["tabular", "basin", "--step-scale", "2", "--out", str(tmp_path / "gone")])
        assert "unrecognized arguments: --step-scale" in capsys.readouterr().err
    finally:
        registry.register_method(toy)


def test_a_setting_two_methods_declare_is_refused_naming_both(toy):
    import dataclasses

    from rllib_metamapg.tabular.settings import SettingsError, setting, settings_class

    @dataclasses.dataclass(frozen=True)
    class Clash:
        step_scale: float = setting(1.0, "again")

    registry.register_method(dataclasses.replace(
        toy, name="again", arms=(ArmSpec("again_arm"),), settings=Clash, experiments={}))
    try:
        with pytest.raises(SettingsError, match="'step_scale' is declared by both method "
                           "'scaled_pg' and method 'again'"):
            settings_class()
    finally:
        registry.unregister_method("again")
    assert settings_class()().step_scale == 2.0


@pytest.mark.slow
def test_toy_method_and_matrl_sweep_paired_with_ippo_and_report(toy, tmp_path, monkeypatch):
    import ray

    # One training iteration, evaluated: a copy of stag_hunt's tuned-example source.
    examples = tmp_path / "examples" / "stag_hunt"
    examples.mkdir(parents=True)
    base = yaml.safe_load((ROOT / "tuned_examples/stag_hunt/base.yaml").read_text())
    base["smoke"]["stop"] = {"training_iteration": 1}
    base["smoke"]["config"]["evaluation_interval"] = 1
    (examples / "base.yaml").write_text(yaml.safe_dump(base))
    # Trials run in Ray workers, which import from the driver's cwd: the toy's folder.
    monkeypatch.chdir(TESTS)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    code = main(["sweep", "--env", "stag_hunt", "--arms", "scaled_pg,matrl,peer_only+ma_props",
                 "--seeds", "0-1",
                 "--smoke", "--tuned-examples", str(tmp_path / "examples"),
                 "--storage-path", str(tmp_path / "results"), "--name", "toy",
                 "--max-concurrent", "2", "--quiet", "--progress-every", "0", "--report"])
    assert code == 0
    exp = tmp_path / "results" / "toy"
    meta = json.loads((exp / "metamapg_sweep.json").read_text())
    arms = ["ippo", "scaled_pg", "matrl", "peer_only+ma_props"]
    assert meta["arms"] == arms  # the reference arm joined by itself
    assert meta["algorithms"] == {"ippo": "MetaMAPG", "scaled_pg": "ScaledPG",
                                  "matrl": "MATRL", "peer_only+ma_props": "MetaMAPG"}
    # Same seed => same initial weights, across the three algorithm classes.
    digests = {}
    for result in exp.glob("*/result.json"):
        row = json.loads(result.read_text().splitlines()[-1])
        params = json.loads((result.parent / "params.json").read_text())
        digests[(params["arm"], params["seed"])] = row["metamapg_init"]["weights_sha256"]
        if params["arm"] == "peer_only+ma_props":  # it did sample with MA-PROPS
            assert row["env_runners"]["sampler_behaviour_updates"] > 0
    assert len(digests) == 8
    for seed in (0, 1):  # paired across three classes and a composition
        assert len({digests[(arm, seed)] for arm in arms}) == 1
    assert digests[("ippo", 0)] != digests[("ippo", 1)]
    report = json.loads((exp / "report" / "report.json").read_text())
    (result,) = report["results"]
    assert result["reference_arm"] == "ippo" and result["pairing_broken"] == []
    assert result["tests_vs_reference"]["scaled_pg"]["pairs"] == 2
    assert result["tests_vs_reference"]["matrl"]["pairs"] == 2
    assert result["tests_vs_reference"]["peer_only+ma_props"]["pairs"] == 2
    assert set(result["arms"]) == set(arms)
    # Resumable: restoring the finished mixed-class sweep reruns nothing.
    rows = {p: len(p.read_text().splitlines()) for p in exp.glob("*/result.json")}
    assert main(["sweep", "--resume", str(exp), "--quiet"]) == 0
    assert {p: len(p.read_text().splitlines()) for p in exp.glob("*/result.json")} == rows


def test_no_arm_name_is_written_outside_the_registry():
    """Arm names appear in the package only in the registry and in their method's folder
    (``registry.method_package``: a method's config and messages may name its own
    arms); everything else asks."""
    names = registry.arm_names() + ["pg"]  # ("full" is also an English word)
    pattern = re.compile(r"""["'](%s)["']""" % "|".join(map(re.escape, names)))
    allowed = tuple(registry.method_package(m).replace(".", "/") + "/"
                    for m in registry.methods()) + ("rllib_metamapg/registry.py",)
    files = subprocess.run(["git", "ls-files", "rllib_metamapg"], cwd=ROOT, text=True,
                           capture_output=True, check=True).stdout.split()
    hits = []
    for rel in files:
        if not rel.endswith(".py") or rel.startswith(allowed):
            continue
        for n, line in enumerate((ROOT / rel).read_text().splitlines(), 1):
            # A setting's old spelling that happens to equal an arm name is not an arm.
            setting_alias = rel.endswith("tabular/settings.py") and "aliases=(" in line
            # "lola" is also a correction form's name; the modules that define the
            # forms spell it as a form, not as the arm.
            m = pattern.search(line)
            form_name = (m is not None and m.group(1) in ALL_FORMS
                         and rel in ("rllib_metamapg/forms.py", "rllib_metamapg/tabular/exact.py"))
            if m and not setting_alias and not form_name:
                hits.append(f"{rel}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_generated_tuned_examples_are_in_sync_and_a_stale_one_is_caught(tmp_path, capsys):
    import shutil

    from rllib_metamapg.tuned_examples import stale_files

    assert stale_files(ROOT / "tuned_examples") == []
    copy = tmp_path / "tuned_examples"
    shutil.copytree(ROOT / "tuned_examples", copy)
    edited = copy / "ipd" / "peer_only.yaml"
    edited.write_text(edited.read_text().replace("lr: 0.0003", "lr: 0.001"))
    (copy / "ipd" / "ippo-smoke.yaml").unlink()
    assert main(["examples", "--check", "--tuned-examples", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "ipd/peer_only.yaml" in out and "ipd/ippo-smoke.yaml" in out
    assert main(["examples", "--write", "--tuned-examples", str(copy)]) == 0
    assert stale_files(copy) == []


def test_tuned_examples_take_budget_and_t_warm_from_the_env_spec(toy):
    from rllib_metamapg.env_specs import ENV_SPECS
    from rllib_metamapg.tuned_examples import experiment

    name, exp = experiment("ipd", "handoff", folder=ROOT / "tuned_examples")
    assert name == "ipd-handoff" and exp["run"] == "MetaMAPG"
    assert exp["stop"] == {"num_env_steps_sampled_lifetime": ENV_SPECS["ipd"].steps}
    assert exp["config"]["handoff_steps"] == ENV_SPECS["ipd"].t_warm
    assert exp["config"]["arm"] == "handoff" and exp["config"]["inner_lr"] == 0.1
    _, smoke = experiment("ipd", "handoff", smoke=True, folder=ROOT / "tuned_examples")
    assert smoke["stop"] == {"training_iteration": 4} and smoke["config"]["handoff_steps"] == 128
    # A run-time method gets a tuned example on every env without a file.
    _, toy_exp = experiment("ipd", "scaled_pg", folder=ROOT / "tuned_examples")
    assert toy_exp["run"] == "ScaledPG" and toy_exp["config"]["step_scale"] == 2.0
    assert "arm" not in toy_exp["config"] and "inner_lr" not in toy_exp["config"]


def _optimizers(algo):
    """``{module: [(optimizer name, lr, [parameter names])]}`` of the learner."""
    learner = algo.learner_group._learner
    out = {}
    for mid in sorted(learner.module.keys()):
        names = {id(p): n for n, p in learner.module[mid].unwrapped().named_parameters()}
        out[mid] = [(name, opt.param_groups[0]["lr"],
                     sorted(names[id(p)] for g in opt.param_groups for p in g["params"]))
                    for name, opt in learner.get_optimizers_for_module(mid)]
    return out


@pytest.mark.parametrize("critic_lr", [None, 1e-3])
def test_a_new_method_trains_its_critic_exactly_as_ippo_does(toy, ray_local, critic_lr):
    """The toy method writes nothing for critic_lr: its learner, on the base, gets the
    critic's own optimizer as ippo's does (same names, rates and parameters)."""
    from rllib_metamapg.rllib_base.algorithm import arm_config

    settings = {"lr": 3e-4, "critic_lr": critic_lr, "train_batch_size_per_learner": 32,
                "minibatch_size": 32, "num_epochs": 1, "num_env_runners": 0}
    got = {}
    for arm in ("ippo", "scaled_pg"):
        algo = arm_config(arm, "stag_hunt", settings).build_algo()
        try:
            got[arm] = _optimizers(algo)
        finally:
            algo.stop()
    assert got["scaled_pg"] == got["ippo"]
    rates = [lr for opts in got["ippo"].values() for _, lr, _ in opts]
    assert rates == ([3e-4] * 2 if critic_lr is None else [3e-4, 1e-3] * 2)


def test_arm_config_builds_any_methods_arm_with_a_sampler(toy):
    from rllib_metamapg.rllib_base.algorithm import arm_config

    meta = arm_config("peer_only", "stag_hunt", {"lr": 0.001})
    assert type(meta).__name__ == "MetaMAPGConfig" and meta.arm == "peer_only"
    assert meta.lr == 0.001 and list(meta.policies) == ["player_0", "player_1"]
    scaled = arm_config("scaled_pg", "stag_hunt")
    assert type(scaled).__name__ == "ScaledPGConfig" and scaled.step_scale == 2.0
    assert list(scaled.policies) == ["player_0", "player_1"]

    def eight_envs(config):  # a sampler's collection pieces, here just a setting
        return config.env_runners(num_envs_per_env_runner=8)

    from rllib_metamapg.rllib_base.algorithm import install_sampler

    registry.register_sampler(registry.SamplerSpec("eight", "test", rllib=eight_envs))
    # A method whose config has no sampler axis (RLlib's PPO as it is) gets the pieces
    # at once; one on the package's base config (the toy) when it is built.
    plain = registry.register_method(MethodSpec(
        "plain_ppo", "RLlib's PPO as it is", arms=(ArmSpec("plain_ppo"),), tabular="m:a",
        algorithm="ray.rllib.algorithms.ppo:PPO"))
    try:
        assert arm_config("plain_ppo", "stag_hunt", sampler="eight").num_envs_per_env_runner == 8
        assert arm_config("plain_ppo", "stag_hunt").num_envs_per_env_runner != 8
        toy_eight = arm_config("scaled_pg", "stag_hunt", sampler="eight")
        assert toy_eight.sampler == "eight" and toy_eight.num_envs_per_env_runner != 8
        assert install_sampler(toy_eight).num_envs_per_env_runner == 8
    finally:
        registry.unregister_method(plain.name)
        registry._REGISTRY.samplers.pop("eight")
