"""Greedy evaluation of a saved RLlib algorithm checkpoint (``rllib evaluate``)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Dict, Optional

from rllib_metamapg.errors import UsageError
from rllib_metamapg.results import lookup

CTOR_FILE = "class_and_ctor_args.pkl"
STATE_FILE = "algorithm_state.pkl"  # only an algorithm checkpoint (not a component) has it
MODULES_DIR = "learner_group/learner/rl_module"  # the trained weights, one folder a module


class CheckpointError(UsageError):
    """A path that is not an RLlib algorithm checkpoint; says what to pass instead."""


def checkpoint_config(path: str) -> Dict[str, Any]:
    """The algorithm config dict stored in an algorithm checkpoint folder."""
    folder = Path(path)
    if not (folder / CTOR_FILE).is_file() or not (folder / STATE_FILE).is_file():
        hint = ""
        if folder.is_dir():
            found = sorted(folder.glob(f"**/{STATE_FILE}"))
            if found:
                hint = f" Did you mean {found[-1].parent}?"
        raise CheckpointError(f"{path}: not an RLlib algorithm checkpoint (no {STATE_FILE})."
                              f"{hint}")
    modules = folder / MODULES_DIR
    if not any(modules.glob("*/module_state.pkl")):
        raise CheckpointError(
            f"{path}: the checkpoint holds no trained weights ({MODULES_DIR}/<module>/"
            "module_state.pkl is missing), so it would evaluate untrained policies; it was "
            "cut short or copied in part. Use a complete checkpoint (an earlier "
            "checkpoint_* of the same trial, or the trial's last one).")
    ctor = _ctor(folder)
    args = ctor["ctor_args_and_kwargs"][0]
    config = args[0] if args else ctor["ctor_args_and_kwargs"][1].get("config")
    return config if isinstance(config, dict) else config.to_dict()


def _ctor(folder: Path) -> Dict[str, Any]:
    try:
        with open(folder / CTOR_FILE, "rb") as f:
            return pickle.load(f)
    except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError) as err:
        raise CheckpointError(f"{folder}: {CTOR_FILE} is truncated or corrupt "
                              f"({type(err).__name__}); use a complete checkpoint.") from None


def checkpoint_class(path: str):
    """The Algorithm class that wrote the checkpoint (MetaMAPG, PPO, ...)."""
    checkpoint_config(path)  # the clear error for a folder that is not a checkpoint
    return _ctor(Path(path))["class"]


def _spaces(config: Dict[str, Any], env: str):
    import gymnasium as gym

    from rllib_metamapg.envs.rollout import make_plugin_env

    try:
        made = make_plugin_env(env, config.get("env_config")) or gym.make(env)
    except Exception as err:  # noqa: BLE001 - any env's own refusal, reported as such
        raise CheckpointError(f"--env={env!r} cannot be built with the checkpoint's "
                              f"env_config ({err}).") from None
    try:
        if hasattr(made, "observation_spaces"):
            return ({a: made.observation_spaces[a] for a in made.possible_agents},
                    {a: made.action_spaces[a] for a in made.possible_agents})
        return made.observation_space, made.action_space
    finally:
        if hasattr(made, "close"):
            made.close()


def check_env_matches(config: Dict[str, Any], env: str) -> None:
    """Refuses an env whose agents or spaces differ from the checkpoint's (restoring
    would fail deep inside torch with a size mismatch)."""
    trained = _spaces(config, config["env"])
    other = _spaces(config, env)
    if trained != other:
        raise CheckpointError(
            f"--env={env!r}: its agents or spaces differ from those of {config['env']!r}, "
            f"which the checkpoint was trained on (observations {trained[0]} vs "
            f"{other[0]}; actions {trained[1]} vs {other[1]}); evaluate it in an env with "
            "the same spaces.")


def _fit_learner_to_machine(config) -> None:
    """A checkpoint trained on GPUs is evaluated on this machine's CPU when it has no GPU
    (greedy play needs no learner GPU; asking for one would fail or wait forever)."""
    import sys

    from rllib_metamapg.resources import local_resources

    have = (local_resources() or {}).get("GPU", 0.0)
    if (config.num_gpus_per_learner or 0) > have or (config.num_learners or 0) > 0:
        print(f"[rllib evaluate] the checkpoint trained with num_learners="
              f"{config.num_learners}, num_gpus_per_learner={config.num_gpus_per_learner:g}; "
              "evaluating with one local CPU learner.", file=sys.stderr, flush=True)
        config.learners(num_learners=0, num_gpus_per_learner=0)


def evaluate_checkpoint(path: str, env: Optional[str] = None, episodes: Optional[int] = 50,
                        seed: Optional[int] = None, *, steps: Optional[int] = None,
                        overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Restores the checkpoint and runs greedy (argmax) episodes.

    Args:
        path: Algorithm checkpoint folder (a Tune trial's ``checkpoint_*``).
        env: Registered env to evaluate in (default: the one it trained on).
        episodes: Number of evaluation episodes (``None`` with ``steps``).
        seed: Env/sampling seed for the evaluation runs.
        steps: Env steps to run instead of ``episodes`` (RLlib's ``--steps``); the
            episodes that complete within them are reported.
        overrides: Config settings merged over the checkpoint's (``--config``).

    Returns:
        ``{"episodes", "return_mean", "return_min", "return_max",
        "agent_return_mean": {agent: mean}}`` (returns summed over agents).
    """
    algo_cls = checkpoint_class(path)
    config = algo_cls.get_default_config().update_from_dict(checkpoint_config(path))
    config.update_from_dict(dict(overrides or {}))
    return _evaluate(config, path, env, episodes, steps, seed)


