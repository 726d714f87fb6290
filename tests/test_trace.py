"""`simulate(trace=True)` / `metamapg tabular ablation --trace`: per-step step sizes,
update norms and Meta-MAPG's term norms and lambda, without changing the run."""

import json
import subprocess
import sys

import numpy as np
import torch

from rllib_metamapg.registry import parse_arms
from rllib_metamapg.tabular.dynamics import simulate
from rllib_metamapg.tabular_experiments.ablation import paired_init
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.settings import LearningSettings


def test_trace_reports_the_schedule_and_norms_and_leaves_the_run_unchanged():
    game = get_game("stag_hunt")
    s = LearningSettings(mode="exact", steps=25, handoff_steps=10, lambda_schedule="hard")
    arms = parse_arms(["ippo", "peer_only", "meta_mapg", "handoff", "matrl"])
    theta0 = paired_init(TabularPolicy.for_game(game), 5, 1.35, 0)
    plain = simulate(game, arms, theta0, s)
    traced = simulate(game, arms, theta0, s, trace=True)
    assert torch.equal(plain.theta, traced.theta) and plain.trace is None
    t = {k: v.numpy() for k, v in traced.trace.items()}
    assert t["step_size"].shape == (25, 5, 5)
    np.testing.assert_allclose(t["step_size"][:, 0, 0], [s.step_size(n) for n in range(25)])
    ippo, peer, full, hand, matrl = range(5)
    np.testing.assert_allclose(t["norm_update"][:, ippo], t["norm_v"][:, ippo])
    assert (t["norm_own"][:, ippo] == 0).all() and (t["norm_peer"][:, ippo] == 0).all()
    assert (t["norm_own"][:, peer] == 0).all() and (t["norm_peer"][:, peer] > 0).all()
    assert (t["norm_own"][:, full] > 0).all()
    # the handoff arm's lambda follows the hard schedule: 1 before T = 10, then 0
    np.testing.assert_array_equal(t["lambda"][:, hand, 0], [1.0] * 10 + [0.0] * 15)
    assert (t["norm_peer"][10:, hand] == 0).all()
    # MATRL reports no Meta-MAPG terms: NaN there, but its update norm is traced
    assert np.isnan(t["norm_peer"][:, matrl]).all() and (t["norm_update"][:, matrl] > 0).all()
    # |d_n| really is the step taken: the first step's length over alpha_0
    first = simulate(game, arms, theta0, LearningSettings(mode="exact", steps=1))
    np.testing.assert_allclose(
        (first.theta - theta0[None]).norm(dim=-1).numpy() / s.step_size(0),
        t["norm_update"][0], rtol=1e-9)


def test_ablation_trace_flag_writes_trace_csv_only_when_asked(tmp_path):
    common = ["--games", "stag_hunt", "--arms", "pg,peer_only", "--seeds", "4", "--steps",
              "12", "--mode", "exact"]
    for flag, name in (([], "plain"), (["--trace"], "traced")):
        r = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "ablation",
                            *common, *flag, "--out", str(tmp_path / name)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    assert not (tmp_path / "plain" / "trace.csv").exists()
    rows = (tmp_path / "traced" / "trace.csv").read_text().splitlines()
    assert rows[0] == "game,arm,step,quantity,mean,median"
    doc = json.loads((tmp_path / "traced" / "ablation.json").read_text())
    e = doc["games"]["stag_hunt"]["peer_only"]
    assert len(e["trace"]["norm_peer"]["mean"]) == 12 and e["trace"]["lambda"]["mean"][0] == 1
    plain = json.loads((tmp_path / "plain" / "ablation.json").read_text())
    assert plain["games"]["stag_hunt"]["peer_only"]["values"] == e["values"]
    assert "trace" not in plain["games"]["stag_hunt"]["peer_only"]
