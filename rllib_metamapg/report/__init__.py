"""Reports on paired-seed sweeps (``metamapg report``); reads Tune's files, needs no Ray."""

from rllib_metamapg.report.load import ReportError, load_sweep
from rllib_metamapg.report.write import write_report

__all__ = ["ReportError", "load_sweep", "write_report"]
