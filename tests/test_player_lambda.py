"""Per-player lambda (asymmetric pairings): player i's block of Meta-MAPG's correction
scaled by lambda_i; 0 makes that player a plain PG learner."""

import json
import subprocess
import sys

import pytest
import torch

from rllib_metamapg.registry import parse_arms
from rllib_metamapg.tabular.dynamics import simulate
from rllib_metamapg.tabular_experiments.ablation import paired_init
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.settings import LearningSettings, SettingsError


def _one_step(game_name, arm, lam, form="taylor"):
    game = get_game(game_name)
    pol = TabularPolicy.for_game(game)
    theta0 = paired_init(pol, 7, 1.0, 2)
    s = LearningSettings(mode="exact", steps=1, correction_form=form, player_lambda=lam)
    return simulate(game, parse_arms([arm]), theta0, s).theta[0], pol.masks().bool()


@pytest.mark.parametrize("game_name,form", [("stag_hunt", "taylor"), ("ipd", "taylor"),
                                            ("ipd", "unroll")])
def test_player_blocks_scale_linearly_and_zero_is_plain_pg(game_name, form):
    pg, m = _one_step(game_name, "ippo", None, form)
    full, _ = _one_step(game_name, "meta_mapg", None, form)
    same, _ = _one_step(game_name, "meta_mapg", (1.0, 1.0), form)
    assert torch.equal(same, full)
    mixed, _ = _one_step(game_name, "meta_mapg", (1.0, 0.0), form)
    assert torch.equal(mixed[:, m[1]], pg[:, m[1]])          # player 2: plain PG
    assert torch.allclose(mixed[:, m[0]], full[:, m[0]], rtol=0, atol=1e-12)
    scaled, _ = _one_step(game_name, "meta_mapg", (0.5, 2.0), form)
    for i, lam in enumerate((0.5, 2.0)):
        torch.testing.assert_close(scaled[:, m[i]] - pg[:, m[i]],
                                   lam * (full[:, m[i]] - pg[:, m[i]]), rtol=1e-9, atol=1e-12)
    assert (full - pg).abs().max() > 1e-4  # the correction is not trivially zero here


def test_wrong_lengths_negative_entries_and_matrl_are_refused():
    game = get_game("stag_hunt")
    theta0 = paired_init(TabularPolicy.for_game(game), 2, 1.0, 0)
    with pytest.raises(SettingsError, match="3 entries; this game has 2 players"):
        simulate(game, parse_arms(["meta_mapg"]), theta0,
                 LearningSettings(mode="exact", steps=1, player_lambda=(1, 0, 1)))
    with pytest.raises(SettingsError, match="player_lambda=1,-1"):
        LearningSettings(player_lambda="1,-1").validate()
    with pytest.raises(SettingsError, match="comma-separated"):
        LearningSettings(player_lambda="1,x")
    with pytest.raises(SettingsError, match="MATRL"):
        simulate(game, parse_arms(["matrl"]), theta0,
                 LearningSettings(mode="exact", steps=1, player_lambda=(1, 0)))


def test_config_list_and_cli_string_give_the_same_run(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("player-lambda: [1.5, 0]\n")
    common = ["--games", "stag_hunt", "--arms", "pg,meta_mapg", "--seeds", "6", "--steps",
              "20", "--mode", "exact"]
    runs = []
    for extra, name in ((["--config", str(cfg)], "a"), (["--player-lambda", "1.5,0"], "b")):
        r = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "ablation",
                            *common, *extra, "--out", str(tmp_path / name)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        doc = json.loads((tmp_path / name / "ablation.json").read_text())
        assert doc["settings"]["player_lambda"] == [1.5, 0.0]
        runs.append(doc["games"]["stag_hunt"]["meta_mapg"]["values"])
    assert runs[0] == runs[1]
