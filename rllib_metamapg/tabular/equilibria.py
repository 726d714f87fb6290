"""Zeros of (shaped) update fields and their local geometry, in exact mode.

Pure equilibria of logit policies lie at infinite logits; with an entropy bonus
(``temperature > 0``) they become interior points where these tools apply.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import torch
from torch.func import jacfwd

from rllib_metamapg.tabular.exact import ExactEngine

Field = Callable[[torch.Tensor], torch.Tensor]


def shaped_field(engine: ExactEngine, form: str, eta: float, unroll_length: int,
                 own_coef: float, peer_coef: float) -> Field:
    """Single-run field ``theta (D,) -> v + own_coef * M_own + peer_coef * M_peer``."""
    corr = engine.single_corrections(form, eta, unroll_length)

    def field(theta):
        v = engine._field1(theta)
        if own_coef == 0 and peer_coef == 0:
            return v
        own, peer = corr(theta)
        return v + own_coef * own + peer_coef * peer

    return field


def correction_field(engine: ExactEngine, form: str, eta: float, unroll_length: int,
                     which: str) -> Field:
    """Single-run ``M_own``, ``M_peer`` or ``M_own + M_peer`` as a function of theta."""
    corr = engine.single_corrections(form, eta, unroll_length)
    pick = {"own": lambda o, p: o, "peer": lambda o, p: p, "both": lambda o, p: o + p}[which]
    return lambda theta: pick(*corr(theta))


@dataclasses.dataclass
class Zero:
    theta: torch.Tensor
    residual: float
    iterations: int
    converged: bool


def solve_zero(field: Field, start: torch.Tensor, tol: float = 1e-10,
               max_iter: int = 200, bound: float = 20.0) -> Zero:
    """Damped Newton iteration for ``field(theta) = 0`` from ``start`` ``(D,)``.

    Logit fields vanish numerically as logits saturate, so iterates are kept in
    ``[-bound, bound]`` and a zero on that boundary is reported as not converged.
    """
    theta = start.detach().clone().to(torch.float64).clamp(-bound, bound)
    jac = jacfwd(field)
    f = field(theta)
    res = float(f.norm())
    for it in range(1, max_iter + 1):
        if res < tol:
            return Zero(theta, res, it - 1, bool(theta.abs().max() < bound - 1e-9))
        # gelsd (SVD): the minimum-norm step, the same on any thread count. Softmax
        # policies make the Jacobian singular (one logit per state is free), and the
        # default QR driver then takes thread-dependent steps (9 to 56 iterations).
        step = torch.linalg.lstsq(jac(theta), -f.unsqueeze(-1),
                                  driver="gelsd").solution.squeeze(-1)
        t = 1.0
        while t > 1e-6:
            cand = (theta + t * step).clamp(-bound, bound)
            fc = field(cand)
            if float(fc.norm()) < (1 - 1e-4 * t) * res:
                break
            t *= 0.5
        theta, f = cand, fc
        res = float(f.norm())
    return Zero(theta, res, max_iter, res < tol and bool(theta.abs().max() < bound - 1e-9))


def drift_constant(field: Field, theta: torch.Tensor) -> float:
    """``-lambda_max(sym(D field(theta)))``: the SOS drift constant when positive."""
    j = jacfwd(field)(theta)
    return float(-torch.linalg.eigvalsh(0.5 * (j + j.T)).max())


def jacobian_lipschitz(field: Field, center: torch.Tensor, radius: float, samples: int,
                       generator: Optional[torch.Generator] = None) -> float:
    """Estimates the Lipschitz constant of ``D field`` on the ball ``B_radius(center)``.

    The largest ``||DF(x) - DF(c)||_2 / ||x - c||`` over random points drawn
    uniformly in the ball: a lower estimate of the true constant (documented).
    """
    jac = jacfwd(field)
    j0 = jac(center)
    d = center.shape[0]
    best = 0.0
    for _ in range(samples):
        u = torch.randn(d, generator=generator, dtype=center.dtype)
        r = radius * float(torch.rand((), generator=generator)) ** (1.0 / d)
        x = center + r * u / u.norm()
        diff = torch.linalg.matrix_norm(jac(x) - j0, ord=2)
        best = max(best, float(diff) / max(r, 1e-12))
    return best
