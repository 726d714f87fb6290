"""Shape-then-cool state machine for the correction strength lambda.

The RLlib learner advances it from the lifetime env-step count before every
update (time-triggered handoff and the anneal), and the ``CooldownCallback``
feeds it a result-dict statistic (statistic-triggered handoff).  Its state is a
plain dict so it can travel to remote learners and live in checkpoints.
This module must not import Ray or torch.

Phases:
    ``shaping``: lambda = 1 (corrections on).
    ``cooldown``: after the handoff time T, lambda follows the anneal.
    ``plain``: lambda = 0 (plain PG; always the case for the ``ippo`` arm).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

from rllib_metamapg.metamapg.method import Switches
from rllib_metamapg.schedules import (LambdaSchedule, ScheduleError, check_summable,
                                      is_finite_number)

PHASES = ("shaping", "cooldown", "plain")


@dataclasses.dataclass(frozen=True)
class CooldownController:
    """How lambda evolves for one arm.

    Args:
        arm: The arm (``cooldown=True`` arms follow the schedule after handoff).
        kind: ``"hard"`` (lambda drops to 0 at T) or ``"anneal"``
            (``(1 + (n - T) / scale) ** -power``); ``"constant"`` never hands off.
        handoff_steps: Time trigger T_warm in lifetime env steps, or ``None``.
        anneal_power: Anneal exponent (``kind="anneal"``).
        anneal_scale: Anneal scale in env steps (``kind="anneal"``).
        metric: Result-dict path of the statistic trigger, e.g.
            ``"env_runners/episode_return_mean"``, or ``None``.
        threshold: The statistic must reach this value ...
        patience: ... for this many consecutive iterations.
        allow_nonsummable: Override of the Proposition 3 check.
    """

    arm: Switches
    kind: str = "constant"
    handoff_steps: Optional[float] = None
    anneal_power: float = 2.0
    anneal_scale: float = 100_000.0
    metric: Optional[str] = None
    threshold: Optional[float] = None
    patience: int = 1
    allow_nonsummable: bool = False

    def __post_init__(self):
        if self.kind not in LambdaSchedule.KINDS:
            raise ScheduleError(f"lambda_schedule={self.kind!r} is unknown; choose one "
                                f"of {LambdaSchedule.KINDS}.")
        if self.arm.cooldown:
            if self.kind == "constant":
                raise ScheduleError(f"arm={self.arm.name!r} cools down: lambda_schedule "
                                    "must be 'hard' or 'anneal', not 'constant'.")
            if self.handoff_steps is None and self.metric is None:
                raise ScheduleError(f"arm={self.arm.name!r} needs a handoff trigger: set "
                                    "handoff_steps (T_warm, env steps) and/or "
                                    "handoff_metric + handoff_threshold.")
        elif self.kind != "constant":
            raise ScheduleError(f"lambda_schedule={self.kind!r} applies to arms that hand "
                                f"off only; arm={self.arm.name!r} uses a constant lambda.")
        if self.handoff_steps is not None and not (
                is_finite_number(self.handoff_steps) and self.handoff_steps >= 0):
            raise ScheduleError(f"handoff_steps={self.handoff_steps!r} must be a finite "
                                "number >= 0 (env steps).")
        if self.metric is not None:
            if not isinstance(self.metric, str) or not self.metric.strip("/"):
                raise ScheduleError(f"handoff_metric={self.metric!r} must be a result-dict "
                                    "path such as 'env_runners/episode_return_mean'.")
            if not is_finite_number(self.threshold):
                raise ScheduleError("handoff_metric is set, so handoff_threshold must be a "
                                    f"finite number (got {self.threshold!r}).")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ScheduleError(f"handoff_patience={self.patience!r} must be an integer >= 1.")
        if self.arm.cooldown:
            # The step size is PPO's constant lr, so the anneal alone must be summable.
            check_summable(0.0, self.schedule(0.0), self.allow_nonsummable,
                           step_desc="PPO's constant learning rate")

    def schedule(self, handoff_at: float) -> LambdaSchedule:
        return LambdaSchedule(self.kind, handoff_steps=handoff_at, power=self.anneal_power,
                              scale=self.anneal_scale)

    def initial_state(self) -> Dict[str, Any]:
        """State before any training."""
        if not self.arm.corrected:
            return {"lambda": 0.0, "phase": "plain", "handoff_at": None, "streak": 0}
        return {"lambda": 1.0, "phase": "shaping", "handoff_at": None, "streak": 0}

    def advance(self, state: Dict[str, Any], env_steps: float) -> Dict[str, Any]:
        """State at ``env_steps`` lifetime env steps (time trigger + schedule)."""
        state = dict(state)
        if not (self.arm.corrected and self.arm.cooldown):
            return state
        if (state["handoff_at"] is None and self.handoff_steps is not None
                and env_steps >= self.handoff_steps):
            state["handoff_at"] = float(self.handoff_steps)
        if state["handoff_at"] is not None:
            lam = self.schedule(state["handoff_at"])(env_steps)
            state["lambda"] = float(lam)
            state["phase"] = "plain" if lam == 0.0 else "cooldown"
        return state

    def observe(self, state: Dict[str, Any], env_steps: float,
                value: Optional[float]) -> Dict[str, Any]:
        """Feeds one iteration's statistic (``None``: not reported) to the trigger."""
        state = dict(state)
        if not (self.arm.corrected and self.arm.cooldown) or self.metric is None \
                or state["handoff_at"] is not None:
            return state
        if value is None:  # not reported this iteration (e.g. no evaluation): wait
            return state
        hit = is_finite_number(value) and value >= self.threshold
        state["streak"] = state["streak"] + 1 if hit else 0
        if state["streak"] >= self.patience:
            state["handoff_at"] = float(env_steps)
        return self.advance(state, env_steps)

