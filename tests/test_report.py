"""``metamapg report`` on synthetic sweep folders: statistics against scipy/statsmodels,
tau refusals, unfinished trials, broken pairing, atomic outputs."""

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from rllib_metamapg.cli import main
from rllib_metamapg.report import ReportError, load_sweep, write_report
from rllib_metamapg.report.analysis import bootstrap_band, describe
from rllib_metamapg.results import METADATA_FILE
from rllib_metamapg.sweep.plan import METRIC

# arm -> per-seed greedy returns at the two evaluations (iterations 2 and 4).
CURVES = {
    "ippo": [(4, 4), (4, 4), (8, 4), (4, 8), (4, 4), (3, 4)],
    "peer_only": [(8, 8), (4, 8), (8, 8), (8, 8), (4, 4), (8, 8)],
}


def make_sweep(root, curves=CURVES, tau=6.0, random_return=4.5, digests=None, cut=(),
               started=None):
    """A sweep folder laid out like Tune's: params.json + result.json per trial
    (only for the (arm, seed) pairs in ``started`` when given)."""
    root.mkdir(parents=True, exist_ok=True)
    seeds = list(range(len(next(iter(curves.values())))))
    (root / METADATA_FILE).write_text(json.dumps({
        "env": "stag_hunt", "arms": list(curves), "seeds": seeds, "smoke": True,
        "metric": METRIC, "tau": tau, "tau_note": "", "returns_nonnegative": True,
        "stop_iterations": 4, "evaluation_interval": 2, "random_return": random_return}))
    for arm, per_seed in curves.items():
        for seed, (first, last) in enumerate(per_seed):
            if started is not None and (arm, seed) not in started:
                continue
            d = root / f"MetaMAPG_stag_hunt_{arm}_{seed}"
            d.mkdir()
            (d / "params.json").write_text(json.dumps({"arm": arm, "seed": seed}))
            rows = []
            for it in range(1, 5):
                if (arm, seed) in cut and it > 2:
                    break
                row = {"training_iteration": it, "num_env_steps_sampled_lifetime": 64 * it,
                       "metamapg_init": {"weights_sha256": (digests or {}).get(
                           (arm, seed), f"w{seed}")}}
                if it >= 2:  # RLlib repeats the last evaluation in later results
                    value = first if it < 4 else last
                    row["evaluation"] = {"env_runners": {"episode_return_mean": value}}
                rows.append(json.dumps(row))
            (d / "result.json").write_text("\n".join(rows) + "\n")
    return root


def test_table_learners_and_tests_match_scipy_and_statsmodels(tmp_path):
    doc = write_report([str(make_sweep(tmp_path / "sw"))], str(tmp_path / "out"))
    (result,) = doc["results"]
    finals = {arm: [c[1] for c in v] for arm, v in CURVES.items()}
    for arm, row in result["arms"].items():
        x = np.array(finals[arm], float)
        assert row["n"] == 6 and row["mean"] == pytest.approx(x.mean())
        assert row["std"] == pytest.approx(x.std(ddof=1))
        assert row["p25"] == pytest.approx(np.quantile(x, 0.25))
        assert row["learners"] == int((x >= 6).sum())
    assert result["arms"]["ippo"]["learners"] == 1 and result["arms"]["peer_only"]["learners"] == 5
    # Wilson 95% for 5/6 (statsmodels' closed form: 0.4365, 0.9699).
    assert result["arms"]["peer_only"]["wilson_low"] == pytest.approx(0.4365, abs=1e-4)
    assert result["arms"]["peer_only"]["wilson_high"] == pytest.approx(0.9699, abs=1e-4)
    # First hit: peer_only seeds 0, 2, 3, 5 at step 128, seed 1 at 256 -> median 128.
    assert result["arms"]["peer_only"]["median_first_hit"] == 128.0
    assert result["arms"]["ippo"]["median_first_hit"] == 192.0  # seeds 2 (128), 3 (256)
    test = result["tests_vs_reference"]["peer_only"]
    # Learner status: ippo learns on seed 3 only; peer_only on 0, 1, 2, 3, 5.
    assert (test["mcnemar"]["a_only"], test["mcnemar"]["b_only"]) == (0, 4)
    assert test["mcnemar"]["p_value"] == pytest.approx(2 * 0.5 ** 4)
    ref = sps.wilcoxon(np.subtract(finals["peer_only"], finals["ippo"]))
    assert test["wilcoxon"]["p_value"] == pytest.approx(ref.pvalue)
    assert result["pairing_broken"] == [] and result["incomplete"] == []


