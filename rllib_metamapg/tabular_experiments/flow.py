"""Update field and trajectories over the basin map, per arm (2-player 2-action games).

What the paper's prototype drew by hand, from the engine's own updates:

* the **update field**: at each point ``(p_1, p_2)`` of a coarse grid (each player's
  probability of action 0), the arm's first update ``alpha_0 d_0`` (any method, exact
  or sampled mode) mapped to probability space, ``dp_i = p_i (1 - p_i) dtheta_i``;
* **trajectories** from a small grid of starts, every step recorded;
* over each arm's **basin map** (the ``basin`` experiment, same settings).

Outputs (one set, written atomically): ``flow.json``, ``flow.csv`` (the field) and
``flow.png`` (one panel per arm: basin cells, arrows, trajectories).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Sequence

import numpy as np

from rllib_metamapg import atomic
from rllib_metamapg.registry import ArmSpec
from rllib_metamapg.tabular.dynamics import LearningSettings, SettingsError, simulate
from rllib_metamapg.tabular_experiments import basin
from rllib_metamapg.tabular.policies import TabularPolicy


def check_game(game, settings: LearningSettings) -> TabularPolicy:
    """The flow is drawn in the unit square: one-shot, 2 players, 2 actions each."""
    from rllib_metamapg.tabular.games import MemoryOneGame

    if isinstance(game, MemoryOneGame):
        raise SettingsError(f"game={game.name!r} is repeated; the flow is drawn for "
                            "one-shot 2x2 games (p1, p2 in the unit square).")
    if game.num_players != 2 or tuple(game.num_actions) != (2, 2):
        raise SettingsError(f"game={game.name!r} has {game.num_players} players with "
                            f"{tuple(game.num_actions)} actions; the flow needs a 2x2 game.")
    if settings.parameterization != "bernoulli":
        raise SettingsError("parameterization: the flow maps one logit per player to "
                            "p(action 0); use 'bernoulli'.")
    return TabularPolicy.for_game(game, "bernoulli")


def _probs(theta) -> np.ndarray:
    """``(..., 2)`` p(action 0) per player from bernoulli one-shot parameters ``(..., 2)``."""
    return 1.0 / (1.0 + np.exp(-np.asarray(theta, dtype=float)))


def update_field(game, arms: Sequence[ArmSpec], settings: LearningSettings,
                 probs: np.ndarray, seed: int) -> Dict[str, np.ndarray]:
    """``{arm: (G, G, 2)}``: the first update in probability space at each grid point
    (player 1 at ``probs[i]``, player 2 at ``probs[j]``)."""
    policy = check_game(game, settings)
    theta0 = basin.initial_theta(policy, probs)
    one = dataclasses.replace(settings, steps=1, logit_bound=None)
    res = simulate(game, arms, theta0, one, seed=seed)
    dtheta = (res.theta - theta0[None].to(res.theta.dtype)).numpy()  # (A, G*G, 2)
    p = _probs(theta0.numpy())[None]
    g = len(probs)
    return {a: (p * (1 - p) * dtheta[k]).reshape(g, g, 2) for k, a in enumerate(res.arms)}


def trajectories(game, arms: Sequence[ArmSpec], settings: LearningSettings,
                 starts: np.ndarray, seed: int) -> Dict[str, np.ndarray]:
    """``{arm: (S*S, T+1, 2)}``: p(action 0) per player along each run from the
    ``starts x starts`` grid of initial points."""
    policy = check_game(game, settings)
    theta0 = basin.initial_theta(policy, starts)
    res = simulate(game, arms, theta0, settings, seed=seed, record=True)
    hist = _probs(res.history.numpy())  # (T+1, A, R, 2)
    return {a: np.transpose(hist[:, k], (1, 0, 2)) for k, a in enumerate(res.arms)}


def run_flow(game, arms: Sequence[ArmSpec], settings: LearningSettings, grid: np.ndarray,
             arrows: np.ndarray, starts: np.ndarray, threshold: float, seed: int,
             progress=None) -> Dict:
    check_game(game, settings)
    bmap = basin.run_basin(game, arms, settings, grid, threshold, seed, progress=progress)
    names = bmap.arms  # the reference arm first, as on the basin map
    field = update_field(game, names, settings, arrows, seed)
    paths = trajectories(game, names, settings, starts, seed)
    return {"basin": bmap, "field": field, "paths": paths, "arrows": arrows,
            "starts": starts}


def write_flow(res: Dict, out, settings_record: Dict) -> Dict:
    bmap = res["basin"]
    arrows = res["arrows"]
    rows = []
    for arm, f in res["field"].items():
        for i, p1 in enumerate(arrows):
            for j, p2 in enumerate(arrows):
                rows.append([arm, f"{p1:.6g}", f"{p2:.6g}", f"{f[i, j, 0]:.6g}",
                             f"{f[i, j, 1]:.6g}"])
    doc = {
        "experiment": "flow", "game": bmap.game, "threshold": bmap.threshold,
        "settings": settings_record, "arms": bmap.arms,
        "basin": {"grid": bmap.probs.tolist(), "fractions": bmap.fractions(),
                  "outcome_grid": {a: bmap.success[k].astype(int).tolist()
                                   for k, a in enumerate(bmap.arms)}},
        "field": {"grid": arrows.tolist(),
                  "layout": "field[arm][i][j] = (dp1, dp2) at p1 = grid[i], p2 = grid[j]: "
                            "the first update alpha_0 d_0 in probability space",
                  "values": {a: f.tolist() for a, f in res["field"].items()}},
        "trajectories": {"starts": res["starts"].tolist(),
                         "layout": "paths[arm][run][step] = (p1, p2); run = i * S + j "
                                   "starts at (starts[i], starts[j])",
                         "paths": {a: p.tolist() for a, p in res["paths"].items()}},
    }
    with atomic.file_set(out) as stage:  # the set appears whole or not at all
        atomic.write_csv(stage / "flow.csv", ["arm", "p1", "p2", "dp1", "dp2"], rows)
        atomic.write_figure(stage / "flow.png", flow_figure(res))
        atomic.write_json(stage / "flow.json", doc)
    return doc


def flow_figure(res: Dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    bmap = res["basin"]
    arms, p = bmap.arms, bmap.probs
    cols = min(4, len(arms))
    rows = -(-len(arms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.5 * rows + 0.4),
                             squeeze=False)
    for ax in axes.flat[len(arms):]:
        ax.axis("off")
    cmap = ListedColormap(["#f2f2f2", "#c6dbef"])  # fail, success (light: arrows on top)
    h = (p[-1] - p[0]) / (2 * (len(p) - 1))
    a = res["arrows"]
    ax_grid = np.meshgrid(a, a, indexing="ij")
    for ax, arm in zip(axes.flat, arms):
        k = arms.index(arm)
        ax.imshow(bmap.success[k].T.astype(int), origin="lower", cmap=cmap, vmin=0, vmax=1,
                  extent=(p[0] - h, p[-1] + h, p[0] - h, p[-1] + h), aspect="equal")
        f = res["field"][arm]
        norm = np.hypot(f[..., 0], f[..., 1])
        scale = np.where(norm > 0, 1.0 / np.maximum(norm, 1e-12), 0.0)  # direction only
        ax.quiver(ax_grid[0], ax_grid[1], f[..., 0] * scale, f[..., 1] * scale,
                  np.log10(np.maximum(norm, 1e-12)), cmap="viridis", angles="xy",
                  pivot="mid", width=0.006)
        for path in res["paths"][arm]:
            ax.plot(path[:, 0], path[:, 1], color="#e15759", lw=0.8, alpha=0.8)
            ax.plot(path[-1, 0], path[-1, 1], "o", color="#e15759", ms=2.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{arm}: basin {100 * bmap.success[k].mean():.1f}%", fontsize=9)
        ax.set_xlabel("p1(action 0)")
        if k % cols == 0:
            ax.set_ylabel("p2(action 0)")
    fig.suptitle(f"{bmap.game}: update directions (colour: log10 step size), "
                 "trajectories (red) over the basin (blue)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig
