"""Tuned-example experiments for any RLlib algorithm: read, check, run (``rllib train``).

A file holds RLlib's classic format, ``<name>: {run, env, stop, config, ...}``
(the keys RLlib <= 2.39's ``rllib train`` accepted).  Everything is checked
before Ray starts: YAML syntax (with line and column), the experiment keys, the
algorithm (any RLlib algorithm, or a registered method's, e.g. ``MetaMAPG``), the
environment (ours, a Gymnasium id, or an importable env class), every config key
against that algorithm's config class (no dead keys) and its type, the stop keys,
and the config's own ``validate()``; a problem is a ``UsageError`` that names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rllib_metamapg.errors import UsageError
from rllib_metamapg.limits import check_size
from rllib_metamapg.rllib_legacy import translate_stop
from rllib_metamapg.schedules import is_finite_number

# The keys RLlib <= 2.39 accepted in an experiment of a tuned-example file.
EXPERIMENT_KEYS = ("run", "env", "stop", "config", "checkpoint_freq", "checkpoint_at_end",
                   "num_samples", "keep_checkpoints_num", "storage_path", "local_dir")
CONFIG_METHODS = {"model_config": "rl_module"}  # keys set through a builder method


def default_run() -> str:
    """The algorithm a file without ``run`` uses: the reference arm's method's."""
    from rllib_metamapg import registry

    return registry.method_of(registry.reference_arm()).algorithm_name


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
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML{where} ({problem}).") from None
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

    from rllib_metamapg.metamapg.cooldown_callback import RESULT_KEY

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


def resolve_algorithm(run: Any, what: str):
    """``(Algorithm class, its default config)`` for a registered method's algorithm
    (``MetaMAPG``, ...) or any algorithm RLlib registers
    (``ray.rllib.algorithms.registry.ALGORITHMS``)."""
    from ray.rllib.algorithms.registry import ALGORITHMS

    from rllib_metamapg.rllib_base.algorithm import algorithm_class, algorithm_names

    ours = algorithm_class(run) if isinstance(run, str) else None
    if ours is not None:
        return ours, ours.get_default_config()
    if isinstance(run, str) and run in ALGORITHMS:
        return ALGORITHMS[run]()
    names = sorted(ALGORITHMS) + sorted(algorithm_names())
    close = difflib.get_close_matches(str(run), names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"{what}={run!r} is not an RLlib algorithm.{hint} Choose one of "
                     f"{', '.join(names)}.")


def note(text: str) -> None:
    """One line on stderr about a classic RLlib name that was mapped."""
    print(f"rllib: note: {text}", file=sys.stderr, flush=True)


def translated(config: Dict[str, Any], base, prefix: str, where: str) -> Dict[str, Any]:
    """``config`` in new-stack names (:func:`rllib_legacy.translate_config`), a note per
    mapped key; an unmappable one is a ``UsageError`` starting with ``prefix``."""
    from rllib_metamapg.rllib_legacy import translate_config

    try:
        settings, notes = translate_config(config, base)
    except ValueError as err:
        raise UsageError(f"{prefix}{err}") from None
    for text in notes:
        note(f"{where}: {text}")
    return settings


def grid_values(config: Dict[str, Any], where: str) -> Dict[str, list]:
    """``{key: candidates}`` of the settings given as Tune's ``{"grid_search": [...]}``."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and "grid_search" in value:
            values = value["grid_search"]
            if set(value) != {"grid_search"} or not isinstance(values, list) or not values:
                raise UsageError(f"{where}.config.{key}: write a grid as "
                                 "{grid_search: [value, ...]} with at least one value.")
            out[key] = values
    return out


def build_config(env: Any, config: Dict[str, Any], where: str, run: Optional[str] = None):
    """A validated config of algorithm ``run`` from a flat config dict (no Ray needed)."""
    return _built(env, config, where, run)[0]


