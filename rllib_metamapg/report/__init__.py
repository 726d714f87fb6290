"""Reports on paired-seed sweeps (``metamapg report``); reads Tune's files, needs no Ray.

The names below load on first use, so ``metamapg --help`` does not pay for SciPy.
"""

_EXPORTS = {"ReportError": "rllib_metamapg.report.load",
            "load_sweep": "rllib_metamapg.report.load",
            "write_report": "rllib_metamapg.report.write"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rllib_metamapg.report' has no attribute {name!r}")
