"""rllib-metamapg: Meta-MAPG own/peer-learning corrections for multi-agent PG.

The exact tabular engine lives in :mod:`rllib_metamapg.tabular` and the method
registry in :mod:`rllib_metamapg.registry`; neither imports Ray, so ``import
rllib_metamapg`` stays cheap.  The RLlib names below are loaded on first use;
building an algorithm registers the environments with Tune, and
:func:`rllib_metamapg.rllib_base.algorithm.register_all` registers every method's
algorithm by name (``Tuner("MetaMAPG")``).
"""

__version__ = "0.1.0"

_RLLIB_EXPORTS = {
    "MetaMAPG": "rllib_metamapg.metamapg",
    "MetaMAPGConfig": "rllib_metamapg.metamapg",
    "CooldownCallback": "rllib_metamapg.metamapg",
    "MATRL": "rllib_metamapg.matrl.matrl",
    "MATRLConfig": "rllib_metamapg.matrl.matrl",
    "TabularPPOTorchRLModule": "rllib_metamapg.models",
}

__all__ = ["__version__", *_RLLIB_EXPORTS]


def __getattr__(name):
    if name in _RLLIB_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_RLLIB_EXPORTS[name]), name)
    raise AttributeError(f"module 'rllib_metamapg' has no attribute {name!r}")
