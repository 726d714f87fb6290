"""``metamapg sweep``: argument parsing for paired-seed sweeps."""

from __future__ import annotations

import argparse
import os
import signal
from typing import Optional

from rllib_metamapg import limits, registry
from rllib_metamapg.errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="paired-seed Tune sweep: arms x seeds on one environment",
        description="Run every arm with every seed on one environment with Ray Tune (seed s "
                    "starts every arm from the same weights), each arm configured by its "
                    "tuned example (tuned_examples/<env>/base.yaml + the arm's method "
                    "settings); arms may come from different methods. Or continue one with "
                    "--resume.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_sweep_arguments(p)
    from rllib_metamapg.sweep.estimate import add_plan_arguments

    add_plan_arguments(p)
    p.add_argument("--ray-ui", action="store_true",
                   help="start Ray's dashboard with the local Ray instance (off by default, "
                        "as in 'rllib train'; a cluster has its own)")
    p.set_defaults(func=_sweep)


def add_sweep_arguments(p, *, storage_default: Optional[str] = "metamapg_results",
                        report_flag: bool = True) -> None:
    """The sweep's own flags; ``metamapg submit`` forwards the same ones to the cluster."""
    # The flags that define a sweep are absent unless given (their defaults are in
    # SWEEP_DEFAULTS), so --resume can tell a given flag from a default and refuse it.
    unset = argparse.SUPPRESS
    p.add_argument("--env", help="registered environment with sweep settings (e.g. stag_hunt)")
    p.add_argument("--arms", default=unset,
                   help="arms of any registered methods, 'a,b' or 'a b'; the reference arm "
                        "of the report's paired tests is added if missing (default: all "
                        f"registered arms: {registry.arm_choices('rllib')})")
    p.add_argument("--seeds", default=unset,
                   help="seeds: '0-24', '0,1,5' or a mix (default: 0-24)")
    p.add_argument("--smoke", action="store_true",
                   help="use the env's smoke-sized settings (minutes, not hours)")
    p.add_argument("--name", default=unset,
                   help="experiment folder name (default: <env> or <env>-smoke)")
    p.add_argument("--storage-path", default=storage_default,
                   help="local folder or URI (s3://, gs://) for results and checkpoints")
    p.add_argument("--max-concurrent", type=int, default=unset,
                   help="trials running at once (default: 12)")
    p.add_argument("--cpus-per-trial", type=float, default=unset,
                   help="CPUs per trial (default: 1)")
    p.add_argument("--gpus-per-trial", type=float, default=unset,
                   help="GPUs per trial; fractions share a GPU (0.33: 3 trials per GPU); "
                        "refused before the sweep starts when the Ray cluster has too few "
                        "(default: 0)")
    p.add_argument("--max-failures", type=int, default=unset,
                   help="retries of a failed trial, e.g. a lost worker node (default: 2)")
    p.add_argument("--tuned-examples", default=unset,
                   help="tuned-examples folder (default: $METAMAPG_TUNED_EXAMPLES, "
                        "./tuned_examples, or the one beside the package)")
    p.add_argument("--config", metavar="JSON", default=unset,
                   help="JSON config settings applied to every arm on top of its tuned "
                        "example, e.g. '{\"correction_clip\": 1.0}'; checked like the "
                        "file's own keys")
    p.add_argument("--budget-fraction", type=float, default=unset,
                   help="cut every arm's full-size budget and T_warm to this fraction in "
                        "(0, 1]: a pilot at the real settings (default 1)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the sweep in DIR: finished trials are not rerun")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="if <storage-path>/<name> already holds this sweep, continue it "
                        "(for jobs that may be retried) instead of refusing")
    p.add_argument("--quiet", action="store_true", help="only our progress lines, not Tune's")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also Ray's and RLlib's routine notices (hidden by default)")
    p.add_argument("--no-reuse-actors", dest="reuse_actors", action="store_false",
                   help="start every trial in a new process (Tune's reuse_actors off); by "
                        "default a finished trial's process runs the next trial, which "
                        "builds its algorithm afresh there and skips the start-up")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files per trial (Tune's default; off "
                        "in a sweep, where it costs every iteration about 25 ms of the "
                        "driver's time; the report reads result.json)")
    p.add_argument("--progress-every", type=float, default=30.0,
                   help="seconds between progress lines")
    if report_flag:
        p.add_argument("--report", action="store_true",
                       help="after the sweep, write 'metamapg report' output to "
                            "<experiment>/report")


SWEEP_DEFAULTS = {"arms": None, "seeds": "0-24", "name": None,
                  "max_concurrent": 12, "cpus_per_trial": 1.0, "gpus_per_trial": 0.0,
                  "max_failures": 2, "tuned_examples": None, "config": None,
                  "budget_fraction": 1.0}


def sweep_setting(args, key):
    """A sweep flag's value: as given, else its default."""
    return getattr(args, key, SWEEP_DEFAULTS[key])


