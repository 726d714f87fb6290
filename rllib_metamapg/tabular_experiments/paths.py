"""Alignment of the corrections along learning trajectories (``metamapg tabular paths``).

The review's question: does the peer correction push toward the target equilibrium
where it matters, along the trajectories that enter (or miss) its attraction region,
not only at the first update (the alignment proxy) or at the equilibrium itself
(the atlas's mu_M)?

From paired starts (the ablation's: one ``N(0, init_std^2)`` draw per parameter and
seed), the peer-aware arm learns as in the ablation (sampled mode).  At every step
of each trajectory, until it enters the target region (every player cooperates with
probability >= ``threshold`` at the start state) or, for a run that never enters, to
its end, the *exact* own and peer corrections at that step's parameters are compared
with the direction to the target:

* the target is the all-cooperate corner of the clipped logit box (every state's
  p(cooperate) = sigmoid(logit_bound)): mutual cooperation in both games -- the
  payoff-dominant (stag, stag) in Stag Hunt, all-C in the memory-one IPD, whose
  corner is the policy that cooperates in every state;
* ``corner``: ``u = (target - theta) / |target - theta|``;
* ``start``: every player's start-state logit up (what the success criterion reads;
  in Stag Hunt, one state, nearly the same as ``corner``);
* reported per step is ``<M, u>`` (the correction's component along ``u``) and the
  cosine.

Steps are binned by the distance to entry that the success criterion measures:
``1 - min_i p_i(cooperate | start)`` (entry is ``<= 1 - threshold``).  In the IPD the
other states' policies are free, so a run can enter far from the all-C corner.  Per
game, term, direction, outcome (entered / never) and bin: the number of steps, the
mean ``<M, u>`` and cosine, and the share of steps with ``<M, u> > 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from rllib_metamapg import atomic
from rllib_metamapg.registry import ArmSpec
from rllib_metamapg.tabular.dynamics import LearningSettings, simulate
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.values import GameValues
from rllib_metamapg.tabular_experiments.ablation import paired_init

BINS = (0.25, 0.4, 0.6, 0.8, 1.0)  # upper edges; entry (0.82) is at 0.18
TERMS = ("peer", "own")
DIRECTIONS = ("corner", "start")


def bin_labels(edges: Sequence[float] = BINS) -> List[str]:
    lows = [0.0, *edges[:-1]]
    return [f"[{lo:g}, {hi:g}{']' if hi == edges[-1] else ')'}" for lo, hi in zip(lows, edges)]


def game_paths(game, arms: Sequence[ArmSpec], settings: LearningSettings, seeds: int,
               init_std: float, threshold: float, seed: int,
               edges: Sequence[float] = BINS, progress=None) -> Dict:
    """``{arm: table}`` for one game (see the module docstring); every arm from the
    same paired starts."""
    if settings.parameterization != "bernoulli":
        raise ValueError(f"parameterization={settings.parameterization!r}: the target "
                         "corner is defined for Bernoulli logits; use 'bernoulli'.")
    policy = TabularPolicy.for_game(game, settings.parameterization)
    theta0 = paired_init(policy, seeds, init_std, seed)
    res = simulate(game, arms, theta0, settings, seed=seed + 1, record=True,
                   progress=progress)
    return {arm.name: _arm_table(game, policy, settings, res.history[:, k], threshold,
                                 edges) for k, arm in enumerate(arms)}


def _arm_table(game, policy, settings: LearningSettings, hist: torch.Tensor,
               threshold: float, edges: Sequence[float]) -> Dict:
    """One arm's table from its parameters ``hist`` ``(T + 1, R, D)`` before each step."""
    steps_n, runs, dim = hist.shape
    coop = torch.stack([policy.probs(hist.reshape(-1, dim), i)[..., 0]
                        for i in range(policy.num_players)], 1)  # (T*R, N, S)
    start_coop = coop[..., 0].min(-1).values.view(steps_n, runs)
    inside = start_coop >= threshold  # (T + 1, R)
    first = torch.where(inside.any(0), inside.float().argmax(0), torch.full((runs,), steps_n))
    # Each run's steps until it enters (exclusive) or to its end.
    live = torch.arange(steps_n)[:, None] < first[None, :]
    distance = 1 - start_coop  # what the success criterion measures: entry at <= 1 - threshold
    # Bernoulli logits: the corner is +bound in every coordinate.
    target = torch.full((dim,), float(settings.logit_bound or 8.0), dtype=hist.dtype)
    engine = ExactEngine(GameValues(game, policy, settings.temperature))
    flat = hist.reshape(-1, dim)
    own, peer = engine.corrections(flat, settings.inner_lr, settings.correction_form,
                                   settings.unroll_length)
    to_target = target - flat
    # Two directions: toward the all-C corner, and toward entry (every player's
    # start-state logit up; parameters are player-major, state 0 first).
    start = torch.zeros(dim, dtype=hist.dtype)
    start[[i * policy.num_states for i in range(policy.num_players)]] = 1.0
    directions = {"corner": to_target, "start": start.expand_as(flat)}
    terms = {"peer": peer, "own": own}
    labels = bin_labels(edges)
    idx = np.searchsorted(np.asarray(edges), distance.numpy(), side="right")
    idx = np.minimum(idx, len(edges) - 1)
    ever = inside.any(0).numpy()
    out = {"runs": runs, "entered": int(ever.sum()),
           "steps_per_run": steps_n - 1, "terms": {}}
    live_np = live.numpy()
    for name, m in terms.items():
        out["terms"][name] = {}
        for dname, d in directions.items():
            unit = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            along = (m * unit).sum(-1).view(steps_n, runs).numpy()
            cos = torch.nn.functional.cosine_similarity(m, d, dim=-1).view(
                steps_n, runs).numpy()
            table = {}
            for outcome, runs_mask in (("entered", ever), ("never", ~ever)):
                rows = []  # one per bin, nearest to entry first
                for b, label in enumerate(labels):
                    sel = live_np & runs_mask[None, :] & (idx == b)
                    n = int(sel.sum())
                    rows.append({
                        "bin": label, "steps": n,
                        "mean_along": float(along[sel].mean()) if n else None,
                        "mean_cos": float(cos[sel].mean()) if n else None,
                        "share_positive": float((along[sel] > 0).mean()) if n else None})
                table[outcome] = rows
            out["terms"][name][dname] = table
    return out


