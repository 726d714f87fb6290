"""Sampled estimators: identical to DiCE autograd on a batch, unbiased against exact mode."""

import numpy as np
import pytest
import torch

from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.sampled import SampledEstimator
from rllib_metamapg.tabular.values import GameValues


def make(name, kind="bernoulli", tau=0.0, seed=0, estimator="dice"):
    game = get_game(name)
    policy = TabularPolicy.for_game(game, kind)
    values = GameValues(game, policy, tau)
    return SampledEstimator(values, torch.Generator().manual_seed(seed), estimator), \
        ExactEngine(values), policy


def dice_taylor(est, theta, ep, eta):
    """Taylor corrections by differentiating the DiCE surrogate with autograd."""
    th = theta.detach().requires_grad_(True)
    m = est.policy.masks()
    obj = est.dice_objectives(th, ep)
    n = obj.shape[1]
    g = [torch.autograd.grad(obj[:, k].sum(), th, create_graph=True)[0] for k in range(n)]
    own = peer = 0
    for i in range(n):
        go = torch.autograd.grad((g[i] * m[i] * (g[i] * m[i]).detach()).sum(), th,
                                 retain_graph=True)[0]
        gp = torch.autograd.grad(sum((g[j] * m[j] * (g[i] * m[j]).detach()).sum()
                                     for j in range(n) if j != i), th, retain_graph=True)[0]
        own, peer = own + m[i] * go, peer + m[i] * gp
    return sum(m[i] * g[i] for i in range(n)).detach(), eta * own, eta * peer


@pytest.mark.parametrize("name, kind, tau", [("stag_hunt", "bernoulli", 0.0),
                                             ("stag_hunt", "bernoulli", 0.2),
                                             ("ipd", "bernoulli", 0.0), ("ipd", "softmax", 0.0),
                                             ("climbing", "softmax", 0.1)])
def test_closed_form_equals_dice_autograd_on_same_batch(name, kind, tau):
    est, _, policy = make(name, kind, tau)
    theta = torch.randn(3, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))
    ep = est.sample(theta, 64)
    got = est.taylor(theta, ep, 0.55)
    want = dice_taylor(est, theta, ep, 0.55)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_one_shot_counts_follow_the_joint_policy():
    est, _, policy = make("stag_hunt")
    theta = torch.tensor([[0.4, -1.0]], dtype=torch.float64).expand(4000, -1).contiguous()
    ep = est.sample(theta, 50)
    assert torch.all(ep.counts.sum(-1) == 50)
    p1, p2 = torch.sigmoid(torch.tensor(0.4)), torch.sigmoid(torch.tensor(-1.0))
    expected = 50 * torch.tensor([p1 * p2, p1 * (1 - p2), (1 - p1) * p2, (1 - p1) * (1 - p2)])
    mean = ep.counts.mean(0)
    se = ep.counts.std(0) / 4000 ** 0.5
    assert torch.all((mean - expected).abs() < 4 * se)


@pytest.mark.parametrize("name, kind", [("stag_hunt", "bernoulli"), ("ipd", "bernoulli"),
                                        ("ipd", "softmax")])
