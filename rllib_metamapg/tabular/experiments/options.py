"""Command-line options shared by the tabular experiments.

Every option can come from the command line, from a YAML file given with
``--config`` (keys spelled as the long option, with ``-`` or ``_``), or from the
experiment's defaults, in that order of precedence.  All of it is validated
before any computation starts, so bad input never leaves partial output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List

import yaml

from rllib_metamapg import atomic
from rllib_metamapg.arms import parse_arms
from rllib_metamapg.schedules import LambdaSchedule, StepSize
from rllib_metamapg.tabular.dynamics import FORMS, MODES, LearningSettings
from rllib_metamapg.tabular.games import GameError, game_from_spec, get_game, load_payoffs
from rllib_metamapg.tabular.policies import KINDS
from rllib_metamapg.tabular.sampled import SampledEstimator


class OptionsError(ValueError):
    """Raised for a bad option or config key; the message names it."""


# The paper's tabular settings (shared/reference/tabular_settings.md).
PAPER = dict(mode="sampled", correction="taylor", unroll_length=1, lr=0.9, lr_power=0.24,
             lr_offset=10.0, inner_lr=0.55, own_coef=0.35, peer_coef=1.5, threshold=0.82,
             seed=0, policy="bernoulli", temperature=0.0, clip=8.0, lambda_schedule="hard",
             handoff=100.0, anneal_power=1.0, anneal_scale=30.0, estimator="reinforce",
             dtype="float64", allow_nonsummable=False)


def add_learning_options(p: argparse.ArgumentParser) -> None:
    """Adds the options every experiment shares (defaults resolved later)."""
    g = p.add_argument_group("learning")
    g.add_argument("--config", type=Path, help="YAML file of option values (CLI wins)")
    g.add_argument("--mode", choices=MODES, help="exact closed form or sampled episodes")
    g.add_argument("--correction", choices=FORMS, help="correction form")
    g.add_argument("--unroll-length", type=int, help="inner steps L of the unroll form")
    g.add_argument("--estimator", choices=SampledEstimator.ESTIMATORS,
                   help="sampled-mode score-function estimator (causal DiCE or REINFORCE)")
    g.add_argument("--arms", nargs="+", help="arms to compare ('a b' or 'a,b')")
    g.add_argument("--steps", type=int, help="outer learning steps")
    g.add_argument("--lr", type=float, help="outer step size alpha0")
    g.add_argument("--lr-power", type=float, help="alpha_n = lr / (n + lr_offset)^lr_power")
    g.add_argument("--lr-offset", type=float, help="see --lr-power")
    g.add_argument("--inner-lr", type=float, help="inner (look-ahead) step size eta")
    g.add_argument("--own-coef", type=float, help="own-learning coefficient")
    g.add_argument("--peer-coef", type=float, help="peer-learning coefficient lambda")
    g.add_argument("--batch-size", type=int, help="episodes per step (sampled mode)")
    g.add_argument("--policy", choices=KINDS, help="tabular policy parameterisation")
    g.add_argument("--temperature", type=float, help="entropy regularisation tau >= 0")
    g.add_argument("--clip", type=float, help="clip logits to [-clip, clip] after each step")
    g.add_argument("--lambda-schedule", choices=LambdaSchedule.KINDS,
                   help="correction schedule of the handoff arm")
    g.add_argument("--handoff", type=float, help="handoff step T of the schedule")
    g.add_argument("--anneal-power", type=float, help="q in (1 + (n - T)/scale)^-q")
    g.add_argument("--anneal-scale", type=float, help="scale in the anneal schedule")
    g.add_argument("--allow-nonsummable", action="store_true", default=None,
                   help="accept an anneal with sum alpha_n lambda_n = infinity")
    g.add_argument("--dtype", choices=("float32", "float64"), help="floating precision")
    g.add_argument("--threshold", type=float, help="success: min_i p_i(action 0 | start) >= this")
    g.add_argument("--seed", type=int, help="random seed")
    g.add_argument("--out", type=Path, help="output directory")


def resolve(args: argparse.Namespace, defaults: Dict[str, Any]) -> Dict[str, Any]:
    """Merges CLI values over ``--config`` values over ``defaults``."""
    values = dict(defaults)
    cfg_path = getattr(args, "config", None)
    if cfg_path is not None:
        values.update(_load_config(cfg_path, set(vars(args)) - {"config", "func", "command",
                                                                 "experiment"}))
    for key, val in vars(args).items():
        if key in ("config", "func", "command", "experiment"):
            continue
        if val is not None:
            values[key] = val
    if values.get("out") is None:
        raise OptionsError("--out: give an output directory.")
    try:  # before any work: a bad --out used to fail only after the computation
        values["out"] = atomic.check_output_dir(values["out"])
    except (FileExistsError, PermissionError) as err:
        raise OptionsError(str(err)) from None
    return values


def _load_config(path: Path, known: set) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise OptionsError(f"--config {str(path)!r} cannot be read: {e.strerror}.") from None
    except yaml.YAMLError as e:
        raise OptionsError(f"--config {str(path)!r} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"--config {str(path)!r} must hold a mapping of option: value.")
    out = {}
    for key, val in data.items():
        k = str(key).replace("-", "_")
        if k not in known:
            raise OptionsError(f"--config {str(path)!r}: unknown key {key!r}; valid keys: "
                               f"{', '.join(sorted(x.replace('_', '-') for x in known))}.")
        out[k] = val
    return out


def learning_settings(v: Dict[str, Any]) -> LearningSettings:
    """Builds and validates :class:`LearningSettings` from resolved option values."""
    sched = LambdaSchedule(v["lambda_schedule"], handoff=v["handoff"],
                           power=v["anneal_power"], scale=v["anneal_scale"])
    settings = LearningSettings(
        mode=v["mode"], correction=v["correction"], unroll_length=v["unroll_length"],
        steps=v["steps"],
        step_size=StepSize(v["lr"], power=v["lr_power"], offset=v["lr_offset"]),
        inner_lr=v["inner_lr"], own_coef=v["own_coef"], peer_coef=v["peer_coef"],
        batch_size=v["batch_size"], estimator=v["estimator"],
        clip=v["clip"], temperature=v["temperature"], policy=v["policy"], schedule=sched,
        allow_nonsummable=bool(v["allow_nonsummable"]), dtype=v["dtype"])
    settings.validate()
    if not 0.0 < v["threshold"] < 1.0:
        raise OptionsError(f"--threshold={v['threshold']} must lie in (0, 1).")
    return settings


def resolve_game(name: str, payoff=None):
    """A built-in game, or one defined by ``--payoff`` (inline JSON or a file path),
    refused when its target is not action 0: these experiments score p(action 0)."""
    game = _load_game(name, payoff)
    if not game.targets_action_zero:
        raise GameError(
            f"game {game.name!r}: its target joint action(s) {list(game.targets)} are not "
            "action 0 of every player, and this experiment scores success as p(action 0 | "
            "start); choose a game whose target is action 0 (e.g. stag_hunt, ipd, "
            "no_conflict_1..21, climbing).")
    return game


def _load_game(name: str, payoff=None):
    if payoff is None:
        return get_game(name)
    if isinstance(payoff, (list, dict)):
        return game_from_spec(payoff, name or "custom")
    text = str(payoff)
    path = Path(text)
    if path.suffix in (".json", ".yaml", ".yml") or path.exists():
        return load_payoffs(path, name)
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise GameError(f"--payoff: not a file and not valid JSON ({e.msg} at column "
                        f"{e.colno}); pass a JSON matrix such as '[[4,0],[3,2]]' or a "
                        "file path.") from None
    return game_from_spec(spec, name or "custom")


def list_option(values) -> List[str]:
    """A list option given as ``a b``, ``a,b`` or both (every command takes both)."""
    if isinstance(values, str):
        values = [values]
    return [x.strip() for item in values or [] for x in str(item).split(",") if x.strip()]


def arms_option(v: Dict[str, Any]) -> List:
    return parse_arms(list_option(v["arms"]))


def settings_record(settings: LearningSettings) -> Dict[str, Any]:
    """JSON-friendly record of the settings, for the output files."""
    return {
        "mode": settings.mode, "correction": settings.correction,
        "unroll_length": settings.unroll_length, "estimator": settings.estimator,
        "steps": settings.steps,
        "step_size": {"alpha0": settings.step_size.alpha0, "power": settings.step_size.power,
                      "offset": settings.step_size.offset},
        "inner_lr": settings.inner_lr, "own_coef": settings.own_coef,
        "peer_coef": settings.peer_coef, "batch_size": settings.batch_size,
        "clip": settings.clip, "temperature": settings.temperature,
        "policy": settings.policy, "dtype": settings.dtype,
        "lambda_schedule": {"kind": settings.schedule.kind,
                            "handoff": settings.schedule.handoff,
                            "power": settings.schedule.power,
                            "scale": settings.schedule.scale,
                            "applies_to": "handoff arm"},
        "allow_nonsummable": settings.allow_nonsummable,
    }