def _built(env: Any, config: Dict[str, Any], where: str, run: Optional[str] = None):
    """``(config, grid, keys)``: the validated config of :func:`build_config`, the
    settings given as ``{grid_search: [...]}`` (for :func:`param_space`), and the keys
    the input set, under their new-stack names.

    Classic RLlib names are mapped (:mod:`rllib_metamapg.rllib_legacy`, one note
    each).  A grid is checked value by value and the config built with its first value.
    """
    from rllib_metamapg.rllib_legacy import MeanStdFilterConnector

    run = run or default_run()
    if not isinstance(config, dict):
        raise UsageError(f"{where}.config must be a mapping of {run} config settings.")
    algo_cls, base = resolve_algorithm(run, f"{where}.run")
    _check_env(env, f"{where}.env")
    _check_installed(env, f"{where}.env")  # validate() may build the env to list its agents
    config = translated(config, base, f"{where}.", where)
    grid = grid_values(config, where)
    for key, values in grid.items():
        for value in values[1:]:
            if key not in CONFIG_METHODS and key in vars(base):
                _check_type(getattr(base, key), value, f"{where}.config.{key}")
    config = {k: (grid[k][0] if k in grid else v) for k, v in config.items()}
    mean_std = config.pop("observation_filter", None) == "MeanStdFilter"
    check_config_keys(base, config, where)
    if config.get("framework", "torch") != "torch":
        raise UsageError(f"{where}.config.framework={config['framework']!r}: only 'torch' "
                         "is installed (RLlib's new API stack).")
    plain = {k: v for k, v in config.items() if k not in CONFIG_METHODS}
    cfg = base.environment(env).update_from_dict(plain)
    for key, method in CONFIG_METHODS.items():
        if key in config:
            getattr(cfg, method)(**{key: config[key]})
    try:
        cfg.validate()
    except (ValueError, TypeError) as err:
        raise UsageError(f"{where}.config: {str(err).splitlines()[0]}") from None
    from rllib_metamapg.rllib_base.algorithm import PluginAlgorithm, with_default_wiring

    if isinstance(algo_cls, type) and issubclass(algo_cls, PluginAlgorithm):
        try:  # what building it will do (builds the env): shown, and checked, here
            cfg = with_default_wiring(cfg, cfg)
        except (ValueError, TypeError, KeyError) as err:
            raise UsageError(f"{where}.config: {str(err).splitlines()[0]}") from None
    if mean_std:
        cfg.env_runners(env_to_module_connector=MeanStdFilterConnector(cfg.is_multi_agent))
    return cfg, grid, frozenset(config)


def param_space(config, grid: Dict[str, list]) -> Any:
    """What Tune gets: the config, or its dict with the file's grids put back."""
    if not grid:
        return config
    from ray import tune

    space = config.to_dict()
    for key, values in grid.items():
        name = key if key in space else key.rstrip("_")
        if key == "model_config":
            name = "_model_config"
        if name not in space:
            raise UsageError(f"config.{key}: a grid_search over it is not supported here; "
                             "run one experiment per value.")
        space[name] = tune.grid_search(values)
    return space


def check_config_keys(base, config: Dict[str, Any], where: str) -> None:
    """Every key a setting of ``base``'s config class, each value of its type."""
    kind = type(base).__name__
    settable = {k for k in dir(type(base))
                if isinstance(getattr(type(base), k, None), property)
                and getattr(type(base), k).fset is not None}
    # "framework" is the key RLlib's files used for framework_str.
    known = set(vars(base)) | settable | set(CONFIG_METHODS) | {"framework"}
    for key, value in config.items():
        if key not in known or key.startswith("_"):
            close = difflib.get_close_matches(str(key), sorted(k for k in known
                                                               if not k.startswith("_")), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"{where}.config.{key} is not a {kind} setting.{hint}")
        if key not in CONFIG_METHODS and key != "framework":
            _check_type(getattr(base, key), value, f"{where}.config.{key}")


def _check_env(env: Any, what: str) -> None:
    """One of our envs, a Gymnasium id, or an importable env class (``pkg.module.Env``):
    what a fresh ``rllib train`` process can build."""
    import gymnasium as gym

    from rllib_metamapg.envs import ENV_NAMES

    if isinstance(env, str) and (env in ENV_NAMES or env in gym.envs.registry
                                 or _importable_class(env)):
        return
    close = difflib.get_close_matches(str(env), list(ENV_NAMES) + list(gym.envs.registry), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"{what}={env!r} is not a registered environment.{hint} Use one of "
                     f"{sorted(ENV_NAMES)}, a Gymnasium id (e.g. 'CartPole-v1'), or an env "
                     "class path such as 'my_pkg.envs.MyEnv'.")


