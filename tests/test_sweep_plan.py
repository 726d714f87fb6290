"""Sweep planning: settings checked before Ray, per-arm settings, eval-aligned budgets."""

import json
import logging
from pathlib import Path

import pytest
from ray.tune.search.variant_generator import generate_variants

from rllib_metamapg.rllib_cli import UsageError
from rllib_metamapg.sweep import SweepSpec, parse_seeds, plan_sweep
from rllib_metamapg.sweep.plan import _aligned_budget

ROOT = Path(__file__).resolve().parents[1]


def test_parse_seeds_ranges_and_lists():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5,0-1,5") == [0, 1, 5]
    for bad in ("", "a", "3-1", "-2"):
        with pytest.raises(UsageError, match="--seeds"):
            parse_seeds(bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"env": "pong"}, "--env: env='pong' has no sweep settings"),
    ({"env": "stag_hunt", "arms": ["ippo", "sarsa"]}, "--arms: arm='sarsa' is unknown"),
    ({"env": "stag_hunt", "arms": ["ippo", "lola"]},
     "--arms: arm='lola' is implemented in ['tabular'] only"),
    ({"env": "stag_hunt", "arms": ["ippo", "pg"]}, "listed more than once"),
    ({"env": "stag_hunt", "seeds": [0, 0]}, "--seeds"),
    ({"env": "stag_hunt", "max_concurrent": 0}, "--max-concurrent=0"),
    ({"env": "stag_hunt", "gpus_per_trial": -1}, "--gpus-per-trial=-1"),
    ({"env": "stag_hunt", "gpus_per_trial": 1.5}, "whole number"),
    ({"env": "stag_hunt", "cpus_per_trial": 0}, "--cpus-per-trial=0"),
])
def test_bad_settings_are_refused_naming_the_flag(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
        plan_sweep(SweepSpec(**kwargs))


def test_missing_tuned_example_names_the_file(tmp_path):
    (tmp_path / "stag_hunt").mkdir()
    with pytest.raises(UsageError, match="env 'stag_hunt' has no tuned examples .*"
                                         "stag_hunt/base.yaml is missing"):
        plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo"], tuned_examples=str(tmp_path)))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["config"].update(inner_lrr=0.1), "config.inner_lrr is not a MetaMAPGConfig "
                                                  "setting. Did you mean 'inner_lr'?"),
    (lambda d: d.update(budget=3), r"unknown key\(s\) \['budget'\]"),
    (lambda d: d["smoke"].pop("t_warm"), "smoke needs 'stop'"),
    (lambda d: d["config"].update(lr=-1.0), "lr=-1.0 must be a finite number >= 0"),
])
def test_a_bad_base_file_is_refused_naming_the_key(tmp_path, edit, message):
    import yaml

    (tmp_path / "stag_hunt").mkdir()
    data = yaml.safe_load((ROOT / "tuned_examples/stag_hunt/base.yaml").read_text())
    edit(data)
    (tmp_path / "stag_hunt" / "base.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(UsageError, match=message):
        plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo", "handoff"], smoke=True,
                             tuned_examples=str(tmp_path)))


def test_param_space_is_an_arm_by_seed_grid_with_per_arm_settings(caplog):
    plan = plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo", "handoff"], seeds=[3, 4],
                                gpus_per_trial=0.33, cpus_per_trial=2))
    space = plan.param_space
    assert space["arm"] == {"grid_search": ["ippo", "handoff"]}
    assert space["seed"] == {"grid_search": [3, 4]}
    assert space["num_gpus_per_learner"] == 0.33 and space["num_cpus_for_main_process"] == 2
    # Only the handoff arm has a T_warm; Tune resolves it from the trial's arm, with
    # no warning about the function's signature (one per trial, even under --quiet).
    sample_log = logging.getLogger("ray.tune.search.sample")
    sample_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING):
            trials = [cfg for _, cfg in generate_variants(space)]
    finally:
        sample_log.removeHandler(caplog.handler)
    assert sorted((c["arm"], c["seed"], c["handoff_steps"]) for c in trials) == [
        ("handoff", 3, 30000), ("handoff", 4, 30000), ("ippo", 3, None), ("ippo", 4, None)]
    assert not [r for r in caplog.records if "sample_from" in r.getMessage()]
    assert space["lr"] == 0.0003 and space["env"] == "stag_hunt"
    # 100k steps / 256 per iteration = 391 iterations, eval every 98 -> 4 evaluations.
    assert (plan.stop_iterations, plan.evaluation_interval) == (392, 98)
    assert plan.metadata["tau"] == 6.0 and plan.name == "stag_hunt"


