"""Sampled-mode estimators: score-function / DiCE estimates from B episodes.

Episodes are sampled for ``R`` independent runs at once.  For agent ``j`` let
``C_j(t)`` be the cumulative score ``sum_{t' <= t} grad log pi_j(a_t' | s_t')``
and ``w_i(t) = gamma^t r_i(t)``.  The causal (DiCE) estimators are

* ``G[i][j] = mean_b sum_t w_i(t) C_j(t)``  (estimate of ``grad_j V_i``);
* ``H^k[j, i] = mean_b sum_t w_k(t) (C_j(t) C_i(t)^T + [i == j] sum_{t'<=t} grad^2 log pi_i)``.

The taylor corrections are the products the paper's prototype used, all from
one batch: ``own_i = eta H^i[i,i] G[i][i]`` and
``peer_i = eta sum_{j != i} H^j[j, i]^T G[i][j]``; they are computed here in
closed form from the tabular score functions (no autograd).  The ``unroll``
form is estimated with DiCE through autograd, one fresh batch per inner step.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import numpy as np
import torch

from rllib_metamapg import registry
from rllib_metamapg.errors import UsageError
from rllib_metamapg.dice import reward_to_go, surrogate_weights
from rllib_metamapg.tabular.values import GameValues


class SamplingError(UsageError):
    """Raised for a game/setting combination sampled mode cannot estimate."""


@dataclasses.dataclass
class Episodes:
    """A batch of sampled episodes for ``R`` runs, possibly compressed.

    Attributes:
        states: ``(R, E, T)`` state indices of E distinct episodes.
        actions: One ``(R, E, T)`` tensor of action indices per agent.
        rewards: ``(R, E, T, N)`` rewards.
        counts: ``(R, E)`` multiplicity of each episode, or None (all 1).
        batch_size: B, the number of sampled episodes (sum of counts).
    """

    states: torch.Tensor
    actions: List[torch.Tensor]
    rewards: torch.Tensor
    counts: Optional[torch.Tensor]
    batch_size: int


class SampledEstimator:
    """Samples episodes and estimates the PG field and corrections.

    Args:
        values: :class:`GameValues` of the game (entropy bonus only for
            normal-form games in sampled mode).
        generator: The torch random generator to sample with.
    """

    ESTIMATORS = ("dice", "reinforce")

    def __init__(self, values: GameValues, generator: torch.Generator,
                 estimator: str = "dice", sampler: str = "on_policy", behaviour=None):
        if estimator not in self.ESTIMATORS:
            raise SamplingError(f"estimator={estimator!r} is unknown; choose one of "
                             f"{self.ESTIMATORS}.")
        self.estimator = estimator
        # REINFORCE on repeated games: per-episode sufficient statistics (tests
        # switch this off to compare with the generic per-step form).
        self.use_sufficient_stats = True
        self.use_kernel = True  # compiled path for repeated Bernoulli REINFORCE
        self.values = values
        self.policy = values.policy
        self.game = values.game
        self.n = values.n
        self.gen = generator
        if values.repeated and self.game.horizon is None:
            raise SamplingError("mode='sampled' needs a finite horizon; use mode='exact' for "
                             "the infinite discounted game or set a horizon.")
        if values.repeated and values.temperature:
            raise SamplingError("temperature > 0 in mode='sampled' is supported for "
                             "normal-form games only; use mode='exact'.")
        if sampler != "on_policy" and values.repeated:
            raise SamplingError(f"sampler={sampler!r}: the tabular engine's samplers draw "
                                "joint actions of normal-form games; this game is repeated "
                                "(RLlib composes samplers on any env, `metamapg sweep`).")
        # A composition (``peer_only+ma_props``): batches drawn by that sampler's
        # behaviour policy (its registry entry's ``tabular`` hook), built at first use.
        self.sampler_kind, self.behaviour = sampler, behaviour
        self._batch_sampler = None
        self.horizon = self.game.horizon if values.repeated else 1
        self.discount = self.game.discount if values.repeated else 1.0
        self._flat_pay = values.payoffs.reshape(self.n, -1)
        self._strides = torch.tensor(
            [int(torch.tensor(self.game.num_actions[k + 1:]).prod()) for k in range(self.n)])

    # ----------------------------------------------------------------- sampling
    def sample(self, theta: torch.Tensor, batch: int) -> Episodes:
        """Samples ``batch`` episodes per run at parameters ``theta`` ``(R, D)``.

        One-shot games are returned compressed to joint-action counts drawn
        from ``Multinomial(batch, joint policy)`` -- exactly the distribution of
        ``batch`` independent joint actions, since every estimator is a sum over
        episodes -- at a cost independent of ``batch``.
        """
        theta = theta.detach()
        if self.horizon == 1:
            return self._sample_counts(theta, batch)
        r = theta.shape[0]
        probs = [self.policy.probs(theta, j) for j in range(self.n)]
        # One uniform per step against the joint policy's CDF in the current state:
        # the same law as independent per-agent draws, with one gather per step.
        joint_cdf = torch.einsum(self.values._joint_eq, *probs).flatten(-self.n).cumsum(-1)
        joint_cdf = joint_cdf[..., :-1].contiguous()  # (R, S, K-1)
        u = torch.rand(self.horizon, r, batch, 1, generator=self.gen, dtype=theta.dtype)
        state = torch.zeros(r, batch, dtype=torch.long)
        idx = torch.empty(r, batch, joint_cdf.shape[-1], dtype=torch.long)
        joints = []
        for t in range(self.horizon):
            c = torch.gather(joint_cdf, 1, idx.copy_(state.unsqueeze(-1).expand_as(idx)))
            joint = (u[t] > c).sum(-1)
            joints.append(joint)
            state = joint + 1
        joint = torch.stack(joints, -1)  # (R, B, T)
        states = torch.cat([torch.zeros_like(joint[..., :1]), joint[..., :-1] + 1], -1)
        actions = [(joint // int(self._strides[j])) % self.game.num_actions[j]
                   for j in range(self.n)]
        rewards = self._flat_pay.to(theta.dtype).T[joint]
        return Episodes(states, actions, rewards, None, batch)

    def kernel_applies(self) -> bool:
        """Whether the compiled REINFORCE kernel covers this game and estimator."""
        return (self.use_kernel and self.values.repeated and self.estimator == "reinforce"
                and self.policy.kind == "bernoulli" and not self.values.temperature)

    def sample_taylor(self, theta: torch.Tensor, batch: int, eta: float,
                      want_corrections: bool = True):
        """Samples a batch and returns the taylor estimates ``(v, own, peer)``.

        Repeated Bernoulli games under REINFORCE go through the compiled kernel
        (:mod:`.sampled_kernels`), which never materialises the episodes.
        """
        if not self.kernel_applies():
            return self.taylor(theta, self.sample(theta, batch), eta, want_corrections)
        from rllib_metamapg.tabular import sampled_kernels as kernels

        th = theta.detach()
        r = th.shape[0]
        probs = [self.policy.probs(th, j) for j in range(self.n)]
        cdf = torch.einsum(self.values._joint_eq, *probs).flatten(-self.n).cumsum(-1)
        p0 = torch.stack([p[..., 0] for p in probs], 1)  # (R, N, S)
        seeds = torch.randint(0, 2 ** 62, (r,), generator=self.gen).numpy().astype(np.uint64)
        v, own, peer = kernels.reinforce_taylor(
            p0.double().numpy(), cdf.double().contiguous().numpy(),
            self._flat_pay.double().numpy(), float(self.discount), int(self.horizon),
            int(batch), float(eta), seeds, bool(want_corrections))
        out = [torch.from_numpy(x).reshape(r, -1).to(th.dtype) for x in (v, own, peer)]
        return (out[0], None, None) if not want_corrections else tuple(out)

    def _behaviour_counts(self, theta: torch.Tensor, batch: int) -> torch.Tensor:
        """``(R, K)`` counts of a batch drawn by the composed sampler."""
        r = theta.shape[0]
        if self._batch_sampler is None or self._batch_sampler.runs != r:
            spec = registry.get_sampler(self.sampler_kind)
            if spec.tabular is None:
                raise SamplingError(f"sampler={spec.name!r} has no tabular implementation "
                                    "(its SamplerSpec.tabular is None).")
            self._batch_sampler = registry.load(spec.tabular)(
                self.sampler_kind, self.game.num_actions, r, self.behaviour, self.gen)
        logp = [self.policy.log_probs(theta, j)[:, 0, :] for j in range(self.n)]
        return self._batch_sampler.counts(logp, batch).to(theta.dtype)

    def _sample_counts(self, theta: torch.Tensor, batch: int) -> Episodes:
        r, k, dtype = theta.shape[0], self._flat_pay.shape[1], theta.dtype
        if self.sampler_kind != "on_policy":
            return self._episodes(self._behaviour_counts(theta, batch), batch, r, k, dtype)
        probs = [self.policy.probs(theta, j)[:, 0, :] for j in range(self.n)]
        joint = torch.einsum(self.values._joint_eq, *probs).reshape(r, k)
        # Multinomial as a chain of binomials: n_k ~ Bin(left, p_k / mass_left).
        counts = torch.empty(r, k, dtype=dtype)
        left = torch.full((r,), float(batch), dtype=dtype)
        mass = torch.ones(r, dtype=dtype)
        for c in range(k - 1):
            p = (joint[:, c] / mass.clamp_min(1e-30)).clamp(0.0, 1.0)
            n_c = torch.binomial(left, p, generator=self.gen)
            counts[:, c] = n_c
            left = left - n_c
            mass = mass - joint[:, c]
        counts[:, k - 1] = left
        return self._episodes(counts, batch, r, k, dtype)

    def _episodes(self, counts, batch, r, k, dtype) -> Episodes:
        """One-shot episodes compressed to joint-action ``counts`` ``(R, K)``."""
        ks = torch.arange(k)
        acts = [((ks // int(self._strides[j])) % self.game.num_actions[j])
                for j in range(self.n)]
        rewards = self._flat_pay.to(dtype).T
        return Episodes(torch.zeros(r, k, 1, dtype=torch.long),
                        [a.view(1, k, 1).expand(r, k, 1) for a in acts],
                        rewards.view(1, k, 1, self.n).expand(r, k, 1, self.n), counts, batch)

    def _discounted(self, ep: Episodes) -> torch.Tensor:
        t = torch.arange(ep.states.shape[-1], dtype=ep.rewards.dtype)
        return ep.rewards * (self.discount ** t)[None, None, :, None]

    # ------------------------------------------------------------ entropy terms
    def _entropy_terms(self, theta: torch.Tensor, vecs: List[torch.Tensor]):
        """Exact ``tau * grad H_i`` and ``tau * grad^2 H_i @ vec_i`` (normal-form)."""
        tau = self.values.temperature
        th = theta.detach().requires_grad_(True)
        grads, hvps = [], []
        for i in range(self.n):
            p = self.policy.probs(th, i)[:, 0, :]
            ent = -(p * torch.log(p.clamp_min(1e-300))).sum()
            g = torch.autograd.grad(ent, th, create_graph=True)[0]
            gi = self.policy.block(g, i)
            h = torch.autograd.grad((gi * vecs[i].detach()).sum(), th)[0]
            grads.append(tau * gi.detach())
            hvps.append(tau * self.policy.block(h, i))
        return grads, hvps

    # --------------------------------------------------------------- estimators
    def _weighted(self, ep: Episodes, x: torch.Tensor) -> torch.Tensor:
        return x if ep.counts is None else x * ep.counts.unsqueeze(-1)

    def _per_state_action(self, i: int, ep: Episodes, x: torch.Tensor):
        """``N[s, a] = sum_{b,t} x_{b,t} [s_t = s, a^i_t = a]``, shape ``(R, S, A_i)``."""
        r = x.shape[0]
        s, a = self.game.num_states, self.game.num_actions[i]
        idx = (ep.states * a + ep.actions[i]).reshape(r, -1)
        out = torch.zeros(r, s * a, dtype=x.dtype).scatter_add_(
            1, idx, self._weighted(ep, x).reshape(r, -1))
        return out.view(r, s, a)

    def _score_sum(self, i: int, ep: Episodes, x: torch.Tensor, probs) -> torch.Tensor:
        """``sum_{b,t} x_{b,t} grad log pi_i(a_t | s_t)``, shape ``(R, d_i)``."""
        n_sa = self._per_state_action(i, ep, x)
        res = n_sa - probs * n_sa.sum(-1, keepdim=True)
        return res[..., 0] if self.policy.kind == "bernoulli" else res.flatten(-2)

    def _score_dot(self, i: int, ep: Episodes, g: torch.Tensor, probs) -> torch.Tensor:
        """``grad log pi_i(a_t | s_t) . g`` for every episode step, ``(R, E, T)``."""
        r = g.shape[0]
        if self.policy.kind == "bernoulli":
            gz = torch.stack([g, torch.zeros_like(g)], -1)
        else:
            gz = g.view(probs.shape)
        a = probs.shape[-1]
        first = torch.gather(gz.reshape(r, -1), 1,
                             (ep.states * a + ep.actions[i]).reshape(r, -1))
        second = torch.gather((probs * gz).sum(-1), 1, ep.states.reshape(r, -1))
        return (first - second).view(ep.states.shape)

    def _to_go(self, x: torch.Tensor) -> torch.Tensor:
        """Reward-to-go (DiCE/causal) or the whole-episode sum (REINFORCE) per step."""
        if x.shape[-1] == 1:
            return x
        if self.estimator == "reinforce":
            return x.sum(-1, keepdim=True).expand_as(x)
        return reward_to_go(x)

    def _prefix(self, x: torch.Tensor) -> torch.Tensor:
        """Score accumulated up to t (causal) or over the whole episode (REINFORCE)."""
        if x.shape[-1] == 1:
            return x
        if self.estimator == "reinforce":
            return x.sum(-1, keepdim=True).expand_as(x)
        return x.cumsum(-1)

    def taylor(self, theta: torch.Tensor, ep: Episodes, eta: float,
               want_corrections: bool = True):
        """Closed-form estimates ``(v, own, peer)`` from one batch, each ``(R, D)``.

        Every estimator is ``sum_{b,t} grad log pi(a_t|s_t) * X_t`` for a scalar
        field X built from rewards-to-go, so nothing of size ``B*T*D`` is formed:
        ``sum_t w_t C_t (C_t . g) = sum_t sigma_t * to_go(w * cumsum(sigma . g))_t``.
        """
        n, pol = self.n, self.policy
        b = ep.batch_size
        probs = [pol.probs(theta, j) for j in range(n)]
        if self.use_sufficient_stats and not self.values.temperature:
            if ep.counts is not None:
                return self._taylor_one_shot(theta, ep, eta, probs, want_corrections)
            if self.estimator == "reinforce":
                return self._taylor_reinforce(theta, ep, eta, probs, want_corrections)
        w = self._discounted(ep)
        to_go = [self._to_go(w[..., i]) for i in range(n)]
        grads = [[self._score_sum(j, ep, to_go[i], probs[j]) / b for j in range(n)]
                 for i in range(n)]  # grads[i][j]: estimate of grad_j V_i
        own_g = [grads[i][i] for i in range(n)]
        ent_hvp = None
        if self.values.temperature:
            ent_grad, _ = self._entropy_terms(theta, own_g)
            own_g = [own_g[i] + ent_grad[i] for i in range(n)]
            _, ent_hvp = self._entropy_terms(theta, own_g)
        v = torch.cat(own_g, -1)
        if not want_corrections:
            return v, None, None
        own, peer = [], []
        for i in range(n):
            c = self._prefix(self._score_dot(i, ep, own_g[i], probs[i]))
            o = self._score_sum(i, ep, self._to_go(w[..., i] * c), probs[i])
            visits = self._per_state_action(i, ep, to_go[i]).sum(-1)  # (R, S)
            o = o + visits[:, pol.param_state(i)] * pol.log_prob_hvp(theta, i, own_g[i])
            o = o / b
            if ent_hvp is not None:
                o = o + ent_hvp[i]
            p = torch.zeros_like(o)
            for j in range(n):
                if j != i:
                    c = self._prefix(self._score_dot(j, ep, grads[i][j], probs[j]))
                    p = p + self._score_sum(i, ep, self._to_go(w[..., j] * c), probs[i])
            own.append(eta * o)
            peer.append(eta * p / b)
        return v, torch.cat(own, -1), torch.cat(peer, -1)

    def _taylor_one_shot(self, theta, ep: Episodes, eta: float, probs, want_corrections):
        """Taylor estimates of a one-shot game from its joint-action counts.

        Each of the K joint actions is one distinct "episode" with weight
        ``n_k / B``; its single visit is to the only state.
        """
        n, pol = self.n, self.policy
        freq = ep.counts / ep.batch_size  # (R, K)
        pay = ep.rewards[0, :, 0, :]  # (K, N)
        scores = [pol.score(theta, j, ep.states, ep.actions[j])[:, :, 0, :]
                  for j in range(n)]  # (R, K, d_j)
        weights = [freq * pay[:, i] for i in range(n)]  # n_k R_i(k) / B
        curvature = [w.sum(-1, keepdim=True) for w in weights]
        return self._episode_products(theta, weights, scores, curvature, eta,
                                      want_corrections)

    def _taylor_reinforce(self, theta, ep: Episodes, eta: float, probs, want_corrections):
        """REINFORCE taylor estimates from per-episode sufficient statistics.

        With whole-episode weights an episode enters only through its returns
        ``G`` and each agent's (state, action) counts, so everything works on
        ``(R, B, S*A)`` tensors instead of per-step fields.
        """
        n, pol, b = self.n, self.policy, ep.batch_size
        r, e, t = ep.states.shape
        ret = self._discounted(ep).sum(2) / b  # (R, B, N): G_i / B
        ones = torch.ones(r, e, t, dtype=ret.dtype)
        scores, curvature = [], []
        for j in range(n):
            a = probs[j].shape[-1]
            cnt = torch.zeros(r, e, self.game.num_states * a, dtype=ret.dtype).scatter_add_(
                2, ep.states * a + ep.actions[j], ones).view(r, e, -1, a)
            visits = cnt.sum(-1)
            sc = cnt - probs[j].unsqueeze(1) * visits.unsqueeze(-1)
            scores.append(sc[..., 0] if pol.kind == "bernoulli" else sc.flatten(-2))
            per_state = torch.einsum("rb,rbs->rs", ret[..., j], visits)
            curvature.append(per_state[:, pol.param_state(j)])
        weights = [ret[..., i] for i in range(n)]
        return self._episode_products(theta, weights, scores, curvature, eta,
                                      want_corrections)

    def _episode_products(self, theta, weights, scores, curvature, eta, want_corrections):
        """Taylor estimates from per-episode weights and whole-episode scores.

        Args:
            weights: per agent i, ``(R, E)``: episode weight times its return G_i / B.
            scores: per agent j, ``(R, E, d_j)``: whole-episode score vectors.
            curvature: per agent i, ``(R, d_i)``: ``sum_e weight_i(e) * visits of the
                parameter's state``, which carries the ``grad^2 log pi`` term.
        """
        n, pol = self.n, self.policy
        grads = [[torch.einsum("re,red->rd", weights[i], scores[j]) for j in range(n)]
                 for i in range(n)]  # grads[i][j]: estimate of grad_j V_i
        v = torch.cat([grads[i][i] for i in range(n)], -1)
        if not want_corrections:
            return v, None, None
        own, peer = [], []
        for i in range(n):
            g = grads[i][i]
            u = torch.einsum("red,rd->re", scores[i], g)
            o = torch.einsum("re,red->rd", weights[i] * u, scores[i])
            o = o + curvature[i] * pol.log_prob_hvp(theta, i, g)
            p = torch.zeros_like(o)
            for j in range(n):
                if j != i:
                    u = torch.einsum("red,rd->re", scores[j], grads[i][j])
                    p = p + torch.einsum("re,red->rd", weights[j] * u, scores[i])
            own.append(eta * o)
            peer.append(eta * p)
        return v, torch.cat(own, -1), torch.cat(peer, -1)

    def dice_objectives(self, theta: torch.Tensor, ep: Episodes) -> torch.Tensor:
        """DiCE surrogate of every player's value, ``(R, N)``; its derivatives of
        any order are unbiased estimates of the value's derivatives."""
        logp = 0.0
        for j in range(self.n):
            lp = self.policy.log_probs(theta, j)  # (R, S, A)
            r = lp.shape[0]
            flat = lp.reshape(r, -1)
            idx = ep.states * lp.shape[-1] + ep.actions[j]
            logp = logp + torch.gather(flat, 1, idx.reshape(r, -1)).reshape(idx.shape)
        # The trajectory surrogate at the sampling parameters: weights W_t - W_{t-1}
        # of the magic box of every agent's cumulative log-probability.
        weights = surrogate_weights(logp - logp.detach(), "trajectory")
        to_go = reward_to_go(self._discounted(ep), dim=2)
        # + W_{-1} R_0 (a constant) makes the value the sampled return as well.
        per_ep = (to_go * weights.unsqueeze(-1)).sum(2) + to_go[:, :, 0]  # (R, E, N)
        if ep.counts is not None:
            per_ep = per_ep * ep.counts.unsqueeze(-1)
        out = per_ep.sum(1) / ep.batch_size
        if self.values.temperature:
            ent = torch.stack([
                -(p * torch.log(p.clamp_min(1e-300))).sum(-1)[:, 0]
                for p in self.policy.all_probs(theta)], -1)
            out = out + self.values.temperature * ent
        return out

    def lola(self, theta: torch.Tensor, batch: int, eta: float,
             first: Optional[Episodes] = None):
        """DiCE estimate of the ``lola`` form (LOLA-DiCE): ``(v, 0, peer)``.

        The peers' look-ahead uses the DiCE field of the first batch (kept in the
        graph); agent i's value at ``(theta_i, theta_-i + eta v_-i)`` is estimated from
        a fresh batch drawn there, and differentiated back through the look-ahead.
        ``peer = that gradient - v``, as in the exact form.
        """
        n, masks = self.n, self.policy.masks(theta.dtype)
        th0 = theta.detach().requires_grad_(True)
        ep = first if first is not None else self.sample(th0.detach(), batch)
        obj = self.dice_objectives(th0, ep)
        field = 0.0
        for j in range(n):
            g = torch.autograd.grad(obj[:, j].sum(), th0, create_graph=True)[0]
            field = field + masks[j] * g
        v = field.detach()
        total = torch.zeros_like(theta)
        for i in range(n):
            ahead = th0 + eta * (1 - masks[i]) * field  # peers look ahead, i stays
            obj_i = self.dice_objectives(ahead, self.sample(ahead.detach(), batch))
            total = total + masks[i] * torch.autograd.grad(obj_i[:, i].sum(), th0,
                                                           retain_graph=True)[0]
        return v, torch.zeros_like(theta), (total - v).detach()

    def unroll(self, theta: torch.Tensor, batch: int, eta: float, steps: int,
               first: Optional[Episodes] = None):
        """DiCE estimate of the ``unroll`` corrections, one fresh batch per step.

        Returns ``(v, own, peer)``; ``v`` comes from the first batch.
        """
        n, masks = self.n, self.policy.masks(theta.dtype)
        th0 = theta.detach().requires_grad_(True)
        cur = th0
        v = None
        for step in range(steps):
            ep = first if (step == 0 and first is not None) else self.sample(cur, batch)
            obj = self.dice_objectives(cur, ep)
            field = 0.0
            for j in range(n):
                g = torch.autograd.grad(obj[:, j].sum(), cur, create_graph=True)[0]
                field = field + masks[j] * g
            if v is None:
                v = field.detach()
            cur = cur + eta * field
        ep = self.sample(cur, batch)
        th_l = cur.detach().requires_grad_(True)
        obj = self.dice_objectives(th_l, ep)
        own = torch.zeros_like(theta)
        peer = torch.zeros_like(theta)
        for i in range(n):
            g = torch.autograd.grad(obj[:, i].sum(), th_l, retain_graph=True)[0]
            o = torch.autograd.grad((cur * (masks[i] * g)).sum(), th0, retain_graph=True)[0]
            p = torch.autograd.grad((cur * ((1 - masks[i]) * g)).sum(), th0,
                                    retain_graph=True)[0]
            own = own + masks[i] * (o - g)
            peer = peer + masks[i] * p
        return v, own, peer
