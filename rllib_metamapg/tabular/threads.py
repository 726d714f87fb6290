"""How many threads a tabular run uses (torch's intra-op pool and numba's).

The tabular engine's work items are small (a few thousand runs of a 2x2 or 5-state
game), so a second thread buys little, while a thread that waits at a barrier for a
core another process holds costs a lot: with two threads on a two-core machine and
one other CPU-bound process, a basin map ran 4-16x slower than on a quiet machine.
So a tabular command takes the cores that are idle *now* (measured over a short
window from ``/proc/stat``), at least one, and never more than it may run on.

``METAMAPG_THREADS=N`` fixes the count (e.g. for benchmarks); ``auto`` or unset
measures.  ``benchmarks/tabular_process.py`` measures both policies.
"""

from __future__ import annotations

import os
import time
from typing import Optional

ENV_VAR = "METAMAPG_THREADS"
# Long enough for /proc/stat's 10 ms ticks to give a usable busy fraction, short
# against a command's start-up (~0.3 s).
WINDOW_S = 0.05


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times():
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]), idle


def busy_cpus(window_s: float = WINDOW_S) -> float:
    """Cores kept busy by other processes over ``window_s`` (0 where /proc is absent)."""
    try:
        total0, idle0 = _cpu_times()
        time.sleep(window_s)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    total = total1 - total0
    if total <= 0:
        return 0.0
    return (os.cpu_count() or 1) * (total - (idle1 - idle0)) / total


def parse_threads(value: Optional[str]) -> Optional[int]:
    """``None`` for auto; else the positive count ``METAMAPG_THREADS`` names."""
    if value is None or value.strip().lower() in ("", "auto"):
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{ENV_VAR}={value!r} must be a positive integer or 'auto'.")
    return n


def choose_threads(requested: Optional[int] = None) -> int:
    """``requested``, else ``METAMAPG_THREADS``, else the cores idle right now (>= 1)."""
    n = requested if requested is not None else parse_threads(os.environ.get(ENV_VAR))
    cap = usable_cpus()
    if n is not None:
        return min(n, cap)
    return max(1, min(cap, int(round(cap - busy_cpus()))))


def apply_threads(n: int) -> int:
    """Sizes torch's pool and numba's (before numba starts its pool) to ``n``."""
    import torch

    torch.set_num_threads(n)
    import sys

    if "numba" in sys.modules:  # its pool exists: lower the count within it
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    else:  # numba sizes its pool from this when the kernels import it
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    return n


def configure(requested: Optional[int] = None) -> int:
    """Chooses and applies the thread count of this process's tabular work."""
    return apply_threads(choose_threads(requested))
