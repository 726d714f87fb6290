"""A study's ``study.yaml``: which envs, arms and seeds it sweeps, and where reports go.

A study folder holds ``study.yaml`` and one ``<env>/base.yaml`` per env (the tuned
examples every arm of that env's sweep starts from).  ``arms`` is a list of arms or
the name of a registry experiment (``compare``: every method's comparison arms,
the registry's list rather than a copy of it), kept to the arms RLlib implements.
``smoke`` names the CI-sized version: fewer envs, arms and seeds, each env at its
``base.yaml``'s smoke budget.  Ray-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from rllib_metamapg import registry
from rllib_metamapg.env_specs import ENV_SPECS
from rllib_metamapg.errors import UsageError
from rllib_metamapg.tuned_examples import BASE_FILE, load_base

MANIFEST = "study.yaml"
_KEYS = {"description", "envs", "arms", "seeds", "max_concurrent", "reports", "smoke"}
_SMOKE_KEYS = {"envs", "arms", "seeds"}


@dataclass(frozen=True)
class Study:
    """A checked study.

    Attributes:
        folder: The study folder (``study.yaml`` and ``<env>/base.yaml``).
        name: The folder's name; each env's sweep is ``<name>-<env>``.
        envs: Envs in the order they run (and the summary lists them).
        arms: Canonical arm names, the reference arm first.
        seeds: Paired seeds.
        max_concurrent: Trials at once.
        reports: Where each env's report and the summary go.
        smoke: Whether this is the CI-sized version.
    """

    folder: Path
    name: str
    description: str
    envs: List[str]
    arms: List[str]
    seeds: List[int]
    max_concurrent: int
    reports: Path
    smoke: bool

    def sweep_name(self, env: str) -> str:
        return f"{self.name}-{env}{'-smoke' if self.smoke else ''}"


def resolve_arms(value: Any, where: str) -> List[str]:
    """A list of arms, or a registry experiment's arms; RLlib arms, reference first."""
    if isinstance(value, str) and registry.COMPOSITION not in value and "," not in value:
        names = registry.experiment_arms(value)
        if not names:
            raise UsageError(f"{where}: {value!r} is neither an arm list nor a registry "
                             "experiment with arms (e.g. 'compare').")
        names = [a for a in names if _runs_in_rllib(a)]
    elif isinstance(value, str):
        names = [a.strip() for a in value.split(",") if a.strip()]
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        names = list(value)
    else:
        raise UsageError(f"{where}: give a list of arms or a registry experiment name "
                         "such as 'compare'.")
    try:
        arms = [a.name for a in registry.parse_arms(names)]
        for arm in arms:
            registry.arm_for_engine(arm, "rllib")
    except registry.RegistryError as err:
        raise UsageError(f"{where}: {err}") from None
    ref = registry.reference_arm()
    return [ref] + [a for a in arms if a != ref]


def _runs_in_rllib(arm: str) -> bool:
    try:
        registry.arm_for_engine(arm, "rllib")
    except registry.RegistryError:
        return False
    return True


def _seeds(value: Any, where: str) -> List[int]:
    from rllib_metamapg.sweep.plan import parse_seeds

    try:
        return parse_seeds(value)
    except UsageError as err:
        raise UsageError(f"{where}: {err}") from None


def load_study(folder: str, *, smoke: bool = False, envs: Optional[Sequence[str]] = None,
               arms: Optional[str] = None, seeds: Optional[str] = None,
               reports: Optional[str] = None, out: Optional[str] = None) -> Study:
    """Reads and checks a study folder; command-line values replace the file's."""
    path = Path(folder)
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise UsageError(f"{folder}: not a study folder (no {MANIFEST}); pass a folder such "
                         "as studies/compare_rllib.")
    try:
        data = yaml.safe_load(manifest.read_text())
    except yaml.YAMLError as err:
        raise UsageError(f"{manifest}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{manifest}: must be a mapping with 'envs', 'arms' and 'seeds'.")
    unknown = sorted(set(data) - _KEYS)
    smoke_part = data.get("smoke") or {}
    unknown += [f"smoke.{k}" for k in sorted(set(smoke_part) - _SMOKE_KEYS)]
    if unknown:
        raise UsageError(f"{manifest}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)} and "
                         f"smoke.{sorted(_SMOKE_KEYS)}.")
    missing = [k for k in ("envs", "arms", "seeds", "reports") if k not in data]
    if missing:
        raise UsageError(f"{manifest}: missing {missing}.")
    source = {**data, **(smoke_part if smoke else {})}
    env_list = list(envs) if envs else source["envs"]
    if not isinstance(env_list, list) or not env_list or not all(
            isinstance(e, str) for e in env_list):
        raise UsageError(f"{manifest}: 'envs' must be a non-empty list of env names.")
    for env in env_list:
        if env not in ENV_SPECS:
            raise UsageError(f"{manifest}: env {env!r} has no sweep settings; choose from "
                             f"{sorted(ENV_SPECS)}.")
        if not (path / env / BASE_FILE).is_file():
            present = sorted(p.parent.name for p in path.glob(f"*/{BASE_FILE}"))
            raise UsageError(f"{folder}: env {env!r} has no {env}/{BASE_FILE} in the study; "
                             f"the study has {present}.")
        load_base(path, env)  # its own checks, with the file named
    if len(set(env_list)) != len(env_list):
        raise UsageError(f"{manifest}: an env is listed twice in {env_list}.")
    max_concurrent = data.get("max_concurrent", 2)
    if not isinstance(max_concurrent, int) or isinstance(max_concurrent, bool) \
            or max_concurrent < 1:
        raise UsageError(f"{manifest}: max_concurrent={max_concurrent!r} must be a positive "
                         "integer.")
    if reports is None:
        reports = str(Path(out or "study_out") / path.name / "reports") if smoke \
            else data["reports"]
    return Study(folder=path, name=path.resolve().name,
                 description=str(data.get("description", "")), envs=env_list,
                 arms=resolve_arms(arms if arms is not None else source["arms"],
                                   "--arms" if arms is not None else f"{manifest}: arms"),
                 seeds=_seeds(seeds if seeds is not None else source["seeds"],
                              "--seeds" if seeds is not None else f"{manifest}: seeds"),
                 max_concurrent=max_concurrent, reports=Path(reports), smoke=smoke)


def describe(study: Study) -> Dict[str, Any]:
    """What the summary records about the study."""
    return {"study": study.name, "description": study.description, "envs": study.envs,
            "arms": study.arms, "seeds": study.seeds, "smoke": study.smoke,
            "reference_arm": registry.reference_arm()}
