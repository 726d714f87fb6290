"""The numbers of a sweep report: App. F tables, learner counts, paired tests vs the reference.

Learner threshold rules (the paper's App. E.5 pitfall: a stale tau = 0 on
non-negative returns counted every seed as a learner) are enforced here.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional

import numpy as np
from scipy import stats as sps

from rllib_metamapg import registry
from rllib_metamapg.report.load import ReportError, Sweep, TrialRecord
from rllib_metamapg.results import settings_digest
from rllib_metamapg.schedules import is_finite_number
from rllib_metamapg.stats import mcnemar_paired, wilson_ci

QUANTILES = {"min": 0.0, "p25": 0.25, "median": 0.5, "p75": 0.75, "max": 1.0}


def reference_arm(metadata: Dict[str, Any]) -> str:
    """The sweep's reference arm (recorded since the registry; ``ippo`` before it)."""
    return metadata.get("reference_arm") or registry.reference_arm()


def resolve_tau(metadata: Dict[str, Any], override: Optional[float],
                allow_trivial: bool) -> float:
    """The learner threshold, refusing one that cannot separate learners from non-learners."""
    tau = override if override is not None else metadata.get("tau")
    if tau is None:
        raise ReportError(f"{metadata['env']}: no learner threshold tau in the sweep's env "
                          "settings; pass --tau VALUE.")
    if not is_finite_number(tau):
        raise ReportError(f"--tau={tau!r} must be a finite number.")
    if allow_trivial:
        return float(tau)
    if tau == 0 and metadata.get("returns_nonnegative"):
        raise ReportError(f"{metadata['env']}: tau = 0 with non-negative returns counts every "
                          "seed as a learner (the stale-threshold pitfall of the paper's App. "
                          "E.5); pick a tau above what random play earns, or pass "
                          "--allow-trivial-tau.")
    # Sweeps before scores other than the return recorded "random_return".
    random_score = metadata.get("random_score", metadata.get("random_return"))
    if random_score is not None and random_score >= tau:
        raise ReportError(f"{metadata['env']}: tau = {tau:g} is already reached by uniformly "
                          f"random play (mean {metadata['metric'].rsplit('/', 1)[-1]} "
                          f"{random_score:.3g}), so learner counts "
                          "would mean nothing; raise --tau or pass --allow-trivial-tau.")
    return float(tau)


def describe(values: List[float]) -> Dict[str, float]:
    """n, mean, std (ddof 1), min, p25, median, p75, max, as in App. F."""
    x = np.asarray(values, dtype=float)
    row = {"n": int(x.size), "mean": float(x.mean()) if x.size else math.nan,
           "std": float(x.std(ddof=1)) if x.size > 1 else math.nan}
    for name, q in QUANTILES.items():
        row[name] = float(np.quantile(x, q)) if x.size else math.nan
    return row


