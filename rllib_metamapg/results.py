"""Reading values out of RLlib/Tune result dicts (Ray-free), the name of the file that
marks a sweep's folder (what the sweep writes and the report reads), and what makes two
sweeps the same sweep."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Optional

# Beside Tune's files in a sweep's experiment folder: env, arms, seeds, tau, metric.
METADATA_FILE = "metamapg_sweep.json"


def lookup(result: Dict[str, Any], path: str) -> Optional[Any]:
    """Value at a ``/``-separated path of a nested result dict, or ``None``."""
    node: Any = result
    for part in path.strip("/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# What makes two sweeps the same sweep: the trials (env, arms, seeds, budget) and every
# arm's settings, so a changed tuned example is not "continued" with old results.
SAME_SWEEP_KEYS = ("env", "arms", "seeds", "smoke", "stop_iterations", "evaluation_interval",
                   "arm_configs")


def metadata_differences(found: Dict[str, Any], planned: Dict[str, Any]) -> List[str]:
    """The :data:`SAME_SWEEP_KEYS` on which a recorded sweep and a planned one differ
    (compared as the JSON they are recorded as)."""
    def norm(value):
        return json.loads(json.dumps(value, sort_keys=True, default=str))

    def settings(meta):  # of the arms both have (different arms are named as such)
        both = set(found.get("arm_configs") or {}) & set(planned.get("arm_configs") or {})
        return {a: c for a, c in (meta.get("arm_configs") or {}).items() if a in both}

    return [k for k in SAME_SWEEP_KEYS
            if (norm(settings(found)) != norm(settings(planned)) if k == "arm_configs"
                else norm(found.get(k)) != norm(planned.get(k)))]


def settings_digest(metadata: Dict[str, Any]) -> str:
    """SHA-256 of a sweep's :data:`SAME_SWEEP_KEYS` as recorded (JSON): a report carries
    it, so a study can tell from a committed report alone that a sweep of these very
    settings finished (its sweep folder may be on another machine)."""
    blob = json.dumps({k: metadata.get(k) for k in SAME_SWEEP_KEYS}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
