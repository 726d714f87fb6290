"""Meta-MAPG's own tabular settings: the correction coefficients and the
shape-then-cool schedule (Ray- and torch-free; the registry composes them into
``LearningSettings``, so each is a ``metamapg tabular`` option and a ``--config``
key)."""

from __future__ import annotations

import dataclasses

from rllib_metamapg.schedules import LambdaSchedule, check_summable
from rllib_metamapg.tabular.settings import setting


@dataclasses.dataclass(frozen=True)
class MetaMAPGSettings:
    own_coef: float = setting(0.35, "own-learning coefficient", low=0)
    peer_coef: float = setting(1.5, "peer-learning coefficient lambda", low=0)
    lambda_schedule: str = setting("hard", "correction schedule of arms that hand off",
                                   choices=LambdaSchedule.KINDS)
    handoff_steps: float = setting(100.0, "handoff step T of the schedule (outer steps)",
                                   low=0, aliases=("handoff",))
    anneal_power: float = setting(1.0, "q in (1 + (n - T)/scale)^-q")
    anneal_scale: float = setting(30.0, "scale in the anneal schedule")
    allow_nonsummable: bool = setting(
        False, "accept an anneal with sum alpha_n lambda_n = infinity")

    @property
    def schedule(self) -> LambdaSchedule:
        return LambdaSchedule(self.lambda_schedule, handoff_steps=self.handoff_steps,
                              power=self.anneal_power, scale=self.anneal_scale)

    def check_settings(self) -> None:
        """The schedule builds (it checks itself), and a cooldown with the run's step
        size keeps ``sum alpha_n lambda_n`` finite (Prop. 3) unless allowed."""
        check_summable(self.lr_power, self.schedule, self.allow_nonsummable,
                       step_desc=f"alpha_n = {self.lr:g}/(n + {self.lr_offset:g})^"
                       f"{self.lr_power:g}")
