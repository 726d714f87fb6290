"""The tabular learning settings, defined once.

Each field carries its default (the paper's tabular settings, see
``docs/tabular.md``), its help text, its choices and the older spellings still
accepted.  The ``metamapg tabular`` options, the ``--config`` YAML keys, the
output record and the checks are all generated from these fields, so a setting
is added, renamed or re-defaulted here and nowhere else.  Names match the RLlib
side where the two engines share a concept (``correction_form``,
``unroll_length``, ``inner_lr``, ``own_coef``, ``peer_coef``,
``lambda_schedule``, ``handoff_steps``, ``anneal_power``, ``anneal_scale``,
``parameterization``); ``logit_bound`` is the tabular box on the logits, not the
RLlib ``correction_clip`` (a norm cap on the correction).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

from rllib_metamapg.errors import UsageError
from rllib_metamapg.forms import (CORRECTION_FORMS, META_CHOICES, PARAMETERIZATIONS,
                                  TABULAR_ONLY_FORMS)
from rllib_metamapg.schedules import LambdaSchedule, StepSize, check_summable

MODES = ("exact", "sampled")
FORMS = CORRECTION_FORMS + TABULAR_ONLY_FORMS
ESTIMATORS = ("dice", "reinforce")
DTYPES = ("float32", "float64")


class SettingsError(UsageError):
    """Raised for invalid learning settings; the message names the field."""


def _setting(default, help: str, *, choices: Tuple = (), aliases: Tuple[str, ...] = (),
             low: Optional[float] = None, low_open: bool = False, optional: bool = False):
    """A settings field: default, help, choices, old names and the range it must lie in."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": tuple(choices), "aliases": tuple(aliases), "low": low,
        "low_open": low_open, "optional": optional})


