"""Reading values out of RLlib/Tune result dicts (Ray-free), and the name of the file
that marks a sweep's folder (what the sweep writes and the report reads)."""

from __future__ import annotations

from typing import Any, Dict, Optional

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
