"""Closed-form PG field and taylor corrections for normal-form games.

Values of a normal-form game are multilinear in the players' action
distributions, so every derivative the taylor form needs has a closed form in
the softmax Jacobians ``J_j = diag(pi_j) - pi_j pi_j^T``:

* ``grad_{z_j} V_i = J_j Q_i^j`` with ``Q_i^j(a_j) = E[R_i | a_j]``;
* ``d^2 V_i / dz_j dz_k = J_j Q_i^{jk} J_k`` (j != k), with
  ``Q_i^{jk}(a_j, a_k) = E[R_i | a_j, a_k]``;
* ``d^2 V_i / dz_i^2 = diag(Q - V) J - pi (J Q)^T`` with ``Q = Q_i^i``.

A Bernoulli parameter is the first logit of a two-logit softmax whose second
logit is pinned to 0, so its derivatives are the ``[0]`` components; the
``param mask`` below projects onto the free logits.  This avoids the per-step
autograd graph of :class:`~rllib_metamapg.tabular.exact.ExactEngine`, which
it must match to round-off (tested), and is what makes exact basin maps fast.
"""

from __future__ import annotations

import string
from typing import List, Tuple

import torch

from rllib_metamapg.tabular.values import GameValues


class NormalFormTaylor:
    """Exact PG field and taylor corrections of a normal-form game.

    Args:
        values: :class:`GameValues` of a normal-form game (one state).
    """

    def __init__(self, values: GameValues):
        if values.repeated:
            raise ValueError("NormalFormTaylor needs a normal-form game.")
        self.values = values
        self.policy = values.policy
        self.n = values.n
        self.tau = values.temperature
        letters = string.ascii_lowercase[: self.n]
        self._letters = letters

        def eq(keep):
            others = [k for k in range(self.n) if k not in keep]
            ins = [letters] + ["r" + letters[k] for k in others]
            out = "".join(letters[k] for k in keep)
            # With no other player to average over, the batch index is added later.
            return ",".join(ins) + "->" + ("r" if others else "") + out

        self._eq1 = [eq((j,)) for j in range(self.n)]
        self._eq2 = {(j, k): eq((j, k)) for j in range(self.n) for k in range(self.n)
                     if j != k}

    def _param_mask(self, j: int, like: torch.Tensor) -> torch.Tensor:
        m = torch.ones(self.policy.num_actions[j], dtype=like.dtype)
        if self.policy.kind == "bernoulli":
            m[1:] = 0.0
        return m

    def _to_theta(self, j: int, z: torch.Tensor) -> torch.Tensor:
        return z[:, :1] if self.policy.kind == "bernoulli" else z

    def _contract(self, eq: str, payoff: torch.Tensor, pis: List[torch.Tensor], keep):
        others = [pis[k] for k in range(self.n) if k not in keep]
        out = torch.einsum(eq, payoff, *others)
        if not others:
            out = out.unsqueeze(0).expand(pis[0].shape[0], *out.shape)
        return out

    def _pieces(self, theta: torch.Tensor):
        """Policies, softmax Jacobians, param masks, ``E[R_i | a_j]`` and ``dV_i/dz_j``
        (entropy included in ``grads[i][i]``) at ``theta``."""
        n = self.n
        pay = self.values.payoffs.to(theta.dtype)
        pis = [self.policy.probs(theta, j)[:, 0, :] for j in range(n)]  # (R, A_j)
        jac = [torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2) for p in pis]
        masks = [self._param_mask(j, theta) for j in range(n)]
        # q1[i][j] = E[R_i | a_j]; grads[i][j] = dV_i/dz_j.
        q1 = [[self._contract(self._eq1[j], pay[i], pis, (j,)) for j in range(n)]
              for i in range(n)]
        grads = [[(jac[j] @ q1[i][j].unsqueeze(-1)).squeeze(-1) for j in range(n)]
                 for i in range(n)]
        logs = None
        if self.tau:
            logs = [torch.log(p.clamp_min(1e-300)) for p in pis]
            for i in range(n):
                grads[i][i] = grads[i][i] - self.tau * (
                    jac[i] @ logs[i].unsqueeze(-1)).squeeze(-1)
        return pay, pis, jac, masks, q1, grads, logs

    def compute(self, theta: torch.Tensor, eta: float,
                want_corrections: bool = True) -> Tuple[torch.Tensor, ...]:
        """Returns ``(v, own, peer)``, each ``(R, D)`` (corrections None if not wanted)."""
        pieces = self._pieces(theta)
        grads = pieces[5]
        v = torch.cat([self._to_theta(i, grads[i][i]) for i in range(self.n)], dim=-1)
        if not want_corrections:
            return v, None, None
        own, peer = self._corrections(pieces, grads, eta)
        return v, own, peer

    def compute_unroll1(self, theta: torch.Tensor, eta: float) -> Tuple[torch.Tensor, ...]:
        """``(v, own, peer)`` of the ``unroll`` form with one inner step (L = 1).

        With ``theta' = theta + eta v(theta)``, ``Phi = I + eta Dv(theta)``, so the
        unroll terms are the taylor formulas with the Hessian blocks taken at ``theta``
        and the gradients they act on taken at ``theta'``.  Matches the autograd
        unroll to round-off (tested)."""
        pieces = self._pieces(theta)
        grads = pieces[5]
        v = torch.cat([self._to_theta(i, grads[i][i]) for i in range(self.n)], dim=-1)
        ahead = self._pieces(theta + eta * v)[5]
        own, peer = self._corrections(pieces, ahead, eta)
        return v, own, peer

    def _corrections(self, pieces, grads_at, eta: float):
        """Own/peer terms: Hessian blocks from ``pieces``, gradients ``grads_at``."""
        n = self.n
        pay, pis, jac, masks, q1, _, logs = pieces
        own_parts, peer_parts = [], []
        for i in range(n):
            g_own = masks[i] * grads_at[i][i]
            h = self._self_hessian(pis[i], jac[i], q1[i][i])
            if self.tau:
                h = h + self.tau * self._entropy_hessian(pis[i], jac[i], logs[i])
            own_z = masks[i] * (h @ g_own.unsqueeze(-1)).squeeze(-1)
            peer_z = torch.zeros_like(own_z)
            for j in range(n):
                if j == i:
                    continue
                # d/dz_i grad_{z_j} V_j = (J_j Q_j^{ji} J_i)^T, applied to dV_i/dz_j.
                q2 = self._contract(self._eq2[(j, i)], pay[j], pis, (j, i))  # (R,Aj,Ai)
                w = (jac[j] @ (masks[j] * grads_at[i][j]).unsqueeze(-1))  # (R,Aj,1)
                peer_z = peer_z + (jac[i] @ (q2.transpose(-1, -2) @ w)).squeeze(-1)
            own_parts.append(self._to_theta(i, eta * own_z))
            peer_parts.append(self._to_theta(i, eta * masks[i] * peer_z))
        return torch.cat(own_parts, -1), torch.cat(peer_parts, -1)

    @staticmethod
    def _self_hessian(pi, jac, q):
        jq = (jac @ q.unsqueeze(-1)).squeeze(-1)
        val = (pi * q).sum(-1, keepdim=True)
        return (q - val).unsqueeze(-1) * jac - pi.unsqueeze(-1) * jq.unsqueeze(-2)

    @classmethod
    def _entropy_hessian(cls, pi, jac, logs):
        # H(pi) = pi . (-log pi); the z-dependence of -log pi adds -J.
        return cls._self_hessian(pi, jac, -logs) - jac
