"""Turns sweep settings into one Tune ``param_space`` and stop rule, checked before Ray starts.

Each arm's settings are its tuned example (:func:`rllib_metamapg.tuned_examples.experiment`:
the env's ``base.yaml``, budget and T_warm, its method's and its own settings),
validated exactly as ``rllib train file`` does -- so an arm of any registered
method can join, file or not.  ``arm`` and ``seed`` are a grid, so seed s of every
arm starts from the same weights.  When every arm runs under one algorithm class
that class is the trainable, and settings that differ between arms are chosen per
trial from the trial's arm; arms from several classes run under
:class:`~rllib_metamapg.sweep.trainable.PairedArms`, which builds each trial's
algorithm from its arm.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rllib_metamapg import registry
from rllib_metamapg.env_specs import SCORES, EnvSpec, get_env_spec
from rllib_metamapg.errors import UsageError
from rllib_metamapg.limits import check_size
from rllib_metamapg.rllib_experiments import prepare
from rllib_metamapg.schedules import is_finite_number
from rllib_metamapg.tuned_examples import check_overlay, experiment, find_folder, scale_budget

# A trial saves at most this many checkpoints before its last (Tune adds the end's).
# Each costs RLlib's save plus Tune's copy into the trial folder, outside the timed
# iteration (benchmarks/trial_overhead.py); a failed or interrupted trial redoes at
# most 1/CHECKPOINTS_PER_TRIAL of its budget from the last one.
CHECKPOINTS_PER_TRIAL = 4

# What a sweep scores by default; an env may score by another key (EnvSpec.metric).
METRIC = SCORES["return"]
ARM_CONFIGS_KEY = "metamapg_arm_configs"


@dataclass
class SweepSpec:
    """What to sweep.  Every field is checked by :func:`plan_sweep`.

    Attributes:
        env: Registered environment with sweep settings (see ``envs.specs``).
        arms: Arms of any registered methods (default: every registered arm);
            the registry's reference arm (``ippo``) is the paired tests' reference.
        seeds: Seeds; seed s gives the same initial weights in every arm.
        smoke: Use the env's smoke-sized settings and budget.
        name: Experiment folder name under ``storage_path``.
        storage_path: Local path or URI for results and checkpoints.
        max_concurrent: Trials running at once (the paper ran 12).
        cpus_per_trial: CPUs of each trial's driver-side learner.
        gpus_per_trial: GPUs (fractions allowed) of each trial's learner.
        max_failures: Retries of a trial that fails (worker loss, crash).
        tuned_examples: Folder of tuned examples (default: ``$METAMAPG_TUNED_EXAMPLES``,
            ``./tuned_examples``, or the one beside the installed package).
        config: Config settings applied to every arm on top of its tuned example
            (``--config '{"correction_clip": 1.0}'``), checked like the file's keys.
        base_overlay: A study variant: ``config``/``methods``/``samplers`` merged into
            the env's ``base.yaml`` before each arm is resolved
            (:func:`rllib_metamapg.tuned_examples.apply_overlay`).
        budget_fraction: Cut every arm's full-size budget and T_warm to this fraction
            (a pilot of a long study at the real settings; smoke budgets are never cut).
        report: Write ``metamapg report`` output when the sweep ends (kept for
            ``--resume``, which then writes it too).
        reuse_actors: Run the next trial in a finished trial's process (Tune's
            ``reuse_actors``): the trial's algorithm is built afresh there, without
            the process start-up and imports (see ``sweep.trainable``).
        tensorboard: Also write TensorBoard event files per trial (Tune's default;
            off in a sweep, whose report reads ``result.json``: it costs each
            iteration about 25 ms of waiting, see ``sweep.loggers``).
    """

    env: str
    arms: Optional[Sequence[str]] = None
    seeds: Sequence[int] = tuple(range(25))
    smoke: bool = False
    name: Optional[str] = None
    storage_path: str = "metamapg_results"
    max_concurrent: int = 12
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    tuned_examples: Optional[str] = None
    config: Optional[Dict[str, Any]] = None
    base_overlay: Optional[Dict[str, Any]] = None
    budget_fraction: float = 1.0
    report: bool = False
    reuse_actors: bool = True
    tensorboard: bool = False


@dataclass
class SweepPlan:
    """A checked sweep: what Tune runs and what the report needs."""

    spec: SweepSpec
    env_spec: EnvSpec
    name: str
    param_space: Dict[str, Any]
    stop_iterations: int
    evaluation_interval: int
    arm_files: Dict[str, str]
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoint_interval(self) -> int:
        return checkpoint_interval(self.stop_iterations, self.evaluation_interval)


def find_tuned_examples(folder: Optional[str] = None):
    """The tuned-examples folder (see :func:`rllib_metamapg.tuned_examples.find_folder`)."""
    return find_folder(folder)


def parse_seeds(text: str) -> List[int]:
    """``"0-24"``, ``"0,3,7"`` or a mix (``"0-2,10"``) -> sorted unique seeds."""
    seeds = set()
    parts = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
            else:
                lo = hi = int(part)
        except ValueError:
            raise UsageError(f"--seeds={text!r}: use non-negative integers like '0-24' or "
                             "'0,1,5'.") from None
        parts.append((lo, hi))
    # Counted before any list is made: '0-1000000000' must not allocate gigabytes.
    count = sum(hi - lo + 1 for lo, hi in parts)
    check_size("trials", count, f"--seeds={text!r} names {count:,} seeds, which")
    for lo, hi in parts:
        seeds.update(range(lo, hi + 1))
    if not seeds or min(seeds) < 0:
        raise UsageError(f"--seeds={text!r}: use non-negative integers like '0-24'.")
    return sorted(seeds)


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Checks ``spec`` and every arm's tuned example; raises ``UsageError``."""
    env_spec = _check_spec(spec)
    folder = find_tuned_examples(spec.tuned_examples)
    configs, stops, runs, sources = {}, {}, {}, {}
    for arm in spec.arms:
        name, exp = experiment(spec.env, arm, spec.smoke, folder, spec.base_overlay,
                               spec.budget_fraction)
        exp["config"].update(spec.config or {})
        where = f"tuned example {spec.env}/{arm}{'-smoke' if spec.smoke else ''}" + (
            " with --config" if spec.config else "")
        prepare({name: exp}, {}, where)  # the same checks as `rllib train file`
        configs[arm], stops[arm], runs[arm] = dict(exp["config"]), dict(exp["stop"]), exp["run"]
        sources[arm] = str(folder / spec.env / f"{arm}{'-smoke' if spec.smoke else ''}.yaml")
    stop_iterations, interval = _aligned_budget(configs, stops)
    name = spec.name or f"{spec.env}{'-smoke' if spec.smoke else ''}"
    param_space = _param_space(spec, configs, interval)
    metadata = {
        "env": spec.env, "arms": list(spec.arms), "seeds": list(spec.seeds),
        "smoke": spec.smoke, "metric": env_spec.metric, "tau": env_spec.tau,
        "tau_note": env_spec.note, "returns_nonnegative": env_spec.returns_nonnegative,
        "stop_iterations": stop_iterations, "evaluation_interval": interval,
        "reference_arm": registry.reference_arm(),
        "methods": {arm: registry.get_arm(arm).method for arm in spec.arms},
        "algorithms": runs, "tuned_examples": sources,
        # Enough to rebuild the param space on resume (Tune needs it re-passed
        # to resolve the classes and functions inside it).
        "spec": {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in dataclasses.asdict(spec).items()},
        "arm_configs": configs,
    }
    return SweepPlan(spec, env_spec, name, param_space, stop_iterations, interval, sources,
                     metadata)