@pytest.mark.parametrize("estimator", ["dice", "reinforce"])
def test_gradient_and_hessian_estimates_are_unbiased(name, kind, estimator):
    """Mean of R independent batch estimates vs exact, within 4 standard errors."""
    est, exact, policy = make(name, kind, seed=7, estimator=estimator)
    reps = 3000
    theta1 = 0.6 * torch.randn(policy.dim, dtype=torch.float64,
                               generator=torch.Generator().manual_seed(2))
    theta = theta1.expand(reps, -1).contiguous()
    ep = est.sample(theta, 16)
    v, _, _ = est.taylor(theta, ep, 0.5, want_corrections=False)
    v_exact = exact.field(theta1[None])[0]
    z = (v.mean(0) - v_exact) / (v.std(0) / reps ** 0.5)
    assert float(z.abs().max()) < 4.0
    if estimator == "reinforce":
        return  # dice_objectives is the causal surrogate; its Hessians are checked below
    # Hessian-vector products of the DiCE surrogate with a fixed vector.
    u = torch.randn(policy.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    th = theta.clone().requires_grad_(True)
    obj = est.dice_objectives(th, ep)
    for k in range(policy.num_players):
        g = torch.autograd.grad(obj[:, k].sum(), th, create_graph=True)[0]
        hv = torch.autograd.grad((g * u).sum(), th, retain_graph=True)[0]
        hv_exact = exact.hessian(theta1[None])[0, k] @ u
        z = (hv.mean(0) - hv_exact) / (hv.std(0) / reps ** 0.5 + 1e-12)
        assert float(z.abs().max()) < 4.0


@pytest.mark.parametrize("name", ["stag_hunt", "ipd"])
def test_corrections_converge_to_exact_at_large_batch(name):
    """Products of one-batch estimates carry an O(1/B) bias: at large B the mean
    over repetitions is within 4 standard errors (plus a small bias allowance)."""
    est, exact, policy = make(name, seed=11)
    reps, batch = 200, 4096 if name == "stag_hunt" else 1024
    theta1 = 0.5 * torch.randn(policy.dim, dtype=torch.float64,
                               generator=torch.Generator().manual_seed(4))
    theta = theta1.expand(reps, -1).contiguous()
    _, own, peer = est.taylor(theta, est.sample(theta, batch), 0.55)
    own_x, peer_x = exact.corrections(theta1[None], 0.55, "taylor")
    for got, want in ((own, own_x[0]), (peer, peer_x[0])):
        se = got.std(0) / reps ** 0.5
        tol = 4 * se + 0.05 * want.abs().max()
        assert torch.all((got.mean(0) - want).abs() < tol), (got.mean(0), want)
        assert_direction(got.mean(0), want, tol)


def assert_direction(mean, want, tol):
    """The allowance can exceed small components, so pin the direction too: the
    cosine, and the sign of every component the allowance cannot flip."""
    cos = float(mean @ want / (mean.norm() * want.norm()))
    assert cos >= 0.99, (cos, mean, want)
    big = want.abs() > tol
    assert torch.equal(torch.sign(mean[big]), torch.sign(want[big])), (mean, want)


def test_sampled_unroll_converges_to_exact_unroll():
    est, exact, policy = make("stag_hunt", seed=5)
    reps = 300
    theta1 = torch.tensor([0.3, -0.2], dtype=torch.float64)
    theta = theta1.expand(reps, -1).contiguous()
    v, own, peer = est.unroll(theta, 2048, 0.55, 1)
    own_x, peer_x = exact.corrections(theta1[None], 0.55, "unroll", 1)
    torch.testing.assert_close(v.mean(0), exact.field(theta1[None])[0], atol=4e-3, rtol=0)
    for got, want in ((own, own_x[0]), (peer, peer_x[0])):
        se = got.std(0) / reps ** 0.5
        tol = 4 * se + 0.05 * want.abs().max()
        assert torch.all((got.mean(0) - want).abs() < tol)
        assert_direction(got.mean(0), want, tol)


def test_sampled_mode_refuses_infinite_horizon():
    game = get_game("ipd_infinite")
    policy = TabularPolicy.for_game(game)
    with pytest.raises(ValueError, match="finite horizon"):
        SampledEstimator(GameValues(game, policy), torch.Generator())


@pytest.mark.parametrize("kind", ["bernoulli", "softmax"])
def test_reinforce_sufficient_statistics_equal_the_scatter_form(kind):
    est, _, policy = make("ipd", kind, estimator="reinforce")
    theta = torch.randn(4, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(8))
    ep = est.sample(theta, 32)
    fast = est.taylor(theta, ep, 0.55)
    est.use_sufficient_stats = False  # the generic per-step form
    slow = est.taylor(theta, ep, 0.55)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_kernel_estimator_equals_torch_on_identical_episodes():
    from rllib_metamapg.tabular import sampled_kernels as kernels
    est, _, policy = make("ipd", estimator="reinforce")
    theta = torch.randn(3, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(9))
    ep = est.sample(theta, 40)
    want = est.taylor(theta, ep, 0.55)
    # Per-episode statistics of the same episodes, in the kernel's layout.
    n, s = 2, 5
    r, b, t = ep.states.shape
    sc = np.zeros((r, b, n, s))
    vis = np.zeros((r, b, n, s))
    p0 = torch.stack([policy.probs(theta, j)[..., 0] for j in range(n)], 1).numpy()
    for j in range(n):
        idx = ep.states.numpy()
        a0 = (ep.actions[j].numpy() == 0).astype(float)
        for state in range(s):
            mask = idx == state
            vis[:, :, j, state] = mask.sum(-1)
            sc[:, :, j, state] = (mask * a0).sum(-1) - p0[:, None, j, state] * mask.sum(-1)
    disc = 0.96 ** np.arange(t)
    ret = (ep.rewards.numpy() * disc[None, None, :, None]).sum(2)
    got = kernels.estimates_from_stats(sc, vis, ret, p0, 0.55)
    for a, w in zip(got, want):
        np.testing.assert_allclose(a.reshape(r, -1), w.numpy(), rtol=1e-9, atol=1e-12)


def test_kernel_sampling_is_unbiased_and_reproducible():
    est, exact, policy = make("ipd", estimator="reinforce", seed=3)
    assert est.kernel_applies()
    reps = 3000
    theta1 = 0.6 * torch.randn(policy.dim, dtype=torch.float64,
                               generator=torch.Generator().manual_seed(2))
    theta = theta1.expand(reps, -1).contiguous()
    v, own, peer = est.sample_taylor(theta, 16, 0.5)
    v_exact = exact.field(theta1[None])[0]
    z = (v.mean(0) - v_exact) / (v.std(0) / reps ** 0.5)
    assert float(z.abs().max()) < 4.0
    # The torch path estimates the same quantities from its own samples.
    est.use_kernel = False
    v2, own2, peer2 = est.sample_taylor(theta, 16, 0.5)
    for a, b in ((own, own2), (peer, peer2)):
        se = (a.var(0) / reps + b.var(0) / reps).sqrt()
        assert torch.all((a.mean(0) - b.mean(0)).abs() < 4.5 * se + 1e-12)
    est.use_kernel = True
    again = SampledEstimator(est.values, torch.Generator().manual_seed(3), "reinforce")
    first = SampledEstimator(est.values, torch.Generator().manual_seed(3), "reinforce")
    torch.testing.assert_close(again.sample_taylor(theta[:5], 16, 0.5)[0],
                               first.sample_taylor(theta[:5], 16, 0.5)[0])


@pytest.mark.parametrize("batch", [64, 65])
def test_two_player_kernel_sampler_is_the_generic_sampler_bit_for_bit(batch):
    from rllib_metamapg.tabular import sampled_kernels as kernels
    rng = np.random.default_rng(4)
    p0 = rng.uniform(0.05, 0.95, (2, 5))
    joint = np.stack([p0[0] * p0[1], p0[0] * (1 - p0[1]),
                      (1 - p0[0]) * p0[1], (1 - p0[0]) * (1 - p0[1])], -1)
    pay = np.array([[3.0, 0.0, 5.0, 1.0], [3.0, 5.0, 0.0, 1.0]])
    seed = np.uint64(0x1234ABCD)
    out = []
    for fn in (kernels.episodes_generic, kernels.episodes_two_player):
        stats = (np.zeros((batch, 2, 5)), np.zeros((batch, 2, 5)), np.zeros((batch, 2)))
        fn(p0, np.cumsum(joint, -1), pay, 0.96, 12, seed, *stats)
        out.append(stats)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    # Not vacuous: both players acted, and visits count every round.
    assert np.all(out[0][1].sum(-1) == 12) and np.ptp(out[0][2]) > 0


@pytest.mark.parametrize("name, kind", [("stag_hunt", "bernoulli"), ("climbing", "softmax")])
def test_one_shot_count_estimator_equals_the_generic_form(name, kind):
    est, _, policy = make(name, kind)
    theta = torch.randn(5, policy.dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(12))
    ep = est.sample(theta, 50)
    fast = est.taylor(theta, ep, 0.55)
    est.use_sufficient_stats = False
    slow = est.taylor(theta, ep, 0.55)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
