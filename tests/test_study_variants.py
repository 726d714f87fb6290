"""A study's variants and ``base.yaml``'s ``samplers`` key: a settings grid (MA-PROPS's
behaviour settings) swept over the same paired seeds, each variant its own sweep and
report, one summary over them; and ``--envs`` narrowing what runs, never what the
summary covers."""

import json
from pathlib import Path

import pytest
import yaml

from rllib_metamapg.errors import UsageError
from rllib_metamapg.results import settings_digest
from rllib_metamapg.study.manifest import load_study
from rllib_metamapg.sweep.plan import SweepSpec, plan_sweep
from rllib_metamapg.tuned_examples import experiment

ROOT = Path(__file__).resolve().parents[1]
STAG_BASE = ROOT / "studies" / "compare_rllib" / "stag_hunt" / "base.yaml"


def _study(tmp_path: Path, manifest: dict, envs=("stag_hunt",), base_extra=None) -> Path:
    folder = tmp_path / "grid"
    for env in envs:
        (folder / env).mkdir(parents=True)
        base = yaml.safe_load(STAG_BASE.read_text())
        base.update(base_extra or {})
        (folder / env / "base.yaml").write_text(yaml.safe_dump(base))
    (folder / "study.yaml").write_text(yaml.safe_dump(manifest))
    return folder


GRID = {"envs": ["stag_hunt"], "arms": ["ippo", "ippo+ma_props"], "seeds": "0",
        "reports": "r", "max_concurrent": 1,
        "variants": {"every1": {"samplers": {"ma_props": {"behaviour": {"every": 1}}}},
                     "every128": {"samplers": {"ma_props": {"behaviour": {"every": 128}}}}}}


def test_samplers_settings_reach_only_the_arms_that_sample_with_it(tmp_path):
    folder = _study(tmp_path, GRID, base_extra={
        "samplers": {"ma_props": {"behaviour": {"lr": 0.3, "clip": 1.0}}}})
    _, comp = experiment("stag_hunt", "ippo+ma_props", folder=folder)
    _, plain = experiment("stag_hunt", "ippo", folder=folder)
    _, peer = experiment("stag_hunt", "peer_only+ma_props", folder=folder)
    assert comp["config"]["behaviour"] == {"lr": 0.3, "clip": 1.0}
    assert peer["config"]["behaviour"] == {"lr": 0.3, "clip": 1.0}
    assert "behaviour" not in plain["config"]
    assert comp["config"]["sampler"] == "ma_props"


@pytest.mark.parametrize("samplers, field", [
    ({"no_such": {"behaviour": {}}}, "samplers.no_such"),
    ({"on_policy": {"lr": 0.1}}, "samplers.on_policy"),
    ({"ma_props": 3}, "'samplers' must map"),
])
def test_a_bad_samplers_key_is_refused_naming_it(tmp_path, samplers, field):
    folder = _study(tmp_path, GRID, base_extra={"samplers": samplers})
    with pytest.raises(UsageError, match=field):
        experiment("stag_hunt", "ippo", folder=folder)


def test_an_overlay_changes_the_composition_only_and_the_settings_digest(tmp_path):
    folder = _study(tmp_path, GRID)

    def plan(overlay):
        return plan_sweep(SweepSpec(env="stag_hunt", arms=["ippo", "ippo+ma_props"],
                                    seeds=[0], tuned_examples=str(folder),
                                    base_overlay=overlay)).metadata

    none, one, four = (plan(None), plan(GRID["variants"]["every1"]),
                       plan(GRID["variants"]["every128"]))
    assert none["arm_configs"]["ippo"] == one["arm_configs"]["ippo"] \
        == four["arm_configs"]["ippo"]
    assert one["arm_configs"]["ippo+ma_props"]["behaviour"] == {"every": 1}
    assert four["arm_configs"]["ippo+ma_props"]["behaviour"] == {"every": 128}
    assert len({settings_digest(m) for m in (none, one, four)}) == 3
    # An overlay the composition's validate() refuses is refused before Ray starts.
    with pytest.raises(UsageError, match="every"):
        plan({"samplers": {"ma_props": {"behaviour": {"every": 0}}}})
    # ... as is one that sets behaviour on every arm, on-policy ones included.
    with pytest.raises(UsageError, match="behaviour"):
        plan({"config": {"behaviour": {"every": 2}}})


