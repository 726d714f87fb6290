"""The ``lola`` arm, player-swap symmetry of the multi-step engine, and LOLA's IPD
reproduced through the CLI (``tuned_examples/tabular/lola-ipd.yaml``)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rllib_metamapg import registry
from rllib_metamapg.tabular.dynamics import simulate
from rllib_metamapg.tabular_experiments.ablation import paired_init, reciprocates
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.settings import LearningSettings

ROOT = Path(__file__).resolve().parents[1]
LOLA_SETTINGS = dict(mode="exact", lr=0.2, lr_power=0.0, lr_offset=0, inner_lr=0.3,
                     own_coef=0.35, peer_coef=1.0, logit_bound=None)


def _init(game, seeds=6, std=1.0):
    return paired_init(TabularPolicy.for_game(game), seeds, std, 0)


def _swap_players(theta):
    """Player 1's and player 2's parameters exchanged, each state relabelled to the
    other's view (the joint last action (a1, a2) becomes (a2, a1))."""
    states = [0, 1, 3, 2, 4]  # start, CC, CD <-> DC, DD
    return torch.cat([theta[..., 5:][..., states], theta[..., :5][..., states]], -1)


@pytest.mark.parametrize("game_name,form,bound", [
    ("lola_ipd", "taylor", None), ("lola_ipd", "lola", None),
    ("lola_ipd", "unroll", 8.0), ("ipd", "taylor", 8.0), ("ipd", "unroll", 8.0)])
def test_learning_is_equivariant_under_swapping_the_players(game_name, form, bound):
    # The game is symmetric, so relabelling the players must relabel the whole
    # trajectory. A state index read from the wrong player's view (the kind of error
    # one-shot games cannot show) breaks this for every arm that uses the transitions.
    game = get_game(game_name)
    s = LearningSettings(**{**LOLA_SETTINGS, "logit_bound": bound}, correction_form=form,
                         steps=25)
    arms = ["pg", "own_only", "peer_only", "meta_mapg", "lola"]
    theta0 = _init(game)
    a = simulate(game, arms, theta0, s).theta
    b = simulate(game, arms, _swap_players(theta0), s).theta
    assert torch.isfinite(a).all()
    assert torch.allclose(_swap_players(a), b, atol=1e-9), (_swap_players(a) - b).abs().max()
    # and the runs moved: a no-op update would pass the check above trivially
    assert (a - theta0).abs().amax(-1).min() > 1e-2


def test_lola_arm_is_peer_only_in_the_lola_form_and_leaves_other_arms_alone():
    game = get_game("lola_ipd")
    theta0 = _init(game, seeds=8)
    taylor = LearningSettings(**LOLA_SETTINGS, correction_form="taylor", steps=40)
    lola = LearningSettings(**LOLA_SETTINGS, correction_form="lola", steps=40)
    mixed = simulate(game, ["pg", "lola", "peer_only", "meta_mapg"], theta0, taylor).theta
    ref = simulate(game, ["pg", "peer_only"], theta0, lola).theta
    alone = simulate(game, ["peer_only", "meta_mapg"], theta0, taylor).theta
    assert torch.allclose(mixed[1], ref[1], atol=1e-9, rtol=0)   # lola == peer_only @ lola
    assert torch.equal(mixed[0], ref[0])                         # pg untouched
    assert torch.equal(mixed[2:], alone)                         # taylor arms untouched
    assert (mixed[1] - mixed[2]).abs().max() > 1e-2              # the forms differ here


def test_lola_arm_is_refused_where_its_form_is_not_computed():
    game = get_game("stag_hunt")
    sampled = LearningSettings(mode="sampled", steps=2, batch_size=8)
    res = simulate(game, ["pg", "lola"], _init(game).narrow(-1, 0, 2), sampled)  # DiCE
    assert torch.isfinite(res.theta).all()
    # RLlib: not listed, not generated as a tuned example, refused by name
    assert "lola" in registry.arm_names() and "lola" not in registry.arm_names(engine="rllib")
    with pytest.raises(registry.RegistryError, match="arm='lola' is implemented in"):
        registry.arm_for_engine("lola", "rllib")
    from rllib_metamapg.metamapg.metamapg import MetaMAPGConfig
    config = MetaMAPGConfig().environment("stag_hunt").training(arm="lola")
    with pytest.raises(ValueError, match="arm='lola'"):
        config.validate()
    assert not [p for p in ROOT.glob("tuned_examples/*/lola*.yaml") if p.parent.name != "tabular"]
    from rllib_metamapg.sweep.plan import SweepSpec, _check_spec
    from rllib_metamapg.errors import UsageError
    with pytest.raises(UsageError, match="--arms: arm='lola'"):
        _check_spec(SweepSpec(env="stag_hunt", arms=["ippo", "lola"], seeds=[0]))


def test_reciprocity_reads_each_player_from_its_own_view():
    # states: start, CC, CD, DC, DD (player 1's action first); p(C) per state
    tft1 = [0.9, 0.99, 0.01, 0.99, 0.01]   # player 1 exploited in CD
    tft2 = [0.9, 0.99, 0.99, 0.01, 0.01]   # player 2 exploited in DC
    allc = [0.9] + [0.99] * 4
    out = reciprocates([[tft1, tft2], [tft2, tft1], [allc, tft2], [tft1, allc]])
    assert out.tolist() == [[True, True], [False, False], [False, True], [True, False]]


@pytest.mark.slow
def test_lola_ipd_tuned_example_reproduces_lola(tmp_path):
    """LOLA's exact IPD (Foerster et al. 2018) from the tuned example, 200 seeds:
    naive learners defect (about -2 per step), LOLA learners cooperate (about -1.1).

    Tolerances (measured: naive 99 % of seeds <= -1.9; LOLA median -1.156, 88.5 % above
    -1.5, 62 % of those with a tit-for-tat-like player): the issue's bars, except that
    naive seeds need 95 %, not all: from N(0, 1) a few inits start cooperative."""
    out = tmp_path / "lola"
    r = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "ablation",
                        "--config", str(ROOT / "tuned_examples/tabular/lola-ipd.yaml"),
                        "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "tit-for-tat-like" in r.stdout
    arms = json.loads((out / "ablation.json").read_text())["games"]["lola_ipd"]
    naive = np.array(arms["ippo"]["reward_per_step"], dtype=float)
    lola = np.array(arms["lola"]["reward_per_step"], dtype=float)
    assert len(naive) == len(lola) >= 30 and np.isfinite(lola).all()
    assert np.mean(naive <= -1.9) >= 0.95
    assert np.median(lola) >= -1.2 and np.mean(lola > -1.5) >= 0.8
    ok = lola > -1.5
    rec = np.array(arms["lola"]["reciprocates"], dtype=bool)
    assert rec[ok].any(1).mean() > 0.5
