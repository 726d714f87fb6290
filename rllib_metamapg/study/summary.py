"""The study's summary: one table per env in the tabular comparison's layout, and an
arms x envs overview, from each env's ``report.json`` (so it always agrees with them).

Per env and arm: success (learners at the env's tau) with its Wilson 95% CI, the
exact McNemar test against the reference arm on the paired seeds (seeds only the
arm learned on / only the reference learned on), the mean final greedy return, and
the mean env steps to entry (the first evaluation from which a learner stays at
tau).  Written atomically as ``summary.md``, ``summary.csv`` and ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rllib_metamapg import atomic
from rllib_metamapg.stats import vs_reference_cell
from rllib_metamapg.study.manifest import Study, describe

COLUMNS = ("env", "variant", "arm", "n", "learners", "rate", "wilson_low", "wilson_high", "gained",
           "lost", "mcnemar_p", "mean_return", "mean_entry_step", "paired")


def env_rows(report: Dict[str, Any], arms: List[str]) -> Dict[str, Optional[Dict[str, Any]]]:
    """``{arm: row}`` of one env's report (``None`` for an arm it does not have)."""
    (result,) = report["results"]
    rows: Dict[str, Optional[Dict[str, Any]]] = {}
    for arm in arms:
        r = result["arms"].get(arm)
        if r is None or not r["n"]:
            rows[arm] = None
            continue
        test = (result["tests_vs_reference"].get(arm) or {}).get("mcnemar")
        base = (result.get("tests_vs_base") or {}).get(arm) or {}
        rows[arm] = {
            "n": r["n"], "learners": r["learners"], "rate": r["learners"] / r["n"],
            "wilson95": [r["wilson_low"], r["wilson_high"]],
            "vs_reference": None if test is None else {
                "gained": test["b_only"], "lost": test["a_only"], "mcnemar_p": test["p_value"]},
            # A composition against its own arm: what the sampler alone changed.
            "vs_base": None if not base.get("mcnemar") else {
                "arm": base["base"], "gained": base["mcnemar"]["b_only"],
                "lost": base["mcnemar"]["a_only"], "mcnemar_p": base["mcnemar"]["p_value"]},
            "mean_return": r.get("mean_return"),
            "mean_entry_step": r.get("mean_entry_step"),
            "median_first_hit": r["median_first_hit"]}
    return rows


def build_summary(study: Study, out: str, reports: Path) -> Dict[str, Any]:
    # Keyed by env, or "env:variant" in a study with variants.
    doc = {**describe(study), "sweeps": {}, "envs": {}, "missing_envs": []}
    for env, variant in study.units(run=False):
        key = study.label(env, variant)
        file = (reports / env if variant is None else reports / env / variant) / "report.json"
        if not file.is_file():
            doc["missing_envs"].append(key)
            continue
        report = json.loads(file.read_text())
        (result,) = report["results"]
        doc["sweeps"][key] = str(Path(out) / study.sweep_name(env, variant))
        doc["envs"][key] = {
            "env": env, "variant": variant, "tau": result["tau"], "metric": result["metric"],
            "scored_trials": result["scored_trials"],
            "planned_trials": result["planned_trials"],
            # Same seed, same initial weights in every arm: checked on the digests.
            "pairing_broken": result["pairing_broken"],
            "latest_settled_step": result.get("latest_settled_step"),
            "changed_in_last_quarter": result.get("changed_in_last_quarter"),
            "timing": result.get("timing"),
            "last_eval_step": result.get("last_eval_step"),
            "arms": env_rows(report, study.arms)}
    spans = [e["timing"]["span_s"] for e in doc["envs"].values()
             if (e.get("timing") or {}).get("span_s")]
    doc["timing"] = {"span_s": float(sum(spans)), "span_min": float(sum(spans)) / 60,
                     "envs_timed": len(spans)}
    return doc


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _decided(e: Dict[str, Any]) -> str:
    last, end = e.get("latest_settled_step"), e.get("last_eval_step")
    out = ""
    if last is not None and end:
        out += (f" Outcomes: the latest change came at env step {last:,.0f} of "
                f"{end:,.0f}")
        late = e.get("changed_in_last_quarter")
        out += "." if late is None else (f"; {late} of {e['scored_trials']} trials changed "
                                         "in the last quarter of the budget.")
    span = (e.get("timing") or {}).get("span_s")
    if span:
        out += f" Sweep: {span / 60:.1f} min."
    return out


def _overview_cell(entry: Optional[Dict[str, Any]], arm: str) -> str:
    row = None if entry is None else entry["arms"].get(arm)
    if row is None:
        return "–"
    vs = row["vs_reference"]
    mark = "" if vs is None or vs["mcnemar_p"] >= 0.05 else (
        " ↑" if vs["gained"] > vs["lost"] else " ↓")
    return f"{_pct(row['rate'])}{mark}"


