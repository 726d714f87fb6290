"""``--plan``: a sweep or study priced before it runs (rllib_metamapg/sweep/estimate.py).

The arithmetic is checked against closed forms on real sweep plans, the calibration
against a sweep folder written here with known times, and the commands end to end
(nothing runs, Ray does not start).  Whether the estimate is close to a real sweep's
wall time is a benchmark (benchmarks/plan.py), not a test."""

import json
import math
from pathlib import Path

import pytest

from rllib_metamapg.errors import UsageError
from rllib_metamapg.results import METADATA_FILE
from rllib_metamapg.study.manifest import load_study
from rllib_metamapg.study.run import plan_study
from rllib_metamapg.sweep import estimate
from rllib_metamapg.sweep.plan import SweepSpec, plan_sweep

ROOT = Path(__file__).resolve().parents[1]


def _plan(env="stag_hunt", arms=("ippo", "peer_only"), seeds=(0, 1), **kw):
    return plan_sweep(SweepSpec(env=env, arms=list(arms), seeds=list(seeds),
                                tuned_examples=str(ROOT / "studies" / "compare_rllib"), **kw))


def _rates(**kw):
    base = dict(iteration_s={}, steps_per_s={("stag_hunt", "ippo"): 1000.0,
                                             ("stag_hunt", "meta_mapg"): 500.0},
                overhead_s=2.0, overhead_source="test", fixed_s=20.0)
    base.update(kw)
    return estimate.Rates(**base)


def test_a_trial_is_its_steps_at_the_measured_speed_plus_evaluation_and_overhead():
    plan = _plan()
    iters, interval = plan.stop_iterations, plan.evaluation_interval
    cfg = plan.metadata["arm_configs"]["ippo"]
    evals = iters // interval * cfg["evaluation_duration"] * 1  # one-round episodes
    expected = (iters * cfg["train_batch_size_per_learner"] + evals) / 1000.0 + 2.0
    seconds, notes = estimate.trial_seconds(plan, "ippo", _rates())
    assert seconds == pytest.approx(expected) and notes == []
    # peer_only is priced at meta_mapg's measured speed, without a note.
    slow, notes = estimate.trial_seconds(plan, "peer_only", _rates())
    assert slow == pytest.approx((expected - 2.0) * 2 + 2.0) and notes == []
    # A one-shot game without a measurement of its own is priced as Stag Hunt, said so.
    _, notes = estimate.trial_seconds(_plan(env="penalty"), "ippo", _rates())
    assert notes == ["penalty: priced as stag_hunt (one-shot 2-player matrix game)"]


def test_an_env_nobody_measured_is_refused_with_the_command_that_measures_it():
    with pytest.raises(UsageError, match="benchmarks/envs.py --envs ipd"):
        estimate.trial_seconds(_plan(env="ipd", arms=("ippo",)), "ippo", _rates())


def test_wall_time_and_cost_on_a_shape():
    plan = _plan(seeds=tuple(range(10)))
    doc = estimate.estimate([plan], _rates())
    (sweep,) = doc["sweeps"]
    assert sweep["trials"] == doc["trials"] == 20
    per = sweep["trial_s"]
    assert sweep["trial_s_total"] == pytest.approx(10 * (per["ippo"] + per["peer_only"]))
    batch = plan.metadata["arm_configs"]["ippo"]["train_batch_size_per_learner"]
    assert doc["env_steps"] == 20 * plan.stop_iterations * batch
    shape = estimate.Shape("s", "test", nodes=3, cpus_per_node=8, node_usd_per_h=2.0,
                           head_usd_per_h=1.0)
    out = estimate.on_shape(doc, shape, cpus_per_trial=2, gpus_per_trial=0,
                            max_concurrent=None)
    assert out["slots"] == 12 and out["nodes"] == 3
    wall = 20.0 + max(sweep["trial_s_total"] / 12, sweep["longest_trial_s"])
    assert out["wall_s"] == pytest.approx(wall)
    assert out["usd"] == pytest.approx(wall / 3600 * (3 * 2.0 + 1.0))
    capped = estimate.on_shape(doc, shape, 2, 0, max_concurrent=5)
    assert capped["slots"] == 5 and capped["nodes"] == 2
    gpu = estimate.Shape("g", "test", nodes=1, cpus_per_node=48, gpus_per_node=4)
    assert estimate.on_shape(doc, gpu, 1, 0.33, None)["slots"] == 12
    assert not estimate.on_shape(doc, shape, 1, 0.5, None)["fits"]  # no GPU there


def _fake_sweep(folder: Path, plan, iteration_s: float, overhead_s: float) -> None:
    """A finished sweep of ``plan`` run 2 at a time: each trial trains ``iteration_s``
    per iteration and costs ``overhead_s`` more of its slot."""
    folder.mkdir()
    (folder / METADATA_FILE).write_text(json.dumps({**plan.metadata, "spec": {
        **plan.metadata["spec"], "max_concurrent": 2}}))
    clock = {0: 1000.0, 1: 1000.0}
    n = 0
    for arm in plan.spec.arms:
        for seed in plan.spec.seeds:
            slot = n % 2
            trial = folder / f"t{n}_{arm}_{seed}"
            trial.mkdir()
            (trial / "params.json").write_text(json.dumps({"arm": arm, "seed": seed}))
            start = clock[slot] + overhead_s
            rows = [{"training_iteration": i, "time_total_s": i * iteration_s,
                     "timestamp": start + i * iteration_s}
                    for i in range(1, plan.stop_iterations + 1)]
            (trial / "result.json").write_text("\n".join(json.dumps(r) for r in rows))
            clock[slot] = rows[-1]["timestamp"]
            n += 1


