"""The exact ``lola`` correction form against independent computations, and LOLA's IPD."""

import numpy as np
import pytest
import torch

from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.settings import LearningSettings
from rllib_metamapg.tabular.values import GameValues


def _engine(name):
    game = get_game(name)
    policy = TabularPolicy.for_game(game)
    return ExactEngine(GameValues(game, policy)), policy


def _lola_objective(engine, policy, theta, i, eta):
    """J_i(theta) = V_i(theta_i, theta_-i + eta v_-i(theta)), one run (D,)."""
    m = policy.masks(theta.dtype)
    v = engine.field(theta[None])[0]
    ahead = theta + eta * (1 - m[i]) * v
    return float(engine.value(ahead[None])[0, i])


@pytest.mark.parametrize("name", ["stag_hunt", "lola_ipd", "ipd"])
def test_lola_update_is_the_finite_difference_gradient_of_the_look_ahead_value(name):
    engine, policy = _engine(name)
    eta, h = 0.3, 1e-5
    theta = torch.randn(2, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))
    own, peer = engine.corrections(theta, eta, "lola")
    direction = engine.field(theta) + peer
    assert torch.equal(own, torch.zeros_like(own))
    m = policy.masks(theta.dtype)
    for r in range(theta.shape[0]):
        for d in range(policy.dim):
            i = int(m[:, d].argmax())  # the agent that owns coordinate d
            e = torch.zeros(policy.dim, dtype=torch.float64)
            e[d] = h
            fd = (_lola_objective(engine, policy, theta[r] + e, i, eta)
                  - _lola_objective(engine, policy, theta[r] - e, i, eta)) / (2 * h)
            assert direction[r, d].item() == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_lola_is_taylor_plus_the_evaluation_shift_to_first_order():
    """grad_i J_i = v_i + eta [(d_i grad_j V_j)^T grad_j V_i + (d_i grad_j V_i)^T v_j]
    + O(eta^2): the taylor peer term is the first bracket; the second (the value read
    at the peers' moved parameters) is what the lola form adds."""
    engine, policy = _engine("lola_ipd")
    theta = torch.randn(1, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(2))
    m = policy.masks(theta.dtype)
    g = engine.jacobian(theta)[0]  # (N, D)
    hess = engine.hessian(theta)[0]  # (N, D, D)
    shift = torch.zeros(policy.dim, dtype=torch.float64)
    for i in range(2):
        j = 1 - i
        shift += m[i] * (hess[i] @ (m[j] * g[j]))
    errs = []
    for eta in (1e-2, 5e-3):
        _, lola = engine.corrections(theta, eta, "lola")
        _, taylor = engine.corrections(theta, eta, "taylor")
        errs.append(float((lola[0] - taylor[0] - eta * shift).norm()))
    assert errs[0] / errs[1] == pytest.approx(4.0, rel=0.1)  # the rest is O(eta^2)


def test_lola_is_refused_by_the_fixed_point_tools():
    LearningSettings(correction_form="lola").validate()  # sampled (DiCE) and exact
    LearningSettings(correction_form="lola", mode="exact").validate()
    engine, _ = _engine("stag_hunt")
    with pytest.raises(ValueError, match="fixed-point tools"):
        engine.single_corrections("lola", 0.3)


@pytest.mark.parametrize("name, dim", [("stag_hunt", 2), ("ipd", 10)])
def test_sampled_lola_estimate_is_centred_on_the_exact_form(name, dim):
    """LOLA-DiCE: the look-ahead from the first batch's DiCE field, agent i's value from
    a fresh batch at the look-ahead point. Mean of 64 independent estimates (batch 4000)
    against the exact form: every coordinate within 4 standard errors (seed fixed; the
    look-ahead's O(eta^2 Var) bias is far below that at this batch size)."""
    from rllib_metamapg.tabular.dynamics import FieldProvider

    game = get_game(name)
    gen = torch.Generator().manual_seed(0)
    theta = (0.8 * torch.randn(1, dim, dtype=torch.float64, generator=gen)).repeat(64, 1)
    exact = FieldProvider(game, LearningSettings(mode="exact", correction_form="lola",
                                                 inner_lr=0.5), gen)(theta[:1])
    v, own, peer = FieldProvider(game, LearningSettings(
        mode="sampled", correction_form="lola", inner_lr=0.5, batch_size=4000,
        estimator="dice"), gen)(theta)
    assert float(own.abs().max()) == 0.0
    z = (peer.mean(0) - exact[2][0]) / (peer.std(0) / 8)
    assert float(z.abs().max()) < 4.0, z
    assert float(exact[2].abs().max()) > 1e-2  # a non-trivial target


def test_lola_ipd_game_is_loLAs():
    game = get_game("lola_ipd")
    stage = game.stage.payoffs
    assert stage[0].tolist() == [[-1, -3], [0, -2]] and stage[1].tolist() == [[-1, 0],
                                                                               [-3, -2]]
    assert (game.num_states, game.discount, game.horizon) == (5, 0.96, None)
    # Always defect: every step costs 2, so the value is -2 / (1 - 0.96) = -50.
    policy = TabularPolicy.for_game(game)
    theta = torch.full((1, policy.dim), -30.0, dtype=torch.float64)
    assert np.allclose(GameValues(game, policy)(theta).numpy(), -50.0)