def _importable_class(path: str) -> bool:
    import importlib

    module, _, name = path.rpartition(".")
    if not module:
        return False
    try:
        return isinstance(getattr(importlib.import_module(module), name, None), type)
    except ImportError:
        return False


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
    elif default == "auto":  # RLlib's "auto" settings take a number too
        ok = isinstance(value, str) or (isinstance(value, (int, float))
                                         and not isinstance(value, bool))
        kind = "'auto' or a number"
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


@dataclasses.dataclass
class Experiment:
    """One checked experiment of a tuned-example file or the command line."""

    name: str
    run: str
    config: Any
    stop: Dict[str, float]
    checkpoint_freq: int = 0
    checkpoint_at_end: bool = True
    num_samples: int = 1
    keep_checkpoints_num: Optional[int] = None
    storage_path: Optional[str] = None
    # Config keys the file or --config set (not left at the algorithm's default).
    explicit: frozenset = frozenset()
    # Settings given as {grid_search: [...]}: one trial per value (per num_samples).
    grid: Dict[str, list] = dataclasses.field(default_factory=dict)


def _whole(value: Any, what: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise UsageError(f"{what}={value!r} must be an integer >= {low}.")
    return value


def prepare_experiments(experiments: Dict[str, Dict[str, Any]],
                        overrides: Dict[str, Any], source: str) -> List[Experiment]:
    """Checked experiments; ``overrides`` (command-line flags) win over the file."""
    out = []
    for name, exp in experiments.items():
        where = f"{source}: {name}"
        exp = {**exp, **{k: v for k, v in overrides.items()
                         if k not in ("stop", "framework")}}
        exp["config"] = _config_with_env(exp, overrides.get("framework"), where)
        run = exp.get("run") or default_run()
        resolve_algorithm(run, f"{where}.run")
        # --stop replaces the file's stop rules (RLlib's --stop did too).
        stop = _check_number_dict(overrides["stop"] if overrides.get("stop") else
                                  exp.get("stop"), f"{where}.stop")
        stop, notes = translate_stop(stop)
        for text in notes:
            note(f"{where}: {text}")
        if not stop:
            raise UsageError(f"{where}.stop is empty: give a budget such as "
                             "{'num_env_steps_sampled_lifetime': 100000}.")
        check_stop_keys(stop, f"{where}.stop")
        if stop.get("training_iteration", 1) < 1:
            raise UsageError(f"{where}.stop.training_iteration={stop['training_iteration']!r} "
                             "must be >= 1: Tune checks a stop rule after each iteration, so "
                             "a trial always trains at least one.")
        keep = exp.get("keep_checkpoints_num")
        config, grid, keys = _built(exp.get("env"), exp.get("config") or {}, where, run)
        check_size("trials", exp.get("num_samples", 1), f"{where}.num_samples="
                   f"{exp.get('num_samples', 1)!r}")
        out.append(Experiment(
            name=name, run=run, stop=stop,
            config=config, grid=grid,
            checkpoint_freq=_whole(exp.get("checkpoint_freq", 0), f"{where}.checkpoint_freq",
                                   0),
            checkpoint_at_end=bool(exp.get("checkpoint_at_end", True)),
            num_samples=_whole(exp.get("num_samples", 1), f"{where}.num_samples", 1),
            keep_checkpoints_num=None if keep is None else _whole(
                keep, f"{where}.keep_checkpoints_num", 1),
            storage_path=exp.get("storage_path") or exp.get("local_dir"),
            explicit=keys))
    return out


def _config_with_env(exp: Dict[str, Any], framework: Optional[str],
                     where: str) -> Dict[str, Any]:
    """The experiment's config; ``env`` given inside it (as RLlib allowed) moves to the
    experiment, and ``--framework`` overrides the file's framework."""
    config = exp.get("config") or {}
    if not isinstance(config, dict):
        return config  # build_config refuses it, naming the experiment
    config = dict(config)
    if "env" in config:
        inner = config.pop("env")
        if exp.get("env") not in (None, inner):
            raise UsageError(f"{where}: env={exp['env']!r} and config.env={inner!r} "
                             "differ; give the env once.")
        exp["env"] = inner
    if framework is not None:
        config["framework"] = framework
    return config


def fit_to_machine(prepared: List[Experiment], ray_address: Optional[str]) -> None:
    """Makes each experiment's trials placeable, or refuses them, before Ray waits.

    On a local Ray instance this process starts, a trial whose request exceeds
    the machine would stay PENDING forever.  RLlib's default ``num_env_runners``
    (2, plus the main process: 3 CPUs) is the usual cause on a small machine: when
    the user did not set it, it is lowered to what fits and the change is printed;
    a request the user set, or one that no runner count fixes (GPUs, learners),
    exits 2 naming the settings.  A running cluster is checked after ``ray.init``
    (:func:`wait_for_cluster`).
    """
    from rllib_metamapg import resources

    if not resources.will_start_local_ray(ray_address):
        return
    total = resources.local_resources()
    if total is None:
        return
    for exp in prepared:
        config = exp.config
        if resources.fits(_bundles(config), total):
            continue
        runners = config.num_env_runners or 0
        fitted = (None if "num_env_runners" in exp.explicit
                  else _fewer_runners(config, runners, total))
        if fitted is not None:
            print(f"[rllib] {exp.name}: this machine has {resources.fmt(total)}; "
                  f"{exp.run}'s default num_env_runners={runners} asks for "
                  f"{resources.fmt(resources.total_need(_bundles(config)))}, so it runs with "
                  f"num_env_runners={fitted.num_env_runners} (set num_env_runners in "
                  "--config or the file to choose).", flush=True)
            exp.config = fitted
            continue
        need = resources.total_need(_bundles(config))
        raise UsageError(
            f"{exp.name}: each trial needs {resources.fmt(need)} (num_env_runners={runners} "
            f"x num_cpus_per_env_runner={config.num_cpus_per_env_runner:g} + "
            f"num_cpus_for_main_process={config.num_cpus_for_main_process:g}, "
            f"num_learners={config.num_learners}, num_gpus_per_learner="
            f"{config.num_gpus_per_learner:g}), but this machine has {resources.fmt(total)}, "
            "so it could never start. Lower num_env_runners (0 samples in the main process) "
            "or the GPUs asked for, or pass --ray-address of a cluster that has them.")


def _fewer_runners(config, runners: int, total):
    """``config`` with the most env runners below ``runners`` that fit, else None."""
    from rllib_metamapg import resources

    for fewer in range(runners - 1, -1, -1):
        trial = config.copy(copy_frozen=False).env_runners(num_env_runners=fewer)
        if resources.fits(_bundles(trial), total):
            return trial
    return None


def _bundles(config) -> List[Dict[str, float]]:
    return [dict(b) for b in config.algo_class.default_resource_request(config).bundles]


def wait_for_cluster(prepared: List[Experiment]) -> None:
    """On a running cluster: a bounded wait for room, then exit 2 (never a silent hang)."""
    from rllib_metamapg import resources

    requests = {f"each trial of {e.name}": _bundles(e.config) for e in prepared}
    if not resources.wait_for(requests, "rllib"):
        raise UsageError("the Ray cluster never had room for a trial within the wait "
                         f"(${resources.WAIT_ENV}); lower num_env_runners or the GPUs asked "
                         "for, or add nodes.")


def prepare(experiments: Dict[str, Dict[str, Any]], stop_override: Dict[str, float],
            source: str) -> List[Tuple[str, Any, Dict[str, float]]]:
    """``(name, config, stop)`` triples of registered methods' experiments (the sweep's
    tuned examples); raises ``UsageError``."""
    from rllib_metamapg.rllib_base.algorithm import algorithm_names

    out = []
    for e in prepare_experiments(experiments, {"stop": stop_override}, source):
        if e.run not in algorithm_names():
            raise UsageError(f"{source}: {e.name}.run={e.run!r}: a sweep runs the "
                             f"algorithms of registered methods ({sorted(algorithm_names())}).")
        out.append((e.name, e.config, e.stop))
    return out


def run_experiments(prepared: List[Experiment], *, verbose: int = 0,
                    ray_address: Optional[str] = None, experiment_name: Optional[str] = None,
                    restore: Optional[str] = None, resume: bool = False,
                    ray_init: Optional[Dict[str, Any]] = None,
                    checkpoint_score_attr: Optional[str] = None) -> int:
    """Runs each experiment with Tune; returns 0 if every trial finished, else 1.

    Args:
        verbose: 0 prints our summary lines and errors only, 1 adds Tune's
            progress and Ray's warnings, 2 everything (workers' logs too).
        restore: An algorithm checkpoint every trial starts from.
        resume: Continue the experiment already in the storage folder.
        ray_init: Extra ``ray.init`` arguments for a local Ray (``--ray-num-cpus``, ...).
        checkpoint_score_attr: Result key ranking the checkpoints kept.
    """
    import ray
    from ray import tune

    from rllib_metamapg import resources
    from rllib_metamapg.atomic import check_output_dir
    from rllib_metamapg.hash_seed import worker_runtime_env
    from rllib_metamapg.rllib_base.algorithm import register_all

    for exp in prepared:  # before Ray starts: a file in the way would fail at the end
        if exp.storage_path and "://" not in exp.storage_path:
            check_output_dir(Path(exp.storage_path).expanduser(), "--storage-path")
    fit_to_machine(prepared, ray_address)
    local = resources.will_start_local_ray(ray_address)
    init = dict(ray_init or {})
    init["runtime_env"] = worker_runtime_env(init.get("runtime_env"))
    ray.init(address=ray_address, ignore_reinit_error=True, log_to_driver=verbose >= 2,
             logging_level=logging.INFO if verbose else logging.ERROR, **init)
    if not local:
        wait_for_cluster(prepared)
    register_all()
    failed = 0
    for exp in prepared:
        name = experiment_name or exp.name
        trainable, _ = resolve_algorithm(exp.run, "run")
        config = exp.config
        if restore:
            config = config.copy(copy_frozen=False).callbacks(
                on_algorithm_init=_restorer(str(Path(restore).resolve())))
        storage = str(Path(exp.storage_path).expanduser().resolve()) if exp.storage_path \
            else None
        run_config = tune.RunConfig(
            name=name, stop=exp.stop, verbose=min(verbose + 1, 3) if verbose else 0,
            storage_path=storage,
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_at_end=exp.checkpoint_at_end,
                checkpoint_frequency=exp.checkpoint_freq,
                num_to_keep=exp.keep_checkpoints_num,
                checkpoint_score_attribute=checkpoint_score_attr))
        path = f"{storage or Path('~/ray_results').expanduser()}/{name}"
        if resume:
            if not tune.Tuner.can_restore(path):
                raise UsageError(f"--resume: no Tune experiment at {path}; check "
                                 "--storage-path and --experiment-name.")
            tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            tuner = tune.Tuner(trainable, param_space=param_space(config, exp.grid),
                               run_config=run_config,
                               tune_config=tune.TuneConfig(num_samples=exp.num_samples))
        for res in tuner.fit():
            failed += _summary(name, res)
    return 1 if failed else 0


def _restorer(path: str):
    def on_algorithm_init(algorithm, **kwargs):
        algorithm.restore_from_path(path)

    return on_algorithm_init


def _summary(name: str, res) -> int:
    """Prints one line per trial (training and evaluation return); 1 if it failed."""
    if res.error is not None:
        print(f"{name}: trial failed: {res.error}", file=sys.stderr)
        return 1
    m = res.metrics or {}
    train = (m.get("env_runners") or {}).get("episode_return_mean")
    evaluation = ((m.get("evaluation") or {}).get("env_runners") or {}).get(
        "episode_return_mean")
    phase = (m.get("metamapg") or {}).get("phase")
    parts = [f"{m.get('training_iteration')} iterations",
             f"{m.get('num_env_steps_sampled_lifetime')} env steps",
             f"episode_return_mean={_num(train)}", f"evaluation_return_mean={_num(evaluation)}"]
    if phase is not None:
        parts.append(f"phase={phase}")
    parts.append(f"checkpoint={res.checkpoint.path if res.checkpoint else None}")
    print(f"{name}: " + ", ".join(parts), flush=True)
    return 0


def _num(x):
    return "n/a" if x is None else f"{x:.4g}"