def wilcoxon_paired(a: List[float], b: List[float]) -> Dict[str, float]:
    """Two-sided Wilcoxon signed-rank test on paired returns; p = 1 when all pairs tie."""
    d = np.asarray(b, float) - np.asarray(a, float)
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        return {"statistic": math.nan, "p_value": 1.0, "pairs": int(d.size), "nonzero": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-sample notes; n is in the table
        res = sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return {"statistic": float(res.statistic), "p_value": float(res.pvalue),
            "pairs": int(d.size), "nonzero": nonzero}


def _complete(trials: List[TrialRecord], arm: str) -> Dict[int, TrialRecord]:
    return {t.seed: t for t in trials if t.arm == arm and t.complete and t.evals}


def analyse(sweep: Sweep, tau: float) -> Dict[str, Any]:
    """Everything the report prints, as plain data (JSON-ready)."""
    arms = sweep.arms()
    per_arm: Dict[str, Any] = {}
    for arm in arms:
        done = _complete(sweep.trials, arm)
        finals = [done[s].final_return for s in sorted(done)]
        learners = [v >= tau for v in finals]
        hits = [h for h in (done[s].first_hit(tau) for s in sorted(done)) if h is not None]
        row = describe(finals)
        row["learners"] = int(sum(learners))
        row["wilson_low"], row["wilson_high"] = (wilson_ci(sum(learners), len(learners))
                                                 if learners else (math.nan, math.nan))
        row["median_first_hit"] = float(np.median(hits)) if hits else None
        row["seeds_hit"] = len(hits)
        # Entry: the step from which a learner's success holds to the end (the tabular
        # comparison's "steps to entry"); settled: the same for every seed, learner or
        # not -- a budget is decided when the latest of them is well before its end.
        settled = {s: done[s].settled_step(tau) for s in sorted(done)}
        entries = [settled[s] for s, ok in zip(sorted(done), learners) if ok]
        row["mean_entry_step"] = float(np.mean(entries)) if entries else None
        row["latest_settled_step"] = max(settled.values()) if settled else None
        row["last_eval_step"] = max((done[s].evals[-1][0] for s in done), default=None)
        returns = [done[s].final_episode_return for s in sorted(done)]
        returns = [r for r in returns if r is not None]
        row["mean_return"] = float(np.mean(returns)) if returns else None
        per_arm[arm] = row
    tests = {}
    reference = reference_arm(sweep.metadata)
    ref = _complete(sweep.trials, reference) if reference in arms else {}
    for arm in arms:
        if arm == reference or not ref:
            continue
        done = _complete(sweep.trials, arm)
        seeds = sorted(set(ref) & set(done))
        if len(seeds) < 2:  # no paired test on fewer than two pairs
            tests[arm] = {"pairs": len(seeds), "mcnemar": None, "wilcoxon": None}
            continue
        a = [ref[s].final_return for s in seeds]
        b = [done[s].final_return for s in seeds]
        tests[arm] = {"pairs": len(seeds),
                      "mcnemar": mcnemar_paired([v >= tau for v in a], [v >= tau for v in b]),
                      "wilcoxon": wilcoxon_paired(a, b)}
    # A composition (`peer_only+ma_props`) against its own arm on the same seeds: what
    # the sampler changed, apart from the method.
    vs_base = {}
    for arm in arms:
        base = arm.split(registry.COMPOSITION)[0]
        if base == arm or base not in arms:
            continue
        done, own = _complete(sweep.trials, arm), _complete(sweep.trials, base)
        seeds = sorted(set(done) & set(own))
        vs_base[arm] = {"base": base, "pairs": len(seeds), "mcnemar": None if len(seeds) < 2
                        else mcnemar_paired([own[s].final_return >= tau for s in seeds],
                                            [done[s].final_return >= tau for s in seeds])}
    missing = missing_trials(sweep)
    starts = [t.started_at for t in sweep.trials if t.started_at is not None]
    ends = [t.ended_at for t in sweep.trials if t.ended_at is not None]
    # What the sweep cost: first trial's start to last trial's end (a resumed sweep's
    # pause counts too), and the training seconds its trials reported.
    timing = {"span_s": (max(ends) - min(starts)) if starts and ends else None,
              "train_s": float(sum(t.train_s for t in sweep.trials)),
              "trials": len(sweep.trials)}
    planned = len(sweep.metadata["arms"]) * len(sweep.metadata["seeds"])
    settled = [r["latest_settled_step"] for r in per_arm.values()
               if r["latest_settled_step"] is not None]
    # How many seeds' outcomes still changed in the budget's last quarter: a decided
    # budget has none (the latest change alone is one seed's).
    end = max((r["last_eval_step"] for r in per_arm.values()
               if r["last_eval_step"] is not None), default=None)
    scored = [t for arm in arms for t in _complete(sweep.trials, arm).values()]
    late = (sum(t.settled_step(tau) > 0.75 * end for t in scored) if end else 0)
    return {"env": sweep.env, "tau": tau, "metric": sweep.metadata["metric"],
            "latest_settled_step": max(settled) if settled else None,
            "changed_in_last_quarter": int(late), "scored": len(scored),
            # Which settings these numbers are of (see results.settings_digest).
            "settings_sha256": settings_digest(sweep.metadata),
            "timing": timing,
            "last_eval_step": max((r["last_eval_step"] for r in per_arm.values()
                                   if r["last_eval_step"] is not None), default=None),
            "arms": per_arm, "reference_arm": reference, "tests_vs_reference": tests,
            "tests_vs_base": vs_base,
            "planned_trials": planned, "scored_trials": planned - len(missing),
            "missing": missing,
            "incomplete": [f"{m['arm']}/seed {m['seed']} ({m['status']})" for m in missing],
            "small_n": sorted(a for a, r in per_arm.items() if r["n"] < 2),
            "pairing_broken": unpaired_seeds(sweep.trials)}


def missing_trials(sweep: Sweep) -> List[Dict[str, Any]]:
    """Every planned (arm, seed) without a score, and why: never started, errored,
    or stopped before the last iteration."""
    found = {(t.arm, t.seed): t for t in sweep.trials}
    last = int(sweep.metadata["stop_iterations"])
    out = []
    for arm in sweep.metadata["arms"]:
        for seed in sweep.metadata["seeds"]:
            t = found.get((arm, seed))
            if t is not None and t.complete and t.evals:
                continue
            if t is None:
                status = "never started"
            elif t.errored:
                status = f"errored at iteration {t.last_iteration} of {last}"
            elif t.complete:
                status = "no evaluation"
            else:
                status = f"stopped at iteration {t.last_iteration} of {last}"
            out.append({"arm": arm, "seed": seed, "status": status})
    return out


def unpaired_seeds(trials: List[TrialRecord]) -> List[int]:
    """Seeds whose arms did not all start from the same initial weights -- or, where
    their critics differ by design (MAPPO's reads every agent's observation), from
    the same initial actors."""
    by_seed: Dict[int, List[TrialRecord]] = {}
    for t in trials:
        if t.init_digest:
            by_seed.setdefault(t.seed, []).append(t)
    broken = []
    for seed, group in by_seed.items():
        if len({t.init_digest for t in group}) <= 1:
            continue
        actors = {t.actor_digest for t in group}
        if None in actors or len(actors) > 1:
            broken.append(seed)
    return sorted(broken)


def bootstrap_band(curves: np.ndarray, seed: int = 0, level: float = 0.95):
    """Mean over seeds and a percentile-bootstrap band, per column (NaN-free columns)."""
    mean = curves.mean(axis=0)
    if curves.shape[0] < 2:
        return mean, mean.copy(), mean.copy()
    res = sps.bootstrap((curves,), np.mean, axis=0, confidence_level=level,
                        n_resamples=2000, method="percentile", random_state=seed)
    low = np.where(np.isfinite(res.confidence_interval.low), res.confidence_interval.low, mean)
    high = np.where(np.isfinite(res.confidence_interval.high), res.confidence_interval.high,
                    mean)
    return mean, low, high