def test_a_finished_sweep_calibrates_the_time_per_iteration_and_the_overhead(tmp_path):
    plan = _plan(env="no_conflict_19", seeds=(0, 1, 2, 3))
    _fake_sweep(tmp_path / "pilot", plan, iteration_s=0.5, overhead_s=3.0)
    rates = estimate.load_rates([str(tmp_path / "pilot")], [plan])
    assert rates.iteration_s[("no_conflict_19", "ippo")][0] == pytest.approx(0.5)
    # span x slots - training = each trial's overhead, except the first in each slot.
    assert rates.overhead_s == pytest.approx(3.0 * 6 / 8)
    seconds, notes = estimate.trial_seconds(plan, "ippo", rates)
    assert seconds == pytest.approx(plan.stop_iterations * 0.5 + rates.overhead_s)
    # ... and prices the other one-shot games of the same settings, saying where from.
    other = _plan(env="penalty", seeds=(0, 1, 2, 3))
    rates = estimate.load_rates([str(tmp_path / "pilot")], [other])
    assert rates.iteration_s[("penalty", "ippo")] == (pytest.approx(0.5), "no_conflict_19")
    doc = estimate.estimate([other], rates)
    assert any("measured on no_conflict_19" in n for n in doc["notes"])
    # A sweep of other per-iteration settings calibrates nothing: another batch size,
    # or Stag Hunt's study settings (an evaluation every 2 iterations, not every one).
    bigger = _plan(env="no_conflict_19", seeds=(0, 1, 2, 3),
                   config={"train_batch_size_per_learner": 512})
    assert estimate.load_rates([str(tmp_path / "pilot")], [bigger]).iteration_s == {}
    bigger = _plan(seeds=(0, 1, 2, 3))
    assert estimate.load_rates([str(tmp_path / "pilot")], [bigger]).iteration_s == {}


def test_the_app_f_study_is_625_trials_and_its_pilot_a_tenth_of_the_steps():
    full = estimate.plan_document(plan_study(load_study(str(ROOT / "studies/app_f")), "x"),
                                  shape_names=["here", "aws-cpu"])
    pilot = estimate.plan_document(
        plan_study(load_study(str(ROOT / "studies/app_f_pilot")), "x"), shape_names=["here"])
    assert full["trials"] == 5 * 5 * 25 and pilot["trials"] == 5 * 5 * 3
    per_trial = full["env_steps"] / full["trials"], pilot["env_steps"] / pilot["trials"]
    assert per_trial[1] == pytest.approx(per_trial[0] / 10, rel=0.02)
    here, cpu = full["shapes"]
    assert here["slots"] <= 2 and cpu["slots"] == 96 and cpu["usd"] > 0
    assert cpu["wall_s"] < here["wall_s"]
    # Table 2's budgets: 750k steps on MPE, 1M on Overcooked and the IPD, per trial.
    steps = {s["env"]: s["env_steps"] / s["trials"] for s in full["sweeps"]}
    assert steps["mpe_simple_spread"] == pytest.approx(750_000, rel=0.02)
    assert steps["overcooked_forced_coordination"] == pytest.approx(1_000_000, rel=0.02)
    assert math.isclose(steps["pettingzoo_ipd"], 1_000_000, rel_tol=0.02)


def test_plan_commands_print_and_write_json_without_starting_ray(tmp_path, capsys):
    import ray

    from rllib_metamapg.cli import main

    out = tmp_path / "plan.json"
    assert main(["sweep", "--env", "stag_hunt", "--arms", "ippo,peer_only", "--seeds", "0-3",
                 "--plan", "--shape", "here,aws-cpu", "--plan-json", str(out)]) == 0
    said = capsys.readouterr().out
    assert "[metamapg plan] 8 trials" in said and "| aws-cpu" in said
    doc = json.loads(out.read_text())
    assert doc["trials"] == 8 and [s["shape"] for s in doc["shapes"]] == ["here", "aws-cpu"]
    assert main(["study", str(ROOT / "studies/app_f"), "--plan", "--shape", "aws-gpu"]) == 0
    assert "[metamapg plan] 625 trials" in capsys.readouterr().out
    assert not ray.is_initialized()
    assert not (tmp_path / "metamapg_results").exists()


@pytest.mark.parametrize("args, field", [
    (["--shape", "moon"], "--shape 'moon'"),
    (["--nodes", "0"], "--nodes"),
    (["--calibrate", "/no/such/sweep"], "--calibrate /no/such/sweep"),
])
def test_bad_plan_options_are_refused_naming_them(args, field, capsys):
    from rllib_metamapg.cli import main

    assert main(["sweep", "--env", "stag_hunt", "--arms", "ippo", "--seeds", "0",
                 "--plan", *args]) == 2
    assert field in capsys.readouterr().err