def spec_from_args(args):
    """The :class:`SweepSpec` the sweep flags describe (``--resume`` excluded)."""
    from rllib_metamapg.rllib_experiments import parse_json
    from rllib_metamapg.sweep.plan import SweepSpec, parse_seeds

    if args.resume:
        given = [k for k in SWEEP_DEFAULTS if hasattr(args, k)]
        given += ["env"] if args.env else []
        given += ["smoke"] if args.smoke else []
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UsageError(
                f"--resume continues a sweep with the settings it was started with, so "
                f"{flags} would be ignored; drop {flags}. To change them (e.g. the "
                "resources), start a new sweep with --name.")
        return None
    if not args.env:
        raise UsageError("--env is required (or --resume DIR).")
    v = {k: sweep_setting(args, k) for k in SWEEP_DEFAULTS}
    if limits.smoke():  # the env's smoke budget, one seed, on the CPU
        from rllib_metamapg.sweep.plan import parse_seeds

        # The folder keeps the name the documented command gives it (not <env>-smoke),
        # so its --resume and report lines find it.
        v["name"] = v["name"] or (f"{args.env}-smoke" if args.smoke else args.env)
        args.smoke = True
        v["seeds"] = ",".join(str(s) for s in parse_seeds(v["seeds"])[:1])
        v["max_concurrent"] = min(v["max_concurrent"], 2)
        v["gpus_per_trial"] = 0.0
        limits.announce_smoke({}, f"--smoke, seeds {v['seeds']}, --max-concurrent "
                                  f"{v['max_concurrent']}, --gpus-per-trial 0")
    arms = None
    if v["arms"] is not None:
        arms = [a.strip() for a in v["arms"].replace(" ", ",").split(",") if a.strip()]
        if not arms:
            raise UsageError(f"--arms={v['arms']!r} names no arm; give arms such as "
                             f"'ippo,peer_only' (registered: {registry.arm_choices('rllib')}), "
                             "or leave --arms out for all of them.")
        # Aliases (pg, full) are the arms they name; plan_sweep refuses unknown names.
        arms = [_canonical(a) for a in arms]
        if registry.reference_arm() not in arms:
            arms = [registry.reference_arm()] + arms  # the paired tests need it
    return SweepSpec(
        env=args.env, arms=arms,
        seeds=parse_seeds(v["seeds"]), smoke=args.smoke, name=v["name"],
        storage_path=args.storage_path, max_concurrent=v["max_concurrent"],
        cpus_per_trial=v["cpus_per_trial"], gpus_per_trial=v["gpus_per_trial"],
        max_failures=v["max_failures"], tuned_examples=v["tuned_examples"],
        config=None if v["config"] is None else parse_json(v["config"], "--config"),
        report=bool(getattr(args, "report", False)), reuse_actors=args.reuse_actors,
        tensorboard=args.tensorboard,
        budget_fraction=v["budget_fraction"])


def _canonical(name: str) -> str:
    try:
        return registry.canonical_arm(name)
    except registry.RegistryError:
        return name


def _sweep(args) -> int:
    from rllib_metamapg.sweep.run import (resume_sweep, run_sweep, shutdown_ray,
                                          write_sweep_report)

    from rllib_metamapg import quiet

    verbose = 0 if args.quiet else 1
    if not args.verbose:
        quiet.drop_noise()
    if args.quiet:
        quiet.silence_tune_banners()
    spec = spec_from_args(args)
    if args.plan:
        if spec is None:
            raise UsageError("--plan prices a sweep before it runs; give its flags (--env, "
                             "--arms, --seeds, ...) instead of --resume.")
        from rllib_metamapg.sweep.estimate import print_plan
        from rllib_metamapg.sweep.plan import plan_sweep

        return print_plan([plan_sweep(spec)], args, cpus_per_trial=spec.cpus_per_trial,
                          gpus_per_trial=spec.gpus_per_trial,
                          max_concurrent=spec.max_concurrent)
    stop = GracefulStop()
    path = None
    try:
        if spec is None:
            path, failed = resume_sweep(args.resume, verbose=verbose,
                                        on_ray_started=stop.install, ray_ui=args.ray_ui)
        else:
            path, failed = run_sweep(spec, verbose=verbose,
                                     progress_every_s=args.progress_every,
                                     resume_existing=args.resume_if_exists,
                                     on_ray_started=stop.install, ray_ui=args.ray_ui)
    except KeyboardInterrupt:  # a signal before Tune took over its handling
        if not stop.received:
            raise
    finally:
        stop.restore()
        shutdown_ray()  # the local Ray this process started: nothing may be left running
    if stop.received:
        hint = (f"Tune saved its state; continue it: metamapg sweep --resume {path}"
                if path else "it stopped before any trial started")
        print(f"[metamapg sweep] stopped by signal {stop.received}; {hint}", flush=True)
        return 128 + stop.received
    if _wants_report(args, spec, path) and not failed:
        print(f"[metamapg sweep] report: {write_sweep_report(path)}", flush=True)
    return 1 if failed else 0


def _wants_report(args, spec, path) -> bool:
    """``--report`` now, or given when the sweep started (a resumed sweep keeps it)."""
    if getattr(args, "report", False):
        return True
    if spec is not None or path is None:
        return False
    from rllib_metamapg.sweep.run import read_metadata

    return bool(read_metadata(path).get("spec", {}).get("report"))


class GracefulStop:
    """SIGTERM stops the sweep the way Ctrl-C does: Tune saves its state and returns.

    Tune stops gracefully on SIGINT and SIGUSR1 but not on SIGTERM, which is what
    ``timeout``, ``kill`` and job schedulers send (and Ray's driver answers SIGTERM
    by exiting, leaving its processes behind); so the first SIGTERM is passed on
    as SIGUSR1 and a second one ends the process at once.  ``install`` runs again
    once Ray has started, to take the signal back from Ray's handler.
    """

    def __init__(self):
        self.received = 0
        self._previous = signal.getsignal(signal.SIGTERM)
        self.install()

    def install(self):
        if not self.received:
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.received = signum
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            raise KeyboardInterrupt  # Tune is not running (yet): stop right here
        os.kill(os.getpid(), signal.SIGUSR1)

    def restore(self):
        signal.signal(signal.SIGTERM, self._previous)