@pytest.mark.parametrize("iterations, interval, expected", [
    (391, 98, (392, 98)),   # rounded up to whole intervals, the last one evaluated
    (3, 2, (4, 2)),
    (10, 0, (10, 10)),      # no periodic evaluation: evaluate once at the end
    (100, 7, (112, 8)),     # 14 evaluations spread over the budget
    (7, 100, (7, 7)),       # interval past the budget: one evaluation at the end
])
def test_budget_is_rounded_so_the_last_iteration_is_evaluated(iterations, interval, expected):
    stop_iterations, every = _aligned_budget(
        {"a": {"evaluation_interval": interval}}, {"a": {"training_iteration": iterations}})
    assert (stop_iterations, every) == expected
    assert stop_iterations % every == 0 and stop_iterations >= iterations


def test_arms_with_different_budgets_are_refused():
    with pytest.raises(UsageError, match="paired arms need the same budget"):
        _aligned_budget({"a": {"evaluation_interval": 2}, "b": {"evaluation_interval": 3}},
                        {"a": {"training_iteration": 4}, "b": {"training_iteration": 4}})


@pytest.mark.parametrize("flag, message", [([], "already holds a sweep"),
                                           (["--resume-if-exists"], "arms, seeds differ")])
def test_an_existing_sweep_is_never_overwritten(tmp_path, capsys, flag, message):
    from test_report import make_sweep

    from rllib_metamapg.cli import main

    make_sweep(tmp_path / "results" / "x")  # stag_hunt smoke: ippo, peer_only x seeds 0-5
    before = sorted(p.name for p in (tmp_path / "results" / "x").iterdir())
    assert main(["sweep", "--env", "stag_hunt", "--arms", "ippo,meta_mapg", "--seeds", "0-1",
                 "--smoke", "--storage-path", str(tmp_path / "results"), "--name", "x",
                 *flag]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "results" / "x").iterdir()) == before


def test_a_sweep_of_an_env_whose_package_is_missing_is_refused_before_ray(monkeypatch):
    import dataclasses

    import ray

    from rllib_metamapg.env_specs import ENV_SPECS

    monkeypatch.setitem(ENV_SPECS, "stag_hunt", dataclasses.replace(
        ENV_SPECS["stag_hunt"], requires="no_such_package_here", install="pip install it"))
    # Planning builds the env (to list its agents), so `metamapg submit` needs it too.
    with pytest.raises(UsageError, match="env 'stag_hunt' needs the 'no_such_package_here' "
                                         "package, which is not installed: pip install it"):
        plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo"], seeds=[0], smoke=True))
    assert not ray.is_initialized()


def test_sweep_takes_arm_aliases_and_both_list_forms():
    from rllib_metamapg.cli import build_parser
    from rllib_metamapg.sweep.command import spec_from_args

    for arms in ("pg,full,peer_only", "pg full peer_only"):
        args = build_parser().parse_args(["sweep", "--env", "stag_hunt", "--arms", arms])
        assert spec_from_args(args).arms == ["ippo", "meta_mapg", "peer_only"]


def test_a_study_folder_sets_its_own_budget_and_method_settings():
    """studies/neural: its base files give the budget (stop, t_warm) and Meta-MAPG's
    correction clip, which win over the env's budget and the method's defaults; MATRL
    arms in the same sweep do not get Meta-MAPG's settings."""
    plan = plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo", "handoff", "matrl"],
                                seeds=[0], tuned_examples=str(ROOT / "studies/neural")))
    assert (plan.stop_iterations, plan.evaluation_interval) == (10, 2)
    configs = plan.metadata["arm_configs"]
    assert configs["handoff"]["correction_clip"] == 3.0
    assert configs["handoff"]["handoff_steps"] == 1280
    assert configs["ippo"]["lr"] == 0.003
    assert "correction_clip" not in configs["matrl"]
    ipd = plan_sweep(SweepSpec(env="ipd", arms=["ippo"], seeds=[0],
                               tuned_examples=str(ROOT / "studies/neural")))
    assert (ipd.stop_iterations, ipd.evaluation_interval) == (40, 10)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(methods={"sarsa": {"lr": 1}}), "methods.sarsa is not a registered"),
    (lambda d: d.update(methods={"meta_mapg": 3}), "'methods' must map a method name"),
    (lambda d: d.update(stop={"training_iteration": 3}), "needs both 'stop'"),
    (lambda d: d.update(methods={"meta_mapg": {"correction_clip": -1.0}}),
     "correction_clip"),
])
def test_a_bad_study_section_is_refused_naming_the_key(tmp_path, edit, message):
    import yaml

    (tmp_path / "stag_hunt").mkdir()
    data = yaml.safe_load((ROOT / "studies/neural/stag_hunt/base.yaml").read_text())
    data.pop("stop"), data.pop("t_warm")
    edit(data)
    (tmp_path / "stag_hunt" / "base.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(UsageError, match=message):
        plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo", "handoff"],
                             tuned_examples=str(tmp_path)))