def test_variants_are_units_of_the_study_and_narrowing_keeps_the_summary_whole(tmp_path):
    folder = _study(tmp_path, {**GRID, "envs": ["stag_hunt", "ipd"],
                               "smoke": {"variants": ["every128"]}},
                    envs=("stag_hunt", "ipd"))
    study = load_study(str(folder))
    assert study.units() == [("stag_hunt", "every1"), ("stag_hunt", "every128"),
                             ("ipd", "every1"), ("ipd", "every128")]
    assert study.sweep_name("ipd", "every128") == "grid-ipd-every128"
    assert study.report_dir("ipd", "every128") == Path("r") / "ipd" / "every128"
    narrow = load_study(str(folder), envs=["ipd"], variants=["every1"])
    assert narrow.units() == [("ipd", "every1")]
    assert narrow.units(run=False) == study.units()
    smoke = load_study(str(folder), smoke=True)
    assert list(smoke.variants) == ["every128"]
    assert smoke.sweep_name("ipd", "every128") == "grid-ipd-every128-smoke"
    plain = load_study(str(ROOT / "studies" / "compare_rllib"), envs=["penalty"])
    assert plain.units() == [("penalty", None)] and len(plain.units(run=False)) >= 7
    assert plain.report_dir("penalty") == plain.reports / "penalty"


@pytest.mark.parametrize("variants, field", [
    ({"lr0.3": {"config": {"lr": 0.3}}}, "variant name 'lr0.3'"),
    ({"a/b": {"config": {"lr": 0.3}}}, "variant name 'a/b'"),
    ({"fast": {"stop": {"training_iteration": 1}}}, r"unknown key\(s\) \['stop'\]"),
    ({"fast": {}}, "non-empty mapping"),
    ({"fast": {"samplers": {"nope": {}}}}, "samplers.nope"),
    ({"fast": {"methods": {"nope": {}}}}, "methods.nope"),
    (["fast"], "'variants' must map"),
])
def test_a_bad_variant_is_refused_naming_it(tmp_path, variants, field):
    folder = _study(tmp_path, {**GRID, "variants": variants})
    with pytest.raises(UsageError, match=field):
        load_study(str(folder))


def test_unknown_variants_on_the_command_line_are_refused(tmp_path):
    folder = _study(tmp_path, {**GRID, "smoke": {"variants": ["every9"]}})
    with pytest.raises(UsageError, match="--variants"):
        load_study(str(folder), variants=["every2"])
    with pytest.raises(UsageError, match="smoke.variants"):
        load_study(str(folder), smoke=True)


# About a minute (two sweeps): `make test-long`, which .ci/run runs; the Ray-free tests
# above guard the same path (each variant's settings reach the compositions only).
@pytest.mark.slow
@pytest.mark.long
def test_a_variant_grid_runs_one_sweep_per_variant_on_the_same_seeds(tmp_path, monkeypatch):
    import ray

    from rllib_metamapg.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    folder = _study(tmp_path, GRID)
    out, reports = tmp_path / "out", tmp_path / "reports"
    assert main(["study", str(folder), "--smoke", "--out", str(out), "--reports",
                 str(reports), "--quiet", "--progress-every", "0"]) == 0
    last = {}
    for variant in ("every1", "every128"):
        for trial in (out / f"grid-stag_hunt-{variant}-smoke").glob("*/result.json"):
            params = json.loads((trial.parent / "params.json").read_text())
            rows = [json.loads(line) for line in trial.read_text().splitlines()]
            last[(variant, params["arm"])] = rows
        assert (reports / "stag_hunt" / variant / "report.json").is_file()
    # The overlay reached the composition: MA-PROPS updated its behaviour after every
    # vector step of 32 draws, or after every 128 draws.
    updates = {v: last[(v, "ippo+ma_props")][-1]["env_runners"]["sampler_behaviour_updates"]
               for v in ("every1", "every128")}
    assert updates["every1"] >= 2 * updates["every128"] > 0, updates
    # ... and nowhere else: ippo ran the same in both variants (same seed, same run).
    returns = {v: [r["env_runners"]["episode_return_mean"] for r in last[(v, "ippo")]]
               for v in ("every1", "every128")}
    assert returns["every1"] == returns["every128"]
    summary = json.loads((reports / "summary.json").read_text())
    assert list(summary["envs"]) == ["stag_hunt:every1", "stag_hunt:every128"]
    assert summary["envs"]["stag_hunt:every128"]["variant"] == "every128"
    table = (reports / "summary.md").read_text()
    assert "| `ippo+ma_props` | every128 |" in table


