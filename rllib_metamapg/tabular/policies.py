"""Tabular logit policies over a flat joint parameter vector.

The joint parameter of ``R`` independent runs is one tensor ``theta`` of shape
``(R, D)``; agent ``i`` owns the contiguous slice ``theta[:, offsets[i]:offsets[i+1]]``.
Two parameterisations are offered:

* ``bernoulli`` (two actions only): one logit per state,
  ``p(action 0 | s) = sigmoid(theta[s])`` -- the paper's tabular policy.
* ``softmax``: one logit per (state, action), ``pi(. | s) = softmax(theta[s, :])``.
"""

from __future__ import annotations

from typing import List

import torch

from rllib_metamapg.errors import UsageError
from rllib_metamapg.forms import PARAMETERIZATIONS

KINDS = PARAMETERIZATIONS


class PolicyError(UsageError):
    """Raised for a parameterisation that does not fit the game."""


class TabularPolicy:
    """Joint tabular policy of all players of a game.

    Args:
        num_states: Number of states S each player conditions on.
        num_actions: Tuple of action counts, one per player.
        kind: ``"bernoulli"`` or ``"softmax"``.
    """

    def __init__(self, num_states: int, num_actions, kind: str = "bernoulli"):
        if kind not in KINDS:
            raise PolicyError(f"policy={kind!r} is unknown; choose one of {KINDS}.")
        if kind == "bernoulli" and any(a != 2 for a in num_actions):
            raise PolicyError("policy='bernoulli' needs two actions per player; this "
                              f"game has {tuple(num_actions)}. Use policy='softmax'.")
        self.kind = kind
        self.num_states = int(num_states)
        self.num_actions = tuple(int(a) for a in num_actions)
        self.num_players = len(self.num_actions)
        self.sizes = [self.num_states * (1 if kind == "bernoulli" else a)
                      for a in self.num_actions]
        self.offsets = [0]
        for d in self.sizes:
            self.offsets.append(self.offsets[-1] + d)
        self.dim = self.offsets[-1]

    @classmethod
    def for_game(cls, game, kind: str = "bernoulli") -> "TabularPolicy":
        return cls(game.num_states, game.num_actions, kind)

    def block(self, theta: torch.Tensor, i: int) -> torch.Tensor:
        """Agent ``i``'s parameters, shape ``(..., d_i)``."""
        return theta[..., self.offsets[i]:self.offsets[i + 1]]

    def masks(self, dtype=torch.float64) -> torch.Tensor:
        """``(N, D)`` indicator of which coordinates belong to which agent."""
        m = torch.zeros(self.num_players, self.dim, dtype=dtype)
        for i in range(self.num_players):
            m[i, self.offsets[i]:self.offsets[i + 1]] = 1.0
        return m

    def param_state(self, i: int) -> torch.Tensor:
        """State index of each of agent ``i``'s parameters, shape ``(d_i,)``."""
        s = torch.arange(self.num_states)
        return s if self.kind == "bernoulli" else s.repeat_interleave(self.num_actions[i])

    def logits(self, theta: torch.Tensor, i: int) -> torch.Tensor:
        """Per-state action logits ``(..., S, A_i)`` of agent ``i``."""
        b = self.block(theta, i)
        if self.kind == "bernoulli":
            # log p0 - log p1 = theta: logits (theta, 0) give the same softmax.
            return torch.stack([b, torch.zeros_like(b)], dim=-1)
        return b.reshape(*b.shape[:-1], self.num_states, self.num_actions[i])

    def log_probs(self, theta: torch.Tensor, i: int) -> torch.Tensor:
        return torch.log_softmax(self.logits(theta, i), dim=-1)

    def probs(self, theta: torch.Tensor, i: int) -> torch.Tensor:
        return torch.softmax(self.logits(theta, i), dim=-1)

    def all_probs(self, theta: torch.Tensor) -> List[torch.Tensor]:
        return [self.probs(theta, i) for i in range(self.num_players)]

    def theta_from_probs(self, p0: torch.Tensor) -> torch.Tensor:
        """Bernoulli parameters giving ``p(action 0 | s) = p0``; ``p0`` is ``(..., D)``."""
        if self.kind != "bernoulli":
            raise PolicyError("theta_from_probs needs policy='bernoulli'.")
        return torch.logit(p0)

    def score(self, theta: torch.Tensor, i: int, states: torch.Tensor,
              actions: torch.Tensor) -> torch.Tensor:
        """Closed-form ``grad_theta_i log pi_i(a | s)`` per sample.

        Args:
            theta: ``(R, D)`` parameters.
            states, actions: integer tensors ``(R, ...)`` of equal shape.

        Returns:
            ``(R, ..., d_i)`` score vectors (non-zero only in the block of state s).
        """
        probs = self.probs(theta, i)  # (R, S, A)
        r = probs.shape[0]
        extra = states.shape[1:]
        flat_s = states.reshape(r, -1)
        flat_a = actions.reshape(r, -1)
        p_s = torch.gather(probs, 1, flat_s.unsqueeze(-1).expand(-1, -1, probs.shape[-1]))
        onehot_a = torch.nn.functional.one_hot(flat_a, probs.shape[-1]).to(probs.dtype)
        per_action = onehot_a - p_s  # (R, K, A): d log pi / d logits(s)
        onehot_s = torch.nn.functional.one_hot(flat_s, self.num_states).to(probs.dtype)
        if self.kind == "bernoulli":
            out = onehot_s * per_action[..., :1]  # derivative wrt theta[s] = d/dlogit0
        else:
            out = (onehot_s.unsqueeze(-1) * per_action.unsqueeze(-2)).flatten(-2)
        return out.reshape(r, *extra, -1)

    def log_prob_hvp(self, theta: torch.Tensor, i: int, vec: torch.Tensor) -> torch.Tensor:
        """Per-state curvature ``grad^2 log pi_i(a | s)`` applied to ``vec``.

        The Hessian of ``log pi(a | s)`` in the logits of state ``s`` does not
        depend on ``a`` and vanishes outside that state's block, so the result
        is returned for every parameter, to be weighted by visit counts.

        Args:
            theta: ``(R, D)``; vec: ``(R, d_i)`` in agent ``i``'s block layout.

        Returns:
            ``(R, d_i)``: coordinate ``k`` holds ``[H_{s(k)} vec_{s(k)}]_k``.
        """
        probs = self.probs(theta, i)
        if self.kind == "bernoulli":
            p = probs[..., 0]
            return -p * (1.0 - p) * vec
        v = vec.reshape(probs.shape)
        hv = -(probs * v - probs * (probs * v).sum(-1, keepdim=True))
        return hv.flatten(-2)
