"""Nash equilibria of MATRL's meta-game: each agent picks "current" or "predicted".

Two players: closed-form support enumeration, batched over games.  The
candidates are enumerated in the order of the public tabular code -- pure
(current, current), (current, predicted), (predicted, current), (predicted,
predicted), then the mixed one -- and ``choice`` picks among the equilibria
found: ``"last"`` (the public code: the mixed one whenever it exists),
``"first"``, or ``"random"`` (the paper's wording: one at random).

n >= 3 players: the minimum of the Nash-gap function with restarts (scipy),
where the paper used CMA-ES on the same function.
"""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np

from rllib_metamapg.forms import META_CHOICES as CHOICES


class MetaGameError(ValueError):
    """Bad meta-game input; the message names the field."""


def enumerate_2x2(a: np.ndarray, b: np.ndarray, tol: float = 1e-12, closed: bool = False):
    """Support enumeration of batched 2x2 bimatrix games.

    Candidate k < 4 is the pure profile ``(k // 2, k % 2)`` (strategy 0 first);
    candidate 4 is the mixed profile where each player makes the other indifferent,
    with P(strategy 0) ``p`` (player 1) and ``q`` (player 2), kept when it lies in
    (0, 1) (``closed``: in [0, 1]).

    Returns:
        ``(valid (..., 5), p, q)``.
    """
    valid = np.empty(a.shape[:-2] + (5,), bool)
    for k, (r, c) in enumerate(itertools.product((0, 1), (0, 1))):
        valid[..., k] = ((a[..., r, c] >= a[..., 1 - r, c] - tol)
                         & (b[..., r, c] >= b[..., r, 1 - c] - tol))
    da = a[..., 0, 0] - a[..., 0, 1] - a[..., 1, 0] + a[..., 1, 1]
    db = b[..., 0, 0] - b[..., 1, 0] - b[..., 0, 1] + b[..., 1, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (a[..., 1, 1] - a[..., 0, 1]) / da
        p = (b[..., 1, 1] - b[..., 1, 0]) / db
    inside = ((p >= 0) & (p <= 1) & (q >= 0) & (q <= 1) if closed
              else (p > 0) & (p < 1) & (q > 0) & (q < 1))
    valid[..., 4] = (np.abs(da) > tol) & (np.abs(db) > tol) & inside
    return valid, p, q


def solve_2x2(a: np.ndarray, b: np.ndarray, choice: str = "last",
              rng: Optional[np.random.Generator] = None, tol: float = 1e-12):
    """Nash equilibria of batched 2x2 bimatrix games, one chosen per game.

    Args:
        a, b: ``(..., 2, 2)`` payoffs of player 1 and player 2; index ``[s1, s2]``
            with strategy 0 = current, 1 = predicted.
        choice: Which equilibrium when there are several (see module doc).
        rng: Generator for ``choice="random"``.
        tol: Slack in the best-response inequalities (ties count as best).

    Returns:
        ``(rho1, rho2)``: each player's probability of playing "current", ``(...)``.
    """
    if choice not in CHOICES:
        raise MetaGameError(f"choice={choice!r} is unknown; choose one of {CHOICES}.")
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape[-2:] != (2, 2) or b.shape != a.shape:
        raise MetaGameError(f"a and b must both be (..., 2, 2); got {a.shape}, {b.shape}.")
    valid, p, q = enumerate_2x2(a, b, tol, closed=False)
    valid[..., 0] |= ~valid.any(-1)  # cannot happen for a finite 2x2 game; guards NaN
    if choice == "last":
        k = 4 - np.argmax(valid[..., ::-1], axis=-1)
    elif choice == "first":
        k = np.argmax(valid, axis=-1)
    else:
        rng = rng if rng is not None else np.random.default_rng(0)
        k = np.argmax(np.where(valid, rng.random(valid.shape), -1.0), axis=-1)
    # Candidate k < 4 is the pure profile (k // 2, k % 2) (0 = current).
    mixed = k == 4
    return (np.where(mixed, p, 1.0 - (k // 2)), np.where(mixed, q, 1.0 - (k % 2)))


def pure_payoffs(u: np.ndarray, mix, i: int) -> np.ndarray:
    """``(2,)``: player i's payoff for each own pure strategy against the others' mixtures.

    ``u`` has one axis per player; the other players' axes are contracted from the
    last down, so the axes still to contract keep their index.
    """
    for j in range(len(mix) - 1, -1, -1):
        if j != i:
            u = np.tensordot(u, mix[j], axes=([j], [0]))
    return u


def nash_gap(payoffs: np.ndarray, p: np.ndarray) -> float:
    """``sum_i sum_s max(u_i(s, p_-i) - u_i(p), 0)^2`` of an n-player 2-strategy game.

    Args:
        payoffs: ``(n, 2, ..., 2)``: player i's payoff for each pure profile.
        p: ``(n,)`` each player's probability of strategy 0.
    """
    mix = [np.array([float(pi), 1.0 - float(pi)]) for pi in p]
    gap = 0.0
    for i in range(payoffs.shape[0]):
        u = pure_payoffs(payoffs[i], mix, i)
        gap += float(np.sum(np.maximum(u - u @ mix[i], 0.0) ** 2))
    return gap


def solve_n(payoffs: np.ndarray, restarts: int = 8, seed: int = 0, tol: float = 1e-10):
    """An equilibrium of an n-player 2-strategy game: the minimiser of :func:`nash_gap`.

    Starts from every pure profile, then random interior points, and returns the
    first profile whose gap is below ``tol`` (else the smallest gap found).

    Returns:
        ``(p, gap)``: each player's probability of strategy 0, and its Nash gap.
    """
    from scipy.optimize import minimize

    payoffs = np.asarray(payoffs, float)
    n = payoffs.shape[0]
    if payoffs.shape != (n,) + (2,) * n:
        raise MetaGameError(f"payoffs must be (n, 2, ..., 2) with n axes of 2; got "
                            f"{payoffs.shape}.")
    rng = np.random.default_rng(seed)
    starts = [np.array(s, float) for s in itertools.product((1.0, 0.0), repeat=n)]
    starts += [rng.random(n) for _ in range(restarts)]
    best_p, best_gap = starts[0], np.inf
    for x0 in starts:
        gap0 = nash_gap(payoffs, x0)
        if gap0 < tol:
            return x0, gap0
        res = minimize(lambda x: nash_gap(payoffs, x), x0, method="L-BFGS-B",
                       bounds=[(0.0, 1.0)] * n, options={"ftol": 1e-15, "gtol": 1e-12})
        if res.fun < best_gap:
            best_p, best_gap = np.clip(res.x, 0.0, 1.0), float(res.fun)
        if best_gap < tol:
            break
    return best_p, best_gap
