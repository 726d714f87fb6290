"""Runs a study: each env's paired sweep in turn, its report as soon as it is done, and
the summary over every finished env.

Resumable by construction: each env's sweep lives in ``<out>/<study>-<env>``; a rerun
skips an env whose trials are all scored (without starting Tune), continues one
that is part-done (``--resume-if-exists``), and rewrites the reports.  Each env's
report and the summary are written atomically the moment they can be, so an
interrupted study leaves every finished env's report in place.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from rllib_metamapg.errors import UsageError
from rllib_metamapg.results import metadata_differences, settings_digest
from rllib_metamapg.study.manifest import Study
from rllib_metamapg.study.summary import write_summary


def _spec(study: Study, env: str, variant: Optional[str], out: str):
    from rllib_metamapg.sweep.plan import SweepSpec

    return SweepSpec(env=env, arms=study.arms, seeds=study.seeds, smoke=study.smoke,
                     name=study.sweep_name(env, variant), storage_path=str(out),
                     max_concurrent=study.max_concurrent, tuned_examples=str(study.bases),
                     base_overlay=study.overlay(variant),
                     budget_fraction=study.budget_fraction)


def plan_study(study: Study, out: str) -> List:
    """The checked sweep plan of every (env, variant) this run sweeps (no Ray)."""
    from rllib_metamapg.sweep.plan import plan_sweep

    return [plan_sweep(_spec(study, env, variant, out)) for env, variant in study.units()]


def _finished(path: Path, study: Study, plan, report_dir: Path) -> str:
    """``"sweep"`` when ``path`` holds this env's sweep with every trial scored,
    ``"report"`` when there is no sweep there but the env's committed report is of a
    finished sweep with these very settings (the sweeps ran on another machine), else
    ``""``.  A ``UsageError`` when ``path`` holds a sweep of other settings (an edited
    ``base.yaml``): its results must not pass for the new settings'."""
    from rllib_metamapg.report.analysis import missing_trials
    from rllib_metamapg.report.load import ReportError, load_sweep

    planned = plan.metadata
    try:
        sweep = load_sweep(str(path))
    except ReportError:
        return "report" if _reported(report_dir, planned) else ""
    differs = metadata_differences(sweep.metadata, planned)
    if differs:
        raise UsageError(f"{path} holds this env's sweep with other settings ({', '.join(differs)} "
                         f"differ from {study.bases / plan.spec.env}/base.yaml and the study's "
                         "arms, seeds and variants); move that folder away, or pass another "
                         "--out, to run it with the current settings.")
    return "" if missing_trials(sweep) else "sweep"


def _reported(report_dir: Path, planned: Dict) -> bool:
    """Whether ``<report_dir>/report.json`` is of a finished sweep with ``planned``'s
    settings (every planned trial scored)."""
    import json

    file = report_dir / "report.json"
    try:
        (result,) = json.loads(file.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return False
    return (result.get("settings_sha256") == settings_digest(planned)
            and not result.get("missing") and result.get("scored_trials")
            == result.get("planned_trials"))


def _write_report(study: Study, env: str, variant: Optional[str], path: Path,
                  log: Callable[[str], None]) -> None:
    from rllib_metamapg.report.write import write_report

    where = study.report_dir(env, variant)
    write_report([str(path)], str(where))
    log(f"[metamapg study] {Study.label(env, variant)}: report {where}/report.md")


def report_study(study: Study, out: str, log: Callable[[str], None] = print) -> Dict:
    """Rewrites every env's report that has a sweep in ``out``, and the summary, without
    running anything (no Ray)."""
    for env, variant in study.units():
        path = Path(out) / study.sweep_name(env, variant)
        if path.is_dir():
            _write_report(study, env, variant, path, log)
    return _write_summary(study, out, log)


def _write_summary(study: Study, out: str, log: Callable[[str], None]) -> Dict:
    doc = write_summary(study, out, study.reports)
    log(f"[metamapg study] summary: {study.reports}/summary.md")
    return doc


def run_study(study: Study, out: str, *, verbose: int = 0, progress_every_s: float = 60.0,
              log: Callable[[str], None] = print,
              on_ray_started: Optional[Callable[[], None]] = None,
              stopped: Callable[[], bool] = lambda: False) -> Dict:
    """Runs every env of ``study`` not yet finished; returns the summary document.

    Returns after the first env whose sweep has failed trials (the report of what
    finished is written; rerun to retry them), and when ``stopped()`` turns true (a
    signal: Tune saved the sweep, which the next run continues).
    """
    from rllib_metamapg.sweep.plan import plan_sweep
    from rllib_metamapg.sweep.run import run_sweep

    failed: List[str] = []
    doc = write_summary(study, out, study.reports)
    units = study.units()
    for k, (env, variant) in enumerate(units, start=1):
        path = Path(out) / study.sweep_name(env, variant)
        head = f"[metamapg study] {study.name} {k}/{len(units)}: {Study.label(env, variant)}"
        spec = _spec(study, env, variant, out)
        plan = plan_sweep(spec)  # once: checked against the folder, then run
        finished = _finished(path, study, plan, study.report_dir(env, variant))
        if finished == "report":
            log(f"{head}: its report ({study.report_dir(env, variant)}) is of a finished "
                "sweep with these settings; kept")
            continue
        if finished:
            log(f"{head}: all {len(study.arms) * len(study.seeds)} trials already scored")
        else:
            log(f"{head}: {len(study.arms)} arms x {len(study.seeds)} seeds")
            start = time.monotonic()
            _, errors = run_sweep(spec, verbose=verbose, progress_every_s=progress_every_s,
                                  resume_existing=True, on_ray_started=on_ray_started,
                                  plan=plan)
            if stopped():
                return write_summary(study, out, study.reports)
            log(f"{head}: sweep done in {time.monotonic() - start:.0f} s, {errors} failed")
            if errors:
                failed.append(Study.label(env, variant))
        _write_report(study, env, variant, path, log)
        doc = write_summary(study, out, study.reports)
        if failed:
            log(f"[metamapg study] {Study.label(env, variant)}: sweep with failed trials; rerun "
                "the same command to retry them.")
            return doc
    return _write_summary(study, out, log)


__all__ = ["plan_study", "report_study", "run_study"]