def evaluate_untrained(config, episodes: Optional[int], steps: Optional[int],
                       seed: Optional[int]) -> Dict[str, Any]:
    """RLlib's ``rllib evaluate`` without a checkpoint: the untrained algorithm."""
    return _evaluate(config.copy(copy_frozen=False), None, None, episodes, steps, seed)


def _evaluate(config, path: Optional[str], env: Optional[str], episodes: Optional[int],
              steps: Optional[int], seed: Optional[int]) -> Dict[str, Any]:
    if env is not None:
        config.environment(env)
    if seed is not None:
        config.debugging(seed=seed)
    _fit_learner_to_machine(config)
    unit, duration = ("timesteps", steps) if steps is not None else ("episodes", episodes)
    config.env_runners(num_env_runners=0).evaluation(
        evaluation_interval=1, evaluation_duration=duration,
        evaluation_duration_unit=unit, evaluation_num_env_runners=0,
        evaluation_parallel_to_training=False, evaluation_config={"explore": False,
                                                              "num_envs_per_env_runner": 1})
    algo = config.build_algo()
    try:
        if path is not None:
            try:
                algo.restore_from_path(str(Path(path).resolve()))
            except (EOFError, pickle.UnpicklingError, FileNotFoundError, KeyError) as err:
                raise CheckpointError(f"{path}: the checkpoint is truncated or partial and "
                                      f"cannot be restored ({type(err).__name__}: {err}); use "
                                      "a complete checkpoint.") from None
        metrics = algo.evaluate()
    finally:
        algo.stop()
    runners = lookup(metrics, "env_runners") or {}
    if steps is not None and "episode_return_mean" not in runners:
        raise CheckpointError(f"no episode finished within --steps {steps}; raise --steps "
                              "or use --episodes.")
    return {"episodes": int(runners.get("num_episodes", episodes or 0)),
            **{f"return_{k}": float(runners[f"episode_return_{k}"])
               for k in ("mean", "min", "max") if f"episode_return_{k}" in runners},
            "agent_return_mean": {a: float(v) for a, v in
                                  (runners.get("agent_episode_returns_mean") or {}).items()}}
