"""The ``rllib`` command: RLlib <= 2.39's ``rllib train`` / ``rllib evaluate`` (Ray 2.60
ships none), for any RLlib algorithm and for ``MetaMAPG``.

    rllib train file tuned_examples/stag_hunt/meta_mapg-smoke.yaml [--stop JSON]
    rllib train --algo PPO --env CartPole-v1 --stop '{"training_iteration": 1}'
    rllib train -a MetaMAPG -e stag_hunt -c '{"inner_lr": 0.2}' -s '{"training_iteration": 5}'
    rllib evaluate <checkpoint dir> [--env NAME] [--episodes 50] [--out result.json]

Every input is checked before Ray starts (see :mod:`rllib_metamapg.rllib_experiments`);
a problem exits with status 2 and a message that names the key.  Output is quiet
by default (one summary line per trial); ``-v`` adds Tune's progress, ``-vv``
everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

from rllib_metamapg.errors import UsageError
from rllib_metamapg import limits
from rllib_metamapg.limits import check_size
from rllib_metamapg.rllib_experiments import (EXPERIMENT_KEYS, _check_env, default_run,
                                              _check_installed, _check_number_dict,
                                              load_experiments, parse_json, prepare,
                                              prepare_experiments, run_experiments)

__all__ = ["UsageError", "EXPERIMENT_KEYS", "load_experiments", "prepare", "main"]


# RLlib's documented flags (Ray <= 2.39) that do not apply to this install or the new API
# stack: accepted by the parser so that the refusal says why, not "unrecognized".
UNSUPPORTED_TRAIN_FLAGS = {
    "--local-mode": "Ray 2.60 removed local mode; run with --ray-num-cpus 1 to debug",
    "--trace": "eager tracing is TensorFlow's; only torch is installed",
    "--ray-num-nodes": "emulated multi-node clusters are not supported; use --ray-address",
    "--upload-dir": "Tune syncs to --storage-path now; give it a URI (s3://...)",
    "--resources-per-trial": "an RLlib algorithm takes its resources from its config "
                             "(num_env_runners, num_gpus_per_learner, ...)",
    "--scheduler": "trial schedulers are Tune's; use a Ray Tune script (docs/rllib.md)",
    "--scheduler-config": "trial schedulers are Tune's; use a Ray Tune script "
                          "(docs/rllib.md)",
}
UNSUPPORTED_EVAL_FLAGS = {
    "--render": "greedy evaluation here does not render; set render_mode in env_config "
                "if the env supports it",
    "--video-dir": "greedy evaluation here records no video",
    "--save-info": "rollouts are not saved; --out writes the summary",
    "--use-shelve": "rollouts are not saved; --out writes the summary",
    "--track-progress": "rollouts are not saved; --out writes the summary",
    "--local-mode": "Ray 2.60 removed local mode",
}


def _dest(flag: str) -> str:
    return "unsupported_" + flag.lstrip("-").replace("-", "_")


def _refuse_unsupported(args, table) -> None:
    for flag, why in table.items():
        if getattr(args, _dest(flag), None) is not None:
            raise UsageError(f"{flag} is one of RLlib's older 'rllib' flags that does not "
                             f"apply here: {why}.")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rllib", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train", help="train an RLlib algorithm from a tuned-example file or from flags",
        description="Train from a YAML file ('rllib train file X.yaml') or from "
                    "--algo/--env/--config/--stop, as RLlib <= 2.39's 'rllib train' did.")
    train.add_argument("source", nargs="*", metavar="file YAML",
                       help="'file' followed by a tuned-example YAML path")
    train.add_argument("-f", "--config-file", dest="config_file", default=None,
                       help="the tuned-example YAML (RLlib's older form of 'file YAML')")
    train.add_argument("--algo", "--run", "-a", "-r", dest="run", default=None,
                       help="algorithm: any RLlib algorithm (PPO, APPO, DQN, ...) or a "
                            "registered method's (MetaMAPG, ...; default: the file's 'run', "
                            "else the reference arm's method's)")
    train.add_argument("--env", "-e", default=None,
                       help="environment: ours (stag_hunt, ipd, ...), a Gymnasium id, or "
                            "one registered with ray.tune.register_env")
    train.add_argument("--config", "-c", default="{}",
                       help="JSON object of the algorithm's config settings")
    train.add_argument("--stop", "-s", default=None,
                       help="JSON stop criteria; replaces the file's stop keys")
    train.add_argument("--framework", default=None,
                       help="deep-learning framework; overrides the file's (only torch is "
                            "installed: '--framework torch' runs RLlib's tf files)")
    train.add_argument("-v", "--log-info", dest="verbose", action="count", default=0,
                       help="-v: Tune's progress and Ray's warnings; -vv: everything")
    train.add_argument("-vv", "--log-debug", dest="verbose", action="store_const", const=2,
                       default=0, help="everything (Ray's and the workers' logs too)")
    train.add_argument("--ray-num-cpus", type=int, default=None,
                       help="CPUs of the local Ray this command starts")
    train.add_argument("--ray-num-gpus", type=int, default=None,
                       help="GPUs of the local Ray this command starts")
    train.add_argument("--ray-object-store-memory", type=int, default=None,
                       help="object store bytes of the local Ray this command starts")
    train.add_argument("--ray-ui", action="store_true",
                       help="start Ray's dashboard with the local Ray")
    train.add_argument("--checkpoint-score-attr", default=None,
                       help="result key that ranks checkpoints for --keep-checkpoints-num "
                            "(default: the most recent ones are kept)")
    for flag in UNSUPPORTED_TRAIN_FLAGS:
        train.add_argument(flag, dest=_dest(flag), nargs="?", const=True, default=None,
                           help=argparse.SUPPRESS)
    train.add_argument("--checkpoint-freq", type=int, default=None,
                       help="checkpoint every N iterations (0: never; default: the file's "
                            "checkpoint_freq, else 0)")
    train.add_argument("--checkpoint-at-end", action=argparse.BooleanOptionalAction,
                       default=None, help="checkpoint when the trial ends (default: yes)")
    train.add_argument("--keep-checkpoints-num", type=int, default=None,
                       help="keep only the N most recent checkpoints")
    train.add_argument("--num-samples", type=int, default=None,
                       help="trials per experiment (Tune's num_samples)")
    train.add_argument("--restore", default=None, metavar="CHECKPOINT",
                       help="start every trial from this algorithm checkpoint")
    train.add_argument("--resume", action="store_true",
                       help="continue the experiment in --storage-path/--experiment-name")
    train.add_argument("--experiment-name", "-n", default=None,
                       help="Tune experiment folder name (default: the file's experiment name)")
    train.add_argument("--storage-path", "--local-dir", dest="storage_path", default=None,
                       help="Tune storage path (default: ~/ray_results)")
    train.add_argument("--ray-address", default=None,
                       help="Ray cluster to connect to (default: a local Ray)")
    ev = sub.add_parser("evaluate", help="greedy evaluation of a saved checkpoint",
                        description="Restore an algorithm checkpoint (e.g. a Tune trial's "
                                    "checkpoint_000003) and run greedy (argmax) episodes.")
    ev.add_argument("checkpoint", nargs="?", default=None,
                    help="algorithm checkpoint folder (none: an untrained --algo in --env)")
    ev.add_argument("--algo", "--run", "-a", "-r", dest="run", default=None,
                    help="algorithm of the checkpoint (read from it; checked when given)")
    ev.add_argument("--env", "-e", default=None,
                    help="env to evaluate in (default: the training env); its spaces must "
                         "match the checkpoint's")
    ev.add_argument("--episodes", type=int, default=None,
                    help="number of episodes (default 50 when --steps is not given)")
    ev.add_argument("--steps", type=int, default=None,
                    help="env steps to run instead (complete episodes are reported)")
    ev.add_argument("--config", "-c", default="{}",
                    help="JSON object of config settings merged over the checkpoint's")
    for flag in UNSUPPORTED_EVAL_FLAGS:
        ev.add_argument(flag, dest=_dest(flag), nargs="?", const=True, default=None,
                        help=argparse.SUPPRESS)
    ev.add_argument("--seed", type=int, default=None, help="evaluation seed")
    ev.add_argument("--out", default=None, help="also write the result as JSON here")
    return ap


def _overrides(args) -> dict:
    """Command-line flags that override a file's experiment keys."""
    out = {"stop": _check_number_dict(parse_json(args.stop, "--stop") if args.stop else None,
                                      "--stop")}
    if limits.smoke():  # a smoke run of any documented command: one iteration
        out["stop"] = {"training_iteration": 1}
        limits.announce_smoke({}, "stop after 1 training iteration")
    if args.framework is not None:
        out["framework"] = args.framework
    for flag, key in (("checkpoint_freq", "checkpoint_freq"),
                      ("checkpoint_at_end", "checkpoint_at_end"),
                      ("keep_checkpoints_num", "keep_checkpoints_num"),
                      ("num_samples", "num_samples"), ("storage_path", "storage_path")):
        if getattr(args, flag) is not None:
            out[key] = getattr(args, flag)
    return out


