"""The one check every env of ours makes on its ``env_config`` (Ray-free)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional


def check_env_config(config: Optional[Dict[str, Any]], allowed: Iterable[str]) -> Dict[str, Any]:
    """A copy of ``config``; a key the env does not take is refused by name, with the
    keys it does take (a misspelt key would otherwise be ignored silently)."""
    config = dict(config or {})
    allowed = list(allowed)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"env_config: unknown key(s) {unknown}; allowed: "
                         f"{', '.join(repr(k) for k in allowed)}.")
    return config
