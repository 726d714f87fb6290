"""Writes a sweep report: Markdown + CSV + PNG + JSON, each file atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from rllib_metamapg import atomic
from rllib_metamapg.report import figures
from rllib_metamapg.report.analysis import analyse, resolve_tau
from rllib_metamapg.report.load import RETURN_KEY, Sweep, load_sweep

SUMMARY_COLUMNS = ("env", "arm", "n", "mean", "std", "min", "p25", "median", "p75", "max",
                   "learners", "wilson_low", "wilson_high", "median_first_hit",
                   "mcnemar_p", "wilcoxon_p")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _p(value: Any) -> str:
    """A p-value: 3 decimals, or 2 significant digits below 0.001 (never "0.000")."""
    if isinstance(value, float) and 0 < value < 1e-3:
        return f"{value:.1e}"
    return _fmt(value, 3)


def _markdown(result: Dict[str, Any], sweep: Sweep, names: Dict[str, str]) -> str:
    env, tau, arms = result["env"], result["tau"], result["arms"]
    meta = sweep.metadata
    # "return", or the score's last key in words ("on target rate").
    score = ("return" if result["metric"] == RETURN_KEY
             else result["metric"].rsplit("/", 1)[-1].replace("_", " "))
    lines = [f"## {env}", "",
             f"Sweep `{sweep.path}`: arms {', '.join(arms)}; seeds {meta['seeds']}; "
             f"{'smoke' if meta.get('smoke') else 'full'} budget. Score: final {_mode(meta)} "
             f"evaluation {score} (`{result['metric']}`); learner: final {score} >= tau = "
             f"{tau:g}. {meta.get('tau_note', '')}", "",
             f"Scored {result['scored_trials']} of {result['planned_trials']} planned trials "
             f"(n per arm below)." + (f" **{len(result['missing'])} missing**, listed at the "
                                      "end." if result["missing"] else "")
             + _settled_sentence(result) + _timing_sentence(result), "",
             "| arm | n | mean | std | min | p25 | median | p75 | max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm, r in arms.items():
        lines.append(f"| `{arm}` | {r['n']} | " + " | ".join(
            _fmt(r[k]) for k in ("mean", "std", "min", "p25", "median", "p75", "max")) + " |")
    lines += ["", "| arm | learners | Wilson 95% CI | median first-hit step (seeds hit) | "
              "mean final return |", "|---|---|---|---|---|"]
    for arm, r in arms.items():
        lines.append(f"| `{arm}` | {r['learners']}/{r['n']} | [{_fmt(r['wilson_low'])}, "
                     f"{_fmt(r['wilson_high'])}] | {_fmt(r['median_first_hit'], 0)} "
                     f"({r['seeds_hit']}) | {_fmt(r['mean_return'])} |")
    if result["tests_vs_reference"]:
        ref = result["reference_arm"]
        lines += ["", f"Paired tests against `{ref}` (same seeds):", "",
                  f"| arm | pairs | McNemar: only {ref} / only arm learned | McNemar p | "
                  "Wilcoxon W (non-tied pairs) | Wilcoxon p |", "|---|---|---|---|---|---|"]
        for arm, t in result["tests_vs_reference"].items():
            m, w = t["mcnemar"], t["wilcoxon"]
            if m is None:
                lines.append(f"| `{arm}` | {t['pairs']} | – | – (needs 2 pairs) | – | – |")
                continue
            lines.append(f"| `{arm}` | {t['pairs']} | {m['a_only']} / {m['b_only']} | "
                         f"{_p(m['p_value'])} | {_fmt(w['statistic'], 1)} "
                         f"({w['nonzero']}) | {_p(w['p_value'])} |")
    if result.get("tests_vs_base"):
        lines += ["", "Each sampler composition against its own arm (same seeds):", "",
                  "| composition | arm | pairs | McNemar: only arm / only composition | "
                  "McNemar p |", "|---|---|---|---|---|"]
        for arm, t in result["tests_vs_base"].items():
            m = t["mcnemar"]
            lines.append(f"| `{arm}` | `{t['base']}` | {t['pairs']} | "
                         + ("– | – |" if m is None else
                            f"{m['a_only']} / {m['b_only']} | {_p(m['p_value'])} |"))
    if result["small_n"]:
        lines += ["", f"**n < 2** for {', '.join(result['small_n'])}: no spread, interval or "
                      "paired test is meaningful there; finish more seeds."]
    if result["incomplete"]:
        lines += ["", f"**Not scored** ({len(result['incomplete'])} planned trials): "
                      f"{', '.join(result['incomplete'])}. Resume the sweep to finish them."]
    if result["pairing_broken"]:
        lines += ["", f"**Pairing broken**: seeds {result['pairing_broken']} did not start "
                      "every arm from the same weights; their paired tests are not valid."]
    lines += ["", f"![learning curves]({names['curves']})", f"![final returns]({names['strip']})",
              ""]
    return "\n".join(lines)


def _mode(meta: Dict[str, Any]) -> str:
    """"greedy", or "sampled" when the arms evaluate with exploration on (LBF's tuned
    examples do: greedy pairs get stuck there)."""
    configs = (meta.get("arm_configs") or {}).values()
    explore = any((c.get("evaluation_config") or {}).get("explore") for c in configs)
    return "sampled" if explore else "greedy"


def _settled_sentence(result: Dict[str, Any]) -> str:
    """How long before the end the last seed's outcome stopped changing (is the budget
    decided?)."""
    last, end = result.get("latest_settled_step"), result.get("last_eval_step")
    if last is None or not end:
        return ""
    late = result.get("changed_in_last_quarter")
    return (f" Outcomes decided: the latest change of any seed's learner outcome came at "
            f"env step {last:,.0f} of {end:,.0f} ({100 * last / end:.0f} % of the budget)"
            + ("." if late is None else f"; {late} of {result.get('scored')} scored trials "
               "changed in the budget's last quarter."))


def _timing_sentence(result: Dict[str, Any]) -> str:
    timing = result.get("timing") or {}
    if not timing.get("span_s"):
        return ""
    return (f" Cost: {timing['span_s'] / 60:.1f} min from the first trial's start to the last "
            f"one's end, {timing['train_s'] / 60:.1f} min of training summed over its "
            f"{timing['trials']} trials.")


def write_report(paths: List[str], out: str, tau: Optional[float] = None,
                 allow_trivial_tau: bool = False) -> Dict[str, Any]:
    """Reports on one or more sweep folders into ``out``; returns the JSON document.

    Every sweep and threshold is checked before anything is written.
    """
    sweeps = [load_sweep(p) for p in paths]
    taus = [resolve_tau(s.metadata, tau, allow_trivial_tau) for s in sweeps]
    with atomic.file_set(Path(out)) as out_dir:  # the set appears whole or not at all
        results, sections, summary, seeds = [], ["# Paired-seed sweep report", ""], [], []
        for sweep, t in zip(sweeps, taus):
            result = analyse(sweep, t)
            results.append(result)
            names = {"curves": f"{sweep.env}_curves.png", "strip": f"{sweep.env}_strip.png"}
            finals = {arm: [tr.final_return for tr in sweep.trials
                            if tr.arm == arm and tr.final_return is not None]
                      for arm in sweep.arms()}
            atomic.write_figure(out_dir / names["curves"], figures.learning_curves(sweep, t))
            atomic.write_figure(out_dir / names["strip"], figures.strip_plot(sweep, finals, t))
            sections.append(_markdown(result, sweep, names))
            for arm, r in result["arms"].items():
                test = result["tests_vs_reference"].get(arm, {})
                summary.append([sweep.env, arm] + [r[k] for k in SUMMARY_COLUMNS[2:14]] + [
                    (test.get("mcnemar") or {}).get("p_value"),
                    (test.get("wilcoxon") or {}).get("p_value")])
            for tr in sorted(sweep.trials, key=lambda x: (x.arm, x.seed)):
                final = tr.final_return
                seeds.append([sweep.env, tr.arm, tr.seed, final,
                              None if final is None else final >= t, tr.first_hit(t),
                              tr.init_digest])
        atomic.write_csv(out_dir / "summary.csv", SUMMARY_COLUMNS, summary)
        atomic.write_csv(out_dir / "seeds.csv", ("env", "arm", "seed", "final_return", "learner",
                                                 "first_hit_step", "init_weights_sha256"), seeds)
        doc = {"sweeps": [s.path for s in sweeps], "results": results}
        atomic.write_json(out_dir / "report.json", _json_safe(doc))
        atomic.write_text(out_dir / "report.md", "\n".join(sections))
    return doc


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj
