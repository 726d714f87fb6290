"""The ``rllib`` command (Ray 2.60 no longer ships one): train MetaMAPG from tuned examples.

    rllib train file tuned_examples/stag_hunt/meta_mapg-smoke.yaml [--stop JSON]
        [--storage-path DIR]
    rllib train --run MetaMAPG --env stag_hunt --config '{"arm": "peer_only"}'
        --stop '{"training_iteration": 5}'
    rllib evaluate <checkpoint dir> [--env stag_hunt] [--episodes 50] [--out result.json]

Tuned-example files use RLlib's classic format, ``<name>: {run, env, stop, config}``.
Everything is checked before Ray starts -- YAML/JSON syntax, the experiment
keys, every config key against ``MetaMAPGConfig`` (no dead keys) and its type,
the environment name, and the config's own ``validate()`` -- and a problem
exits with status 2 and a message that names the key.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rllib_metamapg.schedules import is_finite_number

EXPERIMENT_KEYS = ("run", "env", "stop", "config")
CONFIG_METHODS = {"model_config": "rl_module"}  # keys set through a builder method


class UsageError(ValueError):
    """Bad command-line input or tuned-example file; the message names the key."""


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{what}: not valid JSON ({err.msg} at column {err.colno}).") from None


def load_experiments(path: str) -> Dict[str, Dict[str, Any]]:
    """Reads a tuned-example YAML file: ``{name: {run, env, stop, config}}``."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{path}: no such file.")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: not valid YAML ({str(err).splitlines()[0]}).") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: expected a mapping '<experiment name>: {{run, env, stop, "
                         "config}'.")
    for name, exp in data.items():
        if not isinstance(exp, dict):
            raise UsageError(f"{path}: experiment {name!r} must be a mapping with keys "
                             f"{list(EXPERIMENT_KEYS)}.")
        unknown = sorted(set(exp) - set(EXPERIMENT_KEYS))
        if unknown:
            raise UsageError(f"{path}: experiment {name!r} has unknown key(s) {unknown}; "
                             f"allowed: {list(EXPERIMENT_KEYS)}.")
    return data


def _check_number_dict(value: Any, what: str) -> Dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a mapping of result keys to numbers.")
    for key, v in value.items():
        if not isinstance(v, (int, float)) or not is_finite_number(v):
            raise UsageError(f"{what}.{key}={v!r} must be a finite number.")
    return dict(value)


# Result keys Tune adds to every result, besides RLlib's metric names.
TUNE_RESULT_KEYS = ("training_iteration", "time_total_s", "time_this_iter_s",
                    "time_since_restore", "iterations_since_restore", "timestamp")
STOP_EXAMPLES = ("training_iteration", "num_env_steps_sampled_lifetime",
                 "env_runners/episode_return_mean")


def result_key_heads() -> List[str]:
    """First segments a result key can start with: Tune's keys, RLlib's metric and
    group names (``ray.rllib.utils.metrics``), and this package's ``metamapg``."""
    from ray.rllib.utils import metrics

    from rllib_metamapg.callbacks.cooldown_callback import RESULT_KEY

    names = {v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str)}
    return sorted(names | set(TUNE_RESULT_KEYS) | {RESULT_KEY})


def check_stop_keys(stop: Dict[str, float], what: str) -> None:
    """Refuses a stop key no result can hold: Tune would only warn and train forever."""
    heads = result_key_heads()
    for key in stop:
        head = key.split("/")[0]
        if head in heads:
            continue
        close = difflib.get_close_matches(head, heads, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"{what}.{key}: no result holds this key, so the run would never "
                         f"stop.{hint} Common stop keys: {', '.join(STOP_EXAMPLES)}.")


def build_config(env: Any, config: Dict[str, Any], where: str):
    """A validated ``MetaMAPGConfig`` from a flat config dict (no Ray session needed)."""
    from rllib_metamapg import MetaMAPGConfig

    if not isinstance(config, dict):
        raise UsageError(f"{where}.config must be a mapping of MetaMAPGConfig settings.")
    _check_env(env, f"{where}.env")
    _check_installed(env, f"{where}.env")  # validate() builds the env to list its agents
    base = MetaMAPGConfig()
    settable = {k for k in dir(type(base))
                if isinstance(getattr(type(base), k, None), property)
                and getattr(type(base), k).fset is not None}
    known = set(vars(base)) | settable | set(CONFIG_METHODS)
    for key, value in config.items():
        if key not in known or key.startswith("_"):
            close = difflib.get_close_matches(str(key), sorted(k for k in known
                                                               if not k.startswith("_")), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"{where}.config.{key} is not a MetaMAPGConfig setting.{hint}")
        if key not in CONFIG_METHODS:
            _check_type(getattr(base, key), value, f"{where}.config.{key}")
    plain = {k: v for k, v in config.items() if k not in CONFIG_METHODS}
    cfg = base.environment(env).update_from_dict(plain)
    for key, method in CONFIG_METHODS.items():
        if key in config:
            getattr(cfg, method)(**{key: config[key]})
    try:
        cfg.validate()
    except (ValueError, TypeError) as err:
        raise UsageError(f"{where}.config: {str(err).splitlines()[0]}") from None
    return cfg


def _check_env(env: Any, what: str) -> None:
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from rllib_metamapg.envs import ENV_NAMES, register_envs

    register_envs()  # Tune forgets registrations across ray.shutdown()/ray.init()
    if not isinstance(env, str) or not _global_registry.contains(ENV_CREATOR, env):
        raise UsageError(f"{what}={env!r} is not a registered environment; choose one of "
                         f"{sorted(ENV_NAMES)}.")


def _check_installed(env: str, what: str) -> None:
    from rllib_metamapg.env_specs import check_installed

    try:
        check_installed(env)
    except ValueError as err:
        raise UsageError(f"{what}: {err}") from None


def _check_type(default: Any, value: Any, what: str) -> None:
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        kind = "true/false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        kind = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        kind = "a string"
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
        kind = "a mapping"
    else:
        return
    if not ok:
        raise UsageError(f"{what}={value!r} must be {kind}.")


def prepare(experiments: Dict[str, Dict[str, Any]], stop_override: Dict[str, float],
            source: str) -> List[Tuple[str, Any, Dict[str, float]]]:
    """Validated ``(name, config, stop)`` triples; raises ``UsageError``."""
    prepared = []
    for name, exp in experiments.items():
        where = f"{source}: {name}"
        run = exp.get("run", "MetaMAPG")
        if run != "MetaMAPG":
            raise UsageError(f"{where}.run={run!r}: this command runs 'MetaMAPG' (use "
                             "config.arm: ippo for plain PPO).")
        stop = {**_check_number_dict(exp.get("stop"), f"{where}.stop"), **stop_override}
        check_stop_keys(stop, f"{where}.stop")
        if not stop:
            raise UsageError(f"{where}.stop is empty: give a budget such as "
                             "{'num_env_steps_sampled_lifetime': 100000}.")
        prepared.append((name, build_config(exp.get("env"), exp.get("config") or {}, where),
                         stop))
    return prepared


