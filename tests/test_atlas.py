"""Alignment atlas: its drift constants against closed forms, the precision study of
mu_M at Stag Hunt (tau = 0.2), and the command end to end."""

import json
import subprocess
import sys

import pytest
import torch

from rllib_metamapg.tabular.equilibria import drift_constant
from rllib_metamapg.tabular_experiments import atlas
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.settings import LearningSettings


def test_finite_difference_and_exact_drift_equal_the_closed_form_on_a_linear_field():
    a = torch.tensor([[-1.0, 3.0], [-1.0, -2.0]], dtype=torch.float64)
    field = lambda th: a @ th + 0.1 * th ** 3  # noqa: E731 - DF(0) = a
    closed = float(-torch.linalg.eigvalsh(0.5 * (a + a.T)).max())
    zero = torch.zeros(2, dtype=torch.float64)
    assert drift_constant(field, zero) == pytest.approx(closed, abs=1e-12)
    assert atlas.fd_drift(field, zero, 1e-4) == pytest.approx(closed, abs=1e-7)


def test_stag_hunt_mu_M_is_negative_at_tau_0_2_in_every_precision():
    """The sign is not an artefact: float64 and float32 exact Jacobians and central
    differences over five step sizes agree on -2.66e-6 (mu = 1.3e-3)."""
    p = atlas.precision_study(get_game("stag_hunt"), 0.2, LearningSettings())
    exact = p["mu_M_peer_exact64"]
    assert exact == pytest.approx(-2.662e-6, rel=1e-3) and p["mu"] == pytest.approx(
        1.3197e-3, rel=1e-3)
    assert p["mu_M_peer_exact32"] == pytest.approx(exact, rel=1e-3)
    for f in p["finite_differences"]:
        assert f["mu_M_peer"] == pytest.approx(exact, rel=1e-3), f
    assert p["residual"] < 1e-12


def test_a_missing_target_equilibrium_is_reported_not_invented():
    game = atlas.atlas_games((3.5,))[0]
    row = atlas.geometry(game, 0.2, LearningSettings(), 1.0, 0.5, 2, 0)
    engine = atlas._engine(game, 0.2)
    v = atlas.shaped_field(engine, "taylor", 0.55, 1, 0.0, 0.0)
    # every start ends outside the target quadrant or on the box
    zero, _ = atlas.target_equilibrium(engine, v)
    assert (zero is None) == (not row["exists"])
    ok = atlas.geometry(get_game("stag_hunt"), 0.2, LearningSettings(), 1.0, 0.5, 2, 0)
    assert ok["exists"] and ok["sign_stable"] and min(ok["phi_star_probs"]) > 0.99


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "atlas",
                           *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_atlas_command_writes_a_set_and_refuses_bad_input(tmp_path):
    out = tmp_path / "a"
    r = _cli("--taus", "0.2,0.3", "--max-games", "1", "--grid", "3",
             "--lipschitz-samples", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((out / "atlas.json").read_text())
    assert len(doc["rows"]) == 2 and set(doc["basin"]) == {"stag_hunt_T2.5"}
    assert doc["precision_stag_hunt"]["mu_M_peer_exact64"] < 0
    assert {p.name for p in out.iterdir()} >= {"atlas.csv", "atlas.md", "atlas.png"}
    for args, field in ((["--taus", "0"], "--taus"), (["--grid", "1"], "--grid"),
                        (["--taus", "x"], "--taus")):
        r = _cli(*args, "--out", str(tmp_path / "bad"))
        assert r.returncode == 2 and field in r.stderr, r.stderr
        assert not (tmp_path / "bad").exists()