def test_a_narrowed_run_still_summarises_every_env_of_the_study(tmp_path):
    from rllib_metamapg.study.summary import build_summary

    committed = ROOT / "docs" / "compare_rllib"
    reported = sorted(p.parent.name for p in committed.glob("*/report.json"))
    assert len(reported) >= 4
    study = load_study(str(ROOT / "studies" / "compare_rllib"), envs=["penalty"],
                       reports=str(committed))
    doc = build_summary(study, str(tmp_path), committed)
    assert sorted(doc["envs"]) == reported
    assert sorted(doc["missing_envs"]) == sorted(set(study.all_envs) - set(reported))
    assert doc["envs"][reported[0]]["variant"] is None


def test_the_ma_props_grid_study_plans_every_variant_on_the_comparison_settings():
    """Every (game, variant) of studies/ma_props_rllib is a valid sweep before Ray
    starts; its ippo is the comparison study's ippo (the seeds pair), and each variant's
    behaviour settings reach the compositions."""
    from rllib_metamapg.study.run import _spec

    grid = load_study(str(ROOT / "studies" / "ma_props_rllib"))
    compare = load_study(str(ROOT / "studies" / "compare_rllib"))
    assert len(grid.variants) == 18 and len(grid.seeds) >= 20
    assert set(grid.envs) == {"no_conflict_19", "no_conflict_20", "no_conflict_21"}
    settings = set()
    for env, variant in grid.units():
        meta = plan_sweep(_spec(grid, env, variant, "unused")).metadata
        base = plan_sweep(_spec(compare, env, None, "unused")).metadata
        assert meta["arm_configs"]["ippo"] == base["arm_configs"]["ippo"]
        behaviour = meta["arm_configs"]["peer_only+ma_props"]["behaviour"]
        assert behaviour == meta["arm_configs"]["ippo+ma_props"]["behaviour"]
        settings.add((env, tuple(sorted(behaviour.items()))))
    assert len(settings) == 3 * 18


def test_a_pilot_cuts_the_budget_and_t_warm_but_not_the_settings(tmp_path):
    from rllib_metamapg.study.run import plan_study

    full = {p.spec.env: p for p in plan_study(load_study(str(ROOT / "studies/app_f")), "x")}
    pilot = {p.spec.env: p
             for p in plan_study(load_study(str(ROOT / "studies/app_f_pilot")), "x")}
    assert set(full) == set(pilot)
    for env, plan in pilot.items():
        big = full[env]
        assert abs(plan.stop_iterations - big.stop_iterations / 10) <= big.evaluation_interval
        assert plan.evaluation_interval == big.evaluation_interval
        small_cfg = dict(plan.metadata["arm_configs"]["handoff"])
        big_cfg = dict(big.metadata["arm_configs"]["handoff"])
        assert small_cfg.pop("handoff_steps") * 10 == big_cfg.pop("handoff_steps")
        assert small_cfg == big_cfg  # the same settings otherwise
    for bad in (0, 1.5, "half"):
        folder = _study(tmp_path / str(bad), {**GRID, "budget_fraction": bad})
        with pytest.raises(UsageError, match="budget_fraction"):
            load_study(str(folder))
