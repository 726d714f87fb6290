"""Tuned examples from one source per env: ``tuned_examples/<env>/base.yaml`` + the registry.

``base.yaml`` holds an env's shared RLlib settings (and its smoke-sized
overrides); the budget and T_warm come from the env's :class:`EnvSpec`
(``steps``, ``t_warm``) unless the file gives its own ``stop`` and ``t_warm`` (a
study's folder, e.g. ``studies/neural``), the method settings from its
``MethodSpec.rllib_defaults`` overridden by the file's ``methods.<method>``, a
sampler's settings from the file's ``samplers.<sampler>`` (e.g. MA-PROPS's
``behaviour``: on the arms that sample with it and nowhere else), and the arm's own
settings from its ``ArmSpec.rllib``.  A study variant (``study.yaml``'s
``variants``) is an *overlay*: a mapping of ``config``/``methods``/``samplers``
merged into ``base.yaml`` key by key (:func:`apply_overlay`).  :func:`experiment`
resolves one arm in memory -- the sweep uses it, so an arm registered at run
time needs no file.  The per-arm files users run with ``rllib train file
tuned_examples/<env>/<arm>.yaml`` are rendered from the same function by
``metamapg examples --write``; ``--check`` (and a test) fails when one is stale.
Ray-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from rllib_metamapg import registry
from rllib_metamapg.env_specs import get_env_spec
from rllib_metamapg.errors import UsageError

BASE_FILE = "base.yaml"
FOLDER_ENV = "METAMAPG_TUNED_EXAMPLES"
_BASE_KEYS = {"description", "notes", "config", "smoke", "stop", "t_warm", "methods",
              "samplers"}
_SMOKE_KEYS = {"note", "stop", "t_warm", "config"}
OVERLAY_KEYS = ("config", "methods", "samplers")


def find_folder(folder: Optional[str] = None) -> Path:
    """The tuned-examples folder: explicit, ``$METAMAPG_TUNED_EXAMPLES``, cwd, or beside
    the package."""
    here = Path(__file__).resolve().parents[1] / "tuned_examples"
    candidates = ([Path(folder)] if folder else
                  [Path(p) for p in [os.environ.get(FOLDER_ENV)] if p]
                  + [Path.cwd() / "tuned_examples", here])
    for path in candidates:
        if path.is_dir():
            return path
    raise UsageError("tuned_examples: folder not found (looked in "
                     f"{[str(p) for p in candidates]}); pass --tuned-examples DIR or set "
                     f"{FOLDER_ENV}.")


def envs_with_base(folder: Path) -> List[str]:
    return sorted(p.parent.name for p in Path(folder).glob(f"*/{BASE_FILE}"))


def load_base(folder: Path, env: str) -> Dict[str, Any]:
    path = Path(folder) / env / BASE_FILE
    if not path.is_file():
        raise UsageError(f"env {env!r} has no tuned examples ({path} is missing); write one "
                         f"(see docs/methods.md, 'Adding an environment') or pick one of "
                         f"{envs_with_base(folder)}.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise UsageError(f"{path}: must be a mapping with a 'config' mapping.")
    unknown = set(data) - _BASE_KEYS
    smoke = data.get("smoke") or {}
    unknown |= {f"smoke.{k}" for k in set(smoke) - _SMOKE_KEYS}
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: "
                         f"{sorted(_BASE_KEYS)} and smoke.{sorted(_SMOKE_KEYS)}.")
    if not isinstance(smoke.get("stop"), dict) or "t_warm" not in smoke:
        raise UsageError(f"{path}: smoke needs 'stop' (e.g. training_iteration: 4) and "
                         "'t_warm' (the handoff arm's T_warm at smoke size).")
    methods = data.get("methods") or {}
    if not isinstance(methods, dict) or not all(isinstance(v, dict) for v in methods.values()):
        raise UsageError(f"{path}: 'methods' must map a method name to its settings, e.g. "
                         "{meta_mapg: {correction_clip: 3.0}}.")
    unknown = sorted(set(methods) - set(registry.methods()))
    if unknown:
        raise UsageError(f"{path}: methods.{unknown[0]} is not a registered method; choose "
                         f"from {sorted(registry.methods())}.")
    _check_samplers(data.get("samplers"), str(path))
    if ("stop" in data) != ("t_warm" in data) or not isinstance(data.get("stop", {}), dict):
        raise UsageError(f"{path}: a full-size budget other than the env's needs both 'stop' "
                         "(e.g. training_iteration: 20) and 't_warm' (the handoff arm's "
                         "T_warm in env steps); give neither to use the env's budget.")
    return data


def _check_samplers(samplers: Any, where: str) -> None:
    if samplers is None:
        return
    if not isinstance(samplers, dict) or not all(isinstance(v, dict)
                                                 for v in samplers.values()):
        raise UsageError(f"{where}: 'samplers' must map a sampler name to the settings of "
                         "the arms that sample with it, e.g. {ma_props: {behaviour: {lr: "
                         "0.03}}}.")
    choices = [s for s in registry.sampler_names("rllib") if s != "on_policy"]
    unknown = sorted(set(samplers) - set(choices))
    if unknown:
        raise UsageError(f"{where}: samplers.{unknown[0]} is not a behaviour sampler RLlib "
                         f"runs; choose from {choices}.")


def _merge(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    """``base`` with ``extra`` merged in, mapping by mapping (``extra`` wins)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = (_merge(out[key], value) if isinstance(value, dict)
                    and isinstance(out.get(key), dict) else value)
    return out


def check_overlay(overlay: Any, where: str) -> Dict[str, Any]:
    """A study variant's overlay, checked: a mapping of :data:`OVERLAY_KEYS`."""
    if not isinstance(overlay, dict) or not overlay:
        raise UsageError(f"{where}: a variant must be a non-empty mapping of "
                         f"{list(OVERLAY_KEYS)}, e.g. {{samplers: {{ma_props: {{behaviour: "
                         "{lr: 0.3}}}}}.")
    unknown = sorted(set(overlay) - set(OVERLAY_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {unknown}; a variant overlays "
                         f"{list(OVERLAY_KEYS)} of each env's {BASE_FILE}.")
    for key in OVERLAY_KEYS:
        if key in overlay and not isinstance(overlay[key], dict):
            raise UsageError(f"{where}: {key} must be a mapping.")
    _check_samplers(overlay.get("samplers"), where)
    unknown = sorted(set(overlay.get("methods") or {}) - set(registry.methods()))
    if unknown:
        raise UsageError(f"{where}: methods.{unknown[0]} is not a registered method; choose "
                         f"from {sorted(registry.methods())}.")
    return overlay


def apply_overlay(base: Dict[str, Any], overlay: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """``base.yaml``'s data with a variant's overlay merged in (see :func:`check_overlay`)."""
    return _merge(base, overlay) if overlay else base


def experiment_name(env: str, arm: str, smoke: bool) -> str:
    return f"{env}-{arm}{'-smoke' if smoke else ''}".replace("_", "-")


def scale_budget(stop: Dict[str, Any], t_warm: int, fraction: float,
                 where: str = "budget_fraction") -> Tuple[Dict[str, Any], int]:
    """A full-size budget cut to ``fraction`` (a pilot): every stop value and T_warm,
    rounded, at least 1."""
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) \
            or not 0 < fraction <= 1:
        raise UsageError(f"{where}={fraction!r} must be a number in (0, 1], e.g. 0.1 for a "
                         "pilot at a tenth of the budget.")
    if fraction == 1:
        return stop, t_warm
    return ({k: max(1, round(v * fraction)) for k, v in stop.items()},
            max(1, round(t_warm * fraction)))


def experiment(env: str, arm: str, smoke: bool = False, folder: Optional[Path] = None,
               overlay: Optional[Dict[str, Any]] = None,
               budget_fraction: float = 1.0) -> Tuple[str, Dict[str, Any]]:
    """``(name, {"run", "env", "stop", "config"})`` of one arm on one env (with a study
    variant's ``overlay`` merged into the env's ``base.yaml``, and the full-size budget
    cut to ``budget_fraction``; a smoke budget is never cut)."""
    spec = registry.arm_for_engine(arm, "rllib")
    method = registry.method_of(spec)
    base = apply_overlay(load_base(find_folder(folder) if folder is None
                                   or isinstance(folder, str) else folder, env), overlay)
    env_spec = get_env_spec(env)
    config = dict(base["config"])
    if smoke:
        config.update(base["smoke"].get("config") or {})
        stop = dict(base["smoke"]["stop"])
        t_warm = base["smoke"]["t_warm"]
    elif "stop" in base:  # a study's own budget (e.g. studies/neural)
        stop, t_warm = dict(base["stop"]), base["t_warm"]
    else:
        stop = {"num_env_steps_sampled_lifetime": env_spec.steps}
        t_warm = env_spec.t_warm
    if not smoke:
        stop, t_warm = scale_budget(stop, t_warm, budget_fraction)
    config.update(method.rllib_defaults)
    # This env's (or study's) settings for the method win over the method's defaults.
    config.update((base.get("methods") or {}).get(method.name) or {})
    # A sampler's settings reach only the arms that sample with it (validate() refuses
    # behaviour settings on an on-policy arm).
    config.update((base.get("samplers") or {}).get(spec.sampler) or {})
    config.update(spec.rllib)
    if spec.sampler != "on_policy":
        config["sampler"] = spec.sampler
    if spec.handoff:
        config["handoff_steps"] = t_warm
    return experiment_name(env, spec.name, smoke), {
        "run": method.algorithm_name, "env": env, "stop": stop, "config": config}


def file_name(arm: str, smoke: bool) -> str:
    return f"{arm}{'-smoke' if smoke else ''}.yaml"


def render(env: str, arm: str, smoke: bool, folder: Path) -> str:
    """The text of ``tuned_examples/<env>/<arm>[-smoke].yaml``."""
    base = load_base(folder, env)
    name, exp = experiment(env, arm, smoke, folder)
    spec = registry.get_arm(arm)
    head = [f"# Generated from {env}/{BASE_FILE} by `metamapg examples --write`: edit that "
            "file (or the registry), not this one."]
    if smoke:
        head.append(f"# {base['smoke'].get('note', 'Smoke test.')}")
    else:
        desc = base.get("description", env)
        head.append(f"# {desc}, arm {spec.name} (method {spec.method}).")
        head += [f"# {line}" for line in str(base.get("notes", "")).strip().splitlines()]
    head.append(f"# Run: rllib train file tuned_examples/{env}/{file_name(arm, smoke)}")
    body = yaml.safe_dump({name: exp}, sort_keys=False, default_flow_style=False)
    return "\n".join(head) + "\n" + body


def expected_files(folder: Path) -> Dict[Path, str]:
    """Every generated file under ``folder``: each env with a base x every arm x full/smoke."""
    out = {}
    for env in envs_with_base(folder):
        for arm in registry.arm_names(engine="rllib"):
            for smoke in (False, True):
                out[Path(folder) / env / file_name(arm, smoke)] = render(env, arm, smoke,
                                                                          folder)
    return out


def stale_files(folder: Path) -> List[str]:
    """Generated files that are missing or differ from what the sources give."""
    return sorted(str(p) for p, text in expected_files(folder).items()
                  if not p.is_file() or p.read_text() != text)


def write_files(folder: Path) -> List[str]:
    """(Re)writes the generated files that are stale; returns their paths."""
    written = []
    for path, text in expected_files(folder).items():
        if not path.is_file() or path.read_text() != text:
            tmp = path.with_suffix(".yaml.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
            written.append(str(path))
    return written


def add_parser(sub) -> None:
    p = sub.add_parser("examples", help="check or regenerate the per-arm tuned examples",
                       description="The per-arm files tuned_examples/<env>/<arm>.yaml are "
                       "generated from <env>/base.yaml, the env's budget/T_warm and the "
                       "method registry. --check lists stale ones (exit 1); --write "
                       "rewrites them.")
    p.add_argument("--tuned-examples", default=None, help="tuned-examples folder")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    p.set_defaults(func=_run)


def _run(args) -> int:
    folder = find_folder(args.tuned_examples)
    if args.write:
        for path in write_files(folder):
            print(f"wrote {path}")
        return 0
    stale = stale_files(folder)
    for path in stale:
        print(f"stale: {path}")
    if stale:
        print("run `metamapg examples --write` to regenerate them.")
    return 1 if stale else 0
