"""The RLlib check of the ``props``/``ma_props`` settings: the registry's
``SamplerSpec.rllib_check`` for both, run by the config's ``validate()`` before Ray
starts."""

from __future__ import annotations

from rllib_metamapg.samplers.behaviour import BehaviourError
from rllib_metamapg.samplers.rllib_settings import check_spaces, parse_behaviour


def check_behaviour_config(config) -> None:
    """``props``/``ma_props``: the settings, the env runners, and -- for one of our envs
    -- the env's spaces and the module wiring; raises ``BehaviourError``."""
    from rllib_metamapg.envs.rollout import make_plugin_env

    kind = config.sampler
    settings = parse_behaviour(config.behaviour)
    if (config.num_env_runners or 0) > 1 and not settings.per_runner_buffers:
        raise BehaviourError(
            f"sampler={kind!r} with num_env_runners={config.num_env_runners}: each env "
            "runner keeps its own buffer, so the batch's joint sampling error is not "
            "corrected as a whole. Use num_env_runners=0 or 1 (several envs per runner "
            "share one buffer: num_envs_per_env_runner), or accept per-runner correction "
            "with behaviour={'per_runner_buffers': True}.")
    if config.explore is False and not config.in_evaluation:  # evaluation is greedy
        raise BehaviourError(f"sampler={kind!r} with explore=False never draws from the "
                             "behaviour policy (greedy actions); set explore=True.")
    env = make_plugin_env(config.env, config.env_config) if config.env is not None else None
    if env is None:  # not one of ours: the connector checks the spaces when it is built
        return
    try:
        agents = list(getattr(env, "possible_agents", None) or [])
        if not agents:
            raise BehaviourError(f"sampler={kind!r} needs a multi-agent env that lists "
                                 f"possible_agents; {config.env!r} does not.")
        check_spaces(kind, agents, {a: env.get_action_space(a) for a in agents},
                     {a: env.get_observation_space(a) for a in agents})
    finally:
        if hasattr(env, "close"):
            env.close()
    if config.is_multi_agent:
        try:
            modules = [config.policy_mapping_fn(a, None) for a in agents]
        except Exception:  # noqa: BLE001 - a mapping that needs the episode: checked when sampling
            return
        if len(set(modules)) < len(modules):
            raise BehaviourError(
                f"sampler={kind!r} needs one module per agent; policy_mapping_fn maps "
                f"{agents} to {modules}. Give each agent its own module (our algorithms "
                "wire one per agent when multi_agent() is not called).")
