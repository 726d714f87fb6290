
import pytest
import torch

from rllib_metamapg.registry import parse_arms
from rllib_metamapg.tabular.dynamics import LearningSettings, SettingsError, simulate
from rllib_metamapg.tabular_experiments.ablation import paired_init
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy

ALL = parse_arms(["ippo", "own_only", "peer_only", "meta_mapg", "handoff"])


def test_exact_mode_is_deterministic():
    theta0 = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    s = LearningSettings(mode="exact", steps=50)
    a = simulate(get_game("stag_hunt"), ALL, theta0, s, seed=1).theta
    b = simulate(get_game("stag_hunt"), ALL, theta0, s, seed=2).theta
    assert torch.equal(a, b)


def test_paired_seeds_share_inits_and_handoff_matches_meta_until_T():
    game = get_game("stag_hunt")
    policy = TabularPolicy.for_game(game)
    theta0 = paired_init(policy, 10, 1.35, seed=3)
    torch.testing.assert_close(theta0, paired_init(policy, 10, 1.35, seed=3))
    s = LearningSettings(mode="exact", steps=30, lambda_schedule="hard", handoff_steps=30)
    res = simulate(game, parse_arms(["meta_mapg", "handoff"]), theta0, s, record=True)
    assert torch.equal(res.history[0, 0], res.history[0, 1])  # same start in every arm
    torch.testing.assert_close(res.theta[0], res.theta[1])  # identical before handoff


def test_hard_cooldown_hands_off_to_pg():
    game = get_game("stag_hunt")
    theta0 = torch.tensor([[0.2, -0.1]], dtype=torch.float64)
    s = LearningSettings(mode="exact", steps=10, lambda_schedule="hard", handoff_steps=5)
    res = simulate(game, parse_arms(["ippo", "handoff"]), theta0, s, record=True)
    h = res.history  # (steps + 1, arms, runs, D)
    # After T the handoff arm follows alpha_n * v exactly.
    from rllib_metamapg.tabular.exact import ExactEngine
    from rllib_metamapg.tabular.values import GameValues
    eng = ExactEngine(GameValues(game, res.policy))
    for n in range(5, 10):
        step = s.step_size(n) * eng.field(h[n, 1])
        torch.testing.assert_close(h[n + 1, 1], h[n, 1] + step)
    assert not torch.allclose(h[5, 0], h[5, 1])  # the correction acted before T


def test_clip_is_applied():
    theta0 = torch.tensor([[7.9, 7.9]], dtype=torch.float64)
    s = LearningSettings(mode="exact", steps=5, lr=500.0)
    res = simulate(get_game("stag_hunt"), parse_arms(["ippo"]), theta0, s)
    assert float(res.theta.max()) == 8.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="magic"), "mode='magic'"),
    (dict(correction_form="lolla"), "correction_form='lolla'"),
    (dict(steps=0), "steps=0"), (dict(batch_size=-1), "batch_size=-1"),
    (dict(inner_lr=float("nan")), "inner_lr=nan"), (dict(peer_coef=-1.0), "peer_coef=-1.0"),
    (dict(lambda_schedule="anneal", handoff_steps=10, anneal_power=0.5), "anneal_power=0.5"),
    (dict(logit_bound=0.0), "logit_bound=0.0 must be > 0"), (dict(unroll_length=0),
                                                             "unroll_length=0 must be >= 1"),
    (dict(estimator="x"), "estimator='x'"), (dict(allow_nonsummable=1), "true or false"),
])
def test_invalid_settings_are_refused(kwargs, match):
    with pytest.raises((SettingsError, ValueError), match=match):
        LearningSettings(**kwargs).validate()


def test_three_player_game_runs_in_both_modes():
    import numpy as np
    from rllib_metamapg.tabular.games import NormalFormGame
    game = NormalFormGame("r3", np.random.default_rng(0).normal(size=(3, 2, 2, 2)))
    theta0 = torch.zeros(4, 3, dtype=torch.float64)
    for mode in ("exact", "sampled"):
        res = simulate(game, ALL, theta0, LearningSettings(mode=mode, steps=5, batch_size=32))
        assert res.theta.shape == (5, 4, 3)
        assert torch.isfinite(res.theta).all()
