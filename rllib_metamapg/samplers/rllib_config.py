"""The sampler axis of our RLlib configs: ``training(sampler=..., behaviour={...})``.

:class:`SamplingPPOConfig` is the ``PPOConfig`` every on-policy method of this
package builds on (``MetaMAPGConfig``, ``MATRLConfig``).  Its ``validate()`` asks
the sampler's registry entry to check the settings -- before Ray starts -- and
the algorithm installs the sampler's pieces when it is built
(:func:`install_sampler`), so ``validate()`` stays free of side effects.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo.ppo import PPOConfig
from ray.rllib.utils.annotations import override

from rllib_metamapg import registry
from rllib_metamapg.samplers.behaviour import BehaviourError
from rllib_metamapg.samplers.rllib_settings import check_spaces, parse_behaviour


class SamplingPPOConfig(PPOConfig):
    """``PPOConfig`` plus how actions are drawn during collection, and the critic's
    learning rate (``critic_lr``), for every method's config.

    Example:
        .. code-block:: python

            from rllib_metamapg import MetaMAPGConfig

            config = (MetaMAPGConfig().environment("stag_hunt")
                      .env_runners(num_env_runners=0)
                      .training(sampler="ma_props", behaviour={"lr": 0.03, "every": 1}))
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.sampler = "on_policy"
        self.behaviour: Dict[str, Any] = {}
        self.critic_lr: Optional[float] = None

    @override(PPOConfig)
    def training(self, *, sampler: Optional[str] = NotProvided,
                 behaviour: Optional[Dict[str, Any]] = NotProvided,
                 critic_lr: Optional[float] = NotProvided,
                 **kwargs) -> "SamplingPPOConfig":
        """Sets the training related configuration.

        Args:
            sampler: A registered sampler: ``on_policy`` (each agent draws from its
                own policy), ``props`` (per-agent behaviour policies) or
                ``ma_props`` (one behaviour policy over joint actions).
                ``registry.sampler_names("rllib")`` lists them.
            behaviour: The behaviour update's settings (``props``/``ma_props``):
                ``lr``, ``every``, ``clip``, ``epochs``, ``minibatches``,
                ``kl_cutoff``, ``grad_clip``, ``optimizer``, ``hidden``,
                ``tv_max_states``, ``per_runner_buffers`` (docs/samplers.md).
            critic_lr: Learning rate of the critic in an Adam optimizer of its own,
                its gradients clipped apart from the actor's (App. E.1: 1e-3 with the
                actor at 3e-4); needs RLlib's default PPO module with separate actor
                and critic encoders.  ``None`` (default): RLlib's one optimizer per
                module, every parameter at ``lr``.
            **kwargs: ``PPOConfig.training`` settings.
        """
        from rllib_metamapg.rllib_plugin import set_provided

        super().training(**kwargs)
        set_provided(self, sampler=sampler, behaviour=behaviour, critic_lr=critic_lr)
        return self

    # Callbacks the method cannot work without (MetaMAPG's cooldown): ``callbacks()``
    # keeps them, first, whatever the user passes.
    REQUIRED_CALLBACKS: tuple = ()

    @override(PPOConfig)
    def callbacks(self, callbacks_class=NotProvided, **kwargs) -> "SamplingPPOConfig":
        """RLlib's ``callbacks()``; the method's own callbacks stay in the list.

        ``config.callbacks(MyCallback)`` replaces the callbacks in RLlib.  Here it
        gives ``[<the method's callbacks>, MyCallback]``: a user's callback runs
        beside ours instead of silently switching off what ours report (MetaMAPG's
        ``result["metamapg"]`` and its statistic-triggered handoff).
        """
        super().callbacks(callbacks_class=callbacks_class, **kwargs)
        if callbacks_class is not NotProvided and self.REQUIRED_CALLBACKS:
            self.callbacks_class = keep_callbacks(self.callbacks_class,
                                                  self.REQUIRED_CALLBACKS)
        return self

    @override(PPOConfig)
    def validate(self) -> None:
        super().validate()
        self._validate_sampler()

    def _validate_sampler(self) -> None:
        who = type(self).__name__
        try:
            spec = registry.get_sampler(self.sampler)
            if "rllib" not in spec.engines:
                raise registry.RegistryError(
                    f"sampler={self.sampler!r} is implemented in {list(spec.engines)} only; "
                    f"choose one of {registry.sampler_names('rllib')}.")
            method = _method_of_config(self)
            if method is not None:
                registry.check_combination(method.arms[0], spec.name)
        except registry.RegistryError as err:
            self._value_error(f"{who}: {err}")
            return
        if spec.rllib is None:
            if self.behaviour:
                self._value_error(f"{who}: behaviour={self.behaviour!r} has no effect with "
                                  f"sampler={spec.name!r}; drop it, or set sampler to "
                                  "'props' or 'ma_props'.")
            return
        if spec.rllib_check is not None:
            try:
                registry.load(spec.rllib_check)(self)
            except ValueError as err:
                self._value_error(f"{who}: {err}")


def _method_of_config(config) -> Optional[registry.MethodSpec]:
    name = getattr(config.algo_class, "__name__", None)
    return next((m for m in registry.methods().values() if m.algorithm_name == name), None)


def check_behaviour_config(config) -> None:
    """``props``/``ma_props``: the settings, the env runners, and -- for one of our envs
    -- the env's spaces and the module wiring; raises ``BehaviourError``."""
    from rllib_metamapg.rllib_plugin import make_plugin_env

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


def install_sampler(config):
    """``config`` with its sampler's collection pieces (what building the algorithm does)."""
    name = getattr(config, "sampler", "on_policy")
    install = registry.get_sampler(name).rllib
    return config if install is None else registry.load(install)(config)


def keep_callbacks(given, required):
    """``given`` (a callback class or a list of them) with every class of
    ``required`` that no entry of it subclasses put in front."""
    from ray.rllib.callbacks.callbacks import RLlibCallback

    given = list(given) if isinstance(given, (list, tuple)) else [given]
    missing = [r for r in required
               if not any(isinstance(c, type) and issubclass(c, r) for c in given)]
    # RLlibCallback alone is RLlib's "no callbacks" (what callbacks(None) sets).
    out = missing + [c for c in given if c is not RLlibCallback]
    return out[0] if len(out) == 1 else out
