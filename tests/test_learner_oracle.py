"""The RLlib learner's DiCE corrections against the exact tabular engine (the oracle).

Batches of one-shot plays are drawn from the tabular policy at theta and fed to
``compute_corrections`` through :class:`TabularPPOTorchRLModule` modules whose
logits are theta; the average over batches must match the exact engine's
``unroll`` (``form="dice"``) or ``taylor`` corrections.  Advantages are the raw
payoffs (an unbiased, baseline-free choice), so the exact values apply as is.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ray.rllib.core.columns import Columns

from rllib_metamapg.metamapg import metrics as M
from rllib_metamapg.metamapg.torch.corrections import (
    AgentSlice, combine, compute_corrections)
from rllib_metamapg.rllib_base.torch.module_params import trainable_params
from rllib_metamapg.models import TabularPPOTorchRLModule
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.games import game_from_spec, get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.values import GameValues

BATCH, BATCHES = 4000, 40


def three_player_stag_hunt():
    # Stag pays 5 only if all three hunt stag (player 2 a bit more), hare pays 3.
    pay = np.zeros((3, 2, 2, 2))
    for joint in np.ndindex(2, 2, 2):
        for i in range(3):
            pay[(i,) + joint] = (5.0 + (i == 2)) if joint == (0, 0, 0) else (
                3.0 if joint[i] == 1 else 0.5 * sum(a == 0 for a in joint))
    return game_from_spec({"payoffs": pay.tolist()})


def separatrix_logit(game):
    (a, b), (c, d) = game.payoffs[0]
    p = (d - b) / (a - b - c + d)  # mixed equilibrium of a symmetric 2x2 game
    return float(np.log(p / (1 - p)))


def tabular_modules(theta):
    space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    return [TabularPPOTorchRLModule(observation_space=space,
                                    action_space=gym.spaces.Discrete(2),
                                    model_config={"init_logit": float(t)}) for t in theta]


def sampled_corrections(game, theta, eta, form, unroll_length=1, seed=0):
    """Mean own/peer corrections of every agent over BATCHES sampled batches."""
    n = game.num_players
    modules = tabular_modules(theta)
    rng = np.random.default_rng(seed)
    p0 = 1.0 / (1.0 + np.exp(-np.asarray(theta)))
    pay = torch.tensor(game.payoffs, dtype=torch.float32)
    own, peer = np.zeros(n), np.zeros(n)
    for _ in range(BATCHES):
        acts = torch.as_tensor((rng.random((BATCH, n)) >= p0).astype(np.int64))
        rewards = pay[(slice(None),) + tuple(acts[:, k] for k in range(n))]
        logp = [torch.log(torch.where(acts[:, k] == 0, torch.tensor(p0[k]),
                                      torch.tensor(1 - p0[k]))).float() for k in range(n)]
        obs = torch.ones(BATCH, 1)
        for i in range(n):
            order = [i] + [k for k in range(n) if k != i]
            agents = [AgentSlice(modules[k], trainable_params(modules[k]), {Columns.OBS: obs},
                                 acts[:, k], logp[k], rewards[k]) for k in order]
            c = compute_corrections(agents, None, inner_lr=eta, form=form,
                                    unroll_length=unroll_length)
            own[i] += c.own[0].item() / BATCHES
            peer[i] += c.peer[0].item() / BATCHES
    return own, peer


def exact_corrections(game, theta, eta, form, unroll_length=1):
    engine = ExactEngine(GameValues(game, TabularPolicy.for_game(game)))
    own, peer = engine.corrections(torch.tensor([theta], dtype=torch.float64), eta,
                                   form="unroll" if form == "dice" else "taylor",
                                   unroll_length=unroll_length)
    return own[0].numpy(), peer[0].numpy()


def assert_matches(est, ref, scale):
    """cos >= 0.95 and relative error <= 10 % (of max(|ref|, scale) for tiny terms)."""
    err = np.linalg.norm(est - ref)
    assert err <= 0.10 * max(np.linalg.norm(ref), scale), (est, ref)
    if np.linalg.norm(ref) > scale:
        cos = est @ ref / (np.linalg.norm(est) * np.linalg.norm(ref))
        assert cos >= 0.95, (est, ref)


STAG = get_game("stag_hunt")
THETAS_2P = [(0.3, -0.2), (1.0, 0.4), (separatrix_logit(STAG) + 0.05,
                                       separatrix_logit(STAG) - 0.05)]


@pytest.mark.parametrize("theta", THETAS_2P)
def test_stag_hunt_dice_matches_exact_unroll(theta):
    est_own, est_peer = sampled_corrections(STAG, theta, 0.5, "dice")
    ref_own, ref_peer = exact_corrections(STAG, theta, 0.5, "dice")
    scale = 0.05 * np.linalg.norm(ref_peer)  # own is ~0 near the separatrix
    assert_matches(est_peer, ref_peer, 0.0)
    assert_matches(est_own, ref_own, scale)


def test_taylor_and_two_step_unroll_match_exact():
    theta = THETAS_2P[0]
    for form, length in (("taylor", 1), ("dice", 2)):
        est_own, est_peer = sampled_corrections(STAG, theta, 0.5, form, length, seed=1)
        ref_own, ref_peer = exact_corrections(STAG, theta, 0.5, form, length)
        assert_matches(est_peer, ref_peer, 0.0)
        assert_matches(est_own, ref_own, 0.05 * np.linalg.norm(ref_peer))


@pytest.mark.parametrize("theta", [(0.5, 0.0, -0.3), (1.5, 1.2, 0.8)])
def test_three_agents_dice_matches_exact_unroll(theta):
    game = three_player_stag_hunt()
    est_own, est_peer = sampled_corrections(game, theta, 0.5, "dice", seed=2)
    ref_own, ref_peer = exact_corrections(game, theta, 0.5, "dice")
    assert_matches(est_peer, ref_peer, 0.0)
    assert_matches(est_own, ref_own, 0.05 * np.linalg.norm(ref_peer))


def test_zero_advantage_gives_zero_corrections_and_pg():
    modules = tabular_modules([0.2, -0.4])
    acts = torch.tensor([0, 1, 1, 0])
    agents = [AgentSlice(m, trainable_params(m), {Columns.OBS: torch.ones(4, 1)}, acts,
                         torch.full((4,), -0.7), torch.zeros(4)) for m in modules]
    c = compute_corrections(agents, None, inner_lr=0.5)
    assert all(float(x.abs().max()) == 0.0 for x in c.pg + c.own + c.peer)


def test_pg_only_call_matches_the_full_call():
    modules = tabular_modules([0.2, -0.4])
    acts = torch.tensor([0, 1, 1, 0])
    agents = [AgentSlice(m, trainable_params(m), {Columns.OBS: torch.ones(4, 1)}, acts,
                         torch.full((4,), -0.7), torch.tensor([1.0, -2.0, 0.5, 3.0]))
              for m in modules]
    full = compute_corrections(agents, None, inner_lr=0.5)
    bare = compute_corrections(agents, None, inner_lr=0.5, own=False, peer=False)
    assert bare.own is None and bare.peer is None
    torch.testing.assert_close(bare.pg, full.pg)
    assert float(full.pg[0].abs().max()) > 0


def test_loss_mask_excludes_rows():
    """Masked rows must not change anything, whatever they hold."""
    modules = tabular_modules([0.2, -0.4])
    acts = torch.tensor([0, 1, 1, 0, 1])
    adv = [torch.tensor([1.0, -2.0, 0.5, 3.0, 100.0]), torch.tensor([0.3, 1.0, -1.0, 2.0, -50.0])]
    mask = torch.tensor([True, True, True, True, False])
    full = [AgentSlice(m, trainable_params(m), {Columns.OBS: torch.ones(5, 1)}, acts,
                       torch.full((5,), -0.7), a) for m, a in zip(modules, adv)]
    cut = [AgentSlice(m, trainable_params(m), {Columns.OBS: torch.ones(4, 1)}, acts[:4],
                      torch.full((4,), -0.7), a[:4]) for m, a in zip(modules, adv)]
    a = compute_corrections(full, mask, inner_lr=0.5)
    b = compute_corrections(cut, None, inner_lr=0.5)
    for x, y in zip(a.pg + a.own + a.peer, b.pg + b.own + b.peer):
        torch.testing.assert_close(x, y)


def test_combine_clips_to_c_times_pg_norm():
    from rllib_metamapg.metamapg.torch.corrections import Corrections
    pg = [torch.tensor([3.0, 4.0])]                      # |pg| = 5
    c = Corrections(pg, [torch.tensor([6.0, 0.0])], [torch.tensor([0.0, 8.0])])
    out = combine(c, own_coef=1.0, peer_coef=1.0, lam=0.5, clip=1.0)
    # own + peer = (6, 8), norm 10 -> clipped to 5 -> (3, 4), times lambda 0.5.
    torch.testing.assert_close(out.step[0], torch.tensor([1.5, 2.0]))
    assert out.metrics[M.CLIPPED] == 1.0
    assert out.metrics[M.COS_PEER_PG] == pytest.approx(0.8)
    free = combine(c, own_coef=0.0, peer_coef=2.0, lam=1.0, clip=None)
    torch.testing.assert_close(free.step[0], torch.tensor([0.0, 16.0]))
    assert free.metrics[M.CLIPPED] == 0.0


def test_bad_form_is_refused():
    modules = tabular_modules([0.0, 0.0])
    agents = [AgentSlice(m, trainable_params(m), {Columns.OBS: torch.ones(2, 1)},
                         torch.tensor([0, 1]), torch.zeros(2), torch.ones(2)) for m in modules]
    with pytest.raises(ValueError, match="correction_form"):
        compute_corrections(agents, None, inner_lr=0.1, form="exact")
    with pytest.raises(ValueError, match="unroll_length"):
        compute_corrections(agents, None, inner_lr=0.1, form="taylor", unroll_length=2)


@pytest.mark.parametrize("form, length, estimator", [("dice", 1, "trajectory"),
                                                     ("dice", 2, "per_step"),
                                                     ("taylor", 1, "trajectory")])
def test_one_shared_pass_equals_each_agents_own_call(form, length, estimator):
    """compute_corrections_for (the learner's one pass for every module) returns, for
    each agent, what compute_corrections returns with that agent moved first: three
    agents, random actions, advantages and masked rows, several forms."""
    from rllib_metamapg.metamapg.torch.corrections import compute_corrections_for

    gen = torch.Generator().manual_seed(5)
    modules = tabular_modules([0.3, -0.5, 1.1])
    rows = 64
    acts = torch.randint(0, 2, (rows, 3), generator=gen)
    adv = torch.randn(rows, 3, generator=gen)
    logp = -torch.rand(rows, 3, generator=gen) - 0.2
    mask = torch.rand(rows, generator=gen) > 0.2
    obs = torch.ones(rows, 1)

    def slices(order):
        return [AgentSlice(modules[k], trainable_params(modules[k]), {Columns.OBS: obs},
                           acts[:, k], logp[:, k], adv[:, k]) for k in order]

    kw = dict(inner_lr=0.7, form=form, unroll_length=length, estimator=estimator)
    shared = compute_corrections_for(slices([0, 1, 2]), mask, **kw)
    for i, got in enumerate(shared):
        ref = compute_corrections(slices([i] + [k for k in range(3) if k != i]), mask, **kw)
        for a, b in ((got.pg, ref.pg), (got.own, ref.own), (got.peer, ref.peer)):
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
        assert any(float(x.abs().max()) > 0 for x in got.peer)
