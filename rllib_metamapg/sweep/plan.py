"""Turns sweep settings into one Tune ``param_space`` and stop rule, checked before Ray starts.

Each arm's settings come from its tuned example, ``tuned_examples/<env>/<arm>.yaml``
(``<arm>-smoke.yaml`` with ``smoke=True``), validated exactly as ``rllib train file``
does.  Settings shared by every arm go into the param space as they are; settings
that differ between arms (``handoff_steps`` for instance) are chosen per trial from
the trial's arm.  ``arm`` and ``seed`` are a grid, so seed s of every arm starts
from the same weights.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rllib_metamapg.arms import RLLIB_ARMS
from rllib_metamapg.env_specs import EnvSpec, get_env_spec
from rllib_metamapg.errors import UsageError
from rllib_metamapg.rllib_experiments import load_experiments, prepare
from rllib_metamapg.schedules import is_finite_number

METRIC = "evaluation/env_runners/episode_return_mean"
METADATA_FILE = "metamapg_sweep.json"
TUNED_EXAMPLES_ENV = "METAMAPG_TUNED_EXAMPLES"


@dataclass
class SweepSpec:
    """What to sweep.  Every field is checked by :func:`plan_sweep`.

    Attributes:
        env: Registered environment with sweep settings (see ``envs.specs``).
        arms: Arms to compare; ``ippo`` is the reference of the paired tests.
        seeds: Seeds; seed s gives the same initial weights in every arm.
        smoke: Use each arm's ``*-smoke.yaml`` budget.
        name: Experiment folder name under ``storage_path``.
        storage_path: Local path or URI for results and checkpoints.
        max_concurrent: Trials running at once (the paper ran 12).
        cpus_per_trial: CPUs of each trial's driver-side learner.
        gpus_per_trial: GPUs (fractions allowed) of each trial's learner.
        max_failures: Retries of a trial that fails (worker loss, crash).
        tuned_examples: Folder of tuned examples (default: ``$METAMAPG_TUNED_EXAMPLES``,
            ``./tuned_examples``, or the one beside the installed package).
    """

    env: str
    arms: Sequence[str] = tuple(RLLIB_ARMS)
    seeds: Sequence[int] = tuple(range(25))
    smoke: bool = False
    name: Optional[str] = None
    storage_path: str = "metamapg_results"
    max_concurrent: int = 12
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    tuned_examples: Optional[str] = None


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


def find_tuned_examples(folder: Optional[str] = None) -> Path:
    """The tuned-examples folder: explicit, ``$METAMAPG_TUNED_EXAMPLES``, cwd, or beside
    the package."""
    here = Path(__file__).resolve().parents[2] / "tuned_examples"
    candidates = ([Path(folder)] if folder else
                  [Path(p) for p in [os.environ.get(TUNED_EXAMPLES_ENV)] if p]
                  + [Path.cwd() / "tuned_examples", here])
    for path in candidates:
        if path.is_dir():
            return path
    raise UsageError("tuned_examples: folder not found (looked in "
                     f"{[str(p) for p in candidates]}); pass --tuned-examples DIR or set "
                     f"{TUNED_EXAMPLES_ENV}.")


def parse_seeds(text: str) -> List[int]:
    """``"0-24"``, ``"0,3,7"`` or a mix (``"0-2,10"``) -> sorted unique seeds."""
    seeds = set()
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.update(range(lo, hi + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise UsageError(f"--seeds={text!r}: use non-negative integers like '0-24' or "
                             "'0,1,5'.") from None
    if not seeds or min(seeds) < 0:
        raise UsageError(f"--seeds={text!r}: use non-negative integers like '0-24'.")
    return sorted(seeds)


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Checks ``spec`` and every tuned example it names; raises ``UsageError``."""
    env_spec = _check_spec(spec)
    folder = find_tuned_examples(spec.tuned_examples) / spec.env
    suffix = "-smoke" if spec.smoke else ""
    configs, stops, files = {}, {}, {}
    for arm in spec.arms:
        path = folder / f"{arm}{suffix}.yaml"
        if not path.is_file():
            raise UsageError(f"arms: no tuned example {path} for env {spec.env!r}, arm "
                             f"{arm!r}; write one or drop the arm.")
        experiments = load_experiments(str(path))
        if len(experiments) != 1:
            raise UsageError(f"{path}: a sweep needs exactly one experiment per file.")
        (exp_name, exp), = experiments.items()
        prepare(experiments, {}, str(path))  # the same checks as `rllib train file`
        config = dict(exp.get("config") or {})
        if exp.get("env") != spec.env or config.get("arm") != arm:
            raise UsageError(f"{path}: {exp_name} must set env: {spec.env} and "
                             f"config.arm: {arm}.")
        configs[arm], stops[arm], files[arm] = config, dict(exp["stop"]), str(path)
    stop_iterations, interval = _aligned_budget(configs, stops)
    name = spec.name or f"{spec.env}{suffix}"
    param_space = _param_space(spec, configs, interval)
    metadata = {
        "env": spec.env, "arms": list(spec.arms), "seeds": list(spec.seeds),
        "smoke": spec.smoke, "metric": METRIC, "tau": env_spec.tau,
        "tau_note": env_spec.note, "returns_nonnegative": env_spec.returns_nonnegative,
        "stop_iterations": stop_iterations, "evaluation_interval": interval,
        "tuned_examples": files,
        # Enough to rebuild the param space on resume (Tune needs it re-passed
        # to resolve the classes and functions inside it).
        "spec": {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in dataclasses.asdict(spec).items()},
        "arm_configs": configs,
    }
    return SweepPlan(spec, env_spec, name, param_space, stop_iterations, interval, files,
                     metadata)


