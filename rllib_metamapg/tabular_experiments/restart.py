"""Restart experiment: success within k uniform re-initialisations, per arm.

Seed ``s`` owns a sequence of ``max_restarts + 1`` initial parameter vectors, each
uniform on ``[-init_range, init_range]`` per state and player, shared by every arm
(paired).  An arm's seed succeeds *within k restarts* when one of its first ``k + 1``
runs ends in the target (the ablation's success criterion); the restart count is
the index of the first success.  Every (seed, attempt) run is independent, so all of
them go through one batched :func:`~.dynamics.simulate` call -- the outcome is the one
a sequential "restart until success" loop would give, without the loop.

Per arm: P(success within k) for k = 0..max_restarts with Wilson 95 % CIs, the mean
restart count of successful seeds, and exact McNemar tests against ``ippo`` at k = 0
and at k = max_restarts.  Outputs (one set, atomically): ``restart.json``,
``restart.csv`` (per arm, game and seed) and ``restart.png`` (the curves).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from rllib_metamapg import atomic
from rllib_metamapg.registry import ArmSpec, reference_arm
from rllib_metamapg.stats import mcnemar_paired, wilson_ci
from rllib_metamapg.tabular.dynamics import LearningSettings, SettingsError, simulate
from rllib_metamapg.tabular.policies import TabularPolicy


def check_options(seeds, max_restarts, init_range) -> None:
    """Refuses impossible options by name, before any run."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise SettingsError(f"seeds={seeds!r} must be a positive integer.")
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise SettingsError(f"max_restarts={max_restarts!r} must be an integer >= 0.")
    if not (isinstance(init_range, (int, float)) and np.isfinite(init_range)
            and init_range > 0):
        raise SettingsError(f"init_range={init_range!r} must be a finite number > 0.")


def restart_inits(policy: TabularPolicy, seeds: int, attempts: int, init_range: float,
                  seed: int) -> torch.Tensor:
    """``(seeds, attempts, D)`` uniform initial parameters; seed s's sequence is the same
    for every arm and does not depend on how many seeds are run."""
    check_options(seeds, attempts - 1, init_range)
    rows = []
    for s in range(seeds):
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + s)
        u = torch.rand(attempts, policy.dim, generator=gen, dtype=torch.float64)
        rows.append((2 * u - 1) * init_range)
    return torch.stack(rows)


def first_success(ok: np.ndarray) -> np.ndarray:
    """``(..., attempts)`` bools -> index of the first True, or -1 when none."""
    hit = ok.any(-1)
    return np.where(hit, ok.argmax(-1), -1)


def run_game(game, arms: Sequence[ArmSpec], settings: LearningSettings, seeds: int,
             max_restarts: int, init_range: float, threshold: float, seed: int,
             progress=None) -> Dict:
    policy = TabularPolicy.for_game(game, settings.parameterization)
    attempts = max_restarts + 1
    theta0 = restart_inits(policy, seeds, attempts, init_range, seed)
    res = simulate(game, arms, theta0.reshape(seeds * attempts, -1), settings,
                   seed=seed + 1, progress=progress)
    ok = res.success(threshold).numpy().reshape(len(res.arms), seeds, attempts)
    first = first_success(ok)  # (A, seeds)
    ref = reference_arm()
    out = {}
    for k, arm in enumerate(res.arms):
        within = [(first[k] >= 0) & (first[k] <= r) for r in range(attempts)]
        curve = []
        for r, w in enumerate(within):
            lo, hi = wilson_ci(int(w.sum()), seeds)
            curve.append({"restarts": r, "rate": float(w.mean()), "wilson95": [lo, hi]})
        hits = first[k][first[k] >= 0]
        entry = {"n": seeds, "first_success": first[k].tolist(), "within": curve,
                 "single_run_rate": float(ok[k].mean()),
                 "mean_restarts_of_successes": float(hits.mean()) if hits.size else None}
        if ref in res.arms and arm != ref:
            r0 = first[res.arms.index(ref)]
            entry["vs_reference"] = {
                "arm": ref,
                "no_restart_mcnemar_p": mcnemar_paired(r0 == 0, first[k] == 0)["p_value"],
                "all_restarts_mcnemar_p": mcnemar_paired(r0 >= 0, first[k] >= 0)["p_value"]}
        out[arm] = entry
    return {"game": game.name, "arms": out}


def run_restart(games: List, arms: Sequence[ArmSpec], settings: LearningSettings,
                settings_record: Dict, seeds: int, max_restarts: int, init_range: float,
                threshold: float, seed: int, progress=None) -> Dict:
    return {"experiment": "restart", "seeds": seeds, "max_restarts": max_restarts,
            "init_range": init_range, "threshold": threshold, "seed": seed,
            "settings": settings_record,
            "games": {g.name: run_game(g, arms, settings, seeds, max_restarts, init_range,
                                       threshold, seed, progress)["arms"] for g in games}}


def write_restart(doc: Dict, out) -> None:
    rows = [[g, arm, s, f] for g, arms in doc["games"].items() for arm, e in arms.items()
            for s, f in enumerate(e["first_success"])]
    with atomic.file_set(out) as stage:  # the set appears whole or not at all
        atomic.write_csv(stage / "restart.csv", ["game", "arm", "seed", "first_success"],
                         rows)
        atomic.write_figure(stage / "restart.png", restart_figure(doc))
        atomic.write_json(stage / "restart.json", doc)


def format_table(doc: Dict) -> str:
    k = doc["max_restarts"]
    lines = [f"| game | arm | no restart | within {k} restarts | mean restarts (successes) |",
             "|---|---|---|---|---|"]
    for g, arms in doc["games"].items():
        for arm, e in arms.items():
            cells = []
            for r, key in ((0, "no_restart_mcnemar_p"), (k, "all_restarts_mcnemar_p")):
                c = e["within"][r]
                cell = (f"{100 * c['rate']:.0f}% [{100 * c['wilson95'][0]:.1f}, "
                        f"{100 * c['wilson95'][1]:.1f}]")
                if "vs_reference" in e:
                    cell += f" (p={e['vs_reference'][key]:.2g})"
                cells.append(cell)
            m = e["mean_restarts_of_successes"]
            lines.append(f"| {g} | {arm} | {cells[0]} | {cells[1]} | "
                         f"{'-' if m is None else f'{m:.2f}'} |")
    return "\n".join(lines)


def restart_figure(doc: Dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = list(doc["games"])
    fig, axes = plt.subplots(1, len(games), figsize=(4.2 * len(games), 3.4), squeeze=False)
    for ax, g in zip(axes[0], games):
        for arm, e in doc["games"][g].items():
            r = [c["restarts"] for c in e["within"]]
            rate = np.array([c["rate"] for c in e["within"]])
            lo = np.array([c["wilson95"][0] for c in e["within"]])
            hi = np.array([c["wilson95"][1] for c in e["within"]])
            (line,) = ax.plot(r, rate, marker="o", ms=3, label=arm)
            ax.fill_between(r, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_title(g)
        ax.set_xlabel("restarts allowed")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("P(success within k restarts)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig
