"""Closed-form values and derivatives against brute force and finite differences."""

import itertools

import numpy as np
import pytest
import torch

from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.games import MemoryOneGame, NormalFormGame, get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.values import GameValues


def brute_force_repeated(game, policy, theta):
    """Enumerates every joint trajectory of a finite-horizon memory-one game."""
    probs = [policy.probs(theta, i).numpy() for i in range(game.num_players)]
    joint_actions = list(itertools.product(*[range(a) for a in game.num_actions]))
    total = np.zeros(game.num_players)
    for traj in itertools.product(joint_actions, repeat=game.horizon):
        state, p, ret = 0, 1.0, np.zeros(game.num_players)
        for t, acts in enumerate(traj):
            for i, a in enumerate(acts):
                p *= probs[i][state, a]
            ret += game.discount ** t * game.payoffs[(slice(None),) + acts]
            state = 1 + int(np.ravel_multi_index(acts, game.num_actions))
        total += p * ret
    return total


@pytest.mark.parametrize("kind", ["bernoulli", "softmax"])
def test_repeated_values_match_enumeration(kind):
    game = MemoryOneGame("ipd3", get_game("pd"), discount=0.9, horizon=3)
    policy = TabularPolicy.for_game(game, kind)
    theta = torch.randn(policy.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = GameValues(game, policy)(theta).numpy()
    np.testing.assert_allclose(got, brute_force_repeated(game, policy, theta), rtol=1e-12)


def test_infinite_horizon_is_limit_of_finite():
    pd = get_game("pd")
    inf = MemoryOneGame("inf", pd, discount=0.8, horizon=None)
    fin = MemoryOneGame("fin", pd, discount=0.8, horizon=200)
    policy = TabularPolicy.for_game(inf)
    theta = torch.randn(3, policy.dim, dtype=torch.float64)
    np.testing.assert_allclose(GameValues(inf, policy)(theta), GameValues(fin, policy)(theta),
                               rtol=1e-12)


def test_three_player_normal_form_value_is_expected_payoff():
    rng = np.random.default_rng(1)
    game = NormalFormGame("r", rng.normal(size=(3, 2, 3, 2)))
    policy = TabularPolicy.for_game(game, "softmax")
    theta = torch.randn(policy.dim, dtype=torch.float64)
    p = [policy.probs(theta, i)[0].numpy() for i in range(3)]
    expected = np.einsum("a,b,c,nabc->n", p[0], p[1], p[2], game.payoffs)
    np.testing.assert_allclose(GameValues(game, policy)(theta).numpy(), expected, rtol=1e-12)


def central_diff(f, x, h=1e-5):
    cols = []
    for k in range(x.shape[-1]):
        e = torch.zeros_like(x)
        e[k] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return torch.stack(cols, -1)


CASES = [("stag_hunt", "bernoulli", 0.0), ("ipd", "bernoulli", 0.0), ("ipd", "softmax", 0.1),
         ("ipd_infinite", "bernoulli", 0.0), ("climbing", "softmax", 0.2),
         ("stag_hunt", "bernoulli", 0.3)]


def engine_at_random_theta(name, kind, tau, seed):
    game = get_game(name)
    policy = TabularPolicy.for_game(game, kind)
    theta = 0.8 * torch.randn(policy.dim, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(seed))
    return ExactEngine(GameValues(game, policy, tau)), theta


@pytest.mark.parametrize("name, kind, tau", CASES)
def test_gradients_match_finite_differences(name, kind, tau):
    engine, theta = engine_at_random_theta(name, kind, tau, seed=3)
    jac = engine.jacobian(theta[None])[0]
    fd = central_diff(engine.value, theta)
    assert float((jac - fd).norm() / fd.norm()) < 1e-6


@pytest.mark.parametrize("name, kind, tau", CASES[:3])
def test_hessians_match_finite_differences(name, kind, tau):
    engine, theta = engine_at_random_theta(name, kind, tau, seed=4)
    hess = engine.hessian(theta[None])[0]  # (N, D, D)
    fd = central_diff(lambda t: engine.jacobian(t[None])[0], theta)
    assert float((hess - fd).norm() / fd.norm()) < 1e-6
