"""Greedy evaluation of a saved MetaMAPG checkpoint (``rllib evaluate``)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Dict, Optional

from rllib_metamapg.results import lookup

CTOR_FILE = "class_and_ctor_args.pkl"
STATE_FILE = "algorithm_state.pkl"  # only an algorithm checkpoint (not a component) has it


class CheckpointError(ValueError):
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
    with open(folder / CTOR_FILE, "rb") as f:
        ctor = pickle.load(f)
    args = ctor["ctor_args_and_kwargs"][0]
    config = args[0] if args else ctor["ctor_args_and_kwargs"][1].get("config")
    return config if isinstance(config, dict) else config.to_dict()


def evaluate_checkpoint(path: str, env: Optional[str] = None, episodes: int = 50,
                        seed: Optional[int] = None) -> Dict[str, Any]:
    """Restores the checkpoint and runs ``episodes`` greedy (argmax) episodes.

    Args:
        path: Algorithm checkpoint folder (a Tune trial's ``checkpoint_*``).
        env: Registered env to evaluate in (default: the one it trained on).
        episodes: Number of evaluation episodes.
        seed: Env/sampling seed for the evaluation runs.

    Returns:
        ``{"episodes", "return_mean", "return_min", "return_max",
        "agent_return_mean": {agent: mean}}`` (returns summed over agents).
    """
    from rllib_metamapg import MetaMAPGConfig

    config = MetaMAPGConfig().update_from_dict(checkpoint_config(path))
    if env is not None:
        config.environment(env)
    if seed is not None:
        config.debugging(seed=seed)
    config.env_runners(num_env_runners=0).evaluation(
        evaluation_interval=1, evaluation_duration=episodes,
        evaluation_duration_unit="episodes", evaluation_num_env_runners=0,
        evaluation_parallel_to_training=False, evaluation_config={"explore": False,
                                                              "num_envs_per_env_runner": 1})
    algo = config.build_algo()
    try:
        algo.restore_from_path(str(Path(path).resolve()))
        metrics = algo.evaluate()
    finally:
        algo.stop()
    runners = lookup(metrics, "env_runners") or {}
    return {"episodes": int(runners.get("num_episodes", episodes)),
            **{f"return_{k}": float(runners[f"episode_return_{k}"])
               for k in ("mean", "min", "max") if f"episode_return_{k}" in runners},
            "agent_return_mean": {a: float(v) for a, v in
                                  (runners.get("agent_episode_returns_mean") or {}).items()}}
