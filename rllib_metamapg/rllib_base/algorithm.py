"""The algorithm side of the RLlib base: algorithm lookup, Tune registration, shared
wiring, sampler installation.

Every registered method's algorithm is reachable by its class name (``run:
MetaMAPG`` in a YAML, ``Tuner("MetaMAPG")``).  :class:`PluginAlgorithm` is the
mixin every method's algorithm uses (``class MyAlgo(PluginAlgorithm, PPO)``):
building one registers our environments in the running Ray session and, when
``multi_agent()`` was not called, wires one module per agent of the env -- at
construction, so ``validate()`` stays free of side effects.  :func:`arm_config`
builds any arm's config the same way for every method, which is what makes seed s
start every arm of every method from the same weights.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.tune.registry import register_trainable

from rllib_metamapg import registry
from rllib_metamapg.envs import one_module_per_agent, register_envs
from rllib_metamapg.envs.rollout import make_plugin_env


def algorithm_names() -> Dict[str, registry.MethodSpec]:
    """``{algorithm class name: method}`` over the registered methods."""
    return {m.algorithm_name: m for m in registry.methods().values()}


def algorithm_class(name: str):
    """The Algorithm class a registered method runs under ``name`` (``None`` if none)."""
    method = algorithm_names().get(name)
    return method.algorithm_class() if method is not None else None


def register_all() -> None:
    """(Re-)registers every method's algorithm and every environment with Tune.

    Tune pushes registrations only to the Ray session that is running (or starts
    next): call again after ``ray.shutdown()`` / ``ray.init()``.
    """
    for name, method in algorithm_names().items():
        register_trainable(name, method.algorithm_class())
    register_envs()


def register_on_import(algorithm_class) -> None:
    """What importing one of our algorithm modules does, as importing RLlib's own does:
    makes the algorithm (by class name) and our envs known to Tune.  Tune keeps
    registrations for the running (or next) Ray session only: after a restart, call
    :func:`register_all`.  Building the algorithm needs neither."""
    register_trainable(algorithm_class.__name__, algorithm_class)
    register_envs()


def per_agent_wiring(env: Any, env_config: Optional[Mapping] = None) -> Optional[Dict]:
    """``multi_agent(**...)`` arguments for one module per agent, or ``None`` when the env
    is not one of ours and not a class (RLlib's own default then applies)."""
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    instance = make_plugin_env(env, env_config)
    if instance is None:
        return None
    try:
        if isinstance(instance, MultiAgentEnv) and getattr(instance, "possible_agents", None):
            return one_module_per_agent(instance)
        return None
    finally:
        if hasattr(instance, "close"):
            instance.close()


def with_default_wiring(config, default_config: AlgorithmConfig):
    """``config`` (object or Tune dict) with one module per agent when none is wired."""
    if isinstance(config, dict):
        if "class" in config:  # a full saved state: leave it to RLlib
            return config
        config = default_config.copy(copy_frozen=False).update_from_dict(config)
    if config is None or config.is_multi_agent or config.env is None:
        return config
    wiring = per_agent_wiring(config.env, config.env_config)
    if wiring is None:
        return config
    return config.copy(copy_frozen=False).multi_agent(**wiring)


class PluginAlgorithm:
    """Mixin (before the RLlib base class): register our envs, default the wiring,
    install the config's sampler (its env-runner pieces)."""

    def __init__(self, config=None, *args, **kwargs):
        register_envs()
        config = with_default_wiring(config, self.get_default_config())
        if isinstance(config, AlgorithmConfig):
            config = install_sampler(config)
        super().__init__(config, *args, **kwargs)


def install_sampler(config, name: Optional[str] = None):
    """``config`` with the collection pieces of sampler ``name`` (default: the config's
    own ``sampler``): what building the algorithm does."""
    name = name or getattr(config, "sampler", "on_policy")
    install = registry.get_sampler(name).rllib
    return config if install is None else registry.load(install)(config)




def arm_config(arm: str, env: Any = None, settings: Optional[Mapping[str, Any]] = None,
               sampler: str = "on_policy"):
    """A fresh config of ``arm``'s algorithm: ``settings`` (flat ``update_from_dict``
    keys), then the arm's own training settings, then ``sampler`` (refused for a
    method it cannot feed; an ``<arm>+<sampler>`` composition names its own), then
    one module per agent.  The sampler's pieces are installed when it is built."""
    spec = registry.get_arm(arm)
    if sampler != "on_policy":
        if spec.sampler != "on_policy" and spec.sampler != sampler:
            raise registry.RegistryError(f"arm={spec.name!r} already samples with "
                                         f"{spec.sampler!r}; sampler={sampler!r} conflicts.")
        base = arm.split(registry.COMPOSITION)[0]
        spec = registry.get_arm(f"{registry.canonical_arm(base)}{registry.COMPOSITION}{sampler}")
    registry.arm_for_engine(spec, "rllib")
    config = registry.method_of(spec).algorithm_class().get_default_config()
    if env is not None:
        config.environment(env)
    config.update_from_dict(dict(settings or {}))
    config.training(**dict(spec.rllib))
    if spec.sampler != "on_policy":
        if hasattr(config, "sampler"):  # our configs: validated, installed at build
            config.training(sampler=spec.sampler)
        else:  # a config without the sampler axis gets the pieces now
            config = install_sampler(config, spec.sampler)
    return with_default_wiring(config, config)
