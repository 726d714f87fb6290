"""Report figures: learning curves with bootstrap bands, per-seed strip plots."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from rllib_metamapg.report.analysis import bootstrap_band
from rllib_metamapg.report.load import Sweep, TrialRecord


def _figure(width: float = 6.4, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _curves(trials: List[TrialRecord]):
    """Steps evaluated by every trial of an arm and the seeds x steps return matrix."""
    steps = sorted(set.intersection(*(set(s for s, _ in t.evals) for t in trials)))
    matrix = np.array([[dict(t.evals)[s] for s in steps] for t in trials], dtype=float)
    return np.array(steps), matrix


def learning_curves(sweep: Sweep, tau: float):
    fig, ax = _figure()
    for arm in sweep.arms():
        trials = [t for t in sweep.trials if t.arm == arm and t.evals]
        if not trials:
            continue
        steps, matrix = _curves(trials)
        if not steps.size:
            continue
        mean, low, high = bootstrap_band(matrix)
        n = len(trials)
        (line,) = ax.plot(steps, mean, marker="o", ms=3,
                          label=f"{arm} (n={n}{'' if n > 1 else ', no band'})")
        if n > 1:
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(tau, color="k", ls="--", lw=1, label=f"tau = {tau:g}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy evaluation return")
    ax.set_title(f"{sweep.env}: mean over seeds; band: 95% percentile bootstrap over seeds "
                 "(arms with n >= 2)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def strip_plot(sweep: Sweep, finals: Dict[str, List[float]], tau: float):
    fig, ax = _figure()
    rng = np.random.default_rng(0)
    arms = [a for a in sweep.arms() if finals.get(a)]
    for k, arm in enumerate(arms):
        y = np.asarray(finals[arm], float)
        ax.scatter(k + rng.uniform(-0.15, 0.15, y.size), y, s=14, alpha=0.8)
        ax.hlines(np.median(y), k - 0.3, k + 0.3, color="k", lw=2)
    ax.axhline(tau, color="k", ls="--", lw=1)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("final greedy return (one dot per seed; bar = median)")
    ax.set_title(f"{sweep.env}: per-seed final returns, tau = {tau:g}")
    return fig