@dataclasses.dataclass(frozen=True)
class LearningSettings:
    """Everything that defines a tabular learning run except game and arms."""

    mode: str = _setting("sampled", "exact closed form or sampled episodes", choices=MODES)
    correction_form: str = _setting(
        "taylor", "look-ahead correction: first-order taylor, unroll (through the L "
        "inner steps; DiCE when sampled), or lola (my value at my current and my peers' "
        "look-ahead parameters; DiCE when sampled)", choices=FORMS, aliases=("correction",))
    unroll_length: int = _setting(1, "inner steps L of the unroll form", low=1)
    # Whole-episode REINFORCE products reproduce the paper's IPD numbers; causal
    # DiCE has lower variance (stronger peer effect in IPD). One-shot games: same.
    estimator: str = _setting("reinforce", "sampled-mode score-function estimator (causal "
                              "DiCE or whole-episode REINFORCE)", choices=ESTIMATORS)
    steps: int = _setting(140, "outer learning steps", low=1)
    lr: float = _setting(0.9, "outer step size alpha0", low=0, low_open=True)
    lr_power: float = _setting(0.24, "alpha_n = lr / (n + lr_offset)^lr_power", low=0)
    lr_offset: float = _setting(10.0, "see lr_power", low=0)
    inner_lr: float = _setting(0.55, "inner (look-ahead) step size eta", low=0)
    own_coef: float = _setting(0.35, "own-learning coefficient", low=0)
    peer_coef: float = _setting(1.5, "peer-learning coefficient lambda", low=0)
    batch_size: int = _setting(192, "episodes per step (sampled mode)", low=1)
    logit_bound: Optional[float] = _setting(
        8.0, "keep every logit in [-b, b] after each step (none: unbounded)", low=0,
        low_open=True, optional=True, aliases=("clip",))
    temperature: float = _setting(0.0, "entropy regularisation temperature (not the "
                                   "success threshold tau)", low=0)
    parameterization: str = _setting("bernoulli", "tabular policy parameterisation",
                                     choices=PARAMETERIZATIONS, aliases=("policy",))
    lambda_schedule: str = _setting("hard", "correction schedule of arms that hand off",
                                    choices=LambdaSchedule.KINDS)
    handoff_steps: float = _setting(100.0, "handoff step T of the schedule (outer steps)",
                                    low=0, aliases=("handoff",))
    anneal_power: float = _setting(1.0, "q in (1 + (n - T)/scale)^-q")
    anneal_scale: float = _setting(30.0, "scale in the anneal schedule")
    allow_nonsummable: bool = _setting(
        False, "accept an anneal with sum alpha_n lambda_n = infinity")
    dtype: str = _setting("float64", "floating precision", choices=DTYPES)
    player_lambda: Optional[Tuple[float, ...]] = _setting(
        None, "per-player multiplier of Meta-MAPG's correction terms, e.g. 1,0: player "
        "2 learns by plain PG against a Meta-MAPG player 1 (none: 1 for every player)",
        low=0, optional=True)
    meta_choice: str = _setting(
        "last", "MATRL: which equilibrium of the meta-game when it has several (last = "
        "the public code's, the mixed one when it exists; random = the paper's wording)",
        choices=META_CHOICES)

    def __post_init__(self):
        # A YAML list or a CLI "1,0" arrives as a list or string; keep an immutable tuple.
        if self.player_lambda is not None and not isinstance(self.player_lambda, tuple):
            object.__setattr__(self, "player_lambda", parse_floats(self.player_lambda,
                                                                   "player_lambda"))

    @property
    def step_size(self) -> StepSize:
        return StepSize(self.lr, power=self.lr_power, offset=self.lr_offset)

    @property
    def schedule(self) -> LambdaSchedule:
        return LambdaSchedule(self.lambda_schedule, handoff_steps=self.handoff_steps,
                              power=self.anneal_power, scale=self.anneal_scale)

    @property
    def torch_dtype(self):
        import torch  # here, so the CLI can list the settings without loading torch

        return getattr(torch, self.dtype)

    def validate(self) -> None:
        """Checks every field from its metadata, then the schedule's summability."""
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))
        self.schedule  # noqa: B018 - builds the schedule, which checks itself
        check_summable(self.lr_power, self.schedule, self.allow_nonsummable,
                       step_desc=f"alpha_n = {self.lr:g}/(n + {self.lr_offset:g})^"
                       f"{self.lr_power:g}")

    def record(self) -> Dict[str, Any]:
        """JSON-ready record for output files (every field, by its name)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_values(cls, values: Dict[str, Any]) -> "LearningSettings":
        """Settings from a mapping that may also hold other options (ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def fields():
    return dataclasses.fields(LearningSettings)


def aliases() -> Dict[str, str]:
    """``{old name: field name}`` (``correction`` -> ``correction_form``, ...)."""
    return {a: f.name for f in fields() for a in f.metadata["aliases"]}


def parse_floats(x: Any, name: str) -> Tuple[float, ...]:
    """``"1,0"``, ``[1, 0]`` or ``(1, 0)`` -> ``(1.0, 0.0)``; refused by name otherwise."""
    items = x.split(",") if isinstance(x, str) else x
    try:
        out = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}={x!r} must be a comma-separated list of numbers, "
                            "one per player (e.g. 1,0).") from None
    if not out:
        raise SettingsError(f"{name}={x!r}: give one number per player (e.g. 1,0).")
    return out


def _check(f: dataclasses.Field, x: Any) -> None:
    meta, name = f.metadata, f.name
    if x is None and meta["optional"]:
        return
    if f.type == "Optional[Tuple[float, ...]]":
        if any(not math.isfinite(v) or v < meta["low"] for v in x):
            raise SettingsError(f"{name}={','.join(f'{v:g}' for v in x)}: every entry must "
                                f"be a finite number >= {meta['low']:g}.")
        return
    if meta["choices"]:
        if x not in meta["choices"]:
            raise SettingsError(f"{name}={x!r} is unknown; choose one of {meta['choices']}.")
        return
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "bool": bool,
                                                    "Optional[float]": float}[f.type]
    if kind is bool:
        if not isinstance(x, bool):
            raise SettingsError(f"{name}={x!r} must be true or false.")
        return
    if kind is int:
        if not isinstance(x, int) or isinstance(x, bool):
            raise SettingsError(f"{name}={x!r} must be an integer.")
    elif not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
        raise SettingsError(f"{name}={x!r} must be a finite number.")
    low = meta["low"]
    if low is not None and (x <= low if meta["low_open"] else x < low):
        bound = f"> {low:g}" if meta["low_open"] else f">= {low:g}"
        hint = " (or none for no bound)" if meta["optional"] else ""
        raise SettingsError(f"{name}={x!r} must be {bound}{hint}.")
