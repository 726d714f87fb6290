"""`metamapg tabular sweep --param NAME --values ...`: one setting or payoff entry swept."""

import json
import subprocess
import sys

import pytest

from rllib_metamapg.tabular_experiments.setting_sweep import plan
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.settings import LearningSettings, SettingsError

SMALL = ["--arms", "pg,peer_only", "--seeds", "6", "--steps", "30", "--mode", "exact"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", *args],
                          capture_output=True, text=True, timeout=600)


def test_each_value_is_the_ablation_with_that_setting(tmp_path):
    r = _cli("sweep", "--param", "peer_coef", "--values", "0,1.5", *SMALL,
             "--out", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert doc["values"] == ["0", "1.5"] and (tmp_path / "s" / "sweep.png").exists()
    # lambda = 0 switches the peer term off: peer_only is PG, seed by seed (exact mode)
    zero = doc["by_value"]["0"]
    assert zero["peer_only"]["values"] == zero["ippo"]["values"]
    r = _cli("ablation", "--games", "stag_hunt", "--peer-coef", "1.5", *SMALL,
             "--out", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr[-2000:]
    abl = json.loads((tmp_path / "a" / "ablation.json").read_text())["games"]["stag_hunt"]
    for arm, e in doc["by_value"]["1.5"].items():
        assert e["per_seed"] == abl[arm]["per_seed"] and e["values"] == abl[arm]["values"]


def test_payoff_entries_and_mirror():
    s = LearningSettings()
    (_, g, _), = plan(get_game("stag_hunt"), s, "payoff.0.1.0", ["3.5"], True)
    assert g.payoffs[0, 1, 0] == 3.5 and g.payoffs[1, 0, 1] == 3.5
    (_, g, _), = plan(get_game("stag_hunt"), s, "payoff.0.1.0", ["3.5"], False)
    assert g.payoffs[0, 1, 0] == 3.5 and g.payoffs[1, 0, 1] == 3.0
    (_, g, _), = plan(get_game("ipd"), s, "payoff.0.0.1", ["-1"], False)
    assert g.stage.payoffs[0, 0, 1] == -1 and g.num_states == 5
    with pytest.raises(SettingsError, match="shape"):
        plan(get_game("stag_hunt"), s, "payoff.2.0.0", ["1"], False)
    with pytest.raises(SettingsError, match="--mirror applies"):
        plan(get_game("stag_hunt"), s, "peer_coef", ["1"], True)
    with pytest.raises(SettingsError, match="must be >= 0"):
        plan(get_game("stag_hunt"), s, "peer_coef", ["1", "-1"], False)


def test_bad_options_exit_2_and_leave_nothing(tmp_path):
    for args, field in ((["--param", "nope", "--values", "1"], "--param"),
                        (["--param", "peer_coef", "--values", "x"], "--values"),
                        (["--values", "1"], "--param")):
        r = _cli("sweep", *args, "--out", str(tmp_path / "o"))
        assert r.returncode == 2 and field in r.stderr, r.stderr
        assert not (tmp_path / "o").exists()
