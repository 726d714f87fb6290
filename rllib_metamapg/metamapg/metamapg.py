"""MetaMAPG: multi-agent PPO with Meta-MAPG own/peer corrections and a cooldown.

Example:
    .. code-block:: python

        from rllib_metamapg import MetaMAPGConfig

        config = (MetaMAPGConfig()
                  .environment("stag_hunt")
                  .training(arm="meta_mapg", inner_lr=0.1))
        algo = config.build_algo()
        print(algo.train()["learners"]["player_0"]["metamapg_peer_norm"])
"""

from __future__ import annotations

import logging
from typing import Optional, Type, Union

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo.ppo import PPO, PPOConfig
from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override

from rllib_metamapg.metamapg.cooldown_callback import CooldownCallback
from rllib_metamapg.metamapg.cooldown import CooldownController
from rllib_metamapg.dice import CORRECTION_FORMS, ESTIMATORS, FORM_ALIASES, canonical_form
from rllib_metamapg.env_specs import ENV_SPECS
from rllib_metamapg.episode_chunks import cut_episodes_problem
from rllib_metamapg.metamapg.method import switches
from rllib_metamapg.registry import RegistryError, arm_for_engine
from rllib_metamapg.rllib_base.algorithm import PluginAlgorithm, register_on_import
from rllib_metamapg.rllib_base.config import PluginPPOConfig, set_provided
from rllib_metamapg.schedules import ScheduleError, is_finite_number

logger = logging.getLogger(__name__)
# Warnings already given in this process: validate() runs on every copy of a config.
_WARNED = set()

GRANULARITIES = ("batch", "minibatch")


