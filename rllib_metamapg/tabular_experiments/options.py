"""Command-line options shared by the tabular experiments.

Every option can come from the command line, from a YAML file given with
``--config`` (keys spelled as the long option, with ``-`` or ``_``), or from the
experiment's defaults, in that order of precedence.  All of it is validated
before any computation starts, so bad input never leaves partial output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List

import yaml

from rllib_metamapg.errors import UsageError
from rllib_metamapg import atomic, limits
from rllib_metamapg.registry import arm_choices, parse_arms, arm_for_engine
from rllib_metamapg.tabular.settings import aliases, settings_class
from rllib_metamapg.tabular.settings import fields as settings_fields
from rllib_metamapg.tabular.games import GameError, game_from_spec, get_game, load_payoffs


class OptionsError(UsageError):
    """Raised for a bad option or config key; the message names it."""


NO_BOUND = "none"  # what ``--logit-bound none`` parses to (None means "not given")


def _bound(text: str):
    """``--logit-bound``: a number, or ``none`` for no bound."""
    return NO_BOUND if str(text).lower() in ("none", "null", "off") else float(text)


THRESHOLD = 0.82  # success: min_i p_i(action 0 | start) >= this (the paper's)


def paper_defaults() -> Dict[str, Any]:
    """The paper's tabular settings (docs/tabular.md): the defaults of every setting of
    the engine and of each method registered now, plus how success is scored and the
    seed."""
    return dict(dataclasses.asdict(settings_class()()), threshold=THRESHOLD, seed=0)

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "Optional[float]": _bound,
          "Optional[Tuple[float, ...]]": str}  # "1,0": LearningSettings parses it


def add_learning_options(p: argparse.ArgumentParser) -> None:
    """Adds the options every experiment shares, one per ``LearningSettings`` field
    (defaults resolved later, so a ``--config`` file can supply them)."""
    g = p.add_argument_group("learning")
    g.add_argument("--config", type=Path, help="YAML file of option values (CLI wins)")
    g.add_argument("--arms", nargs="+", help="arms to compare, 'a b' or 'a,b', of any "
                   f"registered method ({arm_choices()})")
    for f in settings_fields():
        flags = ["--" + n.replace("_", "-") for n in (f.name, *f.metadata["aliases"])]
        help_ = f"{f.metadata['help']} (paper: {f.default})"
        if f.type == "bool":
            g.add_argument(*flags, dest=f.name, action="store_true", default=None, help=help_)
            continue
        g.add_argument(*flags, dest=f.name, type=_TYPES[f.type],
                       choices=f.metadata["choices"] or None, help=help_)
    g.add_argument("--threshold", type=float, help="success: min_i p_i(action 0 | start) >= this")
    g.add_argument("--seed", type=int, help="random seed")
    g.add_argument("--out", type=Path, help="output directory")


def resolve(args: argparse.Namespace, defaults: Dict[str, Any]) -> Dict[str, Any]:
    """Merges CLI values over ``--config`` values over ``defaults``."""
    # Callable defaults (the arms) are read from the registry when a command runs, so a
    # method registered at run time is in them.
    values = {k: v() if callable(v) else v for k, v in defaults.items()}
    cfg_path = getattr(args, "config", None)
    if cfg_path is not None:
        values.update(_load_config(cfg_path, set(vars(args)) - {"config", "func", "command",
                                                                 "experiment"}))
    for key, val in vars(args).items():
        if key in ("config", "func", "command", "experiment"):
            continue
        if val is not None:
            values[key] = None if val is NO_BOUND else val
    if values.get("out") is None:
        raise OptionsError("--out: give an output directory.")
    limits.check_sizes(values)  # --config's values too, before anything is allocated
    limits.announce_smoke(limits.apply_smoke(values))
    try:  # before any work: a bad --out used to fail only after the computation
        values["out"] = atomic.check_output_dir(values["out"])
    except atomic.OutputError as err:
        raise OptionsError(str(err)) from None
    return values


def _load_config(path: Path, known: set) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise OptionsError(f"--config {str(path)!r} cannot be read: {e.strerror}.") from None
    except UnicodeDecodeError:
        raise OptionsError(f"--config {str(path)!r} is not a text file; give a YAML file of "
                           "option: value lines.") from None
    except yaml.YAMLError as e:
        raise OptionsError(f"--config {str(path)!r} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"--config {str(path)!r} must hold a mapping of option: value.")
    out = {}
    old = aliases()
    for key, val in data.items():
        k = str(key).replace("-", "_")
        k = old.get(k, k)  # older spellings (correction, clip, policy, handoff)
        if k not in known:
            raise OptionsError(f"--config {str(path)!r}: unknown key {key!r}; valid keys: "
                               f"{', '.join(sorted(x.replace('_', '-') for x in known))}.")
        # ``logit-bound: none`` means no bound, as on the command line.
        none = isinstance(val, str) and val.lower() in ("none", "null", "off")
        out[k] = None if k == "logit_bound" and none else val
    return out


def learning_settings(v: Dict[str, Any]):
    """Builds and validates ``LearningSettings`` from resolved option values."""
    settings = settings_class().from_values(v)
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
    # A payoff given by the user is the game "custom" (or the name its spec sets), never
    # the --game default it replaces: the output must describe what ran.
    if payoff is None:
        return get_game(name)
    if isinstance(payoff, (list, dict)):
        return game_from_spec(payoff, "custom")
    text = str(payoff)
    path = Path(text)
    if path.suffix in (".json", ".yaml", ".yml") or path.exists():
        return load_payoffs(path, "custom")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise GameError(f"--payoff: not a file and not valid JSON ({e.msg} at column "
                        f"{e.colno}); pass a JSON matrix such as '[[4,0],[3,2]]' or a "
                        "file path.") from None
    return game_from_spec(spec, "custom")


def list_option(values) -> List[str]:
    """A list option given as ``a b``, ``a,b`` or both (every command takes both)."""
    if isinstance(values, str):
        values = [values]
    return [x.strip() for item in values or [] for x in str(item).split(",") if x.strip()]


def arms_option(v: Dict[str, Any]) -> List:
    return [arm_for_engine(a, "tabular") for a in parse_arms(list_option(v["arms"]))]


def settings_record(settings, custom=None) -> Dict[str, Any]:
    """JSON-friendly record of the settings, for the output files; ``custom``, the game a
    user's ``--payoff`` defined, is recorded whole (its payoffs are not in any table)."""
    record = settings.record()
    if custom is not None:
        record["payoff"] = custom.describe()
    return record