def test_outputs_are_complete_and_nothing_half_written(tmp_path):
    out = tmp_path / "out"
    write_report([str(make_sweep(tmp_path / "sw"))], str(out))
    names = {p.name for p in out.iterdir()}
    assert names == {"report.md", "report.json", "summary.csv", "seeds.csv",
                     "stag_hunt_curves.png", "stag_hunt_strip.png"}
    md = (out / "report.md").read_text()
    assert "| `peer_only` | 5/6 |" in md and "stag_hunt_curves.png" in md
    rows = list(csv.DictReader((out / "seeds.csv").open()))
    assert len(rows) == 12 and {r["learner"] for r in rows} == {"True", "False"}
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, message", [
    ({"tau": None}, "no learner threshold tau"),
    ({"tau": 0.0}, "stale-threshold pitfall"),
    ({"tau": 4.0, "random_return": 4.5}, "already reached by uniformly random play"),
])
def test_thresholds_that_cannot_separate_learners_are_refused(tmp_path, kwargs, message):
    folder = make_sweep(tmp_path / "sw", **kwargs)
    with pytest.raises(ReportError, match=message):
        write_report([str(folder)], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # refused before writing anything
    # An explicit override is honoured.
    doc = write_report([str(folder)], str(tmp_path / "out"), tau=kwargs["tau"] or 1.0,
                       allow_trivial_tau=True)
    assert doc["results"][0]["tau"] == (kwargs["tau"] or 1.0)


def test_unfinished_trials_are_listed_not_scored(tmp_path):
    folder = make_sweep(tmp_path / "sw", cut={("peer_only", 4)})
    (result,) = write_report([str(folder)], str(tmp_path / "out"))["results"]
    assert result["incomplete"] == ["peer_only/seed 4 (stopped at iteration 2 of 4)"]
    assert result["arms"]["peer_only"]["n"] == 5
    assert result["tests_vs_reference"]["peer_only"]["pairs"] == 5
    assert "Not scored" in (tmp_path / "out" / "report.md").read_text()


def test_a_sweep_killed_after_2_of_8_trials_lists_the_6_missing_and_the_true_n(tmp_path):
    curves = {arm: v[:4] for arm, v in CURVES.items()}  # 2 arms x 4 seeds = 8 planned
    folder = make_sweep(tmp_path / "sw", curves=curves, cut={("peer_only", 0)},
                        started={("ippo", 0), ("ippo", 1), ("peer_only", 0)})
    (tmp_path / "sw" / "MetaMAPG_stag_hunt_peer_only_0" / "error.txt").write_text("boom")
    (result,) = write_report([str(folder)], str(tmp_path / "out"))["results"]
    assert (result["planned_trials"], result["scored_trials"]) == (8, 2)
    assert len(result["missing"]) == 6
    status = {(m["arm"], m["seed"]): m["status"] for m in result["missing"]}
    assert status[("peer_only", 0)] == "errored at iteration 2 of 4"
    assert status[("ippo", 3)] == status[("peer_only", 3)] == "never started"
    assert result["arms"]["ippo"]["n"] == 2 and result["arms"]["peer_only"]["n"] == 0
    assert result["small_n"] == ["peer_only"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Scored 2 of 8 planned trials" in md and "**6 missing**" in md
    assert "ippo/seed 2 (never started)" in md


def test_n_below_2_is_flagged_and_not_tested(tmp_path):
    folder = make_sweep(tmp_path / "sw", started={("ippo", 0), ("ippo", 1), ("peer_only", 0)})
    (result,) = write_report([str(folder)], str(tmp_path / "out"))["results"]
    assert result["arms"]["peer_only"]["n"] == 1 and result["small_n"] == ["peer_only"]
    assert result["tests_vs_reference"]["peer_only"] == {"pairs": 1, "mcnemar": None,
                                                    "wilcoxon": None}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**n < 2** for peer_only" in md and "needs 2 pairs" in md


def test_broken_pairing_is_flagged(tmp_path):
    folder = make_sweep(tmp_path / "sw", digests={("peer_only", 2): "other"})
    (result,) = write_report([str(folder)], str(tmp_path / "out"))["results"]
    assert result["pairing_broken"] == [2]


def test_evaluations_repeated_in_later_results_are_not_counted_twice(tmp_path):
    sweep = load_sweep(str(make_sweep(tmp_path / "sw")))
    trial = next(t for t in sweep.trials if t.arm == "ippo" and t.seed == 3)
    assert trial.evals == [(128.0, 4.0), (256.0, 8.0)] and trial.final_return == 8.0


def test_bootstrap_band_brackets_the_mean():
    rng = np.random.default_rng(0)
    curves = rng.normal(size=(25, 3)) + np.array([0.0, 1.0, 2.0])
    mean, low, high = bootstrap_band(curves)
    assert np.all(low < mean) and np.all(mean < high)
    assert np.allclose(high - low, 2 * 1.96 / 5, rtol=0.35)  # ~ normal-theory width
    assert math.isnan(describe([1.0])["std"])


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a metamapg sweep folder" in capsys.readouterr().err


def test_small_p_values_are_printed_with_their_magnitude():
    from rllib_metamapg.report.write import _p

    assert _p(1.52587890625e-05) == "1.5e-05"
    assert _p(0.03125) == "0.031"
    assert _p(1.0) == "1.000"
    assert _p(None) == "–"


def test_entry_and_settled_steps_follow_the_outcome_not_the_first_hit(tmp_path):
    # Evaluations at env steps 128 and 256 (iterations 2 and 4).  ippo seed 2 learns
    # and then loses it (8 -> 4): its first hit is 128 but its outcome settles at 256;
    # seed 3 enters at 256.  peer_only's learners enter at 128 except seed 1 (256).
    doc = write_report([str(make_sweep(tmp_path / "sw"))], str(tmp_path / "out"))
    (result,) = doc["results"]
    ippo, peer = result["arms"]["ippo"], result["arms"]["peer_only"]
    assert ippo["mean_entry_step"] == 256.0 and ippo["latest_settled_step"] == 256.0
    assert peer["mean_entry_step"] == pytest.approx((4 * 128 + 256) / 5)
    assert result["latest_settled_step"] == 256.0 and result["last_eval_step"] == 256.0
    assert ippo["mean_return"] == pytest.approx(sum(c[1] for c in CURVES["ippo"]) / 6)
    # Settled after 192 of 256 steps: ippo seeds 2 and 3 and peer_only seed 1.
    assert result["changed_in_last_quarter"] == 3 and result["scored"] == 12
    assert "env step 256 of 256 (100 % of the budget); 3 of 12 scored trials changed" in (
        tmp_path / "out" / "report.md").read_text()


def test_arms_with_different_critics_are_paired_by_their_actors():
    from rllib_metamapg.report.analysis import unpaired_seeds
    from rllib_metamapg.report.load import TrialRecord

    def trial(arm, seed, full, actor):
        return TrialRecord(arm, seed, "", init_digest=full, actor_digest=actor)

    trials = [trial("ippo", 0, "w0", "a0"), trial("mappo", 0, "m0", "a0"),  # paired actors
              trial("ippo", 1, "w1", "a1"), trial("mappo", 1, "m1", "b1"),  # actors differ
              trial("ippo", 2, "w2", None), trial("peer_only", 2, "w2", None),  # old results
              trial("ippo", 3, "w3", None), trial("mappo", 3, "m3", "a3")]  # cannot tell
    assert unpaired_seeds(trials) == [1, 3]


def test_the_report_states_what_the_sweep_cost(tmp_path):
    root = make_sweep(tmp_path / "sw")
    for k, result in enumerate(sorted(root.glob("*/result.json"))):
        rows = [json.loads(line) for line in result.read_text().splitlines()]
        for it, row in enumerate(rows, start=1):  # trial k trains from 100 k, 2 s per iteration
            row.update(timestamp=100 * k + 2 * it, time_total_s=2.0 * it)
        result.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    doc = write_report([str(root)], str(tmp_path / "out"))
    timing = doc["results"][0]["timing"]
    n = len(list(root.glob("*/result.json")))
    assert timing == {"span_s": 100.0 * (n - 1) + 8.0, "train_s": 8.0 * n, "trials": n}
    assert f"{timing['span_s'] / 60:.1f} min from the first trial's start" in (
        tmp_path / "out" / "report.md").read_text()
