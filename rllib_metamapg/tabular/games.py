"""Games as data: normal-form games and memory-one repeated games.

Every game carries a payoff tensor ``payoffs`` of shape ``(N, A_1, ..., A_N)``:
``payoffs[i, a_1, ..., a_N]`` is player ``i``'s reward for the joint action.
Each game also names its ``targets``: the joint action(s) a method should select.
In most built-in games that is action 0 of every player ("cooperate", "stag",
(A, A)), which is also the default for a user's payoffs; Penalty's optima are
(A, C) and (C, A), and matching pennies has none.  The experiments whose success
criterion is the probability of action 0 in the start state refuse games whose
target is anything else.

A :class:`MemoryOneGame` repeats a stage game: state 0 is the start state and
state ``1 + ravel(a_1, ..., a_N)`` remembers the last joint action, which for
two players with two actions gives the conventional ``1 + 2 a_1 + a_2``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rllib_metamapg.errors import UsageError


class GameError(UsageError):
    """Raised for an invalid game definition; the message names the field."""


@dataclasses.dataclass(frozen=True)
class NormalFormGame:
    """A one-shot N-player game.

    Attributes:
        name: Short identifier.
        payoffs: Array ``(N, A_1, ..., A_N)`` of finite rewards.
        action_names: Optional per-action labels (shared by all players).
    """

    name: str
    payoffs: np.ndarray
    action_names: Optional[Sequence[str]] = None
    targets: Optional[Tuple[Tuple[int, ...], ...]] = None

    def __post_init__(self):
        p = np.asarray(self.payoffs, dtype=np.float64)
        _check_payoffs(p, field="payoffs")
        object.__setattr__(self, "payoffs", p)
        targets = ((0,) * p.shape[0],) if self.targets is None else tuple(
            tuple(int(a) for a in t) for t in self.targets)
        for t in targets:
            if len(t) != p.shape[0] or any(not 0 <= a < n for a, n in zip(t, p.shape[1:])):
                raise GameError(f"targets: {t} is not a joint action of this "
                                f"{p.shape[0]}-player game with actions {p.shape[1:]}.")
        object.__setattr__(self, "targets", targets)

    @property
    def targets_action_zero(self) -> bool:
        """Whether the target is action 0 of every player (what p(action 0) measures)."""
        return self.targets == ((0,) * self.num_players,)

    @property
    def num_players(self) -> int:
        return self.payoffs.shape[0]

    @property
    def num_actions(self) -> tuple:
        return tuple(self.payoffs.shape[1:])

    @property
    def num_states(self) -> int:
        return 1

    @property
    def stage(self) -> "NormalFormGame":
        return self

    def describe(self) -> dict:
        return {"kind": "normal_form", "name": self.name,
                "payoffs": self.payoffs.tolist(), "targets": [list(t) for t in self.targets]}


@dataclasses.dataclass(frozen=True)
class MemoryOneGame:
    """A repeated stage game whose players condition on the last joint action.

    Attributes:
        name: Short identifier.
        stage: The stage game played every round.
        discount: Discount factor in [0, 1] (< 1 when ``horizon`` is None).
        horizon: Number of rounds, or None for the infinite discounted game.
    """

    name: str
    stage: NormalFormGame
    discount: float
    horizon: Optional[int] = None

    def __post_init__(self):
        if not (0.0 <= self.discount <= 1.0) or not math.isfinite(self.discount):
            raise GameError(f"discount={self.discount!r} must lie in [0, 1].")
        if self.horizon is None and self.discount >= 1.0:
            raise GameError("discount must be < 1 for an infinite-horizon game "
                            "(horizon=None); set a finite horizon or lower it.")
        if self.horizon is not None and (int(self.horizon) != self.horizon
                                         or self.horizon < 1):
            raise GameError(f"horizon={self.horizon!r} must be a positive integer "
                            "or None for the infinite discounted game.")

    @property
    def payoffs(self) -> np.ndarray:
        return self.stage.payoffs

    @property
    def num_players(self) -> int:
        return self.stage.num_players

    @property
    def num_actions(self) -> tuple:
        return self.stage.num_actions

    @property
    def num_states(self) -> int:
        return 1 + int(np.prod(self.num_actions))

    @property
    def targets(self) -> Tuple[Tuple[int, ...], ...]:
        return self.stage.targets

    @property
    def targets_action_zero(self) -> bool:
        return self.stage.targets_action_zero

    def describe(self) -> dict:
        return {"kind": "memory_one", "name": self.name,
                "payoffs": self.payoffs.tolist(), "discount": self.discount,
                "horizon": self.horizon}


# Step sizes are tuned for payoffs of order 1-100; far beyond that updates overflow.
MAX_PAYOFF = 1e6


def _check_payoffs(p: np.ndarray, field: str) -> None:
    if p.ndim < 3:
        raise GameError(f"{field}: expected shape (N, A_1, ..., A_N) with N >= 2 "
                        f"players, got shape {tuple(p.shape)}.")
    n = p.shape[0]
    if n < 2:
        raise GameError(f"{field}: need at least 2 players, got {n}.")
    if p.ndim != n + 1:
        raise GameError(f"{field}: {n} players need {n + 1} dimensions "
                        f"(N, A_1, ..., A_N), got shape {tuple(p.shape)}.")
    if any(a < 2 for a in p.shape[1:]):
        raise GameError(f"{field}: every player needs at least 2 actions, got "
                        f"shape {tuple(p.shape)}.")
    if not np.all(np.isfinite(p)):
        bad = np.argwhere(~np.isfinite(p))[0].tolist()
        raise GameError(f"{field}: payoffs must be finite numbers; entry {bad} is "
                        f"{p[tuple(bad)]!r}.")
    if np.abs(p).max() > MAX_PAYOFF:
        bad = np.argwhere(np.abs(p) > MAX_PAYOFF)[0].tolist()
        raise GameError(f"{field}: entry {bad} is {p[tuple(bad)]:g}; payoffs must lie in "
                        f"[-{MAX_PAYOFF:g}, {MAX_PAYOFF:g}] (gradient steps scale with the "
                        "payoffs, so larger ones overflow): divide the game by a constant, "
                        "which keeps its equilibria.")


def symmetric_two_player(name: str, row_payoff, action_names=None) -> NormalFormGame:
    """Two-player symmetric game from the row player's matrix (column gets the transpose)."""
    m = np.asarray(row_payoff, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise GameError(f"row_payoff: expected a square matrix, got shape {m.shape}.")
    return NormalFormGame(name, np.stack([m, m.T]), action_names)


def bimatrix(name: str, pairs, action_names=None) -> NormalFormGame:
    """Two-player game from a matrix of ``(r1, r2)`` pairs indexed [a1][a2]."""
    arr = np.asarray(pairs, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise GameError(f"pairs: expected shape (A1, A2, 2), got {arr.shape}.")
    return NormalFormGame(name, np.moveaxis(arr, 2, 0), action_names)


def common_payoff(name: str, matrix, action_names=None, targets=None) -> NormalFormGame:
    """Fully cooperative game: both players receive ``matrix[a1][a2]``."""
    m = np.asarray(matrix, dtype=np.float64)
    return NormalFormGame(name, np.stack([m, m]), action_names, targets)


# The 21 structurally distinct 2x2 no-conflict games of Rapoport & Guyer as the
# MA-PROPS paper uses them, cells (payoff 1, payoff 2) indexed [a1][a2], with that
# paper's modifications applied: games 7-12 raise agent 2's (A, A) payoff from 4 to
# 5, games 19-21 raise both, so the gradient at uniform policies points to (A, A).
# Unmodified, each player's payoffs are 1..4 (tests/test_games.py checks that, and
# that the 21 are distinct up to relabelling actions and players).
_NO_CONFLICT = [
    [[(4, 4), (3, 3)], [(2, 2), (1, 1)]],
    [[(4, 4), (3, 3)], [(1, 2), (2, 1)]],
    [[(4, 4), (3, 2)], [(2, 3), (1, 1)]],
    [[(4, 4), (3, 2)], [(1, 3), (2, 1)]],
    [[(4, 4), (3, 1)], [(1, 3), (2, 2)]],
    [[(4, 4), (2, 3)], [(3, 2), (1, 1)]],
    [[(4, 5), (3, 3)], [(2, 1), (1, 2)]],
    [[(4, 5), (3, 3)], [(1, 1), (2, 2)]],
    [[(4, 5), (3, 2)], [(2, 1), (1, 3)]],
    [[(4, 5), (3, 2)], [(1, 1), (2, 3)]],
    [[(4, 5), (2, 3)], [(3, 1), (1, 2)]],
    [[(4, 5), (2, 2)], [(3, 1), (1, 3)]],
    [[(4, 4), (3, 1)], [(2, 2), (1, 3)]],
    [[(4, 4), (3, 1)], [(1, 2), (2, 3)]],
    [[(4, 4), (2, 1)], [(3, 2), (1, 3)]],
    [[(4, 4), (2, 3)], [(1, 1), (3, 2)]],
    [[(4, 4), (2, 2)], [(1, 1), (3, 3)]],
    [[(4, 4), (2, 1)], [(1, 2), (3, 3)]],
    [[(5, 5), (1, 3)], [(3, 1), (2, 2)]],
    [[(5, 5), (1, 2)], [(3, 1), (2, 3)]],
    [[(5, 5), (1, 2)], [(2, 1), (3, 3)]],
]
# Which of them the paper modified, and how ((A, A) payoffs before the change).
NO_CONFLICT_MODIFIED = {**{k: (4, 4) for k in range(7, 13)},
                        **{k: (4, 4) for k in range(19, 22)}}

_CLIMBING = [[11, -30, 0], [-30, 7, 0], [0, 6, 5]]
_CLIMBING_MODIFIED = [[11, -3, 0], [-3, 7, 0], [0, 3, 2]]


def _penalty(k: float):
    return [[-k, 0, 10], [0, 2, 0], [10, 0, -k]]


def _ipd_stage() -> NormalFormGame:
    return symmetric_two_player("pd", [[3, 0], [5, 1]], ["C", "D"])


def _builtin() -> Dict[str, object]:
    games: Dict[str, object] = {
        "stag_hunt": symmetric_two_player("stag_hunt", [[4, 0], [3, 2]], ["stag", "hare"]),
        "pd": _ipd_stage(),
        "chicken": symmetric_two_player("chicken", [[0, -1], [1, -10]], ["swerve", "straight"]),
        "matching_pennies": NormalFormGame(
            "matching_pennies",
            np.stack([np.array([[1.0, -1.0], [-1.0, 1.0]]),
                      -np.array([[1.0, -1.0], [-1.0, 1.0]])]), ["heads", "tails"],
            targets=()),  # zero-sum: no joint action to select
        "ipd": MemoryOneGame("ipd", _ipd_stage(), discount=0.96, horizon=12),
        "ipd_infinite": MemoryOneGame("ipd_infinite", _ipd_stage(), discount=0.96,
                                      horizon=None),
        # LOLA's IPD (Foerster et al. 2018): costs CC -1, CD -3, DC 0, DD -2 for the row
        # player, gamma 0.96, infinitely repeated; values are the unnormalised discounted
        # sums, so value * (1 - gamma) is the mean reward per step.
        "lola_ipd": MemoryOneGame("lola_ipd", symmetric_two_player(
            "lola_pd", [[-1, -3], [0, -2]], ["C", "D"]), discount=0.96, horizon=None),
        "climbing": common_payoff("climbing", _CLIMBING, ["A", "B", "C"]),
        "climbing_modified": common_payoff("climbing_modified", _CLIMBING_MODIFIED,
                                           ["A", "B", "C"]),
        "penalty": common_payoff("penalty", _penalty(7.0), ["A", "B", "C"],
                                 targets=((0, 2), (2, 0))),
    }
    for k, pairs in enumerate(_NO_CONFLICT, start=1):
        name = f"no_conflict_{k}"
        games[name] = bimatrix(name, pairs, ["A", "B"])
    return games


GAMES = _builtin()


def list_games() -> List[str]:
    return sorted(GAMES)


def get_game(name: str):
    """Returns a built-in game by name, raising a message that lists valid names."""
    try:
        return GAMES[name]
    except KeyError:
        raise GameError(f"game={name!r} is not a known game; choose one of "
                        f"{', '.join(list_games())} or pass a payoff file.") from None


def load_payoffs(path, name: Optional[str] = None):
    """Loads a user game from a YAML or JSON file, validating it.

    Accepted forms (YAML or JSON):

    * ``{"payoffs": [...]}`` with shape ``(N, A_1, ..., A_N)``;
    * ``{"row_payoff": [[...]]}`` for a symmetric two-player game;
    * ``{"pairs": [[[r1, r2], ...], ...]}`` for a bimatrix game;
    * a bare nested list, read as ``payoffs`` if 3-D or ``row_payoff`` if 2-D;
    * optional ``discount`` and ``horizon`` (``null`` = infinite) make it a
      memory-one repeated game.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise GameError(f"payoff file {str(path)!r} cannot be read: {e.strerror}.") from None
    except UnicodeDecodeError:
        raise GameError(f"payoff file {str(path)!r} is not a text file; give a YAML or JSON "
                        "file of payoffs.") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise GameError(f"payoff file {str(path)!r} is not valid "
                        f"{'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from None
    return game_from_spec(data, name or path.stem)


def game_from_spec(data, name: str = "custom"):
    """Builds a game from an already-parsed payoff spec (see :func:`load_payoffs`)."""
    if isinstance(data, list):
        arr = np.asarray(data, dtype=object)
        data = {"payoffs" if arr.ndim == 3 else "row_payoff": data}
    if not isinstance(data, dict):
        raise GameError("payoff spec must be a mapping with one of the keys "
                        "'payoffs', 'row_payoff' or 'pairs', or a nested list.")
    known = {"payoffs", "row_payoff", "pairs", "discount", "horizon", "name",
             "action_names"}
    unknown = set(data) - known
    if unknown:
        raise GameError(f"payoff spec has unknown key(s) {sorted(unknown)}; allowed: "
                        f"{sorted(known)}.")
    forms = [k for k in ("payoffs", "row_payoff", "pairs") if k in data]
    if len(forms) != 1:
        raise GameError("payoff spec needs exactly one of 'payoffs', 'row_payoff', "
                        f"'pairs'; got {forms or 'none'}.")
    field = forms[0]
    try:
        arr = np.asarray(data[field], dtype=np.float64)
    except (TypeError, ValueError):
        raise GameError(f"{field}: must be a rectangular array of numbers.") from None
    name = data.get("name", name)
    names = data.get("action_names")
    if field == "payoffs":
        stage = NormalFormGame(name, arr, names)
    elif field == "row_payoff":
        if not np.all(np.isfinite(arr)):
            raise GameError("row_payoff: payoffs must be finite numbers.")
        stage = symmetric_two_player(name, arr, names)
    else:
        if not np.all(np.isfinite(arr)):
            raise GameError("pairs: payoffs must be finite numbers.")
        stage = bimatrix(name, arr, names)
    if "discount" in data or "horizon" in data:
        return MemoryOneGame(name, stage, float(data.get("discount", 1.0)),
                             data.get("horizon"))
    return stage
