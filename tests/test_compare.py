"""``metamapg tabular compare``: the CI-sized run end to end, its rows against each
method's own experiment on the same settings and seeds, pairing, resume and refusals."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from rllib_metamapg.registry import experiment_arms, get_arm
from rllib_metamapg.tabular_experiments import suite
from rllib_metamapg.tabular_experiments.defaults import FAMILY_NAMES

QUICK = ["--quick", "--seed", "0"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "q"
    r = _cli("compare", *QUICK, "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    return out, json.loads((out / "compare.json").read_text()), r


@pytest.mark.slow
def test_quick_run_covers_every_method_arm_family_and_no_conflict_game(quick):
    out, doc, r = quick
    assert {p.name for p in out.iterdir()} >= {"compare.json", "compare.csv", "compare.md",
                                                "compare.png"}
    methods = {get_arm(a).method for a in doc["arms"]}
    assert methods == {"meta_mapg", "matrl"} and any("+" in a for a in doc["arms"])
    assert list(doc["families"]) == list(FAMILY_NAMES)
    assert len(doc["families"]["no_conflict"]["games"]) == 21
    ipd = doc["families"]["ipd"]["summary"]
    assert all(ipd[a] is None for a in doc["arms"] if "+" in a)  # samplers: one-shot only
    sh = doc["families"]["stag_hunt"]["summary"]
    assert sh["ippo"]["n"] == 6 and "vs_reference" in sh["peer_only+ma_props"]
    assert "| peer_only+ma_props |" in (out / "compare.md").read_text()
    assert doc["ma_props_own_setting"]["seeds"] == 4


@pytest.mark.slow
def test_rows_equal_ablation_basin_and_samplers_on_the_same_settings(quick, tmp_path):
    out, doc, _ = quick
    s = doc["settings"]
    common = ["--steps", str(s["steps"]), "--batch-size", str(s["batch_size"]), "--seed", "0"]
    # Meta-MAPG's, MATRL's and the compositions' rows: the ablation's runs.
    for game in ("stag_hunt", "ipd"):
        rows = doc["families"][game]["games"][game]
        r = _cli("ablation", "--games", game, "--arms", ",".join(rows), "--seeds", "6",
                 *common, "--out", str(tmp_path / game))
        assert r.returncode == 0, r.stderr[-2000:]
        abl = json.loads((tmp_path / game / "ablation.json").read_text())["games"][game]
        for arm, row in rows.items():
            assert abl[arm]["per_seed"] == row["success"], (game, arm)
    # The basin family: `metamapg tabular basin` on the same grid.
    r = _cli("basin", "--arms", ",".join(doc["arms"]), "--grid", "4", *common,
             "--out", str(tmp_path / "basin"))
    assert r.returncode == 0, r.stderr[-2000:]
    grid = json.loads((tmp_path / "basin" / "basin.json").read_text())["outcome_grid"]
    rows = doc["families"]["stag_hunt_basin"]["games"]["stag_hunt_basin"]
    for arm in doc["arms"]:
        assert np.ravel(grid[arm]).tolist() == rows[arm]["success"], arm
    # MA-PROPS's own table: `metamapg tabular samplers` on the same games and seeds.
    own = doc["ma_props_own_setting"]
    games = ",".join(f"no_conflict_{k}" for k in range(1, 22))
    r = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "samplers",
                        "--games", games, "--seeds", "4", "--steps", "400", "--samplers",
                        "on_policy,ma_props", "--out", str(tmp_path / "smp")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    ref = json.loads((tmp_path / "smp" / "samplers.json").read_text())
    for g, row in own["games"].items():
        for sampler in ("on_policy", "ma_props"):
            assert ref["games"][g][sampler]["success_per_seed"] == \
                row[sampler]["success_per_seed"], (g, sampler)


@pytest.mark.slow
def test_a_second_run_resumes_from_the_cache_and_writes_the_same_set(quick):
    out, doc, _ = quick
    # Same out dir: every game comes from the cache, and the numbers are the same.
    r2 = _cli("compare", *QUICK, "--out", str(out))
    assert r2.returncode == 0 and "reusing finished result" in r2.stderr
    assert json.loads((out / "compare.json").read_text()) == doc


def test_same_seed_same_initial_parameters_in_every_arm_of_every_method():
    from rllib_metamapg.tabular_experiments.ablation import simulate_paired
    from rllib_metamapg.tabular.games import get_game
    from rllib_metamapg.tabular.settings import LearningSettings

    arms = [get_arm(a) for a in experiment_arms("compare")]
    assert {a.method for a in arms} == {"meta_mapg", "matrl"}
    res = simulate_paired(get_game("stag_hunt"), arms, LearningSettings(steps=2, batch_size=8),
                          5, 1.35, 0, record=True)
    start = res.history[0]  # (A, R, D)
    assert all(torch.equal(start[0], start[k]) for k in range(1, len(arms)))
    assert not torch.equal(start[0, 0], start[0, 1])  # seeds differ from each other


def test_success_criteria_pure_mixed_and_entry_steps():
    pure = suite.family_games("random_coordination", 3)
    for sg in pure:
        (t,) = sg.game.targets  # the welfare-best pure equilibrium
        pay = sg.game.payoffs
        assert pay[0][t] >= pay[0][1 - t[0], t[1]] and pay[1][t] >= pay[1][t[0], 1 - t[1]]
    cyclic = suite.family_games("random_cyclic", 2)
    assert all(sg.mixed is not None and sg.game.targets == () for sg in cyclic)
    # (T=4, A=1, R=3): run 0 enters at 1, run 1 leaves and re-enters at 2, run 2 leaves
    ok = np.array([[[0, 1, 1]], [[1, 0, 1]], [[1, 1, 1]], [[1, 1, 0]]], bool)
    assert suite.entry_steps(ok).tolist() == [[1, 2, -1]]
    # criterion on a policy: start at the mixed equilibrium of a cyclic game
    from rllib_metamapg.tabular.policies import TabularPolicy

    sg = cyclic[0]
    pol = TabularPolicy.for_game(sg.game)
    at = torch.logit(torch.tensor([list(sg.mixed)], dtype=torch.float64))
    away = at + 1.0
    hist = torch.stack([at, away])[:, None]  # (T=2, A=1, R=1, D)
    assert suite.success_history(hist, pol, sg, 0.82)[:, 0, 0].tolist() == [True, False]


def test_bad_options_exit_2_naming_the_field_and_leave_nothing(tmp_path):
    for args, field in ((["--families", "nope"], "--families"), (["--seeds", "0"], "--seeds"),
                        (["--grid", "1"], "grid"), (["--arms", "ippo+nope"], "nope"),
                        (["--random-games", "0"], "--random-games"),
                        (["--batch-size", "0"], "batch_size")):
        r = _cli("compare", *args, "--out", str(tmp_path / "o"))
        assert r.returncode == 2 and field in r.stderr, (args, r.stderr)
        assert not (tmp_path / "o").exists()


def test_family_summary_pairs_outcomes_by_game_and_seed():
    from rllib_metamapg.tabular_experiments.compare import summarise_family

    games = [{"game": "a", "arms": {"ippo": {"success": [1, 0, 0], "welfare": [1, 2, 3],
                                              "entry_step": [5, -1, -1]},
                                     "x": {"success": [1, 1, 1], "welfare": [3, 3, 3],
                                           "entry_step": [1, 2, 3]}}},
             {"game": "b", "arms": {"ippo": {"success": [1, 1], "welfare": [0, 0],
                                              "entry_step": [4, 4]},
                                     "x": {"success": [0, 1], "welfare": [0, 0],
                                           "entry_step": [-1, 6]}}}]
    out = summarise_family(games, ["ippo", "x", "absent"])
    x = out["x"]
    assert (x["n"], x["successes"], x["games"]) == (5, 4, 2)
    assert x["vs_reference"]["gained"] == 2 and x["vs_reference"]["lost"] == 1
    assert x["mean_entry_step"] == pytest.approx((1 + 2 + 3 + 6) / 4)
    assert x["mean_welfare"] == pytest.approx(9 / 5)
    assert out["ippo"]["mean_entry_step"] == pytest.approx((5 + 4 + 4) / 3)
    assert out["absent"] is None
