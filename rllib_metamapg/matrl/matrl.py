"""MATRL on RLlib: PPO's epochs as the trust-payoff step, then the meta-game and a best response.

Example:
    .. code-block:: python

        from rllib_metamapg import MATRLConfig

        config = (MATRLConfig()
                  .environment("stag_hunt")
                  .training(arm="matrl", br_iters=5, br_clip=0.1))
        algo = config.build_algo()
        print(algo.train()["learners"]["player_0"]["matrl_rho"])
"""

from __future__ import annotations

from typing import Optional, Type, Union

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo.ppo import PPO, PPOConfig
from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override

from rllib_metamapg.forms import META_CHOICES
from rllib_metamapg.matrl.method import matrl_arm
from rllib_metamapg.registry import RegistryError
from rllib_metamapg.rllib_base.algorithm import PluginAlgorithm, register_on_import
from rllib_metamapg.rllib_base.config import PluginPPOConfig, set_provided
from rllib_metamapg.schedules import is_finite_number

BR_OBJECTIVES = ("correction", "full")
BR_STARTS = ("predicted", "current")
BR_WEIGHTS = ("mixture_over_current", "current_over_mixture")
MIXTURE_SPACES = ("probability", "parameter")


class MATRLConfig(PluginPPOConfig):
    """Configuration of :class:`MATRL`: ``PPOConfig`` plus the meta-game, the best
    response and the sampler axis (``sampler``, ``behaviour``: :class:`PluginPPOConfig`).

    Multi-agent wiring defaults to one module per agent of the environment, as
    for every algorithm of this package.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or MATRL)
        self.arm = "matrl"
        self.meta_choice = "last"
        self.br_iters = 5
        self.br_lr = None
        self.br_clip = 0.1
        self.br_minibatch_size = None
        self.br_objective = "correction"
        self.br_start = "predicted"
        self.br_weight = "mixture_over_current"
        self.mixture_space = "probability"
        # As for MetaMAPG: short matrix-game episodes make the numpy conversion slow.
        self.episodes_to_numpy = False

    @override(PPOConfig)
    def training(
        self,
        *,
        arm: Optional[str] = NotProvided,
        meta_choice: Optional[str] = NotProvided,
        br_iters: Optional[int] = NotProvided,
        br_lr: Optional[float] = NotProvided,
        br_clip: Optional[float] = NotProvided,
        br_minibatch_size: Optional[int] = NotProvided,
        br_objective: Optional[str] = NotProvided,
        br_start: Optional[str] = NotProvided,
        br_weight: Optional[str] = NotProvided,
        mixture_space: Optional[str] = NotProvided,
        **kwargs,
    ) -> "MATRLConfig":
        """Sets the training related configuration.

        Args:
            arm: ``matrl`` (meta-game, then best response), ``matrl_no_br`` (the
                policy becomes the meta-game's mixture) or ``il_pp`` (rho = 0: best
                response to the peers' predicted policies).
            meta_choice: Which equilibrium when the 2-agent meta-game has several:
                ``"last"`` (the public code's; the mixed one whenever it exists),
                ``"first"`` or ``"random"`` (the paper's wording).
            br_iters: Best-response gradient steps per iteration (MATRL Table 3: 5).
            br_lr: Adam step size of the best response (own optimizer, state kept
                across iterations); ``None``: the PPO ``lr``.
            br_clip: c of the truncated peer weight
                ``clip(pi_bar_-i / pi_-i, 1 - c, 1 + c)`` (Table 3: 0.1); ``None``:
                no truncation.
            br_minibatch_size: Rows per best-response step; ``None``: PPO's
                ``minibatch_size`` (the whole batch when that is unset).
            br_objective: ``"correction"`` (default): steps on the weight's
                correction ``(c - 1) * surrogate`` -- what the peers' move changes
                in the objective PPO's epochs just climbed; rho = 1 for every
                agent is then PPO exactly, and in the tabular limit it is the
                public code's best response from the current policy.  ``"full"``:
                steps on ``c * surrogate`` (further PPO steps even at rho = 1).
            br_start: Where the best response starts: ``"predicted"`` (default;
                theta_hat, the paper's Algorithm 2) or ``"current"`` (theta, the
                public tabular code's choice; needs ``br_objective="full"``).
            br_weight: The per-sample peer weight: ``"mixture_over_current"``
                (default) ``pi_bar_-i / pi_-i`` -- the importance weight that turns
                samples of the current peers into the mixture's; or
                ``"current_over_mixture"``, ``pi_-i / pi_bar_-i``, the ratio as the
                paper prints it.
            mixture_space: ``"probability"`` (the paper):
                ``pi_bar = rho pi + (1 - rho) pi_hat`` per action; ``"parameter"``
                (the public PPO code): the policy at ``rho theta + (1 - rho)
                theta_hat``.  ``matrl_no_br`` always sets the weights to the
                parameter mixture (a network cannot hold a probability mixture).

        Returns:
            This updated MATRLConfig object.
        """
        super().training(**kwargs)
        set_provided(self, arm=arm, meta_choice=meta_choice, br_iters=br_iters, br_lr=br_lr,
                     br_clip=br_clip, br_minibatch_size=br_minibatch_size,
                     br_objective=br_objective, br_start=br_start, br_weight=br_weight,
                     mixture_space=mixture_space)
        return self

    @override(PPOConfig)
    def get_default_learner_class(self) -> Union[Type[Learner], str]:
        if self.framework_str == "torch":
            from rllib_metamapg.matrl.torch.matrl_torch_learner import MATRLTorchLearner
            return MATRLTorchLearner
        raise ValueError(f"framework={self.framework_str!r}: MATRL supports torch only.")

    @property
    def effective_br_lr(self) -> float:
        return float(self.lr if self.br_lr is None else self.br_lr)

    @override(PPOConfig)
    def validate(self) -> None:
        # Side-effect free, like MetaMAPGConfig.validate (wiring happens at build).
        super().validate()
        self._validate_matrl()

    def _validate_matrl(self) -> None:
        def bad(msg):
            self._value_error(f"MATRLConfig: {msg}")

        try:
            arm = matrl_arm(self.arm)
        except RegistryError as err:
            bad(str(err))
            return
        if self.meta_choice not in META_CHOICES:
            bad(f"meta_choice={self.meta_choice!r}; choose one of {META_CHOICES}.")
        if self.br_objective not in BR_OBJECTIVES:
            bad(f"br_objective={self.br_objective!r}; choose one of {BR_OBJECTIVES}.")
        if self.br_start not in BR_STARTS:
            bad(f"br_start={self.br_start!r}; choose one of {BR_STARTS}.")
        elif self.br_start == "current" and self.br_objective != "full":
            bad("br_start='current' with br_objective='correction' would drop PPO's step "
                "and keep only the correction; use br_objective='full' with it.")
        if self.br_weight not in BR_WEIGHTS:
            bad(f"br_weight={self.br_weight!r}; choose one of {BR_WEIGHTS}.")
        if self.mixture_space not in MIXTURE_SPACES:
            bad(f"mixture_space={self.mixture_space!r}; choose one of {MIXTURE_SPACES}.")
        iters = self.br_iters
        if not isinstance(iters, int) or isinstance(iters, bool) or iters < 0:
            bad(f"br_iters={iters!r} must be an integer >= 0.")
        elif iters == 0 and arm.best_response:
            bad(f"br_iters=0 with arm={arm.name!r} skips its best response; use "
                "arm='matrl_no_br' for MATRL without it, or br_iters >= 1.")
        if self.br_lr is None:
            if isinstance(self.lr, (list, tuple)):
                bad("lr is a schedule; give br_lr (a number > 0) for the best response.")
        elif not is_finite_number(self.br_lr) or self.br_lr <= 0:
            bad(f"br_lr={self.br_lr!r} must be a finite number > 0 (or None: the PPO lr).")
        if self.br_clip is not None and not (is_finite_number(self.br_clip)
                                             and 0 < self.br_clip < 1):
            bad(f"br_clip={self.br_clip!r} must lie in (0, 1) (the weight is clipped to "
                "[1 - c, 1 + c]), or None for no truncation.")
        mb = self.br_minibatch_size
        if mb is not None and (not isinstance(mb, int) or isinstance(mb, bool) or mb < 1):
            bad(f"br_minibatch_size={mb!r} must be an integer >= 1, or None.")
        if (self.num_learners or 0) > 1:
            bad(f"num_learners={self.num_learners}: MATRL runs on 0 or 1 learners (the "
                "meta-game needs every agent's whole batch in one place); set "
                "num_learners to 0 or 1.")


class MATRL(PluginAlgorithm, PPO):
    """PPO whose learner adds MATRL's meta-game and best response (see MATRLConfig)."""

    @classmethod
    @override(PPO)
    def get_default_config(cls) -> MATRLConfig:
        return MATRLConfig()


register_on_import(MATRL)
