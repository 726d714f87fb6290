"""`metamapg tabular restart`: the batched restarts against a sequential restart loop,
paired inits, and the CLI (outputs, refusals)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rllib_metamapg.registry import parse_arms
from rllib_metamapg.tabular.dynamics import simulate
from rllib_metamapg.tabular_experiments import restart
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.settings import LearningSettings, SettingsError

EXACT = LearningSettings(mode="exact", steps=60)


def test_first_success_is_the_first_true_or_minus_one():
    ok = np.array([[False, True, True], [False, False, False], [True, False, True]])
    assert restart.first_success(ok).tolist() == [1, -1, 0]


def test_batched_restarts_equal_a_sequential_restart_until_success_loop():
    game, arms = get_game("stag_hunt"), parse_arms(["ippo", "peer_only"])
    seeds, max_r = 6, 4
    doc = restart.run_game(game, arms, EXACT, seeds, max_r, 3.0, 0.82, seed=3)["arms"]
    inits = restart.restart_inits(TabularPolicy.for_game(game), seeds, max_r + 1, 3.0, 3)
    for arm in ("ippo", "peer_only"):
        for s in range(seeds):
            first = -1
            for r in range(max_r + 1):  # what a user's loop does: run, check, re-draw
                res = simulate(game, parse_arms([arm]), inits[s, r:r + 1], EXACT)
                if bool(res.success(0.82)[0, 0]):
                    first = r
                    break
            assert doc[arm]["first_success"][s] == first, (arm, s)
    # the curve is monotone and ends at the share of seeds with any success
    for e in doc.values():
        rates = [c["rate"] for c in e["within"]]
        assert rates == sorted(rates)
        assert rates[-1] == np.mean(np.array(e["first_success"]) >= 0)


def test_restart_inits_are_paired_and_do_not_depend_on_the_seed_count():
    pol = TabularPolicy.for_game(get_game("ipd"))
    a = restart.restart_inits(pol, 2, 3, 3.0, 0)
    b = restart.restart_inits(pol, 5, 3, 3.0, 0)
    assert np.array_equal(a.numpy(), b[:2].numpy())
    assert a.abs().max() <= 3.0 and a.shape == (2, 3, pol.dim)
    assert not np.array_equal(a[0, 0].numpy(), a[0, 1].numpy())
    for bad, field in [((0, 1, 3.0), "seeds=0"), ((2, -1, 3.0), "max_restarts=-1"),
                       ((2, 1, float("nan")), "init_range=nan")]:
        with pytest.raises(SettingsError, match=field):
            restart.check_options(*bad)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "restart",
                           *args], capture_output=True, text=True, timeout=600)


def test_restart_cli_writes_the_set_and_refuses_bad_input_before_work(tmp_path):
    out = tmp_path / "r"
    r = _cli("--games", "stag_hunt", "--arms", "pg,peer_only", "--seeds", "8",
             "--max-restarts", "3", "--steps", "40", "--mode", "exact", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "within 3 restarts" in r.stdout
    doc = json.loads((out / "restart.json").read_text())
    e = doc["games"]["stag_hunt"]["peer_only"]
    assert len(e["within"]) == 4 and len(e["first_success"]) == 8
    assert "all_restarts_mcnemar_p" in e["vs_reference"]
    assert (out / "restart.png").stat().st_size > 0
    assert len((out / "restart.csv").read_text().splitlines()) == 1 + 2 * 8
    for bad, field in [(["--max-restarts", "-1"], "max_restarts=-1"),
                       (["--init-range", "0"], "init_range=0"),
                       (["--games", "stag_hnt"], "stag_hnt")]:
        r = _cli(*bad, "--out", str(tmp_path / "bad"))
        assert r.returncode == 2 and field in r.stderr, r.stderr
        assert not (tmp_path / "bad").exists()
