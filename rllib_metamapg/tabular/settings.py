"""The tabular learning settings, each defined once.

A setting is a dataclass field made with :func:`setting`: its default (the
paper's tabular settings, see ``docs/tabular.md``), its help text, its choices,
the older spellings still accepted and the range it must lie in.  The engine's
own settings are :class:`EngineSettings`; a method brings the settings only it
reads as a frozen dataclass named by its ``MethodSpec.settings`` (Meta-MAPG's
coefficients and schedule, MATRL's ``meta_choice``).  :class:`LearningSettings`
is the engine's settings plus every registered method's, composed from the
registry, so the ``metamapg tabular`` options, the ``--config`` YAML keys, the
output record and the checks of a new method's setting are generated from its
one field.  Names match the RLlib side where the two engines share a concept
(``correction_form``, ``unroll_length``, ``inner_lr``, ``own_coef``,
``peer_coef``, ``lambda_schedule``, ``handoff_steps``, ``anneal_power``,
``anneal_scale``, ``parameterization``); ``logit_bound`` is the tabular box on
the logits, not the RLlib ``correction_clip`` (a norm cap on the correction).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

from rllib_metamapg.errors import UsageError
from rllib_metamapg.forms import CORRECTION_FORMS, PARAMETERIZATIONS, TABULAR_ONLY_FORMS
from rllib_metamapg.schedules import StepSize

MODES = ("exact", "sampled")
FORMS = CORRECTION_FORMS + TABULAR_ONLY_FORMS
ESTIMATORS = ("dice", "reinforce")
DTYPES = ("float32", "float64")


class SettingsError(UsageError):
    """Raised for invalid learning settings; the message names the field."""


def setting(default, help: str, *, choices: Tuple = (), aliases: Tuple[str, ...] = (),
            low: Optional[float] = None, low_open: bool = False, optional: bool = False):
    """A settings field: default, help, choices, old names and the range it must lie in.

    Its type annotation is one of ``int``, ``float``, ``str``, ``bool``,
    ``Optional[float]`` or ``Optional[Tuple[float, ...]]`` (a number per player)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": tuple(choices), "aliases": tuple(aliases), "low": low,
        "low_open": low_open, "optional": optional})


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """The tabular engine's settings: how a run learns whatever its method (the
    look-ahead corrections are the engine's, every method may ask for them)."""

    mode: str = setting("sampled", "exact closed form or sampled episodes", choices=MODES)
    correction_form: str = setting(
        "taylor", "look-ahead correction: first-order taylor, unroll (through the L "
        "inner steps; DiCE when sampled), or lola (my value at my current and my peers' "
        "look-ahead parameters; DiCE when sampled)", choices=FORMS, aliases=("correction",))
    unroll_length: int = setting(1, "inner steps L of the unroll form", low=1)
    # Whole-episode REINFORCE products reproduce the paper's IPD numbers; causal
    # DiCE has lower variance (stronger peer effect in IPD). One-shot games: same.
    estimator: str = setting("reinforce", "sampled-mode score-function estimator (causal "
                             "DiCE or whole-episode REINFORCE)", choices=ESTIMATORS)
    steps: int = setting(140, "outer learning steps", low=1)
    lr: float = setting(0.9, "outer step size alpha0", low=0, low_open=True)
    lr_power: float = setting(0.24, "alpha_n = lr / (n + lr_offset)^lr_power", low=0)
    lr_offset: float = setting(10.0, "see lr_power", low=0)
    inner_lr: float = setting(0.55, "inner (look-ahead) step size eta", low=0)
    batch_size: int = setting(192, "episodes per step (sampled mode)", low=1)
    logit_bound: Optional[float] = setting(
        8.0, "keep every logit in [-b, b] after each step (none: unbounded)", low=0,
        low_open=True, optional=True, aliases=("clip",))
    temperature: float = setting(0.0, "entropy regularisation temperature (not the "
                                 "success threshold tau)", low=0)
    parameterization: str = setting("bernoulli", "tabular policy parameterisation",
                                    choices=PARAMETERIZATIONS, aliases=("policy",))
    dtype: str = setting("float64", "floating precision", choices=DTYPES)
    player_lambda: Optional[Tuple[float, ...]] = setting(
        None, "per-player multiplier of the method's learning-aware terms, e.g. 1,0: "
        "player 2 learns by plain PG against a learning-aware player 1 (none: 1 for "
        "every player)", low=0, optional=True)

    def __post_init__(self):
        # A YAML list or a CLI "1,0" arrives as a list or string; keep an immutable tuple.
        if self.player_lambda is not None and not isinstance(self.player_lambda, tuple):
            object.__setattr__(self, "player_lambda", parse_floats(self.player_lambda,
                                                                   "player_lambda"))

    @property
    def step_size(self) -> StepSize:
        return StepSize(self.lr, power=self.lr_power, offset=self.lr_offset)

    @property
    def torch_dtype(self):
        import torch  # here, so the CLI can list the settings without loading torch

        return getattr(torch, self.dtype)

    def validate(self) -> None:
        """Checks every field from its metadata, then each method's own ``check_settings``
        (Meta-MAPG: the schedule's summability), in the registry's order."""
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))
        for base in type(self).__mro__:
            check = base.__dict__.get("check_settings")
            if check is not None:
                check(self)

    def record(self) -> Dict[str, Any]:
        """JSON-ready record for output files (every field, by its name)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_values(cls, values: Dict[str, Any]) -> "EngineSettings":
        """Settings from a mapping that may also hold other options (ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


_COMPOSED: Dict[Tuple, type] = {}
# The types a setting may have: what the CLI parses and _check checks.
TYPES = ("int", "float", "str", "bool", "Optional[float]", "Optional[Tuple[float, ...]]")


def _type_name(t) -> str:
    if isinstance(t, str):
        return t
    return t.__name__ if isinstance(t, type) else str(t).replace("typing.", "")



def settings_class() -> type:
    """:class:`LearningSettings` for the methods registered now: the engine's settings
    plus each method's own (``MethodSpec.settings``), as one frozen dataclass.

    Rebuilt when the registry's methods change, so a method registered at run time
    brings its settings to the options, ``--config`` keys and records.  Two methods
    that declare the same setting name are refused, naming both."""
    from rllib_metamapg import registry  # core; loads the built-in methods on first use

    owned = tuple((name, spec.settings_class()) for name, spec in registry.methods().items()
                  if spec.settings is not None)
    key = tuple(cls for _, cls in owned)
    if key not in _COMPOSED:
        _COMPOSED.clear()  # only the current registry's class is ever handed out
        _COMPOSED[key] = _compose(owned)
    return _COMPOSED[key]


def _compose(owned) -> type:
    seen = {f.name: "the engine" for f in dataclasses.fields(EngineSettings)}
    for method, cls in owned:
        if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
            raise SettingsError(f"method {method!r}: settings must be a frozen dataclass "
                                "of fields made with rllib_metamapg.tabular.settings."
                                f"setting(), got {cls!r}.")
        for f in dataclasses.fields(cls):
            if "help" not in f.metadata:
                raise SettingsError(f"method {method!r}: setting {f.name!r} is not made "
                                    "with rllib_metamapg.tabular.settings.setting().")
            f.type = _type_name(f.type)  # one spelling, with or without future annotations
            if f.type not in TYPES:
                raise SettingsError(f"method {method!r}: setting {f.name!r} has type "
                                    f"{f.type}; use one of {', '.join(TYPES)}.")
            if f.name in seen:
                raise SettingsError(f"setting {f.name!r} is declared by both {seen[f.name]} "
                                    f"and method {method!r}; rename one of them.")
            seen[f.name] = f"method {method!r}"
    # The engine's fields come first, then each method's in registry order: the MRO is
    # walked backwards to collect dataclass fields.
    bases = (*reversed([cls for _, cls in owned]), EngineSettings)
    composed = dataclasses.make_dataclass("LearningSettings", [], bases=bases, frozen=True)
    composed.__module__ = __name__
    composed.__doc__ = ("Everything that defines a tabular learning run except game and "
                        "arms: the engine's settings and every registered method's.")
    return composed


def __getattr__(name: str):
    # ``from rllib_metamapg.tabular.settings import LearningSettings`` gets the class for
    # the methods registered at that moment; code that must see methods registered
    # later (the CLI's options, --config keys) calls settings_class() when it runs.
    if name == "LearningSettings":
        return settings_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

def fields():
    """Every setting: the engine's, then each registered method's."""
    return dataclasses.fields(settings_class())


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