def run_paths(games: Sequence, arms: Sequence[ArmSpec], settings: LearningSettings,
              settings_record: Dict, seeds: int, init_std: float, threshold: float,
              seed: int, out: Path, progress=None) -> Dict:
    doc = {"experiment": "paths", "arms": [a.name for a in arms], "seeds": seeds,
           "init_std": init_std, "threshold": threshold, "seed": seed,
           "settings": settings_record, "bins": bin_labels(),
           "directions": {"corner": "toward the all-cooperate corner of the clipped logit box",
                          "start": "every player's start-state logit up (toward entry)"},
           "games": {g.name: game_paths(g, arms, settings, seeds, init_std, threshold, seed,
                                        progress=progress) for g in games}}
    with atomic.file_set(out) as stage:  # the set appears whole or not at all
        atomic.write_json(stage / "paths.json", doc)
        atomic.write_text(stage / "paths.md", format_table(doc) + "\n")
    return doc


def format_table(doc: Dict) -> str:
    """Markdown: per game and term, share of steps pushing toward the target (mean
    component) by distance bin, for runs that enter and runs that never do."""
    lines = [f"| game | arm | term | toward | runs | {' | '.join(doc['bins'])} |",
             "|---|---|---|---|---|" + "---|" * len(doc["bins"])]
    for g, arm, gd in ((g, a, t) for g, by_arm in doc["games"].items()
                       for a, t in by_arm.items()):
        for term in TERMS:
            for dname in DIRECTIONS:
                for outcome in ("entered", "never"):
                    rows = gd["terms"][term][dname][outcome]
                    cells = [("-" if r["steps"] == 0 else
                              f"{100 * r['share_positive']:.0f}% ({r['mean_along']:+.3g}, "
                              f"n={r['steps']})") for r in rows]
                    count = (gd["entered"] if outcome == "entered"
                             else gd["runs"] - gd["entered"])
                    lines.append(f"| {g} | {arm} | {term} | {dname} | {outcome} {count} | "
                                 f"{' | '.join(cells)} |")
    return "\n".join(lines)
