"""A study's ``study.yaml``: which envs, arms and seeds it sweeps, and where reports go.

A study folder holds ``study.yaml`` and one ``<env>/base.yaml`` per env (the tuned
examples every arm of that env's sweep starts from).  ``arms`` is a list of arms or
the name of a registry experiment (``compare``: every method's comparison arms,
the registry's list rather than a copy of it), kept to the arms RLlib implements.
``smoke`` names the CI-sized version: fewer envs, arms and seeds, each env at its
``base.yaml``'s smoke budget.

``bases`` (optional) takes the ``<env>/base.yaml`` files from another study folder
(a path relative to this one), so a study of variants runs on exactly the settings
of the study it varies, from one copy of them.

``budget_fraction`` (optional, default 1) cuts every env's full-size budget and
T_warm to that fraction: a pilot of a long study at its real settings (e.g.
``studies/app_f_pilot``: App. F at a tenth of the budget).

``variants`` (optional) sweeps every env once per named variant, each an overlay of
``config``/``methods``/``samplers`` on the env's ``base.yaml``: a settings grid
(e.g. MA-PROPS's behaviour settings) over the same paired seeds.  Each (env,
variant) is its own sweep, ``<study>-<env>-<variant>``, with its report in
``<reports>/<env>/<variant>``.  Narrowing a run (``--envs``, ``--variants``) narrows
what runs, never what the summary covers.  Ray-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import re

import yaml

from rllib_metamapg import registry
from rllib_metamapg.env_specs import ENV_SPECS
from rllib_metamapg.errors import UsageError
from rllib_metamapg.tuned_examples import (BASE_FILE, apply_overlay, check_overlay, load_base,
                                           scale_budget)

MANIFEST = "study.yaml"
_KEYS = {"description", "envs", "arms", "seeds", "max_concurrent", "reports", "smoke",
         "variants", "bases", "budget_fraction"}
_SMOKE_KEYS = {"envs", "arms", "seeds", "variants"}
# A variant's name is part of a folder name and of the summary's keys (which docs
# address with dotted paths, so no '.').
_VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_=-]*$")
Unit = Tuple[str, Optional[str]]  # (env, variant or None)


@dataclass(frozen=True)
class Study:
    """A checked study.

    Attributes:
        folder: The study folder (``study.yaml``).
        name: The folder's name; each env's sweep is ``<name>-<env>``.
        envs: Envs this run sweeps, in the study's order.
        arms: Canonical arm names, the reference arm first.
        seeds: Paired seeds.
        max_concurrent: Trials at once.
        reports: Where each env's report and the summary go.
        smoke: Whether this is the CI-sized version.
        all_envs: Every env of the study (the summary covers them all).
        variants: Every variant's overlay by name, in the study's order (empty: each
            env is swept once, as its ``base.yaml`` says).
        run_variants: Variants this run sweeps.
        bases: The folder of the ``<env>/base.yaml`` files (``folder`` unless
            ``study.yaml`` names another study's).
        budget_fraction: Every env's full-size budget and T_warm cut to this fraction.
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
    all_envs: List[str]
    variants: Dict[str, Dict[str, Any]]
    run_variants: List[str]
    bases: Path
    budget_fraction: float = 1.0

    def units(self, run: bool = True) -> List[Unit]:
        """(env, variant) pairs this run sweeps (``run``) or the summary covers."""
        envs = self.envs if run else self.all_envs
        names = self.run_variants if run else list(self.variants)
        return [(env, v) for env in envs for v in (names or [None])]

    def sweep_name(self, env: str, variant: Optional[str] = None) -> str:
        return (f"{self.name}-{env}{'' if variant is None else '-' + variant}"
                f"{'-smoke' if self.smoke else ''}")

    def report_dir(self, env: str, variant: Optional[str] = None) -> Path:
        return self.reports / env if variant is None else self.reports / env / variant

    @staticmethod
    def label(env: str, variant: Optional[str]) -> str:
        """The summary's key for (env, variant)."""
        return env if variant is None else f"{env}:{variant}"

    def overlay(self, variant: Optional[str]) -> Optional[Dict[str, Any]]:
        return None if variant is None else self.variants[variant]


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


def _variants(data: Dict[str, Any], smoke_part: Dict[str, Any], smoke: bool,
              manifest: Path) -> Dict[str, Dict[str, Any]]:
    """The study's variants (the smoke version's subset with ``smoke``), checked."""
    variants = data.get("variants") or {}
    if not isinstance(variants, dict):
        raise UsageError(f"{manifest}: 'variants' must map a variant name to its overlay, "
                         "e.g. {lr0.3: {samplers: {ma_props: {behaviour: {lr: 0.3}}}}}.")
    for name, overlay in variants.items():
        if not isinstance(name, str) or not _VARIANT_NAME.match(name):
            raise UsageError(f"{manifest}: variant name {name!r} must be letters, digits, "
                             "'_', '=' or '-' (it names the variant's sweep folder), e.g. "
                             "lr3e-2_every1_clip1.")
        check_overlay(overlay, f"{manifest}: variants.{name}")
    if smoke and "variants" in smoke_part:
        chosen = smoke_part["variants"]
        if not isinstance(chosen, list) or not set(chosen) <= set(variants):
            raise UsageError(f"{manifest}: smoke.variants must list some of the study's "
                             f"variants {list(variants)}.")
        variants = {k: variants[k] for k in chosen}
    return variants


def load_study(folder: str, *, smoke: bool = False, envs: Optional[Sequence[str]] = None,
               arms: Optional[str] = None, seeds: Optional[str] = None,
               reports: Optional[str] = None, out: Optional[str] = None,
               variants: Optional[Sequence[str]] = None) -> Study:
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
    all_envs = source["envs"]
    if not isinstance(all_envs, list) or not all_envs or not all(
            isinstance(e, str) for e in all_envs):
        raise UsageError(f"{manifest}: 'envs' must be a non-empty list of env names.")
    env_list = list(envs) if envs else list(all_envs)
    all_variants = _variants(data, smoke_part, smoke, manifest)
    run_variants = list(variants) if variants else list(all_variants)
    if variants and not set(run_variants) <= set(all_variants):
        raise UsageError(f"--variants: {sorted(set(run_variants) - set(all_variants))} not "
                         f"among the study's variants {list(all_variants)}.")
    bases = path
    if "bases" in data:
        bases = path / str(data["bases"])
        if not isinstance(data["bases"], str) or not bases.is_dir():
            raise UsageError(f"{manifest}: bases={data['bases']!r} must be a folder (relative "
                             "to the study) holding <env>/base.yaml, e.g. ../compare_rllib.")
    for env in dict.fromkeys(all_envs + env_list):
        if env not in ENV_SPECS:
            raise UsageError(f"{manifest}: env {env!r} has no sweep settings; choose from "
                             f"{sorted(ENV_SPECS)}.")
        if not (bases / env / BASE_FILE).is_file():
            present = sorted(p.parent.name for p in bases.glob(f"*/{BASE_FILE}"))
            raise UsageError(f"{bases}: env {env!r} has no {env}/{BASE_FILE} in the study; "
                             f"the study has {present}.")
        base = load_base(bases, env)  # its own checks, with the file named
        for overlay in all_variants.values():
            apply_overlay(base, overlay)
    for listed in (all_envs, env_list):
        if len(set(listed)) != len(listed):
            raise UsageError(f"{manifest}: an env is listed twice in {listed}.")
    fraction = data.get("budget_fraction", 1.0)
    scale_budget({}, 1, fraction, f"{manifest}: budget_fraction")
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
                 max_concurrent=max_concurrent, reports=Path(reports), smoke=smoke,
                 # The summary covers the whole study, and any env run beyond it.
                 all_envs=list(all_envs) + [e for e in env_list if e not in all_envs],
                 variants=all_variants, run_variants=run_variants, bases=bases,
                 budget_fraction=float(fraction))


def describe(study: Study) -> Dict[str, Any]:
    """What the summary records about the study."""
    return {"study": study.name, "description": study.description, "envs": study.all_envs,
            "arms": study.arms, "seeds": study.seeds, "smoke": study.smoke,
            "variants": study.variants, "budget_fraction": study.budget_fraction,
            "reference_arm": registry.reference_arm()}
