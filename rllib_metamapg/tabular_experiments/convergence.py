"""MATRL's Table 1: convergence of gradient learners on random 2x2 games.

Random coordination, anti-coordination and cyclic games (the public code's
generator, one game per seed), every learner from ``(x, y) = (0.9, 0.2)`` for at
most 1000 iterations; rate = share of games converged to a Nash equilibrium,
steps = mean first-hit iteration over the converged games.  All games of all
types run as one batch per learner.  ``iga_br`` is IGA with MATRL's
best-response step (0.03): much of MATRL's speed-up over IGA is that step size,
and the table shows it next to MATRL rather than hiding it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from rllib_metamapg.errors import UsageError
from rllib_metamapg import atomic
from rllib_metamapg.matrl import iga
from rllib_metamapg.matrl.meta_game import CHOICES
from rllib_metamapg.stats import wilson_ci

# The learners of MATRL's Table 1 and the paper's numbers live with MATRL.
DEFAULT_METHODS = iga.TABLE1_DEFAULTS
PAPER = iga.TABLE1_PAPER


class ConvergenceError(UsageError):
    """Bad convergence-experiment input; the message names the option."""


def check(games_per_type: int, methods: Sequence[str], choice: str, iters: int) -> None:
    if not isinstance(games_per_type, int) or games_per_type < 1:
        raise ConvergenceError(f"--games-per-type={games_per_type!r} must be an integer >= 1.")
    if not isinstance(iters, int) or iters < 2:
        raise ConvergenceError(f"--iters={iters!r} must be an integer >= 2.")
    unknown = [m for m in methods if m not in iga.METHODS]
    if unknown or not methods:
        raise ConvergenceError(f"--dynamics: {unknown or 'none given'}; choose from "
                               f"{list(iga.METHODS)}.")
    if choice not in CHOICES:
        raise ConvergenceError(f"--choice={choice!r}; choose one of {CHOICES}.")


def run_convergence(games_per_type: int, methods: Sequence[str] = DEFAULT_METHODS,
                    choice: str = "last", iters: int = iga.MAX_ITERS, seed: int = 0,
                    progress: Optional[Callable[[str, int, int], None]] = None) -> Dict:
    """Every method on ``games_per_type`` games of each type; the JSON-ready summary."""
    check(games_per_type, methods, choice, iters)
    games = [iga.random_games(kind, games_per_type) for kind in iga.KINDS]
    r1 = np.concatenate([g[0] for g in games])
    r2 = np.concatenate([g[1] for g in games])
    kind_of = np.repeat(np.arange(len(iga.KINDS)), games_per_type)
    doc = {"experiment": "convergence", "games_per_type": games_per_type,
           "start": list(iga.START), "max_iters": iters, "tolerance": iga.TOLERANCE,
           "choice": choice, "steps": vars(iga.Steps()), "seed": seed,
           "types": {k: {} for k in iga.KINDS}, "paper": PAPER}
    for method in methods:
        report = (lambda i, n, m=method: progress(m, i, n)) if progress else None
        ok, hit = iga.run(method, r1, r2, iters=iters, choice=choice, seed=seed,
                          progress=report)
        for k, kind in enumerate(iga.KINDS):
            sel = kind_of == k
            doc["types"][kind][method] = summarise(ok[sel], hit[sel])
    return doc


def summarise(ok: np.ndarray, hit: np.ndarray) -> Dict:
    n, s = int(ok.size), int(ok.sum())
    lo, hi = wilson_ci(s, n)
    steps = hit[ok].astype(float)
    mean = float(steps.mean()) if s else None
    half = float(1.96 * steps.std(ddof=1) / np.sqrt(s)) if s > 1 else None
    return {"games": n, "converged": s, "rate": s / n, "wilson95": [lo, hi],
            "mean_steps": mean,
            "mean_steps_ci95": None if half is None else [mean - half, mean + half]}


def format_table(doc: Dict) -> str:
    methods = list(next(iter(doc["types"].values())))
    lines = ["| method | " + " | ".join(doc["types"]) + " |",
             "|---|" + "---|" * len(doc["types"])]
    for m in methods:
        cells = []
        for kind, row in doc["types"].items():
            e = row[m]
            steps = "-" if e["mean_steps"] is None else f"{e['mean_steps']:.1f}"
            paper = doc["paper"].get(kind, {}).get(m)
            ref = f" (paper {paper[0]:g} / {paper[1]:g})" if paper else ""
            cells.append(f"{e['rate']:.3f} / {steps}{ref}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_convergence(doc: Dict, out) -> None:
    """``convergence.json``, ``.csv`` and ``.png`` as one set."""
    out = Path(out)
    rows = []
    for kind, row in doc["types"].items():
        for m, e in row.items():
            ci = e["mean_steps_ci95"] or ["", ""]
            rows.append([kind, m, e["games"], e["converged"], f"{e['rate']:.4f}",
                         f"{e['wilson95'][0]:.4f}", f"{e['wilson95'][1]:.4f}",
                         "" if e["mean_steps"] is None else f"{e['mean_steps']:.2f}",
                         ci[0] if ci[0] == "" else f"{ci[0]:.2f}",
                         ci[1] if ci[1] == "" else f"{ci[1]:.2f}"])
    with atomic.file_set(out) as stage:
        atomic.write_csv(stage / "convergence.csv",
                         ["type", "method", "games", "converged", "rate", "wilson_lo",
                          "wilson_hi", "mean_steps", "steps_ci_lo", "steps_ci_hi"], rows)
        atomic.write_figure(stage / "convergence.png", figure(doc))
        atomic.write_json(stage / "convergence.json", doc)


def figure(doc: Dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(doc["types"])
    methods = list(doc["types"][kinds[0]])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        pos = np.arange(len(kinds)) + (j - (len(methods) - 1) / 2) * width
        rates = [doc["types"][k][m]["rate"] for k in kinds]
        steps = [doc["types"][k][m]["mean_steps"] or 0.0 for k in kinds]
        axes[0].bar(pos, rates, width, label=m)
        axes[1].bar(pos, steps, width, label=m)
    for ax, title in zip(axes, ("convergence rate", "mean convergence step")):
        ax.set_xticks(np.arange(len(kinds)))
        ax.set_xticklabels(kinds)
        ax.set_title(title)
    axes[0].set_ylim(0.5, 1.0)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"random 2x2 games, {doc['games_per_type']} per type, start "
                 f"{tuple(doc['start'])}", fontsize=9)
    return fig
