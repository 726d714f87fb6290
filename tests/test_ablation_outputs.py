"""The ablation's per-seed outputs: final values, reward per step, final policy, entry."""

import numpy as np
import pytest
import torch

from rllib_metamapg.registry import get_arm
from rllib_metamapg.tabular_experiments.ablation import run_game, simulate_paired, steps_weight
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.settings import LearningSettings
from rllib_metamapg.tabular.values import GameValues


def test_steps_weight_is_the_discounted_step_count():
    assert steps_weight(get_game("stag_hunt")) == 1.0
    ipd = get_game("ipd")  # 12 steps, gamma 0.96
    assert steps_weight(ipd) == pytest.approx(sum(0.96 ** t for t in range(12)))
    assert steps_weight(get_game("ipd_infinite")) == pytest.approx(25.0)


@pytest.mark.parametrize("name", ["stag_hunt", "ipd"])
def test_per_seed_outputs_match_an_independent_evaluation(name):
    game = get_game(name)
    arms = [get_arm("ippo"), get_arm("peer_only")]
    settings = LearningSettings(mode="exact", steps=25)
    doc = run_game(game, arms, settings, 5, 1.35, 0.82, 0)
    res = simulate_paired(game, arms, settings, 5, 1.35, 0, record=True)
    values = GameValues(game, res.policy)(res.theta)  # (A, R, N)
    for k, arm in enumerate(res.arms):
        e = doc["arms"][arm]
        assert np.allclose(e["values"], values[k].numpy())
        per_step = values[k].mean(-1) / steps_weight(game)
        assert np.allclose(e["reward_per_step"], per_step.numpy())
        p0 = [[pl[0] for pl in seed] for seed in e["final_policy"]]  # start state
        assert np.allclose(p0, res.start_coop()[k].numpy())
        assert len(e["final_policy"][0][0]) == game.num_states
        for r, (ok, entry) in enumerate(zip(e["per_seed"], e["entry_step"])):
            assert (entry >= 0) == bool(ok)
            if ok:  # success holds from the entry step on, and not just before it
                held = [bool(res.success(0.82, h)[k, r]) for h in res.history]
                assert all(held[entry:]) and (entry == 0 or not held[entry - 1])


def test_a_nan_correction_stays_on_the_rows_that_use_it():
    """ippo's rows take no correction, so a NaN the correction hits elsewhere (the
    unroll form at unbounded logits) must not reach them through 0 * NaN."""
    from rllib_metamapg.metamapg.tabular_update import MetaMAPGTabular

    update = MetaMAPGTabular([get_arm("ippo"), get_arm("peer_only")], 2,
                             LearningSettings(mode="exact"))
    theta = torch.zeros(4, 2, dtype=torch.float64)

    def field(th, want):
        v = torch.ones_like(th)
        bad = torch.full_like(th, float("nan"))
        return v, bad, bad

    d = update.direction(field, theta, 0)
    assert torch.equal(d[:2], torch.ones(2, 2, dtype=torch.float64))  # ippo rows
    assert torch.isnan(d[2:]).all()  # the correction's own rows show it