def check_name(name: str) -> None:
    """An experiment name is one folder under ``--storage-path``, never a path."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
            or "\\" in name or name.startswith("."):
        raise UsageError(f"--name={name!r} must be a plain folder name (no '/', not starting "
                         "with '.'): the sweep is written to <storage-path>/<name>; to write "
                         "elsewhere, change --storage-path.")


def _check_spec(spec: SweepSpec) -> EnvSpec:
    try:
        env_spec = get_env_spec(spec.env)
    except ValueError as err:
        raise UsageError(f"--env: {err}") from None
    if spec.config is not None and not isinstance(spec.config, dict):
        raise UsageError(f"--config={spec.config!r} must be a JSON object of config settings, "
                         "e.g. '{\"lr\": 0.001}'.")
    if spec.base_overlay is not None:
        check_overlay(spec.base_overlay, "base_overlay")
    scale_budget({}, 1, spec.budget_fraction, "--budget-fraction")
    fixed = sorted(set(spec.config or {}) & {"arm", "seed"})
    if fixed:
        raise UsageError(f"--config sets {fixed[0]!r}, which the sweep grids over: use "
                         f"--{fixed[0]}s instead.")
    if spec.arms is None:
        spec.arms = registry.arm_names(engine="rllib")
    try:
        spec.arms = [registry.arm_for_engine(a, "rllib").name
                     for a in registry.parse_arms(list(spec.arms))]
    except registry.RegistryError as err:
        raise UsageError(f"--arms: {err}") from None
    seeds = list(spec.seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(
            not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise UsageError(f"--seeds={seeds!r}: give distinct non-negative integers.")
    trials = len(spec.arms) * len(seeds)
    check_size("trials", trials, f"{len(spec.arms)} arms x {len(seeds)} seeds = {trials:,} "
               "trials, which")
    if spec.name is not None:
        check_name(spec.name)
    if not isinstance(spec.max_concurrent, int) or spec.max_concurrent < 1:
        raise UsageError(f"--max-concurrent={spec.max_concurrent!r} must be an integer >= 1.")
    if not is_finite_number(spec.cpus_per_trial) or spec.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial={spec.cpus_per_trial!r} must be > 0.")
    if not is_finite_number(spec.gpus_per_trial) or spec.gpus_per_trial < 0:
        raise UsageError(f"--gpus-per-trial={spec.gpus_per_trial!r} must be >= 0 (fractions "
                         "such as 0.33 share a GPU between trials).")
    if spec.gpus_per_trial > 1 and spec.gpus_per_trial != int(spec.gpus_per_trial):
        raise UsageError(f"--gpus-per-trial={spec.gpus_per_trial!r}: above 1 GPU use a "
                         "whole number.")
    if not isinstance(spec.max_failures, int) or spec.max_failures < 0:
        raise UsageError(f"--max-failures={spec.max_failures!r} must be an integer >= 0.")
    return env_spec


def _aligned_budget(configs: Dict[str, Dict[str, Any]],
                    stops: Dict[str, Dict[str, float]]) -> Tuple[int, int]:
    """Stop iteration and eval interval so that the last iteration is evaluated.

    The report scores each seed on its final greedy evaluation, so the budget
    is rounded up to whole evaluation intervals (at most one interval more per
    evaluation than the tuned example asks for) and the interval is spread so
    the count of evaluations stays what the tuned example implies.
    """
    budgets = set()
    for arm, config in configs.items():
        stop = stops[arm]
        batch = config.get("train_batch_size_per_learner", 4000)
        if set(stop) - {"training_iteration", "num_env_steps_sampled_lifetime"}:
            raise UsageError(f"{arm}: a sweep stops on 'training_iteration' or "
                             f"'num_env_steps_sampled_lifetime', not {sorted(stop)}.")
        iters = [int(stop["training_iteration"])] if "training_iteration" in stop else []
        if "num_env_steps_sampled_lifetime" in stop:
            iters.append(math.ceil(stop["num_env_steps_sampled_lifetime"] / batch))
        budgets.add((min(iters), int(config.get("evaluation_interval") or 0)))
    if len(budgets) != 1:
        raise UsageError(f"arms disagree on budget or evaluation interval {sorted(budgets)}: "
                         "paired arms need the same budget.")
    (iterations, interval), = budgets
    if interval <= 0:
        interval = iterations
    evaluations = max(1, round(iterations / interval))
    interval = math.ceil(iterations / evaluations)
    return interval * evaluations, interval


def checkpoint_interval(stop_iterations: int, evaluation_interval: int) -> int:
    """Iterations between a trial's checkpoints: whole evaluation intervals (so each
    checkpoint is of an evaluated policy), at most :data:`CHECKPOINTS_PER_TRIAL` of them
    before the end.  One-shot games evaluate every iteration; checkpointing each one
    cost a second per 20-iteration trial for nothing a report or ``--resume`` needs."""
    evaluations = max(1, stop_iterations // max(1, evaluation_interval))
    return evaluation_interval * math.ceil(evaluations / CHECKPOINTS_PER_TRIAL)


def param_space_from_metadata(metadata: Dict[str, Any]) -> Dict[str, Any]:
    """The param space of a sweep, rebuilt from its ``metamapg_sweep.json``."""
    spec = SweepSpec(**metadata["spec"])
    return _param_space(spec, metadata["arm_configs"], int(metadata["evaluation_interval"]))


def algorithm_classes(arms: Sequence[str]) -> Dict[str, type]:
    """``{arm: Algorithm class}``."""
    return {arm: registry.method_of(arm).algorithm_class() for arm in arms}


def one_class(arms: Sequence[str]) -> bool:
    """Whether every trial can run the arms' one algorithm class with its ``arm`` setting:
    one class and no ``<arm>+<sampler>`` composition (whose trial label is not an arm
    setting)."""
    return (len(set(algorithm_classes(arms).values())) == 1
            and all(registry.get_arm(a).sampler == "on_policy" for a in arms))


def callbacks_for(algo_cls) -> List[type]:
    """The algorithm's own default callbacks plus the initial-weights digest and the
    on-target rate (which logs nothing in an env that does not report it)."""
    from rllib_metamapg.callbacks import InitialWeightsCallback, OnTargetCallback

    ours = [InitialWeightsCallback, OnTargetCallback]
    own = algo_cls.get_default_config().callbacks_class
    own = list(own) if isinstance(own, (list, tuple)) else [own]
    return [c for c in own if c not in ours] + ours


def _flat(config: Dict[str, Any]) -> Dict[str, Any]:
    """Tuned-example keys as ``update_from_dict`` keys."""
    return {("_model_config" if k == "model_config" else k): v for k, v in config.items()}


def _param_space(spec: SweepSpec, configs: Dict[str, Dict[str, Any]],
                 interval: int) -> Dict[str, Any]:
    from ray import tune

    classes = algorithm_classes(spec.arms)
    space: Dict[str, Any] = {
        "env": spec.env,
        "arm": tune.grid_search(list(spec.arms)),
        "seed": tune.grid_search(list(spec.seeds)),
        "evaluation_interval": interval,
        "num_cpus_for_main_process": spec.cpus_per_trial,
        "num_gpus_per_learner": spec.gpus_per_trial,
    }
    if not one_class(spec.arms):
        # Each trial builds its arm's own algorithm from this table (PairedArms).
        space[ARM_CONFIGS_KEY] = {arm: {"algorithm": classes[arm], "config": _flat(c)}
                                  for arm, c in configs.items()}
        return space
    algo_cls = next(iter(classes.values()))
    defaults = algo_cls.get_default_config()
    keys = set().union(*configs.values()) - {"arm", "seed"}
    first = configs[spec.arms[0]]
    common = {k: first[k] for k in keys
              if all(k in c and c[k] == first[k] for c in configs.values())}
    for key, value in _flat(common).items():
        space[key] = value
    for key in sorted(keys - set(common)):
        # Tune resolves grid_search first, then these per-trial choices.
        per_arm = {arm: c[key] if key in c else getattr(defaults, key)
                   for arm, c in configs.items()}
        # Takes the resolved config itself (Tune warns on every trial about a
        # function that takes the older spec dict).
        space[next(iter(_flat({key: 0})))] = tune.sample_from(
            lambda config, _p=per_arm: _p[config["arm"]])
    space["callbacks_class"] = callbacks_for(algo_cls)
    return space
