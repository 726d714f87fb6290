"""Instances of our envs outside RLlib, and uniformly random play in them: what the
config checks, the sampler checks, the env benchmarks and the report's trivial-tau
check (the return of random play) use."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

from rllib_metamapg.envs import CREATORS


def make_plugin_env(env: Any, env_config: Optional[Mapping] = None):
    """An instance of one of our envs (by name) or an env class; ``None`` otherwise."""
    from ray.rllib.env.env_context import EnvContext

    ctx = EnvContext(dict(env_config or {}), worker_index=0)
    if isinstance(env, str):
        return CREATORS[env](ctx) if env in CREATORS else None
    if isinstance(env, type):
        return env(ctx)
    return None


def make_env(name: str, env_config: Optional[dict] = None):
    """An instance of a registered env, outside any Ray session."""
    env = make_plugin_env(name, env_config)
    if env is None:
        raise ValueError(f"env={name!r} is not one of ours; see rllib_metamapg.envs.ENV_NAMES.")
    return env


def random_rollout(env, *, episodes: Optional[int] = None, steps: Optional[int] = None,
                   seed: int = 0, on_finish=None) -> Tuple[int, int, float]:
    """Uniformly random actions until ``episodes`` episodes or ``steps`` env steps are done.

    ``on_finish(infos)``, when given, sees the last step's infos of every finished episode.

    Returns:
        ``(episodes finished, env steps, summed reward of all agents)``.
    """
    spaces = {a: env.get_action_space(a) for a in env.possible_agents}
    for k, space in enumerate(spaces.values()):
        space.seed(seed + k)  # once: reseeding per one-step episode would cost more than it
    finished = done_steps = 0
    total = 0.0
    while (episodes is None or finished < episodes) and (steps is None or done_steps < steps):
        obs, _ = env.reset(seed=seed if finished == 0 else None)
        over = False
        while not over and (steps is None or done_steps < steps):
            obs, rewards, terminated, truncated, infos = env.step(
                {a: spaces[a].sample() for a in obs})
            total += float(sum(rewards.values()))
            done_steps += 1
            over = terminated.get("__all__", False) or truncated.get("__all__", False)
        finished += int(over)
        if over and on_finish is not None:
            on_finish(infos)
    return finished, done_steps, total


def random_policy_return(name: str, env_config: Optional[dict] = None, episodes: int = 20,
                         seed: int = 0) -> float:
    """Mean joint episode return of uniformly random actions (the report's trivial-τ check)."""
    env = make_env(name, env_config)
    _, _, total = random_rollout(env, episodes=episodes, seed=seed)
    if hasattr(env, "close"):
        env.close()
    return total / episodes


def random_policy_score(name: str, score: str = "return", env_config: Optional[dict] = None,
                        episodes: int = 20, seed: int = 0) -> Optional[float]:
    """What uniformly random play scores by ``EnvSpec.score``: its mean joint return, or
    its mean on-target rate (``None`` when the env does not report one)."""
    if score == "return":
        return random_policy_return(name, env_config, episodes, seed)
    from rllib_metamapg.envs.matrix_game import ON_TARGET_RATE

    rates = []
    env = make_env(name, env_config)
    random_rollout(env, episodes=episodes, seed=seed, on_finish=lambda infos: rates.extend(
        i[ON_TARGET_RATE] for i in list(infos.values())[:1] if ON_TARGET_RATE in i))
    return sum(rates) / len(rates) if rates else None
