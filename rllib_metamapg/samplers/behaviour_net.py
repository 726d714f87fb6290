"""A behaviour policy over one group of agents for RLlib's env runner (Ray-free).

MA-PROPS uses one group holding every agent; PROPS one group per agent.  A group
of agents with action counts ``A_i`` has ``K = prod A_i`` joint actions and draws
from

    pi_phi(a | s) = softmax_a( sum_i log pi_theta_i(a_i | s_i) + Delta_phi(s) ),

where ``s`` is the concatenation of the group's flattened observations and
``Delta_phi`` a network with one output per joint action (one tanh hidden layer,
or linear) whose last layer is zeroed at the start of every behaviour update and
whenever new target weights arrive, so ``pi_phi = pi_theta`` exactly then.  The
update is the tabular engine's (:mod:`.behaviour`) with a network in place of
the table: the clipped objective over the buffer, ``epochs`` passes of
``minibatches`` minibatches, Adam kept across updates, a gradient-norm clip, and
a stop once the mean ``KL(pi_theta || pi_phi)`` over the last minibatch's samples
exceeds ``kl_cutoff`` (in a one-state game, the buffer's KL, as in the tabular
engine).
It runs compiled (:mod:`.behaviour_net_kernels`); :meth:`BehaviourGroup.update_reference`
is the same update with torch autograd, which the kernel is tested equal to.

The buffer holds the data since the last target update, stored by distinct state:
each state's features and target joint log-probabilities once (the target does not
change between weight syncs, so a state's row is fixed), and per sample the state
index and the joint action.  The update never calls the RLModule.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from rllib_metamapg.samplers.behaviour import BehaviourError, BehaviourSettings
from rllib_metamapg.samplers.behaviour_kernels import _shuffled_orders
from rllib_metamapg.samplers.behaviour_net_kernels import layout, update_net


def clipped_loss(target_logp: torch.Tensor, delta: torch.Tensor, actions: torch.Tensor,
                 clip: float) -> torch.Tensor:
    """``-L``: the minibatch mean of ``max(r, clip(r, 1 - eps, 1 + eps))`` with
    ``r = pi_phi(a) / pi_theta(a)``; ``target_logp``/``delta`` are ``(B, K)``."""
    logp_phi = torch.log_softmax(target_logp + delta, -1)
    a = actions.unsqueeze(-1)
    r = torch.exp(logp_phi.gather(-1, a) - target_logp.gather(-1, a)).squeeze(-1)
    return torch.maximum(r, r.clamp(1.0 - clip, 1.0 + clip)).mean()


class BehaviourGroup:
    """The behaviour policy, buffer and update of one group of agents.

    Args:
        num_actions: Action count of each agent of the group, in order.
        features: Length of the group's joint feature vector.
        settings: The behaviour update's settings.
        hidden: Width of Delta's tanh hidden layer (0: linear).
        seed: Seeds the network's initial weights, the draws and the shuffles.
    """

    def __init__(self, num_actions: Sequence[int], features: int, settings: BehaviourSettings,
                 hidden: int = 64, seed: int = 0):
        if hidden < 0:
            raise BehaviourError(f"behaviour hidden layer width {hidden} must be >= 0.")
        self.num_actions = tuple(int(a) for a in num_actions)
        self.k = math.prod(self.num_actions)
        self.f, self.h = int(features), int(hidden)
        self.settings = settings
        strides = [math.prod(self.num_actions[i + 1:]) for i in range(len(self.num_actions))]
        joint = np.arange(self.k)
        # agent_action[i][k]: agent i's action in joint action k (row-major, agent 0 slowest).
        self.agent_action = [(joint // s) % a for s, a in zip(strides, self.num_actions)]
        self.strides = np.asarray(strides)
        self.rng = np.random.default_rng(int(seed))
        *_, size = layout(self.f, self.h, self.k)
        self.params = np.zeros(size)
        if self.h > 0:  # torch.nn.Linear's default init for the hidden layer
            bound = 1.0 / math.sqrt(self.f)
            self.params[:self.f * self.h + self.h] = self.rng.uniform(
                -bound, bound, self.f * self.h + self.h)
        self.m, self.v, self.t = np.zeros(size), np.zeros(size), np.zeros(1)
        self.updates: List[Tuple[int, float]] = []  # (epochs taken, KL at stop) per update
        self.clear()

    # ------------------------------------------------------------------ buffer
    def clear(self) -> None:
        """New target weights: an empty buffer and ``pi_phi = pi_theta``."""
        _, _, w2, _, _ = layout(self.f, self.h, self.k)
        self.params[w2:] = 0.0
        self.state_index: Dict[bytes, int] = {}
        self.x = np.zeros((8, self.f))
        self.tl = np.zeros((8, self.k))
        self.states = 0
        self.state_of: List[int] = []
        self.action_of: List[int] = []
        self.since_update = 0

    def _add_states(self, features: np.ndarray, target: np.ndarray) -> np.ndarray:
        idx = np.empty(features.shape[0], np.int64)
        for r in range(features.shape[0]):
            key = features[r].tobytes()
            u = self.state_index.get(key)
            if u is None:
                u = self.state_index[key] = self.states
                if u >= self.x.shape[0]:
                    self.x = np.concatenate([self.x, np.zeros_like(self.x)])
                    self.tl = np.concatenate([self.tl, np.zeros_like(self.tl)])
                self.x[u], self.tl[u] = features[r], target[r]
                self.states += 1
            idx[r] = u
        return idx

    # ------------------------------------------------------------------ policy
    def joint_logp(self, agent_logp: Sequence[np.ndarray]) -> np.ndarray:
        """``(B, K)`` joint target log-probabilities from each agent's ``(B, A_i)``."""
        return sum(lp[:, idx] for lp, idx in zip(agent_logp, self.agent_action))

    def delta(self, features: np.ndarray) -> np.ndarray:
        """``(B, K)`` Delta of each row of ``features``."""
        w1, b1, w2, b2, _ = layout(self.f, self.h, self.k)
        p = self.params
        hid = features
        if self.h > 0:
            hid = np.tanh(features @ p[w1:b1].reshape(self.f, self.h) + p[b1:w2])
        return hid @ p[w2:b2].reshape(-1, self.k) + p[b2:]

    def behaviour_logp(self, features: np.ndarray, target: np.ndarray) -> np.ndarray:
        z = target + self.delta(features)
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    def draw(self, features: np.ndarray, target: np.ndarray) -> np.ndarray:
        """One joint action per row ``(B,)``, stored in the buffer; runs the update
        when ``every`` samples have come in since the last one."""
        features = np.asarray(features, np.float64)
        target = np.asarray(target, np.float64)
        probs = np.exp(self.behaviour_logp(features, target))
        u = self.rng.random((probs.shape[0], 1))
        a = np.minimum((u > np.cumsum(probs, -1)[:, :-1]).sum(-1), self.k - 1)
        self.state_of.extend(self._add_states(features, target).tolist())
        self.action_of.extend(a.tolist())
        self.since_update += a.shape[0]
        if self.since_update >= self.settings.every:
            self.update()
        return a

    def split(self, joint: np.ndarray) -> List[np.ndarray]:
        """Each agent's action in the joint actions ``joint``."""
        return [idx[joint] for idx in self.agent_action]

    # ------------------------------------------------------------------ update
    def _buffer(self):
        return (self.x[:self.states], self.tl[:self.states],
                np.asarray(self.state_of, np.int64), np.asarray(self.action_of, np.int64))

    def _orders(self, n: int) -> np.ndarray:
        return _shuffled_orders(self.settings.epochs, n, np.uint64(self.rng.integers(2**62)))

    def update(self, orders: np.ndarray | None = None) -> Tuple[int, float]:
        """The behaviour update on the buffer (compiled); ``(epochs taken, KL at stop)``."""
        s = self.settings
        self.since_update = 0
        x, tl, state_of, action_of = self._buffer()
        orders = self._orders(len(state_of)) if orders is None else orders
        epochs, kl = update_net(
            self.params, self.m, self.v, self.t, self.f, self.h, self.k, x, tl, state_of,
            action_of, orders, min(s.minibatches, len(state_of)), float(s.lr), float(s.clip),
            math.inf if s.kl_cutoff is None else float(s.kl_cutoff),
            math.inf if s.grad_clip is None else float(s.grad_clip), s.optimizer == "sgd")
        self.updates.append((int(epochs), float(kl)))
        return int(epochs), float(kl)

    def update_reference(self, orders: np.ndarray) -> Tuple[int, float]:
        """The same update per sample with torch autograd (no compiled code, no grouping
        by state); the kernel is tested equal to it."""
        s = self.settings
        w1, b1, w2, b2, _ = layout(self.f, self.h, self.k)
        self.params[w2:] = 0.0
        p = torch.tensor(self.params, requires_grad=True)
        m, v = torch.tensor(self.m), torch.tensor(self.v)
        x_u, tl_u, state_of, action_of = (torch.as_tensor(a) for a in self._buffer())
        x, tl, acts = x_u[state_of], tl_u[state_of], action_of

        def delta(rows):
            hid = rows
            if self.h > 0:
                hid = torch.tanh(rows @ p[w1:b1].view(self.f, self.h) + p[b1:w2])
            return hid @ p[w2:b2].view(-1, self.k) + p[b2:]

        def kl_now(rows):
            with torch.no_grad():
                lp = torch.log_softmax(tl[rows] + delta(x[rows]), -1)
                return float((tl[rows].exp() * (tl[rows] - lp)).sum(-1).mean())

        chunks = min(s.minibatches, len(acts))
        cutoff = math.inf if s.kl_cutoff is None else s.kl_cutoff
        epochs, kl, live = 0, 0.0, True
        for e in range(s.epochs):
            for idx in torch.tensor_split(torch.as_tensor(orders[e]), chunks):
                loss = clipped_loss(tl[idx], delta(x[idx]), acts[idx], s.clip)
                (g,) = torch.autograd.grad(loss, p)
                if s.grad_clip is not None:
                    coef = s.grad_clip / (float(g.norm()) + 1e-6)
                    g = g * min(coef, 1.0)
                with torch.no_grad():
                    if s.optimizer == "sgd":
                        p -= s.lr * g
                    else:
                        self.t[0] += 1
                        m.mul_(0.9).add_(0.1 * g)
                        v.mul_(0.999).add_(0.001 * g * g)
                        bc1, bc2 = 1 - 0.9 ** self.t[0], math.sqrt(1 - 0.999 ** self.t[0])
                        p -= (s.lr / bc1) * m / (v.sqrt() / bc2 + 1e-8)
                if cutoff < math.inf:
                    kl = kl_now(idx)
                    if kl > cutoff:
                        live = False
                        break
            if not live:
                break
            epochs += 1
        if cutoff == math.inf:
            kl = kl_now(torch.arange(len(acts)))
        self.params[:] = p.detach().numpy()
        self.m[:], self.v[:] = m.numpy(), v.numpy()
        self.since_update = 0
        return epochs, kl