def _check_spec(spec: SweepSpec) -> EnvSpec:
    try:
        env_spec = get_env_spec(spec.env)
    except ValueError as err:
        raise UsageError(f"--env: {err}") from None
    arms = list(spec.arms)
    unknown = [a for a in arms if a not in RLLIB_ARMS]
    if not arms or unknown or len(set(arms)) != len(arms):
        raise UsageError(f"--arms={','.join(arms)!r}: give distinct arms from "
                         f"{list(RLLIB_ARMS)}.")
    seeds = list(spec.seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(
            not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise UsageError(f"--seeds={seeds!r}: give distinct non-negative integers.")
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


def param_space_from_metadata(metadata: Dict[str, Any]) -> Dict[str, Any]:
    """The param space of a sweep, rebuilt from its ``metamapg_sweep.json``."""
    spec = SweepSpec(**metadata["spec"])
    return _param_space(spec, metadata["arm_configs"], int(metadata["evaluation_interval"]))


def _param_space(spec: SweepSpec, configs: Dict[str, Dict[str, Any]],
                 interval: int) -> Dict[str, Any]:
    from ray import tune

    from rllib_metamapg.callbacks import CooldownCallback, InitialWeightsCallback

    from rllib_metamapg import MetaMAPGConfig

    defaults = MetaMAPGConfig()
    keys = set().union(*configs.values()) - {"arm", "seed"}
    common = {k: configs[spec.arms[0]][k] for k in keys
              if all(k in c and c[k] == configs[spec.arms[0]][k] for c in configs.values())}
    space: Dict[str, Any] = {}
    for key, value in common.items():
        space["_model_config" if key == "model_config" else key] = value
    for key in sorted(keys - set(common)):
        # Tune resolves grid_search first, then these per-trial choices.
        per_arm = {arm: c[key] if key in c else getattr(defaults, key)
                   for arm, c in configs.items()}
        space["_model_config" if key == "model_config" else key] = tune.sample_from(
            lambda s, _p=per_arm: _p[s.config["arm"]])
    space.update({
        "env": spec.env,
        "arm": tune.grid_search(list(spec.arms)),
        "seed": tune.grid_search(list(spec.seeds)),
        "evaluation_interval": interval,
        "callbacks_class": [CooldownCallback, InitialWeightsCallback],
        "num_cpus_for_main_process": spec.cpus_per_trial,
        "num_gpus_per_learner": spec.gpus_per_trial,
    })
    return space
