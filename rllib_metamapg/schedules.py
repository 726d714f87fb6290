"""Step-size and correction-strength (lambda) schedules, with the cooldown check.

Shared by the tabular engine and the RLlib cooldown callback so both refuse the
same schedules.  Proposition 3 of the paper needs, after the handoff time T,

    sum_{n >= T} alpha_n * lambda_n < infinity.

With ``alpha_n ~ n^-p`` and an anneal ``lambda_n ~ n^-q`` this holds exactly
when ``p + q > 1``; a hard cooldown (lambda = 0 after T) always satisfies it.
A *constant* lambda is plain persistent shaping, not a cooldown, so it is not
subject to the check (the fixed-point shift it causes is what the ``cooldown``
experiment measures).

This module must not import Ray or torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from rllib_metamapg.errors import UsageError


class ScheduleError(UsageError):
    """Raised for an impossible or non-summable schedule; the message names the field."""


@dataclasses.dataclass(frozen=True)
class StepSize:
    """Outer step size ``alpha_n = alpha0 / (n + offset) ** power``.

    ``power = 0`` gives a constant step size.
    """

    alpha0: float
    power: float = 0.0
    offset: float = 0.0

    def __post_init__(self):
        _finite("lr", self.alpha0)
        _finite("lr_power", self.power)
        _finite("lr_offset", self.offset)
        if self.alpha0 <= 0:
            raise ScheduleError(f"lr={self.alpha0} must be > 0.")
        if self.power < 0:
            raise ScheduleError(f"lr_power={self.power} must be >= 0 (0 = constant).")
        if self.power > 0 and self.offset <= 0:
            raise ScheduleError(f"lr_offset={self.offset} must be > 0 when lr_power > 0 "
                                "(alpha_0 would be infinite).")

    def __call__(self, n: int) -> float:
        if self.power == 0:
            return self.alpha0
        return self.alpha0 / (n + self.offset) ** self.power


@dataclasses.dataclass(frozen=True)
class LambdaSchedule:
    """Multiplier ``w_n`` in [0, 1] applied to the correction coefficients.

    Kinds:
        ``constant``: ``w_n = 1`` for every n.
        ``hard``: ``w_n = 1`` for ``n < T``, then 0 (hand off to plain PG).
        ``anneal``: ``w_n = 1`` for ``n < T``, then ``(1 + (n - T) / scale) ** -power``.
    """

    kind: str = "constant"
    handoff_steps: Optional[float] = None
    power: float = 1.0
    scale: float = 1.0

    KINDS = ("constant", "hard", "anneal")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ScheduleError(f"lambda_schedule={self.kind!r} is unknown; choose one "
                                f"of {self.KINDS}.")
        if self.kind != "constant":
            if self.handoff_steps is None:
                raise ScheduleError(f"lambda_schedule={self.kind!r} needs a handoff time "
                                    "T (handoff_steps / --handoff-steps).")
            _finite("handoff_steps", self.handoff_steps)
            if self.handoff_steps < 0:
                raise ScheduleError(f"handoff_steps={self.handoff_steps} must be >= 0.")
        if self.kind == "anneal":
            _finite("anneal_power", self.power)
            _finite("anneal_scale", self.scale)
            if self.power <= 0:
                raise ScheduleError(f"anneal_power={self.power} must be > 0 (use "
                                    "lambda_schedule='constant' for no decay).")
            if self.scale <= 0:
                raise ScheduleError(f"anneal_scale={self.scale} must be > 0.")

    def __call__(self, n: float) -> float:
        if self.kind == "constant" or n < self.handoff_steps:
            return 1.0
        if self.kind == "hard":
            return 0.0
        return (1.0 + (n - self.handoff_steps) / self.scale) ** (-self.power)

    def active(self, n: float) -> bool:
        return self(n) > 0.0


def check_summable(step_power: float, schedule: LambdaSchedule,
                   allow_nonsummable: bool = False, step_desc: str = "") -> None:
    """Refuses a cooldown whose ``sum alpha_n lambda_n`` diverges (Prop. 3).

    Args:
        step_power: Tail exponent p of the step size (``alpha_n ~ n^-p``; 0 when
            the step size is constant).
        schedule: The lambda schedule.
        allow_nonsummable: Explicit user override.
        step_desc: Human-readable step-size description for the message.
    """
    if schedule.kind != "anneal" or allow_nonsummable:
        return
    p, q = float(step_power), float(schedule.power)
    if p + q > 1.0:
        return
    desc = step_desc or (f"alpha_n ~ n^-{p:g}" if p > 0 else "a constant step size")
    raise ScheduleError(
        f"anneal_power={q:g}: with {desc}, lambda_n ~ n^-{q:g} after handoff gives "
        f"sum alpha_n*lambda_n = infinity (p + q = {p + q:g} <= 1), which violates the "
        f"cooldown condition of Proposition 3. Use anneal_power > {1 - p:g}, a hard "
        "cooldown, or override explicitly (allow_nonsummable=True / "
        "--allow-nonsummable).")


def is_finite_number(x) -> bool:
    """True for a finite int/float (or numeric string); False for bools and the rest."""
    try:
        return not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _finite(field: str, x) -> None:
    if not is_finite_number(x):
        raise ScheduleError(f"{field}={x!r} must be a finite number.")
