"""The config every method of this package builds on: :class:`PluginPPOConfig`.

It is RLlib's ``PPOConfig`` plus what a fair comparison needs every method to share:

* the sampler axis, ``training(sampler=..., behaviour={...})``: ``validate()`` asks
  the sampler's registry entry to check the settings before Ray starts, and the
  algorithm installs the sampler's pieces when it is built
  (:func:`rllib_metamapg.rllib_base.algorithm.install_sampler`), so ``validate()``
  stays free of side effects;
* ``critic_lr``, applied by the base learner
  (:class:`rllib_metamapg.rllib_base.torch.learner.PluginPPOTorchLearner`), which is
  the default learner; ``validate()`` refuses a learner that would ignore it;
* the range checks on PPO's numbers (:func:`check_ppo_numbers`);
* callbacks a method cannot work without (``REQUIRED_CALLBACKS``), kept whatever the
  user passes to ``callbacks()``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo.ppo import PPOConfig
from ray.rllib.utils.annotations import override

from rllib_metamapg import registry
from rllib_metamapg.rllib_base.ppo_checks import check_ppo_numbers


class PluginPPOConfig(PPOConfig):
    """``PPOConfig`` plus how actions are drawn during collection, and the critic's
    learning rate (``critic_lr``), for every method's config.

    A method subclasses it, adds its settings in ``training(*, x=NotProvided)`` and
    checks them in ``validate()`` after calling this one.  Its learner subclasses
    :class:`~rllib_metamapg.rllib_base.torch.learner.PluginPPOTorchLearner`.

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
                 **kwargs) -> "PluginPPOConfig":
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
        super().training(**kwargs)
        set_provided(self, sampler=sampler, behaviour=behaviour, critic_lr=critic_lr)
        return self

    # Callbacks the method cannot work without (MetaMAPG's cooldown): ``callbacks()``
    # keeps them, first, whatever the user passes.
    REQUIRED_CALLBACKS: tuple = ()

    @override(PPOConfig)
    def callbacks(self, callbacks_class=NotProvided, **kwargs) -> "PluginPPOConfig":
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
    def get_default_learner_class(self):
        if self.framework_str == "torch":
            from rllib_metamapg.rllib_base.torch.learner import PluginPPOTorchLearner

            return PluginPPOTorchLearner
        return super().get_default_learner_class()

    @override(PPOConfig)
    def validate(self) -> None:
        super().validate()
        check_ppo_numbers(self, type(self).__name__)
        self._validate_critic_lr()
        self._validate_sampler()

    def _validate_critic_lr(self) -> None:
        """A learner that does not apply ``critic_lr`` would train the critic at ``lr``
        while another arm's learner uses ``critic_lr``: refused, not ignored."""
        if self.critic_lr is None or self.framework_str != "torch":
            return
        from rllib_metamapg.rllib_base.torch.learner import CriticOptimizerMixin

        learner = self.learner_class
        if isinstance(learner, str):
            from ray.rllib.utils.serialization import deserialize_type

            learner = deserialize_type(learner)
        if isinstance(learner, type) and not issubclass(learner, CriticOptimizerMixin):
            self._value_error(
                f"{type(self).__name__}: critic_lr={self.critic_lr!r} is set, but the "
                f"learner {learner.__name__} does not apply it (its critic would train "
                "at lr, unlike every other method's). Base the learner on "
                "rllib_metamapg.rllib_base.torch.learner.PluginPPOTorchLearner, or "
                "unset critic_lr.")

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


def set_provided(config, **values) -> None:
    """The body of a ``training(*, x=NotProvided, ...)`` builder: sets what was given."""
    for name, value in values.items():
        if value is not NotProvided:
            setattr(config, name, value)


def _method_of_config(config) -> Optional[registry.MethodSpec]:
    name = getattr(config.algo_class, "__name__", None)
    return next((m for m in registry.methods().values() if m.algorithm_name == name), None)


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
