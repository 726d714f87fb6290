"""Tuning a sampler's behaviour update on MA-PROPS's own grid (``metamapg tabular samplers-tune``).

MA-PROPS (App. G) swept behaviour lr {0.3, 0.03, 0.003}, update interval m {1, 4}
and clip eps {0.3, 1, 10} and kept the best setting per game size.  This runs
that grid with the independent-PPO learner of ``samplers`` on paired seeds (the
same seeds for every setting), scores each setting by its mean success rate over
the given games of one size, and picks the best per size; ties go to the
earlier setting in grid order (the order the values are given).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from rllib_metamapg import atomic
from rllib_metamapg.samplers.learning import train
from rllib_metamapg.stats import wilson_ci
from rllib_metamapg.tabular_experiments.sampling import (SETTINGS_BY_ACTIONS, SamplingError,
                                                         check_steps,
                                                         _game, _positive, check_samplers)

# MA-PROPS App. G's sweep.
GRID = {"lr": (0.3, 0.03, 0.003), "every": (1, 4), "clip": (0.3, 1.0, 10.0)}
DEFAULT_GAMES = ("no_conflict_19", "no_conflict_20", "no_conflict_21", "climbing",
                 "climbing_modified", "penalty")


def check_grid(grid: Dict[str, Sequence]) -> None:
    for key, values in grid.items():
        if not values:
            raise SamplingError(f"--{key}: give at least one value.")
        for v in values:
            ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) if key == "every" \
                else (isinstance(v, (int, float)) and np.isfinite(v) and v > 0)
            if not ok:
                raise SamplingError(f"--{key}: {v!r} must be "
                                    + ("an integer >= 1." if key == "every" else "> 0."))


def run_tuning(game_names: Sequence[str], seeds: int, sampler: str = "ma_props",
               grid: Optional[Dict[str, Sequence]] = None, steps: Optional[int] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> Dict:
    grid = dict(GRID if grid is None else grid)
    check_grid(grid)
    games = [_game(n) for n in game_names]
    _positive("--seeds", seeds)
    if steps is not None:
        _positive("--steps", steps)
    check_samplers([sampler])
    if sampler == "on_policy":
        raise SamplingError("--sampler: on_policy has no behaviour update to tune.")
    groups: Dict[int, List] = {}
    for g in games:
        groups.setdefault(g.num_actions[0], []).append(g)
    check_steps(steps, [SETTINGS_BY_ACTIONS[a][0].batch for a in groups])
    settings = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    total = len(settings) * len(groups)
    doc = {"experiment": "samplers-tune", "sampler": sampler, "seeds": seeds,
           "grid": {k: list(v) for k, v in grid.items()}, "sizes": {}}
    done = 0
    for a, group in groups.items():
        ppo, base = SETTINGS_BY_ACTIONS[a]
        n_steps = steps or 100 * ppo.batch
        rows = []
        for s in settings:
            behaviour = dataclasses.replace(base, **s)
            out = train(group, sampler, seeds, n_steps, seed=0, ppo=ppo, behaviour=behaviour)
            rates = {g.name: float(out["success"][k].mean()) for k, g in enumerate(group)}
            rows.append({"setting": s, "rates": rates,
                         "wilson95": {g.name: list(wilson_ci(int(out["success"][k].sum()),
                                                             seeds))
                                      for k, g in enumerate(group)},
                         "mean": float(np.mean(list(rates.values())))})
            done += 1
            if progress is not None:
                progress(done, total)
        best = max(range(len(rows)), key=lambda i: (rows[i]["mean"], -i))
        doc["sizes"][f"{a}x{a}"] = {"games": [g.name for g in group], "steps": n_steps,
                                   "ppo": vars(ppo), "base": vars(base), "rows": rows,
                                   "best": rows[best]["setting"],
                                   "best_mean": rows[best]["mean"]}
    return doc


def format_table(doc: Dict) -> str:
    lines = []
    for size, block in doc["sizes"].items():
        names = block["games"]
        lines += [f"{size} ({doc['sampler']}, {doc['seeds']} seeds; best: {block['best']})",
                  "| lr | every | clip | " + " | ".join(names) + " | mean |",
                  "|---|---|---|" + "---|" * (len(names) + 1)]
        for row in block["rows"]:
            s = row["setting"]
            lines.append(f"| {s['lr']} | {s['every']} | {s['clip']} | "
                         + " | ".join(f"{100 * row['rates'][n]:.0f}%" for n in names)
                         + f" | {100 * row['mean']:.1f}% |")
        lines.append("")
    return "\n".join(lines)


def write_tuning(doc: Dict, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(doc["sizes"].values())
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 6), squeeze=False)
    csv_rows = []
    for ax, block in zip(axes[0], sizes):
        names = block["games"]
        labels = [f"lr={r['setting']['lr']} m={r['setting']['every']} "
                  f"eps={r['setting']['clip']}" for r in block["rows"]]
        grid = np.array([[r["rates"][n] for n in names] for r in block["rows"]])
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, fontsize=7)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_title(f"{doc['sampler']} success rate")
        fig.colorbar(im, ax=ax)
        for r in block["rows"]:
            for n in names:
                s = r["setting"]
                csv_rows.append([n, s["lr"], s["every"], s["clip"], f"{r['rates'][n]:.4f}"])
    fig.tight_layout()
    with atomic.file_set(Path(out)) as stage:
        atomic.write_csv(stage / "samplers_tune.csv", ["game", "lr", "every", "clip", "rate"],
                         csv_rows)
        atomic.write_figure(stage / "samplers_tune.png", fig)
        atomic.write_json(stage / "samplers_tune.json", doc)
