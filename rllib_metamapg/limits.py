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
# one table serves the command line, --config files and the sweep.  Lower bounds are
# the commands' own business (their messages name the field); seeds' is checked here
# because a command printed its header before its own check.
SIZES: Dict[str, tuple] = {
    "seeds": (1, 100_000, "paired seeds are batched in memory"),
    "grid": (None, 1_000, "a basin map holds grid x grid cells per arm and seed"),
    "steps": (None, 1_000_000, "a tabular run keeps per-step traces"),
    "iters": (None, 1_000_000, "a convergence run keeps per-iteration traces"),
    "samples": (None, 10_000_000, "samples are drawn and stored at once"),
    "games_per_type": (None, 100_000, "games are generated and solved in memory"),
    "random_games": (None, 100_000, "games are generated and solved in memory"),
    "own_setting_seeds": (None, 100_000, "paired seeds are batched in memory"),
    "max_restarts": (None, 10_000, "restarts are batched in memory"),
    "lipschitz_samples": (None, 10_000_000, "samples are drawn and stored at once"),
    "max_games": (None, 100_000, "games are generated and solved in memory"),
    "starts": (None, 100_000, "starts are batched in memory"),
    "episodes": (None, 1_000_000, "every episode is run before anything is printed"),
    "trials": (None, 10_000, "Tune keeps every trial's state in the driver"),
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
    if low is not None and value < low:
        raise UsageError(f"{what} must be >= {low}.")
    if value > high and not allow_large():
        raise UsageError(f"{what} is above the limit of {high:,} ({why}). If the run is "
                         f"meant to be this large, set {ALLOW_ENV}=1.")


def check_sizes(values: Mapping[str, Any]) -> None:
    """``check_size`` on every bounded name in ``values`` (parsed options or a config)."""
    for name, value in values.items():
        check_size(name, value)


# METAMAPG_SMOKE=1 runs any documented command at a smoke size: every size below is
# capped, a sweep uses --smoke with its first seed on the CPU, and `rllib train`
# stops after one iteration.  The docs' examples run this way in the test suite, so a
# documented command that breaks fails CI without the suite paying its full budget.
SMOKE_ENV = "METAMAPG_SMOKE"
SMOKE_CAPS: Dict[str, int] = {
    "seeds": 2, "steps": 5, "grid": 3, "batch_size": 16, "games_per_type": 3, "iters": 20,
    "samples": 50, "random_games": 1, "own_setting_seeds": 1, "max_restarts": 1,
    "lipschitz_samples": 2, "max_games": 2, "starts": 2, "arrows": 2, "settle_steps": 2,
    "episodes": 2, "handoff_steps": 2,
}


SMOKE_FILL: Dict[str, int] = {"max_games": 2}


def smoke() -> bool:
    return os.environ.get(SMOKE_ENV, "") not in ("", "0")


def apply_smoke(values: Dict[str, Any]) -> Dict[str, Any]:
    """Caps ``values``' sizes in place under ``METAMAPG_SMOKE``; returns what changed."""
    if not smoke():
        return {}
    changed = {}
    for name, cap in SMOKE_FILL.items():  # options whose default (None) means "all"
        if name in values and values[name] is None:
            values[name] = changed[name] = cap
    for name, cap in SMOKE_CAPS.items():
        v = values.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > cap:
            values[name] = type(v)(cap)
            changed[name] = values[name]
    return changed


_ANNOUNCED: set = set()


def announce_smoke(changed: Mapping[str, Any], what: str = "") -> None:
    changed = {k: v for k, v in changed.items() if k not in _ANNOUNCED}
    _ANNOUNCED.update(changed)
    if changed or what:
        import sys

        parts = ", ".join(f"{k}={v}" for k, v in changed.items())
        print(f"[metamapg] {SMOKE_ENV}=1: smoke run ({', '.join(p for p in (what, parts) if p)})",
              file=sys.stderr, flush=True)
