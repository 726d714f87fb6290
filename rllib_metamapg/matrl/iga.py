"""MATRL's Table 1 setting: gradient dynamics in probability space on random 2x2 games.

``x`` (``y``) is player 1's (2's) probability of action 0.  Every learner runs on
a batch of games at once: one NumPy operation per step over all games, no
Python loop per game.  The update rules (step sizes from MATRL's Table 2 and its
public code; see ``docs/matrl.md``):

* ``iga``: ``x += lr * dV1/dx`` (Singh et al. 2000), lr 0.02; ``iga_br`` is the
  same with MATRL's best-response step 0.03 (the step-size confound of Table 1).
* ``iga_pp``: the gradient at the opponent's predicted policy
  ``y + pred * dV2/dy`` (Zhang & Lesser 2010), pred 0.01, lr 0.02.  As in MATRL's
  public code the prediction is not clipped: near the boundary it lies outside
  [0, 1] and the gradient, linear in it, extrapolates.  ``iga_pp_clipped`` clips the
  prediction to a probability first (a prediction of a policy is a policy: also a
  fair reading of the paper); it converges less often on cyclic games (docs/matrl.md).
* ``wolf``: WoLF-IGA (Bowling & Veloso 2002): lr 0.02 when winning
  (``V1(x, y) > V1(x_e, y)`` against the game's equilibrium strategy ``x_e``),
  0.06 when losing.
* ``matrl``: trust-payoff step ``x_hat = x + tpr * dV1/dx`` (0.02), the 2x2
  meta-game ``g_i(s) = V_i(s) - V_i(x, y)`` between current and predicted, its
  equilibrium ``rho`` (P(current)), the mixture ``x_bar = rho1 x + (1 - rho1)
  x_hat``, then a best-response step of 0.03 from the *current* ``x`` against
  ``y_bar``.  ``matrl_no_br`` moves to the mixture; ``il_pp`` is ``rho = 0``: the best
  response to the opponent's prediction (IGA-PP with MATRL's step sizes).

Probabilities are clipped to [0, 1] after every step.  Converged at iteration
i (0-based) when some Nash equilibrium ``(x*, y*)`` has ``(x - x*)^2 < 2.5e-3``
and ``(y - y*)^2 < 2.5e-3`` after that iteration's update; a hit at i = 0 does
not count (the public code's rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from rllib_metamapg.matrl.meta_game import enumerate_2x2, solve_2x2

KINDS = ("coordination", "anticoordination", "cyclic")
START = (0.9, 0.2)
TOLERANCE = 2.5e-3
MAX_ITERS = 1000


@dataclass(frozen=True)
class Steps:
    """Step sizes (MATRL's Table 2 and public code)."""

    lr: float = 0.02          # IGA / IGA-PP / trust-payoff step
    pred: float = 0.01        # IGA-PP prediction length
    br: float = 0.03          # MATRL best-response step
    wolf_win: float = 0.02    # WoLF learning rate when winning
    wolf_lose: float = 0.06   # ... and when losing


def random_game(kind: str, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """One random game of a type, drawn as the public code does (one game per seed).

    Returns:
        ``(R1, R2)``, each ``(2, 2)`` with index ``[action of player 1, action of player 2]``.
    """
    rs = np.random.RandomState(seed)
    u = rs.random_sample
    if kind == "coordination":
        b = u()
        d = b + u()
        c = d + u()
        a = c + u()
        g = u()
        e = g + u()
        f = u()
        h = f + u()
    elif kind == "anticoordination":
        a = -u() - 1
        c = a + u()
        if u() < 0.5:
            b = abs(a) - 0.1 * u()
            d = abs(c) - 0.1 * u() if abs(c) < b else b - 0.1 * u()
        else:
            d = c + 0.1 * u()
            b = d + 0.1 * u()
        e = u()
        g = e + u()
        h = u()
        f = h + u()
    elif kind == "cyclic":
        if u() < 0.5:
            e = u()
            g = e + u()
            h = u()
            f = h + u()
            a = 0.5 + u()
            c = -a + 0.1 * u()
            d = abs(c) - 0.1 * u()
            b = d - 0.1 * u()
        else:
            g = u()
            e = g + u()
            f = u()
            h = f + u()
            c = u() + 0.5
            a = -c + 0.1 * u()
            b = abs(a) - 0.1 * u()
            d = b - 0.1 * u()
    else:
        raise ValueError(f"kind={kind!r} is unknown; choose one of {KINDS}.")
    return np.array([[a, b], [c, d]]), np.array([[e, g], [f, h]])


def random_games(kind: str, n: int, first_seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``(R1, R2)`` of ``n`` games, seeds ``first_seed ...``: each ``(n, 2, 2)``."""
    pairs = [random_game(kind, first_seed + s) for s in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


class Bilinear:
    """``V(x, y) = k0 + kx x + ky y + kxy x y`` of one player, per game (precomputed once,
    so a step costs a few array operations)."""

    def __init__(self, r):
        a, b, c, d = r[..., 0, 0], r[..., 0, 1], r[..., 1, 0], r[..., 1, 1]
        self.k0, self.kx, self.ky, self.kxy = d, b - d, c - d, a - b - c + d

    def __call__(self, x, y):
        return self.k0 + self.kx * x + self.ky * y + self.kxy * x * y

    def dx(self, y):
        return self.kx + self.kxy * y

    def dy(self, x):
        return self.ky + self.kxy * x


class Game:
    """A batch of 2x2 games: each player's value as a bilinear function of ``(x, y)``."""

    def __init__(self, r1, r2):
        self.r1, self.r2 = np.asarray(r1, float), np.asarray(r2, float)
        self.v1, self.v2 = Bilinear(self.r1), Bilinear(self.r2)

    def values(self, x, y):
        return self.v1(x, y), self.v2(x, y)

    def gradients(self, x, y):
        """``(dV1/dx at y, dV2/dy at x)``: each player's own gradient."""
        return self.v1.dx(y), self.v2.dy(x)


def values(r1, r2, x, y):
    """``(V1, V2)`` of mixed profiles, batched."""
    return Game(r1, r2).values(x, y)


def equilibria(r1, r2, tol: float = 1e-12):
    """Every Nash equilibrium of each game: ``(points (n, 5, 2), valid (n, 5))``.

    Candidates: the four pure profiles, then the mixed one (on the closed square).
    """
    ok, xs, ys = enumerate_2x2(np.asarray(r1, float), np.asarray(r2, float), tol, closed=True)
    k = np.arange(5)
    pts = np.empty(ok.shape + (2,))
    pts[..., :4, 0], pts[..., :4, 1] = 1.0 - k[:4] // 2, 1.0 - k[:4] % 2
    pts[..., 4, 0], pts[..., 4, 1] = np.where(ok[..., 4], xs, 0.0), np.where(ok[..., 4], ys, 0.0)
    return pts, ok


def _clip(p):
    return np.clip(p, 0.0, 1.0)


def meta_game(game: Game, x, y, xh, yh):
    """MATRL's meta-game payoffs ``g_i[s1, s2] = V_i(s) - V_i(x, y)`` (0 = current),
    ``(n, 2, 2)`` per player."""
    xs, ys = (x, xh), (y, yh)
    base1, base2 = game.values(x, y)
    a = np.empty(x.shape + (2, 2))
    b = np.empty(x.shape + (2, 2))
    for s1 in (0, 1):
        for s2 in (0, 1):
            v1, v2 = game.values(xs[s1], ys[s2])
            a[..., s1, s2], b[..., s1, s2] = v1 - base1, v2 - base2
    return a, b


def step_matrl(game: Game, x, y, steps: Steps, choice: str = "last",
               best_response: bool = True, rng=None, rho=None):
    """One MATRL iteration (``best_response=False``: MATRL without BR; ``rho``: fixed
    P(current) per player instead of the meta-game's, for the ablations)."""
    g1, g2 = game.gradients(x, y)
    xh, yh = _clip(x + steps.lr * g1), _clip(y + steps.lr * g2)
    if rho is None:
        a, b = meta_game(game, x, y, xh, yh)
        rho1, rho2 = solve_2x2(a, b, choice, rng)
    else:
        rho1, rho2 = rho
    xb, yb = rho1 * x + (1 - rho1) * xh, rho2 * y + (1 - rho2) * yh
    if not best_response:
        return xb, yb
    return _clip(x + steps.br * game.v1.dx(yb)), _clip(y + steps.br * game.v2.dy(xb))


def _rules(steps: Steps, choice: str, rng) -> Dict[str, Callable]:
    def iga(lr):
        def f(game, x, y, eq=None):
            g1, g2 = game.gradients(x, y)
            return _clip(x + lr * g1), _clip(y + lr * g2)
        return f

    def iga_pp(clip_prediction):
        def f(game, x, y, eq=None):
            g1, g2 = game.gradients(x, y)
            xp, yp = x + steps.pred * g1, y + steps.pred * g2
            if clip_prediction:
                xp, yp = _clip(xp), _clip(yp)
            return _clip(x + steps.lr * game.v1.dx(yp)), _clip(y + steps.lr * game.v2.dy(xp))
        return f

    def wolf(game, x, y, eq=None):
        g1, g2 = game.gradients(x, y)
        v1, v2 = game.values(x, y)
        l1 = np.where(v1 > game.v1(eq[0], y), steps.wolf_win, steps.wolf_lose)
        l2 = np.where(v2 > game.v2(x, eq[1]), steps.wolf_win, steps.wolf_lose)
        return _clip(x + l1 * g1), _clip(y + l2 * g2)

    return {
        "iga": iga(steps.lr),
        "iga_br": iga(steps.br),
        "iga_pp": iga_pp(False),
        "iga_pp_clipped": iga_pp(True),
        "wolf": wolf,
        "matrl": lambda game, x, y, eq=None: step_matrl(game, x, y, steps, choice, True, rng),
        "matrl_no_br": lambda game, x, y, eq=None: step_matrl(game, x, y, steps, choice,
                                                              False, rng),
        # rho = 0: best response to the opponent's prediction (the paper's IL-PP).
        "il_pp": lambda game, x, y, eq=None: step_matrl(game, x, y, steps, choice, True, rng,
                                                        rho=(0.0, 0.0)),
    }


METHODS = ("iga", "iga_br", "iga_pp", "iga_pp_clipped", "wolf", "matrl", "matrl_no_br",
           "il_pp")
# What `metamapg tabular convergence` runs by default, and MATRL's Table 1
# (rate / mean steps over 1000 games per type).
TABLE1_DEFAULTS = ("iga", "iga_pp", "matrl", "wolf", "iga_br", "iga_pp_clipped",
                   "matrl_no_br", "il_pp")
TABLE1_PAPER = {
    "coordination": {"iga": (0.99, 140.67), "iga_pp": (0.99, 138.56),
                     "matrl": (0.99, 86.54)},
    "anticoordination": {"iga": (0.975, 88.95), "iga_pp": (0.975, 83.11),
                         "matrl": (0.9825, 75.52)},
    "cyclic": {"iga": (0.78, 452.92), "iga_pp": (0.809, 432.98), "matrl": (0.846, 369.40)},
}


def wolf_equilibrium(pts, ok, start=START):
    """The equilibrium WoLF is given: the mixed one when the game has it (the one
    WoLF-IGA's analysis is about), else the pure one nearest the start."""
    mixed = ok[:, 4]
    d = ((pts - np.asarray(start)) ** 2).sum(-1)
    d = np.where(ok[:, :4], d[:, :4], np.inf)
    nearest = np.take_along_axis(pts[:, :4], d.argmin(-1)[:, None, None], 1)[:, 0]
    eq = np.where(mixed[:, None], pts[:, 4], nearest)
    return eq[:, 0], eq[:, 1]


def run(method: str, r1, r2, *, start=START, iters: int = MAX_ITERS, steps: Steps = Steps(),
        choice: str = "last", seed: int = 0,
        progress: Optional[Callable[[int, int], None]] = None):
    """Runs one learner on every game; returns ``(converged (n,), step (n,))``.

    ``step`` is the 0-based iteration of the first hit (``-1`` when none).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {METHODS}.")
    rng = np.random.default_rng(seed)
    rule = _rules(steps, choice, rng)[method]
    game = Game(r1, r2)
    pts, ok = equilibria(game.r1, game.r2)
    eq = wolf_equilibrium(pts, ok, start) if method == "wolf" else None
    n = r1.shape[0]
    x, y = np.full(n, float(start[0])), np.full(n, float(start[1]))
    hit_at = np.full(n, -1)
    for i in range(iters):
        x, y = rule(game, x, y, eq=eq)
        near = (((x[:, None] - pts[..., 0]) ** 2 < TOLERANCE)
                & ((y[:, None] - pts[..., 1]) ** 2 < TOLERANCE) & ok).any(-1)
        if i > 0:
            hit_at = np.where((hit_at < 0) & near, i, hit_at)
        if progress is not None:
            progress(i + 1, iters)
    return hit_at >= 0, hit_at
