"""MATRL's logit-policy update in the tabular engine (exact and sampled), on the engine's games.

Closed forms (rho = 1 is the PG field, rho = 0 is the best response to the peers'
predictions, the no-BR arm lands on the probability mixture), the meta-game's
equilibrium checked by its Nash gap (2 and 3 players), and the sampled estimator
against the exact one (fixed seeds, stated tolerances).
"""

import dataclasses

import numpy as np
import pytest
import torch

from rllib_metamapg.matrl.meta_game import nash_gap
from rllib_metamapg.matrl.tabular_update import MATRLTabular
from rllib_metamapg.registry import get_arm, method_of
from rllib_metamapg.tabular.dynamics import FieldProvider, LearningSettings, simulate
from rllib_metamapg.tabular.games import game_from_spec, get_game

EXACT = LearningSettings(mode="exact", steps=40)


def provider(game, settings=EXACT, seed=0):
    return FieldProvider(game, settings, torch.Generator().manual_seed(seed))


def thetas(dim, rows=16, seed=0):
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def fixed(rho, best_response=True):
    return dataclasses.replace(get_arm("il_pp"), name=f"rho{rho}",
                               options={"rho": rho, "best_response": best_response})


def three_player_game():
    rng = np.random.default_rng(3)
    return game_from_spec({"payoffs": rng.uniform(0, 4, (3, 2, 2, 2)).round(2).tolist()})


def test_matrl_is_a_registered_method_with_its_arms():
    assert method_of("matrl").name == "matrl"
    assert [a.name for a in method_of("il_pp").arms] == ["matrl", "matrl_no_br", "il_pp"]


@pytest.mark.parametrize("game_name", ["stag_hunt", "ipd"])
def test_rho_one_is_the_pg_field_and_rho_zero_best_responds_to_the_predictions(game_name):
    game = get_game(game_name)
    prov = provider(game)
    th = thetas(prov.policy.dim)
    v = prov(th, False)[0]
    d1 = MATRLTabular([fixed(1.0)], len(th), EXACT).direction(prov, th, 0)
    assert torch.equal(d1, v)
    # rho = 0: agent i's gradient at (theta_i, theta_hat_-i), by autograd on the values.
    d0 = MATRLTabular([get_arm("il_pp")], len(th), EXACT).direction(prov, th, 0)
    hat = th + EXACT.inner_lr * v
    pol = prov.policy
    for i in range(pol.num_players):
        lo, hi = pol.offsets[i], pol.offsets[i + 1]
        own = th[:, lo:hi].clone().requires_grad_(True)
        joint = torch.cat([hat[:, :lo], own, hat[:, hi:]], -1)
        g, = torch.autograd.grad(prov.values(joint)[:, i].sum(), own)
        torch.testing.assert_close(d0[:, lo:hi], g)


def test_no_br_lands_on_the_probability_mixture_of_the_meta_game_answer():
    game = get_game("stag_hunt")
    prov = provider(game)
    th = thetas(prov.policy.dim)
    up = MATRLTabular([get_arm("matrl_no_br")], len(th), EXACT)
    d = up.direction(prov, th, 3)
    new = th + EXACT.step_size(3) * d
    hat = th + EXACT.inner_lr * prov(th, False)[0]
    rho = up.last_rho
    for i in range(2):
        p = torch.sigmoid(th[:, i])
        ph = torch.sigmoid(hat[:, i])
        torch.testing.assert_close(torch.sigmoid(new[:, i]), rho[:, i] * p + (1 - rho[:, i]) * ph)
    assert ((rho > 0) & (rho < 1)).any() or (rho == 0).any()


@pytest.mark.parametrize("game_fn", [lambda: get_game("stag_hunt"), lambda: get_game("ipd"),
                                     three_player_game])
def test_rho_is_an_equilibrium_of_the_meta_game(game_fn):
    game = game_fn()
    prov = provider(game)
    th = thetas(prov.policy.dim, rows=6)
    up = MATRLTabular([get_arm("matrl")], len(th), EXACT)
    up.direction(prov, th, 0)
    n = game.num_players
    hat = th + EXACT.inner_lr * prov(th, False)[0]
    masks = prov.policy.masks(th.dtype)
    for r in range(len(th)):
        pay = np.zeros((n,) + (2,) * n)
        for sigma in np.ndindex(*(2,) * n):
            sel = (torch.tensor(sigma, dtype=th.dtype)[:, None] * masks).sum(0)
            v = prov.values(sel * hat[r] + (1 - sel) * th[r]) - prov.values(th[r])
            pay[(slice(None),) + sigma] = v.numpy()
        assert pay[(slice(None),) + (0,) * n] == pytest.approx(0.0)
        assert nash_gap(pay, up.last_rho[r].numpy()) < 1e-8


@pytest.mark.parametrize("arm", ["matrl", "matrl_no_br", "il_pp"])
def test_sampled_direction_matches_the_exact_one_on_stag_hunt(arm):
    # 200k one-shot plays per row: the estimates' standard error is ~0.3 % of the
    # field's scale; the meta-game's answer must agree row by row.
    game = get_game("stag_hunt")
    sampled = LearningSettings(mode="sampled", batch_size=200_000)
    th = thetas(2, rows=8, seed=1)
    exact_up = MATRLTabular([get_arm(arm)], len(th), EXACT)
    samp_up = MATRLTabular([get_arm(arm)], len(th), sampled)
    de = exact_up.direction(provider(game), th, 5)
    ds = samp_up.direction(provider(game, sampled, seed=2), th, 5)
    assert torch.equal(exact_up.last_rho, samp_up.last_rho)
    assert (de - ds).abs().max() <= 0.02 * de.abs().max()


def test_sampled_ipd_best_response_is_unbiased():
    # Trajectory importance weights over 12 rounds: larger variance, so the mean of
    # 8 independent batches is compared (relative error <= 5 %).
    game = get_game("ipd")
    sampled = LearningSettings(mode="sampled", batch_size=50_000)
    th = thetas(10, rows=2, seed=4)
    de = MATRLTabular([get_arm("il_pp")], 2, EXACT).direction(provider(game), th, 0)
    prov = provider(game, sampled, seed=5)
    up = MATRLTabular([get_arm("il_pp")], 2, sampled)
    ds = torch.stack([up.direction(prov, th, 0) for _ in range(8)]).mean(0)
    assert (de - ds).norm() <= 0.05 * de.norm()


def test_matrl_arms_run_with_the_meta_mapg_arms_on_paired_starts():
    game = get_game("stag_hunt")
    th = thetas(2, rows=32, seed=7)
    res = simulate(game, ["ippo", "peer_only", "matrl", "matrl_no_br", "il_pp"], th, EXACT)
    assert res.theta.shape == (5, 32, 2)
    alone = simulate(game, ["matrl"], th, EXACT)
    torch.testing.assert_close(res.theta[2], alone.theta[0])  # same start, same result
    # MATRL's best response is not PG: its final parameters differ from ippo's.
    assert not torch.allclose(res.theta[0], res.theta[2])


def test_sampled_mode_refuses_an_entropy_bonus():
    game = get_game("stag_hunt")
    s = LearningSettings(mode="sampled", temperature=0.1)
    with pytest.raises(ValueError, match="temperature=0"):
        MATRLTabular([get_arm("matrl")], 2, s).direction(provider(game, s), thetas(2, 2), 0)
