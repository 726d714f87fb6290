"""``metamapg study``: run a study folder's sweeps, reports and summary in one command."""

from __future__ import annotations

import argparse

from rllib_metamapg import limits
from rllib_metamapg.errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "study", help="a study folder's paired sweeps (one per env), reports and summary",
        description="Run every env of a study folder (study.yaml + <env>/base.yaml, e.g. "
                    "studies/compare_rllib) as a paired-seed sweep, write each env's report "
                    "as soon as its sweep finishes, then one summary table over the envs. "
                    "Rerun the same command to continue: finished envs are skipped, a "
                    "part-done one is resumed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("folder", metavar="STUDY_DIR", help="study folder, e.g. studies/compare_rllib")
    p.add_argument("--out", default="study_out",
                   help="where the sweeps (results, checkpoints) go")
    p.add_argument("--reports", default=None,
                   help="where each env's report and the summary go (default: the study's "
                        "'reports'; with --smoke, <out>/<study>/reports)")
    p.add_argument("--smoke", action="store_true",
                   help="the study's CI-sized version: its smoke envs, arms and seeds at "
                        "each env's smoke budget")
    p.add_argument("--envs", default=None,
                   help="sweep only these envs, 'a,b' (default: the study's); the summary "
                        "still covers every env of the study")
    p.add_argument("--variants", default=None,
                   help="sweep only these of the study's variants, 'a,b' (default: all)")
    p.add_argument("--arms", default=None,
                   help="arms 'a,b' or a registry experiment such as 'compare' (default: the "
                        "study's)")
    p.add_argument("--seeds", default=None, help="seeds, e.g. '0-19' (default: the study's)")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite the reports and the summary from the sweeps already in "
                        "--out, without running anything")
    p.add_argument("--quiet", action="store_true", help="only our progress lines, not Tune's")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also Ray's and RLlib's routine notices (hidden by default)")
    p.add_argument("--progress-every", type=float, default=60.0,
                   help="seconds between a sweep's progress lines")
    from rllib_metamapg.sweep.estimate import add_plan_arguments

    add_plan_arguments(p)
    p.set_defaults(func=_study)


def _study(args) -> int:
    from rllib_metamapg import quiet
    from rllib_metamapg.atomic import check_output_dir
    from rllib_metamapg.study.manifest import load_study
    from rllib_metamapg.study.run import run_study
    from rllib_metamapg.sweep.command import GracefulStop
    from rllib_metamapg.sweep.run import shutdown_ray

    smoke = args.smoke or limits.smoke()
    envs = None if args.envs is None else [e for e in args.envs.split(",") if e.strip()]
    if envs is not None and not envs:
        raise UsageError(f"--envs={args.envs!r} names no env.")
    variants = None if args.variants is None else [
        v.strip() for v in args.variants.split(",") if v.strip()]
    if variants is not None and not variants:
        raise UsageError(f"--variants={args.variants!r} names no variant.")
    study = load_study(args.folder, smoke=smoke, envs=envs, arms=args.arms, seeds=args.seeds,
                       reports=args.reports, out=args.out, variants=variants)
    if args.plan:  # every (env, variant) the run would sweep, priced; nothing runs
        if not args.verbose:
            quiet.drop_noise()
        from rllib_metamapg.study.run import plan_study
        from rllib_metamapg.sweep.estimate import print_plan

        return print_plan(plan_study(study, args.out), args,
                          max_concurrent=study.max_concurrent)
    check_output_dir(args.out, "--out")
    check_output_dir(study.reports, "--reports")
    if args.report_only:
        from rllib_metamapg.study.run import report_study

        doc = report_study(study, args.out)
        return 1 if doc["missing_envs"] else 0
    if not args.verbose:
        quiet.drop_noise()
    if args.quiet:
        quiet.silence_tune_banners()
    stop = GracefulStop()
    try:
        doc = run_study(study, args.out, verbose=0 if args.quiet else 1,
                        progress_every_s=args.progress_every, on_ray_started=stop.install,
                        stopped=lambda: bool(stop.received))
    except KeyboardInterrupt:
        if not stop.received:
            raise
        doc = None
    finally:
        stop.restore()
        shutdown_ray()
    if stop.received:
        print(f"[metamapg study] stopped by signal {stop.received}; finished envs' reports "
              "are written; rerun the same command to continue.", flush=True)
        return 128 + stop.received
    return 1 if doc is None or doc["missing_envs"] else 0
