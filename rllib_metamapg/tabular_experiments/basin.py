"""Basin map: which initial cooperation probabilities end in the target basin.

A ``grid x grid`` lattice of initial probabilities ``(p_1, p_2)`` of action 0
(the same in every state) is run under every arm; a cell succeeds when both
players end with ``p(action 0 | start) >= threshold``.  Gained/lost cells are
counted against the reference arm (``ippo``, plain PG), whose success boundary
is drawn on every panel as the reference separatrix.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

import numpy as np
import torch

from rllib_metamapg import atomic
from rllib_metamapg.tabular_experiments import defaults
from rllib_metamapg.registry import ArmSpec, get_arm, reference_arm, arm_for_engine
from rllib_metamapg.tabular.dynamics import LearningSettings, SettingsError, simulate
from rllib_metamapg.tabular.policies import TabularPolicy

DEFAULTS = defaults.BASIN


@dataclasses.dataclass
class BasinResult:
    """Outcome of a basin map.

    Attributes:
        game: Game name.
        probs: The grid values of p (length G).
        arms: Arm names (the reference arm first).
        success: ``(A, G, G)`` bool; ``[a, i, j]`` is player 1 at ``probs[i]``
            and player 2 at ``probs[j]``.
        final_coop: ``(A, G, G, N)`` final p(action 0 | start) per player.
        settings: The learning settings.
        threshold: Success threshold.
    """

    game: str
    probs: np.ndarray
    arms: List[str]
    success: np.ndarray
    final_coop: np.ndarray
    settings: LearningSettings
    threshold: float

    def fractions(self) -> Dict[str, float]:
        return {a: float(self.success[k].mean()) for k, a in enumerate(self.arms)}

    def summary(self) -> Dict[str, Dict]:
        ref = self.success[self.arms.index(reference_arm())]
        out = {}
        for k, a in enumerate(self.arms):
            s = self.success[k]
            out[a] = {"fraction": float(s.mean()), "successes": int(s.sum()),
                      "cells": int(s.size), "gained_vs_reference": int((s & ~ref).sum()),
                      "lost_vs_reference": int((~s & ref).sum())}
        return out


def initial_theta(policy: TabularPolicy, probs: Sequence[float]) -> torch.Tensor:
    """``(G*G, D)`` parameters where player 1 (2) plays action 0 w.p. ``probs[i]`` (``[j]``)."""
    if policy.num_players != 2:
        raise SettingsError(f"basin maps need a 2-player game; this one has "
                            f"{policy.num_players} players.")
    p = torch.as_tensor(np.asarray(probs), dtype=torch.float64)
    p1, p2 = torch.meshgrid(p, p, indexing="ij")
    cols = []
    for i, pi in enumerate((p1.flatten(), p2.flatten())):
        a = policy.num_actions[i]
        if policy.kind == "bernoulli":
            block = torch.logit(pi)[:, None].expand(-1, policy.num_states)
        else:
            rest = torch.log((1 - pi) / (a - 1))
            per_state = torch.stack([torch.log(pi)] + [rest] * (a - 1), -1)
            block = per_state[:, None, :].expand(-1, policy.num_states, -1).flatten(1)
        cols.append(block)
    return torch.cat(cols, -1)


def grid_values(n: int, low: float, high: float) -> np.ndarray:
    if not isinstance(n, int) or n < 2:
        raise SettingsError(f"grid={n!r} must be an integer >= 2.")
    if not 0.0 < low < high < 1.0:
        raise SettingsError(f"grid_low={low}, grid_high={high}: need 0 < low < high < 1.")
    return np.linspace(low, high, n)


def run_basin(game, arms: Sequence[ArmSpec], settings: LearningSettings, probs: np.ndarray,
              threshold: float, seed: int = 0, progress=None) -> BasinResult:
    """Runs the basin map; the reference arm is added (first) when not requested."""
    ref = reference_arm()
    arms = [arm_for_engine(a, "tabular") for a in arms]
    if ref not in [a.name for a in arms]:
        arms = [get_arm(ref)] + arms
    arms.sort(key=lambda a: a.name != ref)
    policy = TabularPolicy.for_game(game, settings.parameterization)
    theta0 = initial_theta(policy, probs)
    res = simulate(game, arms, theta0, settings, seed=seed, progress=progress)
    g = len(probs)
    coop = res.start_coop().numpy()  # (A, G*G, N)
    ok = coop.min(-1) >= threshold
    return BasinResult(game.name, np.asarray(probs), res.arms, ok.reshape(len(arms), g, g),
                       coop.reshape(len(arms), g, g, -1), settings, threshold)


def write_basin(result: BasinResult, out, settings_record: Dict, extra: Dict = None) -> Dict:
    """Writes ``basin.json``, ``basin.csv`` and ``basin.png`` into ``out``."""
    from pathlib import Path

    out = Path(out)
    summary = result.summary()
    rows = []
    for k, arm in enumerate(result.arms):
        for i, p1 in enumerate(result.probs):
            for j, p2 in enumerate(result.probs):
                fc = result.final_coop[k, i, j]
                rows.append([arm, i, j, f"{p1:.6g}", f"{p2:.6g}", int(result.success[k, i, j]),
                             f"{fc[0]:.6g}", f"{fc[1]:.6g}"])
    doc = {
        "experiment": "basin", "game": result.game, "threshold": result.threshold,
        "grid": [float(x) for x in result.probs],
        "grid_layout": "grid[arm][i][j]: player 1 starts at grid[i], player 2 at grid[j]",
        "settings": settings_record, "reference": reference_arm(), "arms": summary,
        "outcome_grid": {a: result.success[k].astype(int).tolist()
                         for k, a in enumerate(result.arms)},
    }
    doc.update(extra or {})
    with atomic.file_set(out) as stage:  # the set appears whole or not at all
        atomic.write_csv(stage / "basin.csv", ["arm", "i", "j", "p1_init", "p2_init",
                                               "success", "p1_final", "p2_final"], rows)
        atomic.write_figure(stage / "basin.png", basin_figure(result))
        atomic.write_json(stage / "basin.json", doc)
    return doc


def basin_figure(result: BasinResult):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    arms = result.arms
    ref_name = reference_arm()
    ref = result.success[arms.index(ref_name)].astype(float)
    fig, axes = plt.subplots(1, len(arms), figsize=(3.2 * len(arms), 3.4), squeeze=False)
    p = result.probs
    # 0 fail, 1 success, 2 gained vs the reference, 3 lost vs it
    cmap = ListedColormap(["#f2f2f2", "#4c78a8", "#59a14f", "#e15759"])
    for k, (ax, arm) in enumerate(zip(axes[0], arms)):
        s = result.success[k]
        code = s.astype(int)
        code[s & (ref == 0)] = 2
        code[~s & (ref == 1)] = 3
        h = (p[-1] - p[0]) / (2 * (len(p) - 1))  # cells centred on the grid values
        ax.imshow(code.T, origin="lower", cmap=cmap, vmin=0, vmax=3,
                  extent=(p[0] - h, p[-1] + h, p[0] - h, p[-1] + h), aspect="equal")
        if 0 < ref.sum() < ref.size:
            ax.contour(p, p, ref.T, levels=[0.5], colors="k", linestyles="--", linewidths=1)
        ax.set_title(f"{arm}: {100 * s.mean():.1f}%")
        ax.set_xlabel("p1(action 0) at start")
        if k == 0:
            ax.set_ylabel("p2(action 0) at start")
    fig.suptitle(f"{result.game} basin map (dashed: {ref_name} separatrix; green gained, "
                 f"red lost vs {ref_name})", fontsize=9)
    return fig
