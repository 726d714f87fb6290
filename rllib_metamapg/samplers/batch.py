"""A whole batch of joint actions from PROPS / MA-PROPS in one compiled call.

The tabular engine's learners (Meta-MAPG, MATRL) take one batch of ``B`` joint
actions per outer step and treat it as on-policy data from the current target.
Composed with a sampler (``peer_only+ma_props``), that batch is drawn the way
MA-PROPS collects: one joint action at a time from the behaviour policy, with the
behaviour update on everything drawn so far after every ``every`` draws, and the
buffer starting empty at each new target.  :class:`BatchSampler` does the ``B``
draws of every run in one call to :func:`.behaviour_kernels.draw_batch` (per-draw tensor
calls cost ~1 ms, which made a composition 100x slower than its learner), and
:func:`draw_batch_reference` is the same procedure in plain tensor code, which the
kernel is tested equal to on identical uniforms and minibatch orders.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from rllib_metamapg.samplers.behaviour import (KINDS, BehaviourError, BehaviourSettings,
                                               clipped_objective_grad, kl, _Adam)


def batch_sampler(kind: str, num_actions: Sequence[int], runs: int,
                  settings: Optional[BehaviourSettings], generator: torch.Generator):
    """The registry's tabular hook of ``props`` and ``ma_props`` (``SamplerSpec.tabular``)."""
    return BatchSampler(kind, num_actions, runs, settings or BehaviourSettings(), generator)


