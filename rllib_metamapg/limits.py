"""Bounds on every size a user types, checked before anything is allocated.

A typo such as ``--seeds 1000000000`` used to allocate gigabytes (or plan a
hundred thousand trials) before any message; each bound below is far above
what any study in this package uses, and says why it exists.  A run that is
legitimately larger sets ``METAMAPG_ALLOW_LARGE=1``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping

from rllib_metamapg.errors import UsageError

ALLOW_ENV = "METAMAPG_ALLOW_LARGE"

# name -> (lowest, highest, why the highest).  The names are the options' dests, so
# one table serves the command line, --config files and the sweep.
SIZES: Dict[str, tuple] = {
    "seeds": (1, 100_000, "paired seeds are batched in memory (about 80 KB each per step)"),
    "grid": (2, 1_000, "a basin map holds grid x grid cells per arm and seed"),
    "steps": (1, 1_000_000, "a tabular run keeps per-step traces"),
    "iters": (1, 1_000_000, "a convergence run keeps per-iteration traces"),
    "samples": (1, 10_000_000, "samples are drawn and stored at once"),
    "games_per_type": (1, 100_000, "games are generated and solved in memory"),
    "random_games": (0, 100_000, "games are generated and solved in memory"),
    "own_setting_seeds": (0, 100_000, "paired seeds are batched in memory"),
    "max_restarts": (0, 10_000, "restarts are batched in memory"),
    "lipschitz_samples": (1, 10_000_000, "samples are drawn and stored at once"),
    "max_games": (1, 100_000, "games are generated and solved in memory"),
    "starts": (1, 100_000, "starts are batched in memory"),
    "episodes": (1, 1_000_000, "every episode is run before anything is printed"),
    "trials": (1, 10_000, "Tune keeps every trial's state in the driver"),
}


def allow_large() -> bool:
    return os.environ.get(ALLOW_ENV, "") not in ("", "0")


def check_size(name: str, value: Any, what: str | None = None) -> None:
    """Refuses ``value`` for size ``name`` outside its bounds.

    ``what`` names it in the message (default: the option, ``--name=value``).
    """
    if name not in SIZES or value is None or isinstance(value, bool) \
            or not isinstance(value, int):
        return
    low, high, why = SIZES[name]
    what = what or f"--{name.replace('_', '-')}={value}"
    if value < low:
        raise UsageError(f"{what} must be >= {low}.")
    if value > high and not allow_large():
        raise UsageError(f"{what} is above the limit of {high:,} ({why}). If the run is "
                         f"meant to be this large, set {ALLOW_ENV}=1.")


def check_sizes(values: Mapping[str, Any]) -> None:
    """``check_size`` on every bounded name in ``values`` (parsed options or a config)."""
    for name, value in values.items():
        check_size(name, value)
