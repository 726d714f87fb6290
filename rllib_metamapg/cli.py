"""The ``metamapg`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from rllib_metamapg import __version__, limits, tuned_examples
from rllib_metamapg.errors import UsageError
from rllib_metamapg.jobs import command as submit_command
from rllib_metamapg.report import command as report_command
from rllib_metamapg.study import command as study_command
from rllib_metamapg.sweep import command as sweep_command
from rllib_metamapg.tabular_experiments import command as tabular_command

def is_user_error(err: BaseException) -> bool:
    """Bad input: every such error class of the package subclasses ``UsageError``."""
    return isinstance(err, UsageError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metamapg", description="Meta-MAPG equilibrium-selection tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a user error (default: its message only)")
    sub = parser.add_subparsers(dest="command", required=True)
    tabular_command.add_parser(sub)
    sweep_command.add_parser(sub)
    study_command.add_parser(sub)
    report_command.add_parser(sub)
    submit_command.add_parser(sub)
    tuned_examples.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        limits.check_sizes(vars(args))  # before anything is allocated
        limits.announce_smoke(limits.apply_smoke(vars(args)))
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        # Every result set is written atomically: what was there before is intact.
        print("metamapg: interrupted; no result set was left half-written.", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - only user errors are caught, the rest re-raised
        if not is_user_error(e) or args.debug:
            raise
        print(f"metamapg: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
