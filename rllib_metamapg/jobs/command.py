"""``metamapg submit``: run a sweep on a Ray cluster as a Ray Job."""

from __future__ import annotations

import sys
import time
from typing import List

from rllib_metamapg.errors import UsageError
from rllib_metamapg.sweep.command import SWEEP_DEFAULTS, add_sweep_arguments, spec_from_args

# Sweep flags forwarded to the cluster as they were given (store_true ones apart).
# Every sweep-defining flag (SWEEP_DEFAULTS), so a new one reaches the job by itself.
_FORWARDED = ("env", *SWEEP_DEFAULTS, "storage_path", "progress_every")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "submit", help="run a sweep on a Ray cluster as a Ray Job (needs the 'cluster' extra)",
        description="Submit 'metamapg sweep ... --report' (or --resume) to a Ray cluster "
                    "through the Ray Jobs API, optionally follow its logs or wait for it, "
                    "and print where its experiment folder and report are. A cluster with "
                    "token authentication needs RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN.")
    job = p.add_argument_group("cluster and job")
    job.add_argument("--address", default=None,
                     help="dashboard address (default: $RAY_API_SERVER_ADDRESS, $RAY_ADDRESS "
                          "or http://127.0.0.1:8265)")
    where = job.add_mutually_exclusive_group()
    where.add_argument("--working-dir", default=None,
                       help="checkout uploaded as the job's working_dir (default: the checkout "
                            "you are in)")
    where.add_argument("--installed", action="store_true",
                       help="upload nothing: use the rllib_metamapg installed on the cluster")
    job.add_argument("--env-var", action="append", default=[], metavar="KEY=VALUE",
                     help="environment variable of the job (repeatable)")
    job.add_argument("--pip", action="append", default=[], metavar="SPEC",
                     help="pip requirement installed for the job (repeatable)")
    job.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                     help="leave files matching PATTERN (gitignore syntax) out of the upload "
                          "(repeatable); .git, .venv, caches, results/, report/, "
                          "demo_out/, metamapg_results/, checkpoints and every sweep folder "
                          "are left out already")
    job.add_argument("--upload-results", action="store_true",
                     help="upload result and sweep folders too (left out by default)")
    job.add_argument("--max-upload-mib", type=float, default=100.0,
                     help="refuse a working dir larger than this, before uploading")
    job.add_argument("--job-id", default=None, help="submission id (default: Ray's)")
    job.add_argument("--attach", metavar="JOB_ID", default=None,
                     help="do not submit: follow/wait for a job submitted earlier")
    job.add_argument("--follow", action="store_true",
                     help="stream the job's logs until it ends (implies --wait)")
    job.add_argument("--wait", action="store_true",
                     help="block until the job ends; exit 0 SUCCEEDED, the driver's code "
                          "(or 1) FAILED, 3 STOPPED")
    job.add_argument("--timeout", type=float, default=None,
                     help="with --wait: give up after this many seconds "
                          "(exit 124; the job runs on)")
    add_sweep_arguments(p.add_argument_group("sweep (as 'metamapg sweep'; the job always "
                                             "writes the report)"),
                        storage_default=None, report_flag=False)
    p.set_defaults(func=_submit)


def cluster_argv(args) -> List[str]:
    """The ``metamapg sweep`` arguments the job runs with; always writes the report."""
    if args.resume:
        argv = ["--resume", args.resume]
    else:
        argv = []
        for key in _FORWARDED:
            value = getattr(args, key, None)
            if value is not None:
                argv += ["--" + key.replace("_", "-"), str(value)]
        argv += [f"--{flag}" for flag in ("smoke", "resume-if-exists")
                 if getattr(args, flag.replace("-", "_"))]
        if not args.reuse_actors:
            argv.append("--no-reuse-actors")
        if args.tensorboard:
            argv.append("--tensorboard")
    return (argv + (["--quiet"] if args.quiet else []) + (["--verbose"] if args.verbose else [])
            + ["--report"])


def _prepare(args):
    """Checks everything locally and returns ``(argv, experiment path)`` before any upload."""
    from rllib_metamapg.jobs.submit import check_storage_path
    from rllib_metamapg.sweep.plan import plan_sweep

    spec = spec_from_args(args)
    if spec is None:
        return cluster_argv(args), check_storage_path(args.resume)
    args.storage_path = spec.storage_path = check_storage_path(args.storage_path)
    if getattr(args, "name", None) is None:
        # Unique per submission, so re-submitting never collides with an older sweep.
        args.name = spec.name = (f"{spec.env}{'-smoke' if spec.smoke else ''}-"
                                 f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    plan = plan_sweep(spec)
    return cluster_argv(args), f"{spec.storage_path}/{plan.name}"


def _submit(args) -> int:
    from rllib_metamapg.jobs import submit as jobs

    jobs.enable_token_auth_from_environment()  # before validation imports Ray
    address = jobs.resolve_address(args.address)
    if args.attach:
        sub = jobs.attach(address, args.attach)
    else:
        argv, experiment = _prepare(args)
        working_dir = None
        if not args.installed:
            root = args.working_dir or jobs.project_root()
            if root is None:
                raise UsageError("not inside a project checkout: pass --working-dir <checkout> "
                                 "or --installed (the package installed on the cluster).")
            working_dir = str(root)
        runtime = jobs.runtime_env(working_dir, jobs.parse_env_vars(args.env_var), args.pip,
                                   exclude=args.exclude, upload_results=args.upload_results,
                                   max_upload_mib=args.max_upload_mib)
        sub = jobs.submit(address, jobs.sweep_command(argv), runtime, experiment, args.job_id)
        print(f"[metamapg submit] job {sub.job_id} submitted to {address}\n"
              f"[metamapg submit] runs: {sub.entrypoint}", flush=True)
    print(f"[metamapg submit] experiment: {sub.experiment}\n"
          f"[metamapg submit] report (when it succeeds): {sub.report}", flush=True)
    if not (args.follow or args.wait):
        print(f"[metamapg submit] follow it: metamapg submit --attach {sub.job_id} --follow "
              f"--address {address}", flush=True)
        return 0
    return _wait(jobs, sub, args)


def _wait(jobs, sub, args) -> int:
    try:
        if args.follow:
            jobs.follow(sub)
        status = jobs.wait(sub, timeout_s=args.timeout, on_status=lambda s: print(
            f"[metamapg submit] job {sub.job_id}: {s}", flush=True))
    except TimeoutError as e:
        print(f"[metamapg submit] {e}; it keeps running.", file=sys.stderr)
        return 124
    except KeyboardInterrupt:
        print(f"\n[metamapg submit] detached; job {sub.job_id} keeps running. Re-attach: "
              f"metamapg submit --attach {sub.job_id} --wait --address {sub.address}; stop: "
              f"ray job stop {sub.job_id} --address {sub.address}", file=sys.stderr)
        return 130
    if status == "SUCCEEDED":
        print(f"[metamapg submit] done; report: {sub.report}", flush=True)
    else:
        print(f"[metamapg submit] job {sub.job_id} {status}; logs: ray job logs {sub.job_id} "
              f"--address {sub.address}; continue it: metamapg submit --resume "
              f"{sub.experiment} --address {sub.address}", file=sys.stderr)
    return jobs.exit_code(sub, status)
