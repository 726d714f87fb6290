"""Exact own/peer corrections: closed forms, the unroll definition, and Nash properties."""

import numpy as np
import pytest
import torch

from rllib_metamapg.tabular.equilibria import shaped_field, solve_zero
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.games import NormalFormGame, get_game, symmetric_two_player
from rllib_metamapg.tabular.normal_form import NormalFormTaylor
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.values import GameValues


def engine_for(game, kind="bernoulli", tau=0.0):
    policy = TabularPolicy.for_game(game, kind)
    return ExactEngine(GameValues(game, policy, tau)), policy


def independent_unroll(values, policy, theta, eta, steps):
    """A second implementation of the unroll corrections, written from the definition
    with plain autograd (one run at a time, no torch.func)."""
    n = policy.num_players
    sl = [slice(policy.offsets[i], policy.offsets[i + 1]) for i in range(n)]
    th0 = theta.clone().requires_grad_(True)
    cur = th0
    for _ in range(steps):
        vals = values(cur)
        grads = [torch.autograd.grad(vals[i], cur, create_graph=True)[0][sl[i]]
                 for i in range(n)]
        cur = cur + eta * torch.cat(grads)
    final = cur.detach().requires_grad_(True)
    vals = values(final)
    own, peer = torch.zeros_like(theta), torch.zeros_like(theta)
    for i in range(n):
        g = torch.autograd.grad(vals[i], final, retain_graph=True)[0]  # grad V_i(theta^L)
        # d J_i / d theta_i split by which future parameter block it flows through.
        for j in range(n):
            seed = torch.zeros_like(g)
            seed[sl[j]] = g[sl[j]]
            contrib = torch.autograd.grad(cur, th0, seed, retain_graph=True)[0][sl[i]]
            if j == i:
                own[sl[i]] = contrib - g[sl[i]]
            else:
                peer[sl[i]] += contrib
    return own, peer


