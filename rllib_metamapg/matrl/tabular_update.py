"""MATRL's tabular update on logit policies (every engine game, exact or sampled).

One outer step of a MATRL learner at joint parameters ``theta``:

1. trust-payoff step ``theta_hat_i = theta_i + eta * grad_i V_i(theta)``
   (``eta`` = ``inner_lr``, the engine's look-ahead step);
2. meta-game ``g_i(sigma) = V_i(theta^sigma) - V_i(theta)``, where ``theta^sigma``
   takes agent j's block from ``theta_hat`` when ``sigma_j`` = predicted;
   ``g_i(current, ..., current) = 0``;
3. its equilibrium ``rho`` (P(current) per agent): closed form for 2 agents,
   the Nash-gap minimiser for more; the arm may fix ``rho`` instead (``il_pp``);
4. the mixture in probability space, per state:
   ``pi_bar_j = rho_j pi_j + (1 - rho_j) pi_hat_j``;
5. best response: the direction ``grad_i V_i(theta_i, theta_bar_-i)`` from the
   *current* parameters (the public code's starting point; with the run's step
   ``alpha_n`` it is MATRL's best-response step) -- or, without it
   (``matrl_no_br``), the direction that lands on the mixture.

With ``rho = 1`` the direction is the PG field exactly (independent learners).

Sampled mode estimates from one batch of episodes at ``theta``: the PG field
with the run's estimator, the meta-game payoffs by trajectory importance weights
``mean_b (prod_{j predicted} pi_hat_j / pi_j - 1) R_i``, and the best response
by ``mean_b w_-i R_i sum_t grad log pi_i`` with
``w_-i = prod_{j != i} pi_bar_j / pi_j`` over the episode (both unbiased).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from rllib_metamapg.matrl.meta_game import solve_2x2, solve_n
from rllib_metamapg.matrl.method import matrl_arm
from rllib_metamapg.tabular.updates import TabularUpdate
from rllib_metamapg.tabular.settings import SettingsError


class MATRLTabular(TabularUpdate):
    """MATRL's arms in a batched tabular run (see the module docstring)."""

    def __init__(self, arms, runs, settings):
        super().__init__(arms, runs, settings)
        if settings.player_lambda is not None:
            raise SettingsError("player_lambda scales Meta-MAPG's correction terms; MATRL's "
                             "arms have none. Leave it unset (none) for MATRL arms.")
        self.spec = [matrl_arm(a) for a in self.arms]
        nan = float("nan")
        self.fixed_rho = self.per_row([nan if s.rho is None else s.rho for s in self.spec])
        self.best_response = self.per_row([float(s.best_response) for s in self.spec]) > 0
        self.rng = np.random.default_rng(0)  # for meta_choice="random"
        self.last_rho = None  # (rows, N) of the latest step, for inspection

    # ------------------------------------------------------------------ pieces
    def _profiles(self, policy, dtype):
        """``(2^N, D)`` masks: 1 where a profile takes the predicted block (current first)."""
        masks = policy.masks(dtype)
        n = policy.num_players
        return torch.stack([(torch.tensor(s, dtype=dtype)[:, None] * masks).sum(0)
                            for s in itertools.product((0.0, 1.0), repeat=n)])

    def solve(self, g: torch.Tensor) -> torch.Tensor:
        """``rho`` ``(rows, N)`` from meta-game payoffs ``g`` ``(2^N, rows, N)``."""
        n, rows = g.shape[-1], g.shape[1]
        pay = g.detach().cpu().numpy().transpose(1, 2, 0).reshape((rows, n) + (2,) * n)
        choice = self.settings.meta_choice
        if n == 2:
            r1, r2 = solve_2x2(pay[:, 0], pay[:, 1], choice, self.rng)
            rho = np.stack([r1, r2], -1)
        else:  # no closed form: the Nash-gap minimiser, one run at a time
            rho = np.stack([solve_n(pay[r], seed=r)[0] for r in range(rows)])
        return torch.as_tensor(rho, dtype=g.dtype)

    def rho(self, g: torch.Tensor) -> torch.Tensor:
        """The meta-game's equilibrium on solving rows, the arm's fixed rho elsewhere."""
        n = g.shape[-1]
        fixed = self.fixed_rho.expand(-1, n)
        solve_rows = torch.isnan(self.fixed_rho[:, 0])
        out = fixed.clone()
        if bool(solve_rows.any()):
            out[solve_rows] = self.solve(g[:, solve_rows])
        return out

    def mixture(self, policy, theta, theta_hat, rho):
        """Parameters of ``rho pi + (1 - rho) pi_hat`` per agent and state; an agent
        with rho exactly 1 (0) keeps ``theta`` (``theta_hat``) bit for bit."""
        blocks = []
        for j in range(policy.num_players):
            r = rho[:, j:j + 1]
            cur, hat = policy.block(theta, j), policy.block(theta_hat, j)
            p = policy.probs(theta, j) * r[..., None] + policy.probs(theta_hat, j) * (
                1 - r[..., None])
            logp = torch.log(p.clamp_min(1e-300))
            mixed = (logp[..., 0] - logp[..., 1] if policy.kind == "bernoulli"
                     else logp.flatten(-2))
            blocks.append(torch.where(r == 1, cur, torch.where(r == 0, hat, mixed)))
        return torch.cat(blocks, -1)

    def _responses(self, policy, theta, theta_bar):
        """``(N, rows, D)`` joint parameters: agent i's own block current, peers mixed."""
        masks = policy.masks(theta.dtype)[:, None, :]
        return masks * theta + (1 - masks) * theta_bar

    # --------------------------------------------------------------- direction
    def direction(self, field, theta, n):
        if field.settings.mode == "sampled":
            return self._sampled(field, theta, n)
        policy, values = field.policy, field.values
        v, _, _ = field(theta, False)
        theta_hat = self._bound(theta + self.settings.inner_lr * v)
        prof = self._profiles(policy, theta.dtype)[:, None, :]
        joint = prof * theta_hat + (1 - prof) * theta  # (2^N, rows, D)
        vals = values(joint)
        g = vals - vals[:1]
        rho = self.rho(g)
        self.last_rho = rho
        theta_bar = self.mixture(policy, theta, theta_hat, rho)
        no_br = (theta_bar - theta) / self.settings.step_size(n)
        if not bool(self.best_response.any()):  # only no-BR rows: skip the N field calls
            return no_br
        resp = self._responses(policy, theta, theta_bar)
        nn = policy.num_players
        fv, _, _ = field(resp.reshape(-1, theta.shape[-1]), False)
        br = (policy.masks(theta.dtype)[:, None, :] * fv.view(nn, *theta.shape)).sum(0)
        return torch.where(self.best_response, br, no_br)

    def _bound(self, theta):
        b = self.settings.logit_bound
        return theta if b is None else theta.clamp(-b, b)

    def _sampled(self, field, theta, n):
        est = field.sampler
        if field.values.temperature:
            raise ValueError("MATRL arms in mode='sampled' need temperature=0 (the "
                             "meta-game and the best response are estimated from returns "
                             "only); use mode='exact'.")
        policy = field.policy
        nn = policy.num_players
        ep = est.sample(theta, self.settings.batch_size)
        v, _, _ = est.taylor(theta, ep, self.settings.inner_lr, want_corrections=False)
        theta_hat = self._bound(theta + self.settings.inner_lr * v)
        weights = (ep.counts if ep.counts is not None
                   else torch.ones(ep.states.shape[:2], dtype=theta.dtype)) / ep.batch_size
        ret = est._discounted(ep).sum(-2)  # (rows, E, N)

        def logp(th, j):  # (rows, E): log-probability of agent j's actions in each episode
            lp = policy.log_probs(th, j)  # (rows, S, A)
            a = lp.shape[-1]
            flat = torch.gather(lp.reshape(lp.shape[0], -1), 1,
                                (ep.states * a + ep.actions[j]).reshape(lp.shape[0], -1))
            return flat.view(ep.states.shape).sum(-1)

        base = torch.stack([logp(theta, j) for j in range(nn)])  # (N, rows, E)
        delta_hat = torch.stack([logp(theta_hat, j) for j in range(nn)]) - base
        g = []
        for s in itertools.product((0, 1), repeat=nn):
            sel = torch.tensor(s, dtype=theta.dtype)[:, None, None]
            w = torch.exp((sel * delta_hat).sum(0)) - 1.0  # (rows, E)
            g.append((weights[..., None] * w[..., None] * ret).sum(1))
        g = torch.stack(g)  # (2^N, rows, N)
        rho = self.rho(g)
        self.last_rho = rho
        theta_bar = self.mixture(policy, theta, theta_hat, rho)
        no_br = (theta_bar - theta) / self.settings.step_size(n)
        if not bool(self.best_response.any()):
            return no_br
        delta_bar = torch.stack([logp(theta_bar, j) for j in range(nn)]) - base
        br = torch.zeros_like(theta)
        for i in range(nn):
            w = torch.exp(delta_bar.sum(0) - delta_bar[i])  # peers' weights, (rows, E)
            # sum_{b,t} x_b grad log pi_i(a_t | s_t) through per-(state, action) counts
            # (the estimator's own helper; it applies the episode multiplicities).
            x = (w * ret[..., i] / ep.batch_size)[..., None].expand(ep.states.shape)
            gi = est._score_sum(i, ep, x, policy.probs(theta, i))
            br[:, policy.offsets[i]:policy.offsets[i + 1]] = gi
        return torch.where(self.best_response, br, no_br)