def run_experiments(prepared, storage_path: Optional[str], checkpoint_freq: int) -> int:
    """Runs each experiment with Tune; returns 0 if every trial finished, else 1."""
    import ray
    from ray import tune

    from rllib_metamapg.metamapg import MetaMAPG, register

    ray.init(ignore_reinit_error=True)
    register()
    failed = 0
    for name, config, stop in prepared:
        run_config = tune.RunConfig(
            name=name, stop=stop, verbose=1,
            storage_path=str(Path(storage_path).resolve()) if storage_path else None,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True,
                                                    checkpoint_frequency=checkpoint_freq))
        results = tune.Tuner(MetaMAPG, param_space=config, run_config=run_config).fit()
        for res in results:
            if res.error is not None:
                failed += 1
                print(f"{name}: trial failed: {res.error}", file=sys.stderr)
                continue
            m = res.metrics or {}
            ret = (m.get("env_runners") or {}).get("episode_return_mean")
            phase = (m.get("metamapg") or {}).get("phase")
            print(f"{name}: {m.get('training_iteration')} iterations, "
                  f"{m.get('num_env_steps_sampled_lifetime')} env steps, "
                  f"episode_return_mean={ret}, phase={phase}, "
                  f"checkpoint={res.checkpoint.path if res.checkpoint else None}")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rllib", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train MetaMAPG from a tuned example or flags",
                           description="Train from a YAML file ('rllib train file X.yaml') "
                                       "or from --run/--env/--config/--stop.")
    train.add_argument("source", nargs="*", metavar="file YAML",
                       help="'file' followed by a tuned-example YAML path")
    train.add_argument("--run", default=None, help="algorithm (only MetaMAPG)")
    train.add_argument("--env", default=None, help="registered environment name")
    train.add_argument("--config", default="{}", help="JSON object of MetaMAPGConfig settings")
    train.add_argument("--stop", default=None,
                       help="JSON stop criteria; overrides the file's stop keys")
    train.add_argument("--storage-path", default=None,
                       help="Tune storage path (default: ~/ray_results)")
    train.add_argument("--checkpoint-freq", type=int, default=0,
                       help="checkpoint every N iterations (one at the end always)")
    ev = sub.add_parser("evaluate", help="greedy evaluation of a saved checkpoint",
                        description="Restore an algorithm checkpoint (e.g. a Tune trial's "
                                    "checkpoint_000003) and run greedy (argmax) episodes.")
    ev.add_argument("checkpoint", help="algorithm checkpoint folder")
    ev.add_argument("--env", default=None,
                    help="registered env to evaluate in (default: the training env)")
    ev.add_argument("--episodes", type=int, default=50, help="number of episodes")
    ev.add_argument("--seed", type=int, default=None, help="evaluation seed")
    ev.add_argument("--out", default=None, help="also write the result as JSON here")
    return ap


def evaluate(args) -> int:
    """``rllib evaluate``: checks its input before Ray starts, prints and saves the result."""
    from rllib_metamapg.evaluate import CheckpointError, checkpoint_config, evaluate_checkpoint

    try:
        if args.episodes < 1:
            raise UsageError(f"--episodes={args.episodes} must be >= 1.")
        trained_on = checkpoint_config(args.checkpoint).get("env")
        if args.env is not None:
            _check_env(args.env, "--env")
        if isinstance(args.env or trained_on, str):
            _check_installed(args.env or trained_on, "--env" if args.env else "checkpoint env")
    except (UsageError, CheckpointError) as err:
        print(f"rllib: error: {err}", file=sys.stderr)
        return 2
    result = evaluate_checkpoint(args.checkpoint, args.env, args.episodes, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from rllib_metamapg.atomic import write_text

        write_text(args.out, text + "\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "evaluate":
        return evaluate(args)
    try:
        stop = _check_number_dict(parse_json(args.stop, "--stop") if args.stop else None,
                                  "--stop")
        if args.checkpoint_freq < 0:
            raise UsageError(f"--checkpoint-freq={args.checkpoint_freq} must be >= 0.")
        if args.source:
            if args.source[0] != "file" or len(args.source) != 2:
                raise UsageError("use 'rllib train file <yaml>' or 'rllib train --env NAME "
                                 "--config JSON --stop JSON'.")
            if args.run or args.env:
                raise UsageError("--run/--env cannot be combined with a file.")
            prepared = prepare(load_experiments(args.source[1]), stop, args.source[1])
        else:
            if not args.env:
                raise UsageError("--env is required without a file.")
            exp = {"run": args.run or "MetaMAPG", "env": args.env,
                   "config": parse_json(args.config, "--config"), "stop": stop}
            prepared = prepare({f"{args.env}-cli": exp}, {}, "command line")
    except UsageError as err:
        print(f"rllib: error: {err}", file=sys.stderr)
        return 2
    return run_experiments(prepared, args.storage_path, args.checkpoint_freq)


if __name__ == "__main__":
    sys.exit(main())
