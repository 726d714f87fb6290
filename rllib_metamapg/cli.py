"""The ``metamapg`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from rllib_metamapg import __version__
from rllib_metamapg.registry import RegistryError
from rllib_metamapg.jobs import command as submit_command
from rllib_metamapg.report import command as report_command
from rllib_metamapg.report.load import ReportError
from rllib_metamapg.errors import UsageError
from rllib_metamapg.schedules import ScheduleError
from rllib_metamapg.sweep import command as sweep_command
from rllib_metamapg.tabular import commands as tabular_commands
from rllib_metamapg.tabular.dynamics import SettingsError
from rllib_metamapg.tabular.experiments.options import OptionsError
from rllib_metamapg.tabular.games import GameError
from rllib_metamapg.tabular.policies import PolicyError
from rllib_metamapg.tabular.sampled import SamplingError
from rllib_metamapg import tuned_examples

USER_ERRORS = (RegistryError, GameError, OptionsError, PolicyError, SamplingError, ScheduleError,
               SettingsError, UsageError, ReportError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metamapg", description="Meta-MAPG equilibrium-selection tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    tabular_commands.add_parser(sub)
    sweep_command.add_parser(sub)
    report_command.add_parser(sub)
    submit_command.add_parser(sub)
    tuned_examples.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        print(f"metamapg: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
