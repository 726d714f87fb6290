"""The exact ``lola`` correction form against independent computations, and LOLA's IPD."""

import numpy as np
import pytest
import torch

from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.settings import LearningSettings, SettingsError
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


def test_lola_is_exact_mode_only_and_refused_by_the_fixed_point_tools():
    with pytest.raises(SettingsError, match="mode='exact' only"):
        LearningSettings(correction_form="lola").validate()
    LearningSettings(correction_form="lola", mode="exact").validate()
    engine, _ = _engine("stag_hunt")
    with pytest.raises(ValueError, match="fixed-point tools"):
        engine.single_corrections("lola", 0.3)


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
