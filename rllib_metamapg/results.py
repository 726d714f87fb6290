"""Reading values out of RLlib/Tune result dicts (Ray-free)."""

from __future__ import annotations

from typing import Any, Dict, Optional


def lookup(result: Dict[str, Any], path: str) -> Optional[Any]:
    """Value at a ``/``-separated path of a nested result dict, or ``None``."""
    node: Any = result
    for part in path.strip("/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