def _ray_init(args) -> dict:
    """``ray.init`` arguments from the --ray-* flags (a local Ray only)."""
    out = {}
    for flag, key in (("ray_num_cpus", "num_cpus"), ("ray_num_gpus", "num_gpus"),
                      ("ray_object_store_memory", "object_store_memory")):
        value = getattr(args, flag)
        if value is not None:
            if value < (1 if key == "num_cpus" else 0):
                raise UsageError(f"--{flag.replace('_', '-')}={value} is out of range.")
            out[key] = value
    if args.ray_address and (out or args.ray_ui):
        raise UsageError("--ray-num-cpus/--ray-num-gpus/--ray-object-store-memory/--ray-ui "
                         "size a local Ray; with --ray-address the cluster has its own.")
    # RLlib's own command starts the dashboard only with --ray-ui.
    out["include_dashboard"] = bool(args.ray_ui)
    return out


def train(args) -> int:
    if args.verbose == 0:  # RLlib's config warnings are noise to a user of this command
        from rllib_metamapg import quiet

        quiet.drop_noise()
        quiet.silence_tune_banners()
        for name in ("ray", "ray.rllib", "ray.tune"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        _refuse_unsupported(args, UNSUPPORTED_TRAIN_FLAGS)
        overrides = _overrides(args)
        if args.config_file:
            if args.source:
                raise UsageError("give the file once: 'rllib train file X.yaml' or "
                                 "'rllib train -f X.yaml'.")
            args.source = ["file", args.config_file]
        if args.source:
            if args.source[0] != "file" or len(args.source) != 2:
                raise UsageError("use 'rllib train file <yaml>' or 'rllib train --algo NAME "
                                 "--env NAME --config JSON --stop JSON'.")
            experiments = load_experiments(args.source[1])
            if args.run:
                overrides["run"] = args.run
            if args.env:
                raise UsageError("--env cannot be combined with a file (set it in the file).")
            if args.config not in (None, "{}"):
                raise UsageError("--config cannot be combined with a file (set it in the "
                                 "file's config).")
            source = args.source[1]
        else:
            if not args.env:
                raise UsageError("--env is required without a file.")
            run = args.run or default_run()
            experiments = {args.experiment_name or f"{args.env}-{run}": {
                "run": run, "env": args.env,
                "config": parse_json(args.config, "--config")}}
            source = "command line"
        if args.restore:
            from rllib_metamapg.evaluate import CheckpointError, checkpoint_config

            try:
                checkpoint_config(args.restore)
            except CheckpointError as err:
                raise UsageError(f"--restore: {err}") from None
        prepared = prepare_experiments(experiments, overrides, source)
        if args.resume and len(prepared) != 1:
            raise UsageError("--resume continues one experiment; the file holds "
                             f"{len(prepared)}.")
        return run_experiments(prepared, verbose=args.verbose, ray_address=args.ray_address,
                               experiment_name=args.experiment_name, restore=args.restore,
                               resume=args.resume, ray_init=_ray_init(args),
                               checkpoint_score_attr=args.checkpoint_score_attr)
    except UsageError as err:
        print(f"rllib: error: {err}", file=sys.stderr)
        return 2


def _eval_budget(args):
    """``(episodes, steps)``: one of them, as RLlib's --episodes / --steps."""
    if args.episodes is not None and args.steps is not None:
        raise UsageError("give --episodes or --steps, not both (an evaluation runs in one "
                         "unit).")
    for flag, value in (("--episodes", args.episodes), ("--steps", args.steps)):
        if value is not None and value < 1:
            raise UsageError(f"{flag}={value} must be >= 1.")
    if args.steps is not None:
        check_size("steps", args.steps)
        return None, args.steps
    episodes = 50 if args.episodes is None else args.episodes
    check_size("episodes", episodes)
    return episodes, None


def evaluate(args) -> int:
    """``rllib evaluate``: checks its input before Ray starts, prints and saves the result."""
    from rllib_metamapg.evaluate import (CheckpointError, check_env_matches, checkpoint_class,
                                         checkpoint_config, evaluate_checkpoint,
                                         evaluate_untrained)

    from rllib_metamapg import quiet

    quiet.drop_noise()
    try:
        _refuse_unsupported(args, UNSUPPORTED_EVAL_FLAGS)
        episodes, steps = _eval_budget(args)
        overrides = parse_json(args.config, "--config")
        if not isinstance(overrides, dict):
            raise UsageError("--config must be a JSON object of config settings.")
        if args.out:  # before the evaluation: a bad path fails at once, not after it
            from rllib_metamapg.atomic import OutputError, check_output_dir

            try:
                check_output_dir(Path(args.out).parent, "--out's folder")
            except OutputError as err:
                raise UsageError(str(err)) from None
        if args.checkpoint is None:
            if not (args.run and args.env):
                raise UsageError("without a checkpoint, give --algo and --env: an untrained "
                                 "algorithm is evaluated.")
            from rllib_metamapg.rllib_experiments import build_config

            config = build_config(args.env, overrides, "--config", args.run)
            result = evaluate_untrained(config, episodes, steps, args.seed)
        else:
            config = checkpoint_config(args.checkpoint)
            algo_cls = checkpoint_class(args.checkpoint)
            if args.run is not None and args.run != algo_cls.__name__:
                raise UsageError(f"--algo={args.run!r}, but {args.checkpoint} holds a "
                                 f"{algo_cls.__name__} checkpoint.")
            trained_on = config.get("env")
            if args.env is not None:
                _check_env(args.env, "--env")
            if isinstance(args.env or trained_on, str):
                _check_installed(args.env or trained_on,
                                 "--env" if args.env else "checkpoint env")
            if args.env is not None and args.env != trained_on:
                check_env_matches(config, args.env)
            settings = _checked_overrides(overrides, algo_cls)
            result = evaluate_checkpoint(args.checkpoint, args.env, episodes, args.seed,
                                         steps=steps, overrides=settings)
    except (UsageError, CheckpointError) as err:
        print(f"rllib: error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from rllib_metamapg.atomic import write_text

        write_text(args.out, text + "\n")
    return 0


def _checked_overrides(overrides: dict, algo_cls) -> dict:
    """``--config`` in new-stack names, each key a setting of the algorithm's config."""
    from rllib_metamapg.rllib_experiments import check_config_keys, translated

    base = algo_cls.get_default_config()
    settings = translated(overrides, base, "--", "--config")
    check_config_keys(base, settings, "--config")
    return settings


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    limits.announce_smoke(limits.apply_smoke(vars(args)))
    if args.command == "evaluate":
        return evaluate(args)
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
