"""``metamapg sweep``: argument parsing for paired-seed sweeps."""

from __future__ import annotations

import argparse
from typing import Optional

from rllib_metamapg.arms import RLLIB_ARMS
from rllib_metamapg.rllib_cli import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="paired-seed Tune sweep: arms x seeds on one environment",
        description="Run every arm with every seed on one environment with Ray Tune (seed s "
                    "starts every arm from the same weights), each arm configured by "
                    "tuned_examples/<env>/<arm>.yaml; or continue one with --resume.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_sweep_arguments(p)
    p.set_defaults(func=_sweep)


def add_sweep_arguments(p, *, storage_default: Optional[str] = "metamapg_results",
                        report_flag: bool = True) -> None:
    """The sweep's own flags; ``metamapg submit`` forwards the same ones to the cluster."""
    p.add_argument("--env", help="registered environment with sweep settings (e.g. stag_hunt)")
    p.add_argument("--arms", default=",".join(RLLIB_ARMS),
                   help="comma-separated arms; ippo is the reference of the report's tests")
    p.add_argument("--seeds", default="0-24", help="seeds: '0-24', '0,1,5' or a mix")
    p.add_argument("--smoke", action="store_true",
                   help="use each arm's *-smoke.yaml budget (minutes, not hours)")
    p.add_argument("--name", default=None,
                   help="experiment folder name (default: <env> or <env>-smoke)")
    p.add_argument("--storage-path", default=storage_default,
                   help="local folder or URI (s3://, gs://) for results and checkpoints")
    p.add_argument("--max-concurrent", type=int, default=12, help="trials running at once")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPUs per trial; fractions share a GPU (0.33: 3 trials per GPU)")
    p.add_argument("--max-failures", type=int, default=2,
                   help="retries of a failed trial (e.g. a lost worker node)")
    p.add_argument("--tuned-examples", default=None,
                   help="tuned-examples folder (default: $METAMAPG_TUNED_EXAMPLES, "
                        "./tuned_examples, or the one beside the package)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the sweep in DIR: finished trials are not rerun")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="if <storage-path>/<name> already holds this sweep, continue it "
                        "(for jobs that may be retried) instead of refusing")
    p.add_argument("--quiet", action="store_true", help="only our progress lines, not Tune's")
    p.add_argument("--progress-every", type=float, default=30.0,
                   help="seconds between progress lines")
    if report_flag:
        p.add_argument("--report", action="store_true",
                       help="after the sweep, write 'metamapg report' output to "
                            "<experiment>/report")


def spec_from_args(args):
    """The :class:`SweepSpec` the sweep flags describe (``--resume`` excluded)."""
    from rllib_metamapg.sweep.plan import SweepSpec, parse_seeds

    if args.resume:
        if args.env:
            raise UsageError("--resume continues a sweep with its own settings; drop --env.")
        return None
    if not args.env:
        raise UsageError("--env is required (or --resume DIR).")
    return SweepSpec(
        env=args.env, arms=[a.strip() for a in args.arms.split(",") if a.strip()],
        seeds=parse_seeds(args.seeds), smoke=args.smoke, name=args.name,
        storage_path=args.storage_path, max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures, tuned_examples=args.tuned_examples)


def _sweep(args) -> int:
    from rllib_metamapg.sweep.run import resume_sweep, run_sweep, write_sweep_report

    verbose = 0 if args.quiet else 1
    spec = spec_from_args(args)
    if spec is None:
        path, failed = resume_sweep(args.resume, verbose=verbose)
    else:
        path, failed = run_sweep(spec, verbose=verbose, progress_every_s=args.progress_every,
                                 resume_existing=args.resume_if_exists)
    if args.report and not failed:
        print(f"[metamapg sweep] report: {write_sweep_report(path)}", flush=True)
    return 1 if failed else 0
