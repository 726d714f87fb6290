"""Behaviour policies of PROPS and MA-PROPS for normal-form games, batched over runs.

All ``R`` runs of a batch share a game; the target policy of run ``r`` is given by
each agent's action log-probabilities ``(R, A_i)``.  The buffer ``D`` holds the
joint actions drawn since the last target update.

MA-PROPS: ``pi_phi(a) = softmax_a(sum_i log pi_theta_i(a_i) + Delta(a))`` over the
``K = prod A_i`` joint actions, with ``Delta`` one logit per joint action (the
tabular form of the paper's Delta network) set to 0 at the start of every
behaviour update, so ``pi_phi = pi_theta`` then.  The update ascends

    L(phi) = mean_{a in D} min(-r(a), -clip(r(a), 1 - eps, 1 + eps)),
    r(a) = pi_phi(a) / pi_theta(a),

for ``epochs`` passes of ``minibatches`` minibatches each (Adam, gradient-norm clip
per run, Adam state kept across updates), stopping a run early once
``KL(pi_theta || pi_phi) > kl_cutoff``.  Each step lowers the probability of joint
actions already in ``D`` (never below ``1 - eps`` times the target's) and so
raises the others: joint actions under-sampled relative to the target become
more likely to be drawn next.  PROPS does the same per agent, on its own actions
and marginals, with its own ``delta_i``, ratio and KL.

The gradient is computed in closed form: with ``p = pi_phi``,
``d r(a) / d Delta_k = r(a) (1[k = a] - p_k)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence

import numpy as np
import torch

KINDS = ("on_policy", "props", "ma_props")
OPTIMIZERS = ("adam", "sgd")


class BehaviourError(ValueError):
    """Bad sampler settings; the message names the field."""


@dataclasses.dataclass(frozen=True)
class BehaviourSettings:
    """The behaviour update's settings (defaults: see docs/samplers.md).

    Attributes:
        lr: Adam step size of the behaviour update.
        every: ``m``: env steps between behaviour updates.
        clip: ``eps`` of the clipped objective.
        epochs: Passes over the buffer per behaviour update.
        minibatches: Minibatches per pass.
        kl_cutoff: Stop a run's update once ``KL(pi_theta || pi_phi)`` exceeds it
            (``None``: never).
        grad_clip: Gradient-norm clip per run (``None``: none).
        optimizer: ``"adam"`` (the PROPS code's; state kept across updates) or
            ``"sgd"`` (plain steps: with a huge ``lr`` the greedy limit, which puts
            the next draw on the most under-sampled joint action).
    """

    # lr and clip: the best of MA-PROPS's own grid on games 19-21 and on the 3x3 games
    # (`metamapg tabular samplers-tune`, docs/samplers.md).
    lr: float = 0.3
    every: int = 1
    clip: float = 1.0
    epochs: int = 16
    minibatches: int = 4
    kl_cutoff: Optional[float] = 6.0
    grad_clip: Optional[float] = 0.5
    optimizer: str = "adam"

    def validate(self) -> None:
        def pos(name, integer=False, optional=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) if integer else (
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and v > 0)
            if not ok:
                kind = "an integer >= 1" if integer else "a finite number > 0"
                raise BehaviourError(f"behaviour {name}={v!r} must be {kind}"
                                     f"{' (or none)' if optional else ''}.")

        pos("lr")
        pos("clip")
        pos("every", integer=True)
        pos("epochs", integer=True)
        pos("minibatches", integer=True)
        pos("kl_cutoff", optional=True)
        pos("grad_clip", optional=True)
        if self.optimizer not in OPTIMIZERS:
            raise BehaviourError(f"behaviour optimizer={self.optimizer!r}; choose one of "
                                 f"{OPTIMIZERS}.")


class _Adam:
    """Adam on a ``(R, ...)`` tensor with per-run gradient-norm clipping and a row mask."""

    def __init__(self, shape, lr, grad_clip, dtype, betas=(0.9, 0.999), eps=1e-8, sgd=False):
        self.lr, self.grad_clip, self.betas, self.eps = lr, grad_clip, betas, eps
        self.sgd = sgd
        self.m = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.t = torch.zeros(shape[0], dtype=dtype)

    def ascend(self, x: torch.Tensor, grad: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``x`` after one ascent step on ``grad``, on the rows where ``rows`` is True."""
        if self.grad_clip is not None:
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
            grad = grad * (self.grad_clip / norm).clamp(max=1.0).view(-1, *[1] * (grad.dim() - 1))
        b1, b2 = self.betas
        mask = rows.view(-1, *[1] * (grad.dim() - 1)).to(grad.dtype)
        if self.sgd:
            return x + mask * self.lr * grad
        self.t = self.t + rows.to(grad.dtype)
        self.m = torch.where(mask > 0, b1 * self.m + (1 - b1) * grad, self.m)
        self.v = torch.where(mask > 0, b2 * self.v + (1 - b2) * grad * grad, self.v)
        t = self.t.clamp_min(1.0).view(-1, *[1] * (grad.dim() - 1))
        step = self.lr * (self.m / (1 - b1 ** t)) / ((self.v / (1 - b2 ** t)).sqrt() + self.eps)
        return x + mask * step


def clipped_objective_grad(logits_target: torch.Tensor, delta: torch.Tensor,
                           counts: torch.Tensor, clip: float):
    """Ascent direction of the clipped objective for a batch of categorical behaviours.

    Args:
        logits_target: ``(R, K)`` target log-probabilities.
        delta: ``(R, K)`` behaviour offsets.
        counts: ``(R, K)`` how often each action is in the minibatch.
        clip: eps.

    Returns:
        ``(grad (R, K), objective (R,))``; rows with an empty minibatch get 0.
    """
    logp_phi = torch.log_softmax(logits_target + delta, -1)
    p = logp_phi.exp()
    r = torch.exp(logp_phi - logits_target)
    n = counts.sum(-1, keepdim=True).clamp_min(1.0)
    w = counts / n  # each action's share of the minibatch
    objective = (w * torch.minimum(-r, -r.clamp(1 - clip, 1 + clip))).sum(-1)
    active = (r > 1 - clip).to(r.dtype)  # where -r is the min, the gradient flows
    c = w * active * r  # coefficient of -(e_a - p)
    grad = -(c - c.sum(-1, keepdim=True) * p)
    return grad, objective


def kl(logits_target: torch.Tensor, logits_behaviour: torch.Tensor) -> torch.Tensor:
    """``KL(pi_theta || pi_phi)`` per run (inputs are log-probabilities)."""
    return (logits_target.exp() * (logits_target - logits_behaviour)).sum(-1)


class TabularSampler:
    """Draws joint actions for ``R`` runs of a normal-form game and keeps the buffer.

    Args:
        kind: ``on_policy``, ``props`` or ``ma_props``.
        num_actions: Actions per agent.
        runs: R.
        settings: :class:`BehaviourSettings` (ignored for ``on_policy``).
        generator: torch generator for the draws and minibatch shuffles.
        dtype: Floating dtype.
    """

    def __init__(self, kind: str, num_actions: Sequence[int], runs: int,
                 settings: BehaviourSettings = BehaviourSettings(),
                 generator: Optional[torch.Generator] = None, dtype=torch.float64):
        if kind not in KINDS:
            raise BehaviourError(f"sampler={kind!r} is unknown; choose one of {KINDS}.")
        settings.validate()
        self.kind, self.settings, self.dtype = kind, settings, dtype
        self.num_actions = tuple(int(a) for a in num_actions)
        self.n = len(self.num_actions)
        self.k = math.prod(self.num_actions)
        self.runs = runs
        self.gen = generator if generator is not None else torch.Generator().manual_seed(0)
        strides = [math.prod(self.num_actions[i + 1:]) for i in range(self.n)]
        joint = torch.arange(self.k)
        # agent_action[i][k]: agent i's action in joint action k.
        self.agent_action = [(joint // s) % a for s, a in zip(strides, self.num_actions)]
        if kind == "ma_props":
            self.delta = [torch.zeros(runs, self.k, dtype=dtype)]
        else:  # props keeps one offset per agent; on_policy keeps zeros
            self.delta = [torch.zeros(runs, a, dtype=dtype) for a in self.num_actions]
        self.opt = [_Adam(d.shape, settings.lr, settings.grad_clip, dtype,
                          sgd=settings.optimizer == "sgd") for d in self.delta]
        self.buffer: List[torch.Tensor] = []  # joint action per step, each (R,)
        self.steps_since_update = 0
        self.last_epochs = torch.zeros(runs)  # behaviour epochs taken at the last update
        self.last_kl = torch.zeros(runs, dtype=dtype)

    # ------------------------------------------------------------------ target
    def joint_logp(self, agent_logp: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(R, K)`` joint target log-probabilities from per-agent ``(R, A_i)``."""
        return sum(lp[:, idx] for lp, idx in zip(agent_logp, self.agent_action))

    def behaviour_probs(self, agent_logp: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(R, K)`` probability of each joint action under this sampler."""
        if self.kind == "ma_props":
            return torch.softmax(self.joint_logp(agent_logp) + self.delta[0], -1)
        per = [torch.log_softmax(lp + d, -1) for lp, d in zip(agent_logp, self.delta)]
        return self.joint_logp(per).exp()

    # ---------------------------------------------------------------- drawing
    def draw(self, agent_logp: Sequence[torch.Tensor]) -> torch.Tensor:
        """One joint action per run ``(R,)``, appended to the buffer; runs the
        behaviour update every ``every`` draws."""
        probs = self.behaviour_probs(agent_logp)
        u = torch.rand(self.runs, 1, generator=self.gen, dtype=probs.dtype)
        a = (u > probs.cumsum(-1)[:, :-1]).sum(-1)
        self.buffer.append(a)
        self.steps_since_update += 1
        if self.kind != "on_policy" and self.steps_since_update >= self.settings.every:
            self.update(agent_logp)
            self.steps_since_update = 0
        return a

    def clear(self) -> None:
        """New target weights: the buffer starts again (the paper's runs)."""
        self.buffer = []
        self.steps_since_update = 0

    def joint_counts(self) -> torch.Tensor:
        """``(R, K)`` counts of each joint action in the buffer."""
        if not self.buffer:
            return torch.zeros(self.runs, self.k, dtype=self.dtype)
        d = torch.stack(self.buffer, -1)
        return torch.nn.functional.one_hot(d, self.k).sum(1).to(self.dtype)

    # ---------------------------------------------------------------- update
    def _targets_and_actions(self, agent_logp):
        d = torch.stack(self.buffer, -1)  # (R, L)
        if self.kind == "ma_props":
            return [self.joint_logp(agent_logp)], [d]
        return list(agent_logp), [idx[d] for idx in self.agent_action]

    def _orders(self, length: int) -> torch.Tensor:
        """``(R, epochs, L)``: each epoch's random order of the buffer, per run."""
        return torch.rand(self.runs, self.settings.epochs, length,
                          generator=self.gen).argsort(-1)

    def update(self, agent_logp: Sequence[torch.Tensor], orders=None) -> None:
        """The behaviour update on the buffer (compiled; see :mod:`.behaviour_kernels`)."""
        from rllib_metamapg.samplers.behaviour_kernels import behaviour_update

        s = self.settings
        targets, actions = self._targets_and_actions(agent_logp)
        length = actions[0].shape[1]
        if orders is None:  # each run shuffles in the kernel, seeded from our generator
            orders = torch.zeros(self.runs, s.epochs, 0, dtype=torch.long)
        seeds = torch.randint(0, 2**62, (self.runs,), generator=self.gen).numpy().astype(
            np.uint64)
        inf = float("inf")
        for j, (target, acts) in enumerate(zip(targets, actions)):
            opt = self.opt[j]
            delta = np.zeros(tuple(self.delta[j].shape))
            m, v, t = (opt.m.numpy().copy(), opt.v.numpy().copy(), opt.t.numpy().copy())
            epochs = np.zeros(self.runs, np.int64)
            kls = np.zeros(self.runs)
            behaviour_update(target.detach().double().numpy(), acts.numpy(),
                             orders.numpy(), seeds, s.epochs, min(s.minibatches, length),
                             float(s.lr),
                             float(s.clip), inf if s.kl_cutoff is None else float(s.kl_cutoff),
                             inf if s.grad_clip is None else float(s.grad_clip),
                             s.optimizer == "sgd", m, v, t, delta, epochs, kls)
            opt.m, opt.v, opt.t = (torch.from_numpy(m), torch.from_numpy(v),
                                   torch.from_numpy(t))
            self.delta[j] = torch.from_numpy(delta).to(self.dtype)
            self.last_epochs = torch.from_numpy(epochs)
            self.last_kl = torch.from_numpy(kls)

    def update_reference(self, agent_logp: Sequence[torch.Tensor], orders=None) -> None:
        """The same update with tensor operations (the compiled one is tested against it)."""
        s = self.settings
        targets, actions = self._targets_and_actions(agent_logp)
        length = actions[0].shape[1]
        orders = self._orders(length) if orders is None else orders
        chunks = min(s.minibatches, length)
        for j, (target, acts) in enumerate(zip(targets, actions)):
            width = target.shape[-1]
            delta = torch.zeros_like(self.delta[j])  # pi_phi = pi_theta at the start
            live = torch.ones(self.runs, dtype=torch.bool)
            epochs = torch.zeros(self.runs, dtype=torch.long)
            for e in range(s.epochs):
                shuffled = torch.gather(acts, 1, orders[:, e])
                for part in torch.tensor_split(shuffled, chunks, dim=1):
                    counts = torch.nn.functional.one_hot(part, width).sum(1).to(self.dtype)
                    grad, _ = clipped_objective_grad(target, delta, counts, s.clip)
                    delta = self.opt[j].ascend(delta, grad, live)
                    if s.kl_cutoff is not None:
                        live = live & (kl(target, torch.log_softmax(target + delta, -1))
                                       <= s.kl_cutoff)
                epochs = epochs + live.long()
                if not bool(live.any()):
                    break
            self.delta[j] = delta
            self.last_epochs = epochs
            self.last_kl = kl(target, torch.log_softmax(target + delta, -1))


def tv_joint(counts: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``(R,)`` total variation between the buffer's empirical joint distribution and the
    target's: ``1/2 sum_a |counts_a / |D| - pi_theta(a)|``."""
    n = counts.sum(-1, keepdim=True).clamp_min(1.0)
    return 0.5 * (counts / n - target_probs).abs().sum(-1)


def tv_marginal(counts: torch.Tensor, target_probs: torch.Tensor,
                agent_action: torch.Tensor, num_actions: int) -> torch.Tensor:
    """``(R,)`` the same for one agent's marginal (``agent_action[k]``: its action in k)."""
    onehot = torch.nn.functional.one_hot(agent_action, num_actions).to(counts.dtype)
    return tv_joint(counts @ onehot, target_probs @ onehot)