def test_sweep_config_overrides_every_arm_and_is_checked():
    from rllib_metamapg.cli import build_parser
    from rllib_metamapg.sweep.command import spec_from_args

    args = build_parser().parse_args(["sweep", "--env", "stag_hunt", "--arms", "peer_only",
                                      "--config", '{"correction_clip": 1.0, "lr": 0.01}'])
    spec = spec_from_args(args)
    plan = plan_sweep(spec)
    for arm in ("ippo", "peer_only"):
        assert plan.metadata["arm_configs"][arm]["correction_clip"] == 1.0
        assert plan.metadata["arm_configs"][arm]["lr"] == 0.01
    assert plan.param_space["lr"] == 0.01
    assert plan.metadata["spec"]["config"] == {"correction_clip": 1.0, "lr": 0.01}
    for bad, message in (('{"seed": 1}', "use --seeds"), ('[1]', "JSON object"),
                         ('{"lr": "x"}', "lr='x' must be a number"), ('{lr}', "not valid JSON")):
        args = build_parser().parse_args(["sweep", "--env", "stag_hunt", "--config", bad])
        with pytest.raises(UsageError, match=message):
            plan_sweep(spec_from_args(args))


def test_a_changed_setting_makes_a_different_sweep():
    from rllib_metamapg.results import metadata_differences

    recorded = {"env": "stag_hunt", "arms": ["ippo"], "seeds": [0, 1], "smoke": False,
                "stop_iterations": 10, "evaluation_interval": 2,
                "arm_configs": {"ippo": {"lr": 0.003, "evaluation_config": {"explore": False}}}}
    same = json.loads(json.dumps(recorded))  # as read back from metamapg_sweep.json
    assert metadata_differences(recorded, same) == []
    changed = json.loads(json.dumps(recorded))
    changed["arm_configs"]["ippo"]["lr"] = 0.002
    changed["stop_iterations"] = 20
    assert metadata_differences(recorded, changed) == ["stop_iterations", "arm_configs"]


@pytest.mark.parametrize("iterations, interval, expected", [
    (20, 1, 5),     # a one-shot game evaluated every iteration: 4 checkpoints, not 20
    (40, 10, 10),   # 4 evaluations: one checkpoint each
    (392, 98, 98),
    (10, 2, 4),     # 5 evaluations -> every second one
    (3, 1, 1), (1, 1, 1),
])
def test_a_trial_checkpoints_on_evaluations_at_most_four_times_before_its_end(
        iterations, interval, expected):
    from rllib_metamapg.sweep.plan import CHECKPOINTS_PER_TRIAL, checkpoint_interval

    every = checkpoint_interval(iterations, interval)
    assert every == expected and every % interval == 0
    assert iterations // every <= CHECKPOINTS_PER_TRIAL


def test_the_sweep_checkpoints_at_its_plans_interval():
    from rllib_metamapg.sweep.run import checkpoint_config

    plan = plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo"], seeds=[0]))
    config = checkpoint_config(plan)
    assert (config.checkpoint_frequency, config.checkpoint_at_end) == (98, True)
    studies = Path(__file__).resolve().parents[1] / "studies"
    plan = plan_sweep(SweepSpec(env="climbing", arms=["ippo"], seeds=[0],
                                tuned_examples=str(studies / "compare_rllib")))
    assert plan.evaluation_interval == 1
    assert checkpoint_config(plan).checkpoint_frequency == plan.stop_iterations // 4
