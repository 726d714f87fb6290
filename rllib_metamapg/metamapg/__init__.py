"""The Meta-MAPG method: its registry entry (``method``), tabular update and RLlib pieces.

Ray loads only when an RLlib name below is first used, so the registry and the
tabular engine can read :mod:`.method` without starting Ray.
"""

_RLLIB_EXPORTS = {
    "MetaMAPG": "rllib_metamapg.metamapg.metamapg",
    "MetaMAPGConfig": "rllib_metamapg.metamapg.metamapg",
    "CooldownCallback": "rllib_metamapg.metamapg.cooldown_callback",
}


def register() -> None:
    """(Re-)registers ``"MetaMAPG"`` and every environment with Tune.

    Tune keeps a registration only in the Ray session it was made in (or the next
    one to start), so call this again after ``ray.shutdown()``; building a
    MetaMAPG algorithm does it for you.
    """
    from rllib_metamapg.rllib_base.algorithm import register_all

    register_all()


def __getattr__(name):
    if name in _RLLIB_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_RLLIB_EXPORTS[name]), name)
    raise AttributeError(f"module 'rllib_metamapg.metamapg' has no attribute {name!r}")


__all__ = ["CooldownCallback", "MetaMAPG", "MetaMAPGConfig", "register"]