def _overview(doc: Dict[str, Any]) -> List[str]:
    """Success rate: arms x envs, or (arm, variant) x envs in a study with variants."""
    envs = list(dict.fromkeys(e["env"] for e in doc["envs"].values()))
    variants = list(doc.get("variants") or {}) or [None]
    lines = ["## Success rate, arms x envs" if variants == [None]
             else "## Success rate, arms and variants x envs", "",
             "| arm | " + ("" if variants == [None] else "variant | ")
             + " | ".join(envs) + " |",
             "|---|" + ("" if variants == [None] else "---|") + "---|" * len(envs)]
    for arm in doc["arms"]:
        for variant in variants:
            cells = [_overview_cell(doc["envs"].get(Study.label(env, variant)), arm)
                     for env in envs]
            lines.append(f"| `{arm}` | " + ("" if variant is None else f"{variant} | ")
                         + " | ".join(cells) + " |")
    return lines


def format_summary(doc: Dict[str, Any]) -> str:
    ref = doc["reference_arm"]
    envs = list(doc["envs"])
    lines = [f"# {doc['study']}: summary", "", doc["description"].strip(), "",
             f"{len(doc['arms'])} arms x {len(doc['seeds'])} paired seeds per env"
             f"{' (smoke budget)' if doc['smoke'] else ''}"
             + ("" if doc.get("budget_fraction", 1) == 1 or doc["smoke"] else
                f" at {doc['budget_fraction']:g} of each env's budget (a pilot)")
             + "; success = final greedy score "
             "at or above the env's tau; McNemar against "
             f"`{ref}` on the same seeds (+ seeds only the arm succeeded on / - only "
             f"`{ref}`).", ""]
    if doc["timing"]["envs_timed"]:
        lines += [f"Cost: {doc['timing']['span_s'] / 60:.0f} min of wall time for the "
                  f"{doc['timing']['envs_timed']} env(s) reported (each env's sweep from its "
                  "first trial's start to its last trial's end, summed).", ""]
    if doc["missing_envs"]:
        lines += [f"**Not finished yet**: {', '.join(doc['missing_envs'])} (rerun the "
                  "study's command to continue).", ""]
    if envs:
        lines += _overview(doc)
        lines += ["", f"↑ / ↓: McNemar p < 0.05 against `{ref}` (not corrected for the "
                      "number of comparisons).", ""]
    for env in envs:
        e = doc["envs"][env]
        lines += [f"## {env}", "",
                  f"tau = {e['tau']:g} on `{e['metric']}`; {e['scored_trials']} of "
                  f"{e['planned_trials']} trials scored; paired seeds: "
                  + ("every arm of each seed started from the same weights."
                     if not e["pairing_broken"] else
                     f"**broken** for seeds {e['pairing_broken']}.")
                  + _decided(e), "",
                  f"| arm | success [Wilson 95%] | vs {ref} (+/-, McNemar p) | sampler vs its "
                  "arm (+/-, p) | mean final return | mean steps to entry |",
                  "|---|---|---|---|---|---|"]
        for arm in doc["arms"]:
            row = e["arms"].get(arm)
            if row is None:
                lines.append(f"| `{arm}` | n/a | | | | |")
                continue
            lo, hi = row["wilson95"]
            vs_cell = vs_reference_cell(row["vs_reference"])
            ret = row["mean_return"]
            hit = row["mean_entry_step"]
            lines.append(f"| `{arm}` | {_pct(row['rate'])} [{_pct(lo)}, {_pct(hi)}] "
                         f"({row['learners']}/{row['n']}) | {vs_cell} | "
                         f"{vs_reference_cell(row.get('vs_base'))} | "
                         f"{'' if ret is None else f'{ret:.2f}'} | "
                         f"{'' if hit is None else f'{hit:.0f}'} |")
        lines.append("")
    return "\n".join(lines)


def write_summary(study: Study, out: str, reports: Path) -> Dict[str, Any]:
    """Writes ``summary.{md,csv,json}`` into ``reports`` (beside each env's folder)."""
    doc = build_summary(study, out, reports)
    rows = []
    for e in doc["envs"].values():
        for arm, r in e["arms"].items():
            if r is None:
                continue
            vs = r["vs_reference"] or {}
            rows.append([e["env"], e["variant"] or "", arm, r["n"], r["learners"], r["rate"],
                         *r["wilson95"],
                         vs.get("gained"), vs.get("lost"), vs.get("mcnemar_p"),
                         r["mean_return"], r["mean_entry_step"], not e["pairing_broken"]])
    with atomic.file_set(reports) as stage:  # its files only; the env folders stay
        atomic.write_text(stage / "summary.md", format_summary(doc) + "\n")
        atomic.write_csv(stage / "summary.csv", COLUMNS, rows)
        atomic.write_json(stage / "summary.json", doc)
    return doc