@pytest.mark.parametrize("payoff, eta, steps", [
    ([[4, 0], [3, 2]], 0.55, 1),
    ([[2, -1], [1, 0.5]], 0.3, 2),
    ([[5, 1], [3, 3]], 1.0, 3),
])
def test_unroll_matches_independent_implementation(payoff, eta, steps):
    game = symmetric_two_player("g", payoff)
    engine, policy = engine_for(game)
    probs = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    p1, p2 = torch.meshgrid(probs, probs, indexing="ij")
    theta = torch.logit(torch.stack([p1.flatten(), p2.flatten()], -1))
    own, peer = engine.corrections(theta, eta, "unroll", steps)
    for k in range(theta.shape[0]):
        o, p = independent_unroll(engine.values, policy, theta[k], eta, steps)
        torch.testing.assert_close(own[k], o, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(peer[k], p, rtol=1e-10, atol=1e-12)


def test_unroll_independent_three_players_and_repeated_games():
    # Several runs per batch and the infinite games too: torch's vmap of jacfwd over
    # linalg.solve gave NaN or wrong numbers on every run but the first.
    rng = np.random.default_rng(5)
    for game, kind in [(NormalFormGame("r3", rng.normal(size=(3, 2, 2, 2))), "bernoulli"),
                       (get_game("ipd"), "bernoulli"), (get_game("ipd_infinite"), "bernoulli"),
                       (get_game("lola_ipd"), "bernoulli")]:
        engine, policy = engine_for(game, kind)
        theta = torch.randn(5, policy.dim, dtype=torch.float64,
                            generator=torch.Generator().manual_seed(1))
        own, peer = engine.corrections(theta, 0.2, "unroll", 2)
        assert torch.isfinite(own).all() and torch.isfinite(peer).all()
        for k in range(5):
            o, p = independent_unroll(engine.values, policy, theta[k], 0.2, 2)
            torch.testing.assert_close(own[k], o, rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(peer[k], p, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name, kind, tau", [
    ("stag_hunt", "bernoulli", 0.0), ("stag_hunt", "bernoulli", 0.3),
    ("climbing", "softmax", 0.1), ("chicken", "softmax", 0.0)])
def test_normal_form_closed_form_matches_autograd(name, kind, tau):
    engine, policy = engine_for(get_game(name), kind, tau)
    fast = NormalFormTaylor(engine.values)
    theta = torch.randn(9, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(2))
    v, own, peer = fast.compute(theta, 0.4)
    own2, peer2 = engine.corrections(theta, 0.4, "taylor")
    torch.testing.assert_close(v, engine.field(theta), rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(own, own2, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(peer, peer2, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["ipd", "lola_ipd"])
def test_batched_taylor_matches_per_run_hessian_formula(name):
    engine, policy = engine_for(get_game(name))
    theta = torch.randn(3, policy.dim, dtype=torch.float64)
    own, peer = engine.corrections(theta, 0.5, "taylor")
    m = policy.masks()
    hessians = engine.hessian(theta)  # batched: must equal the one-run Hessians
    for k in range(3):
        g = engine.jacobian(theta[k:k + 1])[0]
        h = engine.hessian(theta[k:k + 1])[0]
        torch.testing.assert_close(hessians[k], h)
        for i in range(2):
            j = 1 - i
            bi, bj = m[i].bool(), m[j].bool()
            o = 0.5 * h[i][bi][:, bi] @ g[i][bi]
            p = 0.5 * h[j][bj][:, bi].T @ g[i][bj]
            torch.testing.assert_close(own[k][bi], o)
            torch.testing.assert_close(peer[k][bi], p)


@pytest.mark.parametrize("name", ["stag_hunt", "ipd"])
def test_unroll_and_taylor_agree_to_second_order(name):
    engine, policy = engine_for(get_game(name))
    theta = 0.7 * torch.randn(4, policy.dim, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(6))
    errs = []
    for eta in (1e-2, 5e-3):
        t = torch.cat(engine.corrections(theta, eta, "taylor"), -1)
        u = torch.cat(engine.corrections(theta, eta, "unroll", 1), -1)
        assert float(t.norm()) > 0
        errs.append(float((t - u).norm()))
    # O(eta^2): halving eta divides the gap by about 4.
    assert 3.5 < errs[0] / errs[1] < 4.5


@pytest.mark.parametrize("form", ["taylor", "unroll"])
def test_own_vanishes_at_interior_nash_but_peer_does_not(form):
    game = get_game("stag_hunt")
    engine, policy = engine_for(game)
    # Mixed equilibrium of Stag Hunt: both cooperate with probability 2/3.
    theta = torch.logit(torch.tensor([[2 / 3, 2 / 3]], dtype=torch.float64))
    assert float(engine.field(theta).norm()) < 1e-12
    own, peer = engine.corrections(theta, 0.55, form, 2)
    assert float(own.norm()) < 1e-8
    assert float(peer.norm()) > 1e-2


@pytest.mark.parametrize("name, kind, tau, start", [
    ("stag_hunt", "bernoulli", 0.3, 3.0), ("chicken", "softmax", 0.2, 0.5)])
def test_own_vanishes_at_regularised_equilibrium(name, kind, tau, start):
    engine, policy = engine_for(get_game(name), kind, tau)
    zero = solve_zero(shaped_field(engine, "taylor", 0.3, 1, 0.0, 0.0),
                      torch.full((policy.dim,), start, dtype=torch.float64))
    assert zero.converged
    own, peer = engine.corrections(zero.theta[None], 0.3, "taylor")
    assert float(own.norm()) < 1e-8 < float(peer.norm())


@pytest.mark.parametrize("form", ["taylor", "unroll"])
def test_correction_jacobian_matches_finite_differences(form):
    """DM (used for mu_M) from torch.func against central differences of M."""
    from torch.func import jacfwd

    from rllib_metamapg.tabular.equilibria import correction_field
    engine, policy = engine_for(get_game("stag_hunt"), tau=0.3)
    m = correction_field(engine, form, 0.55, 1, "peer")
    theta = torch.tensor([2.0, 2.5], dtype=torch.float64)
    jac = jacfwd(m)(theta)
    h = 1e-5
    fd = torch.stack([(m(theta + h * e) - m(theta - h * e)) / (2 * h)
                      for e in torch.eye(2, dtype=torch.float64)], -1)
    assert float((jac - fd).norm() / fd.norm()) < 1e-6


@pytest.mark.parametrize("name, kind, tau", [("ipd", "bernoulli", 0.0), ("ipd", "softmax", 0.2),
                                             ("climbing", "softmax", 0.1)])
def test_batched_taylor_equals_vmapped_single_run_form(name, kind, tau):
    from torch.func import vmap
    engine, policy = engine_for(get_game(name), kind, tau)
    theta = torch.randn(4, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(13))
    own, peer = engine.corrections(theta, 0.4, "taylor")
    own1, peer1 = vmap(engine.single_corrections("taylor", 0.4))(theta)
    torch.testing.assert_close(own, own1, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(peer, peer1, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kind, tau", [
    ("stag_hunt", "bernoulli", 0.0), ("stag_hunt", "bernoulli", 0.3),
    ("climbing", "softmax", 0.1), ("chicken", "softmax", 0.0)])
def test_normal_form_closed_form_unroll_matches_autograd(name, kind, tau):
    # L = 1: Phi = I + eta Dv(theta), so the unroll terms are the taylor formulas with
    # the gradients taken at theta + eta v(theta). The basin maps use this closed form.
    engine, policy = engine_for(get_game(name), kind, tau)
    fast = NormalFormTaylor(engine.values)
    theta = torch.randn(9, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(4))
    v, own, peer = fast.compute_unroll1(theta, 0.4)
    own2, peer2 = engine.corrections(theta, 0.4, "unroll", 1)
    torch.testing.assert_close(v, engine.field(theta), rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(own, own2, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(peer, peer2, rtol=1e-10, atol=1e-13)
    # and the batched reverse-mode unroll equals the per-run forward-mode definition
    for k in range(3):
        o1, p1 = engine._unroll1(theta[k], 0.4, 1)
        torch.testing.assert_close(own2[k], o1, rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(peer2[k], p1, rtol=1e-10, atol=1e-13)


def test_field_provider_uses_the_closed_form_unroll_only_where_it_applies():
    from rllib_metamapg.tabular.dynamics import FieldProvider
    from rllib_metamapg.tabular.settings import LearningSettings

    game = get_game("stag_hunt")
    theta = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for steps in (1, 2):
        s = LearningSettings(mode="exact", correction_form="unroll", unroll_length=steps,
                             inner_lr=0.5)
        _, own, peer = FieldProvider(game, s, torch.Generator())(theta)
        own2, peer2 = ExactEngine(GameValues(game, TabularPolicy.for_game(game))
                                  ).corrections(theta, 0.5, "unroll", steps)
        torch.testing.assert_close(own, own2, rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(peer, peer2, rtol=1e-10, atol=1e-13)