class BatchSampler:
    """Draws whole batches for ``runs`` rows of a normal-form game.

    Args:
        kind: ``props`` or ``ma_props`` (``on_policy`` needs no behaviour policy).
        num_actions: Actions per agent.
        runs: Rows (learners) drawn for at each call.
        settings: The behaviour update's settings.
        generator: Seeds each row's own stream at every call.
    """

    def __init__(self, kind: str, num_actions: Sequence[int], runs: int,
                 settings: BehaviourSettings, generator: torch.Generator):
        if kind not in KINDS or kind == "on_policy":
            raise BehaviourError(f"sampler={kind!r}: a batch sampler is props or ma_props.")
        settings.validate()
        self.kind, self.settings, self.runs, self.gen = kind, settings, runs, generator
        self.num_actions = tuple(int(a) for a in num_actions)
        self.k = math.prod(self.num_actions)
        joint_strides = [math.prod(self.num_actions[i + 1:]) for i in range(len(num_actions))]
        if kind == "ma_props":
            self.strides, self.sizes = np.array([1]), np.array([self.k])
        else:
            self.strides, self.sizes = np.array(joint_strides), np.array(self.num_actions)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        width, groups = int(self.offsets[-1]), len(self.sizes)
        self.delta = np.zeros((runs, width))
        self.m, self.v = np.zeros((runs, width)), np.zeros((runs, width))
        self.t = np.zeros((runs, groups))
        self.last_epochs = np.zeros((runs, groups), np.int64)
        self.last_kl = np.zeros((runs, groups))
        joint = np.arange(self.k)
        self.agent_action = [(joint // s) % a for s, a in zip(joint_strides, self.num_actions)]

    def targets(self, agent_logp: Sequence[torch.Tensor]) -> np.ndarray:
        """``(R, width)`` each group's target log-probabilities."""
        if self.kind == "ma_props":
            joint = sum(lp[:, idx] for lp, idx in zip(agent_logp, self.agent_action))
            return joint.detach().double().numpy()
        return torch.cat([lp.detach().double() for lp in agent_logp], -1).numpy()

    def counts(self, agent_logp: Sequence[torch.Tensor], batch: int,
               uniforms: Optional[np.ndarray] = None,
               orders: Optional[np.ndarray] = None) -> torch.Tensor:
        """``(R, K)`` counts of the ``batch`` joint actions drawn for each row."""
        from rllib_metamapg.samplers.behaviour_kernels import draw_batch

        s = self.settings
        rows = agent_logp[0].shape[0]
        if rows != self.runs:
            raise BehaviourError(f"BatchSampler holds {self.runs} rows, asked for {rows}.")
        groups = len(self.sizes)
        self.delta[:] = 0.0  # a new target: the buffer starts empty, behaviour = target
        counts = np.zeros((rows, self.k))
        seeds = torch.randint(0, 2**62, (rows,), generator=self.gen).numpy().astype(np.uint64)
        inf = float("inf")
        draw_batch(self.targets(agent_logp), self.offsets, self.strides, self.sizes, int(batch),
                   int(s.every),
                   np.zeros((rows, 0, groups)) if uniforms is None else uniforms,
                   np.zeros((rows, 0, s.epochs, 0), np.int64) if orders is None else orders,
                   seeds, s.epochs, s.minibatches, float(s.lr), float(s.clip),
                   inf if s.kl_cutoff is None else float(s.kl_cutoff),
                   inf if s.grad_clip is None else float(s.grad_clip), s.optimizer == "sgd",
                   self.m, self.v, self.t, self.delta, counts, self.last_epochs, self.last_kl)
        return torch.from_numpy(counts)


def draw_batch_reference(sampler: BatchSampler, agent_logp: Sequence[torch.Tensor], batch: int,
                         uniforms: np.ndarray, orders: np.ndarray) -> torch.Tensor:
    """:meth:`BatchSampler.counts` in tensor code (state kept on ``sampler`` alike)."""
    s = sampler.settings
    target = torch.from_numpy(sampler.targets(agent_logp))
    rows = target.shape[0]
    off = sampler.offsets
    groups = len(sampler.sizes)
    delta = torch.zeros(sampler.delta.shape, dtype=torch.float64)
    opts = []
    for g in range(groups):
        opt = _Adam((rows, int(sampler.sizes[g])), s.lr, s.grad_clip, torch.float64,
                    sgd=s.optimizer == "sgd")
        opt.m = torch.from_numpy(sampler.m[:, off[g]:off[g + 1]].copy())
        opt.v = torch.from_numpy(sampler.v[:, off[g]:off[g + 1]].copy())
        opt.t = torch.from_numpy(sampler.t[:, g].copy())
        opts.append(opt)
    buf, counts, update = [], torch.zeros(rows, sampler.k, dtype=torch.float64), 0
    for b in range(batch):
        joint = torch.zeros(rows, dtype=torch.long)
        for g in range(groups):
            lo, hi = off[g], off[g + 1]
            p = torch.softmax(target[:, lo:hi] + delta[:, lo:hi], -1)
            u = torch.from_numpy(uniforms[:, b, g])[:, None]
            a = (u > p.cumsum(-1)[:, :-1]).sum(-1)
            joint = joint + a * int(sampler.strides[g])
        buf.append(joint)
        counts[torch.arange(rows), joint] += 1.0
        if (b + 1) % s.every:
            continue
        d = torch.stack(buf, -1)
        length = d.shape[1]
        for g in range(groups):
            lo, hi = off[g], off[g + 1]
            acts = (d // int(sampler.strides[g])) % int(sampler.sizes[g])
            tg = target[:, lo:hi]
            dg = torch.zeros(rows, hi - lo, dtype=torch.float64)
            live = torch.ones(rows, dtype=torch.bool)
            for e in range(s.epochs):
                order = torch.from_numpy(orders[:, update, e, :length])
                shuffled = torch.gather(acts, 1, order)
                for part in torch.tensor_split(shuffled, min(s.minibatches, length), dim=1):
                    c = torch.nn.functional.one_hot(part, hi - lo).sum(1).to(torch.float64)
                    grad, _ = clipped_objective_grad(tg, dg, c, s.clip)
                    dg = opts[g].ascend(dg, grad, live)
                    if s.kl_cutoff is not None:
                        live = live & (kl(tg, torch.log_softmax(tg + dg, -1)) <= s.kl_cutoff)
                if not bool(live.any()):
                    break
            delta[:, lo:hi] = dg
        update += 1
    for g in range(groups):
        sampler.m[:, off[g]:off[g + 1]] = opts[g].m.numpy()
        sampler.v[:, off[g]:off[g + 1]] = opts[g].v.numpy()
        sampler.t[:, g] = opts[g].t.numpy()
    sampler.delta = delta.numpy().copy()
    return counts