class MetaMAPGConfig(PluginPPOConfig):
    """Configuration of :class:`MetaMAPG`: ``PPOConfig`` plus the correction settings
    and the sampler axis (``sampler``, ``behaviour``: :class:`PluginPPOConfig`).

    Multi-agent wiring defaults to one module per agent of the environment (read
    from its ``possible_agents``) when ``multi_agent()`` is not called.
    """

    REQUIRED_CALLBACKS = (CooldownCallback,)

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or MetaMAPG)
        self.arm = "meta_mapg"
        self.own_coef = 1.0
        self.peer_coef = 1.0
        self.inner_lr = 0.1
        self.unroll_length = 1
        self.correction_form = "unroll"
        self.correction_clip = 1.0
        self.correction_granularity = "batch"
        self.correction_estimator = "trajectory"
        self.correction_split = True
        self.lambda_schedule = None
        self.handoff_steps = None
        self.anneal_power = 2.0
        self.anneal_scale = 100_000.0
        self.handoff_metric = None
        self.handoff_threshold = None
        self.handoff_patience = 1
        self.allow_nonsummable = False
        self.callbacks_class = CooldownCallback
        # RLlib's multi-agent runner gets quadratically slower in episodes per
        # call when it converts episodes to numpy; short matrix-game episodes hit it.
        self.episodes_to_numpy = False

    @override(PPOConfig)
    def training(
        self,
        *,
        arm: Optional[str] = NotProvided,
        own_coef: Optional[float] = NotProvided,
        peer_coef: Optional[float] = NotProvided,
        inner_lr: Optional[float] = NotProvided,
        unroll_length: Optional[int] = NotProvided,
        correction_form: Optional[str] = NotProvided,
        correction_clip: Optional[float] = NotProvided,
        correction_granularity: Optional[str] = NotProvided,
        correction_estimator: Optional[str] = NotProvided,
        correction_split: Optional[bool] = NotProvided,
        lambda_schedule: Optional[str] = NotProvided,
        handoff_steps: Optional[float] = NotProvided,
        anneal_power: Optional[float] = NotProvided,
        anneal_scale: Optional[float] = NotProvided,
        handoff_metric: Optional[str] = NotProvided,
        handoff_threshold: Optional[float] = NotProvided,
        handoff_patience: Optional[int] = NotProvided,
        allow_nonsummable: Optional[bool] = NotProvided,
        **kwargs,
    ) -> "MetaMAPGConfig":
        """Sets the training related configuration.

        Args:
            arm: ``ippo`` (plain PPO), ``own_only``, ``peer_only``, ``meta_mapg`` or
                ``handoff`` (``meta_mapg`` until the handoff, then ``ippo``).
            own_coef: Weight of the own-learning term (when the arm uses it).
            peer_coef: Weight of the peer-learning term (when the arm uses it).
            inner_lr: Inner step size eta of every agent's differentiable PG step.
            unroll_length: Number of inner steps L >= 1.
            correction_form: ``"unroll"`` (differentiate through the inner steps;
                ``"dice"`` is accepted for it) or ``"taylor"`` (first order at the
                current parameters; L = 1) -- the tabular engine's names.
            correction_clip: c of the norm clip ``|correction| <= c * |PG|``;
                ``None`` disables clipping.
            correction_granularity: ``"batch"`` (default): the correction is
                estimated once per update on the whole train batch at the
                pre-update parameters -- the point PPO's surrogate is anchored
                at -- and added to every minibatch step; ``"minibatch"``:
                re-estimated on each minibatch at the current parameters
                (several times the cost; ``per_step`` estimator only).
            correction_estimator: ``"trajectory"`` (default): DiCE over whole
                episodes -- each reward weighted by the magic box of every
                agent's log-probabilities up to its step -- the Meta-MAPG
                terms in every game, estimated per episode so ``inner_lr`` is
                a step on the episode value as in the tabular engine;
                ``"per_step"``: the paper's App. E.2 proxy (same-step
                dependence only, averaged per timestep), equal to the
                trajectory estimator in one-shot games only.
            correction_split: ``True`` (default): each inner step and the
                outer objective are estimated on disjoint sets of the batch's
                episodes (the tabular engine's fresh batch per step). That
                removes one bias: the covariance of two estimates taken from the
                same episodes, of order 1/episodes. It does not remove the
                others: episodes cut into chunks by the rollout fragment (the
                dependence across a cut is lost; ``validate()`` warns), a
                baseline that is not the value of the state *and* time, GAE
                with lambda < 1 and RLlib's advantage standardisation. ``False``:
                all stages on the whole batch (less variance, that covariance
                bias). docs/rllib.md measures each.
            lambda_schedule: For ``arm="handoff"``: ``"hard"`` (default; lambda = 0
                after the handoff) or ``"anneal"`` (power-law decay).
            handoff_steps: Time trigger T_warm in lifetime env steps; unset, an
                arm that hands off takes the env's T_warm (``EnvSpec.t_warm``) on
                our envs, and is refused elsewhere unless ``handoff_metric`` is set.
            anneal_power: Exponent of the anneal; must make ``sum lambda_n``
                finite (> 1 with PPO's constant lr) unless ``allow_nonsummable``.
            anneal_scale: Anneal time scale in env steps.
            handoff_metric: Statistic trigger: a result-dict path such as
                ``"env_runners/episode_return_mean"``.
            handoff_threshold: Hand off once the statistic is >= this ...
            handoff_patience: ... for this many consecutive iterations.
            allow_nonsummable: Accept an anneal that breaks Proposition 3.

        Returns:
            This updated MetaMAPGConfig object.
        """
        super().training(**kwargs)
        set_provided(
            self, arm=arm, own_coef=own_coef, peer_coef=peer_coef, inner_lr=inner_lr,
            unroll_length=unroll_length, correction_form=correction_form,
            correction_clip=correction_clip,
            correction_granularity=correction_granularity,
            correction_estimator=correction_estimator, correction_split=correction_split,
            lambda_schedule=lambda_schedule,
            handoff_steps=handoff_steps, anneal_power=anneal_power,
            anneal_scale=anneal_scale, handoff_metric=handoff_metric,
            handoff_threshold=handoff_threshold, handoff_patience=handoff_patience,
            allow_nonsummable=allow_nonsummable)
        return self

    @override(PPOConfig)
    def get_default_learner_class(self) -> Union[Type[Learner], str]:
        if self.framework_str == "torch":
            from rllib_metamapg.metamapg.torch.metamapg_torch_learner import (
                MetaMAPGTorchLearner)
            return MetaMAPGTorchLearner
        raise ValueError(f"framework={self.framework_str!r}: MetaMAPG supports torch only.")

    @property
    def effective_handoff_steps(self) -> Optional[float]:
        """``handoff_steps``, or -- for an arm that hands off, on one of our envs --
        that env's T_warm (``EnvSpec.t_warm``)."""
        if self.handoff_steps is not None or self.handoff_metric is not None:
            return self.handoff_steps
        if not switches(self.arm).cooldown or not isinstance(self.env, str):
            return None
        spec = ENV_SPECS.get(self.env)
        return None if spec is None else float(spec.t_warm)

    def cooldown_controller(self) -> CooldownController:
        """The lambda state machine these settings describe (validates them)."""
        arm = switches(self.arm)
        kind = self.lambda_schedule or ("hard" if arm.cooldown else "constant")
        return CooldownController(
            arm, kind=kind, handoff_steps=self.effective_handoff_steps,
            anneal_power=self.anneal_power, anneal_scale=self.anneal_scale,
            metric=self.handoff_metric, threshold=self.handoff_threshold,
            patience=self.handoff_patience, allow_nonsummable=self.allow_nonsummable)

    @override(PPOConfig)
    def validate(self) -> None:
        # No side effects here: Tune registration and the default one-module-per-agent
        # wiring happen when the algorithm is built (PluginAlgorithm).
        super().validate()
        self._validate_metamapg()

    def _validate_metamapg(self) -> None:
        try:
            arm_for_engine(self.arm, "rllib")
            self.cooldown_controller()
        except (RegistryError, ScheduleError) as err:
            self._value_error(f"MetaMAPGConfig: {err}")
            return
        for name in ("own_coef", "peer_coef", "inner_lr"):
            value = getattr(self, name)
            if not is_finite_number(value) or value < 0:
                self._value_error(f"MetaMAPGConfig: {name}={value!r} must be a finite "
                                 "number >= 0.")
        if self.inner_lr == 0 and switches(self.arm).corrected:
            self._value_error("MetaMAPGConfig: inner_lr=0 makes every correction zero; "
                             "use arm='ippo' for plain PPO.")
        if (not isinstance(self.unroll_length, int) or isinstance(self.unroll_length, bool)
                or self.unroll_length < 1):
            self._value_error(f"MetaMAPGConfig: unroll_length={self.unroll_length!r} must "
                             "be an integer >= 1.")
        if canonical_form(self.correction_form) not in CORRECTION_FORMS:
            self._value_error(f"MetaMAPGConfig: correction_form={self.correction_form!r}; "
                             f"choose one of {CORRECTION_FORMS} (or an old name: "
                             f"{sorted(FORM_ALIASES)}).")
        if self.correction_form == "taylor" and self.unroll_length != 1:
            self._value_error("MetaMAPGConfig: correction_form='taylor' is first order; "
                             f"unroll_length={self.unroll_length} must be 1.")
        if self.correction_granularity not in GRANULARITIES:
            self._value_error("MetaMAPGConfig: correction_granularity="
                             f"{self.correction_granularity!r}; choose one of "
                             f"{GRANULARITIES}.")
        if self.correction_estimator not in ESTIMATORS:
            self._value_error("MetaMAPGConfig: correction_estimator="
                             f"{self.correction_estimator!r}; choose one of {ESTIMATORS}.")
        if not isinstance(self.correction_split, bool):
            self._value_error(f"MetaMAPGConfig: correction_split={self.correction_split!r} "
                             "must be True or False.")
        if (self.correction_estimator == "trajectory"
                and self.correction_granularity == "minibatch"):
            self._value_error(
                "MetaMAPGConfig: correction_granularity='minibatch' needs "
                "correction_estimator='per_step': minibatches are shuffled rows that cut "
                "episodes apart, and the trajectory estimator needs whole episodes. Use "
                "correction_granularity='batch' (the default) to keep the trajectory "
                "estimator.")
        if self.correction_estimator == "trajectory" and switches(self.arm).corrected:
            problem = cut_episodes_problem(self)
            if problem and problem not in _WARNED:
                # A warning, not an error: the settings are legal and the corrections
                # keep their direction; App. E.1's rollout of 256 cuts MPE's 25-step
                # and Overcooked's 400-step episodes, and those examples keep it.
                _WARNED.add(problem)
                logger.warning("MetaMAPGConfig: %s", problem)
        if self.correction_clip is not None and not (
                is_finite_number(self.correction_clip) and self.correction_clip > 0):
            self._value_error(f"MetaMAPGConfig: correction_clip={self.correction_clip!r} "
                             "must be a number > 0, or None for no clipping.")
        callbacks = self.callbacks_class
        callbacks = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
        if switches(self.arm).cooldown and self.handoff_metric is not None and not any(
                isinstance(c, type) and issubclass(c, CooldownCallback) for c in callbacks):
            self._value_error("MetaMAPGConfig: handoff_metric needs CooldownCallback, which "
                             "callbacks_class no longer holds (it was assigned directly); "
                             "use config.callbacks(YourCallback), which keeps it.")


class MetaMAPG(PluginAlgorithm, PPO):
    """PPO whose learner adds Meta-MAPG's own/peer corrections (see MetaMAPGConfig)."""

    @classmethod
    @override(PPO)
    def get_default_config(cls) -> MetaMAPGConfig:
        return MetaMAPGConfig()


# Like RLlib's own algorithms, importing this one makes it and our envs known to Tune by
# name (Tuner("MetaMAPG"), env="stag_hunt").
register_on_import(MetaMAPG)
