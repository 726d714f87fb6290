"""The comparison's game suite: game families, each game with what success means in it.

A family is a list of :class:`SuiteGame`.  Success in a game is one of:

* a pure target (the game's ``targets``, or the welfare-best pure Nash equilibrium
  of a random game): some target joint action ``t`` has ``p_i(t_i | start) >=
  threshold`` for every player -- for action-0 targets this is exactly the
  ablation's criterion, so the comparison's rows equal ``metamapg tabular ablation``;
* a mixed target (random cyclic games, which have no pure equilibrium): every
  player's ``p_i(action 0)`` is within MATRL's convergence distance of the mixed
  equilibrium (``(p - p*)^2 < 2.5e-3``, the tolerance of ``metamapg tabular
  convergence``).

Random games come from MATRL's generator (:func:`rllib_metamapg.matrl.iga.random_game`,
one game per seed), so the suite is the same on every machine.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rllib_metamapg.matrl import iga
from rllib_metamapg.tabular.games import NormalFormGame, get_game


@dataclasses.dataclass(frozen=True)
class SuiteGame:
    """One game of the suite and its success criterion.

    Attributes:
        game: The engine game.
        mixed: Per-player p(action 0) of the target mixed equilibrium, or None (the
            game's pure ``targets`` define success).
        parameterization: The tabular policy the game needs (``softmax`` beyond 2 actions).
    """

    game: object
    mixed: Optional[Tuple[float, ...]] = None
    parameterization: str = "bernoulli"

    @property
    def name(self) -> str:
        return self.game.name

    def describe(self) -> Dict:
        return {"game": self.game.describe(), "mixed_target": self.mixed,
                "parameterization": self.parameterization}


# Family name -> what it holds (the docs' table lists them in this order).
FAMILIES = {
    "stag_hunt": "Stag Hunt from random initialisations (the paper's ablation game)",
    "stag_hunt_basin": "Stag Hunt from every cell of a grid of initial probabilities",
    "ipd": "iterated Prisoner's Dilemma, memory-one policies (samplers: n/a)",
    "no_conflict": "the 21 no-conflict 2x2 games (MA-PROPS's suite, corrected)",
    "climbing": "Climbing, original and modified (3x3, softmax policies)",
    "penalty": "Penalty k=-7 (3x3, two optimal joint actions)",
    "chicken": "Chicken (target: both swerve)",
    "random_coordination": "MATRL's random coordination games (target: best pure NE)",
    "random_anticoordination": "MATRL's random anti-coordination games (target: best pure NE)",
    "random_cyclic": "MATRL's random cyclic games (target: the mixed NE)",
}


def _builtin(name: str, parameterization: str = "bernoulli") -> SuiteGame:
    return SuiteGame(get_game(name), None, parameterization)


def random_family_games(kind: str, count: int) -> List[SuiteGame]:
    """``count`` random 2x2 games of MATRL's ``kind`` with their targets."""
    r1, r2 = iga.random_games(kind, count)
    pts, ok = iga.equilibria(r1, r2)
    out = []
    for g in range(count):
        payoffs = np.stack([r1[g], r2[g]])
        pure = [k for k in range(4) if ok[g, k]]
        if pure:  # the pure equilibrium with the highest welfare
            best = max(pure, key=lambda k: payoffs[:, k // 2, k % 2].sum())
            game = NormalFormGame(f"random_{kind}_{g}", payoffs,
                                  targets=((best // 2, best % 2),))
            out.append(SuiteGame(game))
            continue
        if not ok[g, 4]:
            raise ValueError(f"random {kind} game {g} has no equilibrium on the square.")
        game = NormalFormGame(f"random_{kind}_{g}", payoffs, targets=())
        out.append(SuiteGame(game, (float(pts[g, 4, 0]), float(pts[g, 4, 1]))))
    return out


def family_games(family: str, random_games: int) -> List[SuiteGame]:
    """The games of ``family`` (``random_games`` per random family)."""
    if family in ("stag_hunt", "stag_hunt_basin", "ipd", "chicken"):
        return [_builtin("stag_hunt" if family == "stag_hunt_basin" else family)]
    if family == "no_conflict":
        return [_builtin(f"no_conflict_{k}") for k in range(1, 22)]
    if family == "climbing":
        return [_builtin("climbing", "softmax"), _builtin("climbing_modified", "softmax")]
    if family == "penalty":
        return [_builtin("penalty", "softmax")]
    if family.startswith("random_"):
        return random_family_games(family[len("random_"):], random_games)
    raise ValueError(f"family={family!r} is unknown; choose from {list(FAMILIES)}.")


def success_history(history, policy, suite: SuiteGame, threshold: float):
    """``(T, A, R)`` bool: the success criterion at every recorded step.

    ``history`` is ``(T, A, R, D)`` parameters (the last entry is the final one).
    """
    import torch

    probs = [policy.probs(history, i)[..., 0, :] for i in range(policy.num_players)]
    if suite.mixed is not None:
        tol = float(np.sqrt(iga.TOLERANCE))
        return torch.stack([(p[..., 0] - x).abs() < tol
                            for p, x in zip(probs, suite.mixed)], -1).all(-1)
    hits = [torch.stack([p[..., a] >= threshold for p, a in zip(probs, t)], -1).all(-1)
            for t in suite.game.targets]
    if not hits:
        return torch.zeros(history.shape[:-1], dtype=torch.bool)
    return torch.stack(hits, 0).any(0)


def entry_steps(ok_history) -> np.ndarray:
    """``(A, R)`` first step at which success holds *and keeps holding* to the end
    (steps to entry into the target's region); -1 where it does not end there."""
    ok = np.asarray(ok_history)
    t = ok.shape[0]
    # last step at which it failed; entry is the step after it
    failed = ~ok
    last_fail = np.where(failed.any(0), t - 1 - np.argmax(failed[::-1], 0), -1)
    return np.where(ok[-1], last_fail + 1, -1)


def check_families(families: Sequence[str]) -> List[str]:
    bad = [f for f in families if f not in FAMILIES]
    if bad or not families:
        raise ValueError(f"--families: {bad or 'none given'}; choose from {list(FAMILIES)}.")
    return list(families)
