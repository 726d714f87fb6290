"""Does a trial's resource request fit the machine or cluster?  Asked before waiting.

Tune keeps a trial that can never be placed PENDING forever and, without ``-v``,
silently.  Every command that starts Ray (``rllib train``, ``metamapg sweep``,
``submit``'s job) asks here first: on a local Ray instance that this process
starts, the answer is exact (exit 2 with what was asked, what exists and the
setting to change); on a running cluster, which may autoscale, the command
warns and waits a bounded time, saying what it waits for.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Dict, Iterable, List, Mapping, Optional

Bundle = Mapping[str, float]

# How long a command waits for a running cluster to grow before it gives up.
WAIT_ENV = "METAMAPG_RESOURCE_WAIT_S"
DEFAULT_WAIT_S = 300.0


def local_resources() -> Optional[Dict[str, float]]:
    """CPUs and GPUs a fresh local Ray instance would detect, without starting it
    (``None`` when Ray's GPU detection cannot be reached)."""
    try:  # Ray's own detection, so the answer is the one ray.init would reach
        from ray._private.accelerators import get_accelerator_manager_for_resource

        gpu = get_accelerator_manager_for_resource("GPU")
        visible = gpu.get_current_process_visible_accelerator_ids()
        gpus = gpu.get_current_node_num_accelerators() if visible is None else len(visible)
    except Exception:  # noqa: BLE001 - a private API; the check after ray.init remains
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"CPU": float(cpus or 1), "GPU": float(gpus)}


def will_start_local_ray(address: Optional[str] = None) -> bool:
    """True when ``ray.init(address)`` would start a fresh local instance."""
    import ray

    return not ray.is_initialized() and not address and not os.environ.get("RAY_ADDRESS")


def total_need(bundles: Iterable[Bundle]) -> Dict[str, float]:
    need: Dict[str, float] = {}
    for b in bundles:
        for k, v in b.items():
            need[k] = need.get(k, 0.0) + v
    return need


def fits(bundles: List[Bundle], total: Mapping[str, float],
         nodes: Optional[List[Mapping[str, float]]] = None) -> bool:
    """The bundles fit the cluster's totals, and each fits on some node."""
    nodes = nodes if nodes is not None else [total]
    if any(v > total.get(k, 0.0) + 1e-9 for k, v in total_need(bundles).items()):
        return False
    return all(any(all(v <= n.get(k, 0.0) + 1e-9 for k, v in b.items()) for n in nodes)
               for b in bundles)


def cluster_state():
    """``(total resources, [resources of each live node])`` of the connected cluster."""
    import ray

    return ray.cluster_resources(), [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def fmt(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in sorted(resources.items())
                     if k in ("CPU", "GPU") or v) or "nothing"


def wait_for(requests: Mapping[str, List[Bundle]], prog: str,
             timeout_s: Optional[float] = None, poll_s: float = 5.0) -> bool:
    """On a running cluster: waits until every request fits, at most ``timeout_s``
    (``$METAMAPG_RESOURCE_WAIT_S``, default 300 s), printing what it waits for.

    Returns True when they fit; False when the wait ran out (the caller exits 2).
    """
    if timeout_s is None:
        timeout_s = float(os.environ.get(WAIT_ENV, DEFAULT_WAIT_S))
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        total, nodes = cluster_state()
        short = {name: b for name, b in requests.items() if not fits(b, total, nodes)}
        if not short:
            return True
        name, bundles = next(iter(short.items()))
        if not announced:
            print(f"[{prog}] warning: {name} needs {fmt(total_need(bundles))} but the Ray "
                  f"cluster has {fmt(total)} now; waiting up to {timeout_s:g} s for it to "
                  f"grow (autoscaler; {WAIT_ENV} sets the wait).", file=sys.stderr,
                  flush=True)
            announced = True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
