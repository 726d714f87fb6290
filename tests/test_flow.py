"""`metamapg tabular flow`: the update field against its closed form, trajectories
against the basin map's runs, and the CLI (outputs, refusals)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rllib_metamapg.registry import parse_arms
from rllib_metamapg.tabular_experiments import basin, flow
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.settings import LearningSettings, SettingsError

EXACT = LearningSettings(mode="exact", steps=30)


def test_pg_field_is_the_closed_form_stag_hunt_gradient_in_probability_space():
    # Stag Hunt [[4, 0], [3, 2]]: dV_1/dp_1 = 3 p_2 - 2; with one logit per player,
    # dtheta_1 = alpha_0 p_1 (1 - p_1) (3 p_2 - 2) and dp_1 = p_1 (1 - p_1) dtheta_1.
    probs = np.array([0.1, 0.35, 0.6, 0.9])
    field = flow.update_field(get_game("stag_hunt"), parse_arms(["ippo", "peer_only"]),
                              EXACT, probs, seed=0)
    p1, p2 = np.meshgrid(probs, probs, indexing="ij")
    a0 = EXACT.step_size(0)
    want1 = (p1 * (1 - p1)) ** 2 * a0 * (3 * p2 - 2)
    want2 = (p2 * (1 - p2)) ** 2 * a0 * (3 * p1 - 2)
    np.testing.assert_allclose(field["ippo"][..., 0], want1, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(field["ippo"][..., 1], want2, rtol=1e-10, atol=1e-14)
    # the peer term changes the field (the basin's lever), on the symmetric diagonal too
    assert np.abs(field["peer_only"] - field["ippo"]).max() > 1e-3


def test_trajectories_end_where_the_basin_maps_runs_end():
    probs = basin.grid_values(4, 0.1, 0.9)
    game, arms = get_game("stag_hunt"), parse_arms(["ippo", "meta_mapg"])
    paths = flow.trajectories(game, arms, EXACT, probs, seed=0)
    bmap = basin.run_basin(game, arms, EXACT, probs, 0.82, 0)
    for k, arm in enumerate(bmap.arms):
        end = paths[arm][:, -1].reshape(4, 4, 2)
        np.testing.assert_allclose(end, bmap.final_coop[k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(paths[arm][:, 0].reshape(4, 4, 2)[..., 0],
                                   np.repeat(probs[:, None], 4, 1), atol=1e-12)
        assert paths[arm].shape == (16, EXACT.steps + 1, 2)


def test_repeated_or_larger_games_are_refused_by_name():
    with pytest.raises(SettingsError, match="game='ipd' is repeated"):
        flow.check_game(get_game("ipd"), EXACT)
    with pytest.raises(SettingsError, match="2x2"):
        flow.check_game(get_game("climbing"), EXACT)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "flow",
                           *args], capture_output=True, text=True, timeout=600)


def test_flow_cli_writes_the_set_and_refuses_bad_input_before_work(tmp_path):
    out = tmp_path / "f"
    r = _cli("--mode", "exact", "--arms", "ippo,peer_only", "--grid", "6", "--arrows", "4",
             "--starts", "2", "--steps", "20", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((out / "flow.json").read_text())
    assert doc["arms"] == ["ippo", "peer_only"]
    assert np.array(doc["field"]["values"]["peer_only"]).shape == (4, 4, 2)
    assert np.array(doc["trajectories"]["paths"]["ippo"]).shape == (4, 21, 2)
    assert (out / "flow.png").stat().st_size > 0
    assert len((out / "flow.csv").read_text().splitlines()) == 1 + 2 * 16
    for bad, field in [(["--game", "ipd"], "game='ipd'"), (["--arrows", "1"], "--arrows=1"),
                       (["--arms", "ippo", "nope"], "arm='nope'")]:
        r = _cli(*bad, "--out", str(tmp_path / "bad"))
        assert r.returncode == 2 and field in r.stderr, r.stderr
        assert not (tmp_path / "bad").exists()
