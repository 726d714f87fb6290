"""Closed-form values of tabular games under logit policies (differentiable, batched).

``values(theta)`` maps joint parameters ``(..., D)`` to per-player values
``(..., N)``:

* normal-form games: expected payoff under the product policy;
* memory-one games: discounted return from the start state, summed over a
  finite horizon or solved in closed form, ``rho0^T (I - gamma P)^-1 r``.

An optional entropy bonus ``temperature * H(pi_i(. | s))`` per visited state
makes pure equilibria (which sit at infinite logits) interior.
"""

from __future__ import annotations

import string

import torch

from rllib_metamapg.tabular.games import MemoryOneGame
from rllib_metamapg.tabular.policies import TabularPolicy


class GameValues:
    """Differentiable value function of a game under a :class:`TabularPolicy`.

    Args:
        game: A ``NormalFormGame`` or ``MemoryOneGame``.
        policy: Joint policy whose layout defines ``theta``.
        temperature: Entropy-regularisation weight tau >= 0.
        dtype: Floating dtype of the payoff tensor.
    """

    def __init__(self, game, policy: TabularPolicy, temperature: float = 0.0,
                 dtype=torch.float64):
        self.game = game
        self.policy = policy
        self.temperature = float(temperature)
        self.n = game.num_players
        self.payoffs = torch.as_tensor(game.payoffs, dtype=dtype)  # (N, A1..AN)
        letters = string.ascii_lowercase[: self.n]
        # Expected stage payoff: contract each player's action distribution.
        self._eq = ",".join("..." + c for c in letters) + ",n" + letters + "->...n"
        self._joint_eq = ",".join("..." + c for c in letters) + "->..." + letters
        self.repeated = isinstance(game, MemoryOneGame)

    def _entropy(self, probs: torch.Tensor) -> torch.Tensor:
        return -(probs * torch.log(probs.clamp_min(1e-300))).sum(-1)

    def stage_rewards(self, theta: torch.Tensor) -> torch.Tensor:
        """Expected stage reward per state ``(..., S, N)``, entropy bonus included."""
        probs = self.policy.all_probs(theta)  # each (..., S, A_i)
        r = torch.einsum(self._eq, *probs, self.payoffs.to(theta.dtype))
        if self.temperature:
            ent = torch.stack([self._entropy(p) for p in probs], dim=-1)
            r = r + self.temperature * ent
        return r

    def transition(self, theta: torch.Tensor) -> torch.Tensor:
        """State transition matrix ``(..., S, S)`` of a memory-one game."""
        probs = self.policy.all_probs(theta)
        joint = torch.einsum(self._joint_eq, *probs).flatten(-self.n)  # (..., S, K)
        zeros = torch.zeros_like(joint[..., :1])
        return torch.cat([zeros, joint], dim=-1)

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        r = self.stage_rewards(theta)
        if not self.repeated:
            return r[..., 0, :]
        game = self.game
        p = self.transition(theta)
        s = game.num_states
        rho = torch.zeros(*theta.shape[:-1], s, dtype=theta.dtype, device=theta.device)
        rho[..., 0] = 1.0
        if game.horizon is None:
            eye = torch.eye(s, dtype=theta.dtype, device=theta.device)
            # rho (I - gamma P)^-1 by an explicit inverse (S = 5), not linalg.solve: under
            # vmap(jacfwd(jacrev(.))) torch 2.13's batching of solve gives wrong
            # numbers and NaN (the exact unroll form and Hessians; tests/test_values.py).
            inv = torch.linalg.inv(eye - game.discount * p)
            occupancy = (rho.unsqueeze(-2) @ inv).squeeze(-2)
            return (occupancy.unsqueeze(-1) * r).sum(-2)
        total = torch.zeros_like(r[..., 0, :])
        weight = 1.0
        for _ in range(game.horizon):
            total = total + weight * (rho.unsqueeze(-1) * r).sum(-2)
            rho = (rho.unsqueeze(-1) * p).sum(-2)
            weight *= game.discount
        return total
