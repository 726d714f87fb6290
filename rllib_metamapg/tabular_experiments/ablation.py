"""Component ablation over paired seeds (the paper's Table 1).

Seed ``s`` draws one initial parameter vector ``theta ~ N(0, init_std^2)`` per
state and player, shared by every arm.  Success rates get Wilson 95% CIs and
each arm is compared with ``pg`` by an exact McNemar test on the paired
outcomes.  Finished games are cached under ``OUT/.cache`` keyed by their
settings, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from rllib_metamapg import atomic
from rllib_metamapg.tabular_experiments import defaults
from rllib_metamapg.registry import ArmSpec, reference_arm
from rllib_metamapg.stats import mcnemar_paired, wilson_ci
from rllib_metamapg.tabular.dynamics import LearningSettings, SettingsError, simulate
from rllib_metamapg.tabular.policies import TabularPolicy

DEFAULTS = defaults.ABLATION


def paired_init(policy: TabularPolicy, seeds: int, std: float, seed: int) -> torch.Tensor:
    """``(seeds, D)`` initial parameters; row s is seed s's init for every arm."""
    if not isinstance(seeds, int) or seeds < 1:
        raise SettingsError(f"seeds={seeds!r} must be a positive integer.")
    if not std >= 0:
        raise SettingsError(f"init_std={std!r} must be >= 0.")
    gen = torch.Generator().manual_seed(int(seed))
    return std * torch.randn(seeds, policy.dim, generator=gen, dtype=torch.float64)


def simulate_paired(game, arms: Sequence[ArmSpec], settings: LearningSettings, seeds: int,
                    init_std: float, seed: int, progress=None, record: bool = False,
                    trace: bool = False):
    """Every arm from the same ``seeds`` initial parameters (the ablation's runs; the
    comparison calls this too, so its rows are the ablation's)."""
    policy = TabularPolicy.for_game(game, settings.parameterization)
    theta0 = paired_init(policy, seeds, init_std, seed)
    # Sampling noise gets its own stream so inits do not depend on it.
    return simulate(game, arms, theta0, settings, seed=seed + 1, progress=progress,
                    record=record, trace=trace)


def steps_weight(game) -> float:
    """``sum_t gamma^t`` over the game's horizon: a value divided by it is the mean
    (discounted) reward per step (1 for a one-shot game)."""
    if game.num_states == 1:
        return 1.0
    g, h = game.discount, game.horizon
    if h is None:
        return 1.0 / (1.0 - g)
    return float(h) if g == 1 else (1.0 - g ** h) / (1.0 - g)


def per_seed_outcomes(game, res, threshold: float) -> Dict[str, Dict]:
    """Per arm and seed: final values per player, mean reward per step, final policy
    per state (p of each action; bernoulli: p(action 0)), and the entry step (from which
    success holds to the end; -1 if it does not end there)."""
    from rllib_metamapg.tabular_experiments.suite import entry_steps
    from rllib_metamapg.tabular.values import GameValues

    values = GameValues(game, res.policy, 0.0, dtype=torch.float64)(
        res.theta.to(torch.float64))  # (A, R, N)
    per_step = values / steps_weight(game)
    ok_hist = torch.stack([res.success(threshold, h) for h in res.history])  # (T, A, R)
    entry = entry_steps(ok_hist.numpy())
    probs = [res.policy.probs(res.theta, i) for i in range(res.policy.num_players)]
    out = {}
    for k, name in enumerate(res.arms):
        policy = [[_finite((p[k, r, :, 0] if res.policy.kind == "bernoulli"
                            else p[k, r]).tolist()) for p in probs]
                  for r in range(res.theta.shape[1])]
        out[name] = {"values": _finite(values[k].tolist()),
                     "reward_per_step": _finite(per_step[k].mean(-1).tolist()),
                     "final_policy": policy, "entry_step": entry[k].astype(int).tolist()}
        if _reciprocity_defined(game, res.policy):
            out[name]["reciprocates"] = reciprocates(policy).tolist()
    return out


# Tit-for-tat-like (LOLA's reading of its IPD result): cooperate after mutual
# cooperation, defect after being exploited.
RECIPROCITY_COOPERATE = 0.9
RECIPROCITY_RETALIATE = 0.1


def _reciprocity_defined(game, policy) -> bool:
    from rllib_metamapg.tabular.games import MemoryOneGame

    return (isinstance(game, MemoryOneGame) and policy.kind == "bernoulli"
            and game.num_players == 2)


def reciprocates(final_policy) -> np.ndarray:
    """``(seeds, 2)`` bools: player i's final memory-one policy (``p(action 0)`` in
    states start, 00, 01, 10, 11 of the joint last action) has p(0 | 00) >= 0.9 and
    p(0 | i played 0, the other 1) <= 0.1.  Player 1 was exploited in state 01, player
    2 in state 10."""
    p = np.array([[[np.nan if v is None else v for v in pl] for pl in seed]
                  for seed in final_policy], dtype=float)
    exploited = (2, 3)
    return np.stack([(p[:, i, 1] >= RECIPROCITY_COOPERATE)
                     & (p[:, i, exploited[i]] <= RECIPROCITY_RETALIATE)
                     for i in range(2)], axis=1)


def _finite(x):
    """Lists with NaN/inf (a diverged run, e.g. unbounded logits) as null: JSON has no NaN."""
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x if np.isfinite(x) else None


def run_game(game, arms: Sequence[ArmSpec], settings: LearningSettings, seeds: int,
             init_std: float, threshold: float, seed: int, progress=None,
             trace: bool = False) -> Dict:
    """Runs one game's ablation and returns its JSON-ready summary (with ``trace``: per
    arm and step, the mean and median over seeds of each traced quantity)."""
    res = simulate_paired(game, arms, settings, seeds, init_std, seed, progress, record=True,
                          trace=trace)
    ok = res.success(threshold).numpy()
    details = per_seed_outcomes(game, res, threshold)
    names = res.arms
    ref_name = reference_arm()
    ref = ok[names.index(ref_name)] if ref_name in names else None
    arms_out = {}
    for k, name in enumerate(names):
        s = int(ok[k].sum())
        lo, hi = wilson_ci(s, seeds)
        entry = {"n": seeds, "successes": s, "rate": s / seeds, "wilson95": [lo, hi],
                 "per_seed": ok[k].astype(int).tolist(), **details[name]}
        if ref is not None and name != ref_name:
            t = mcnemar_paired(ref, ok[k])
            entry["vs_reference"] = {"arm": ref_name, "gained": t["b_only"], "lost": t["a_only"],
                              "mcnemar_p": t["p_value"]}
        if res.trace is not None:
            entry["trace"] = {key: {"mean": _finite(np.nanmean(t[:, k].numpy(), 1).tolist()),
                                    "median": _finite(np.nanmedian(t[:, k].numpy(),
                                                                   1).tolist())}
                              for key, t in res.trace.items()
                              if not torch.isnan(t[:, k]).all()}
        arms_out[name] = entry
    return {"game": game.name, "arms": arms_out}


def cache_key(game, arms, settings_record, seeds, init_std, threshold, seed,
              trace: bool = False) -> str:
    # "per-seed-3": results cached before the per-seed outcomes (and reciprocity)
    # existed are not reused.
    blob = json.dumps([game.describe(), [a.name for a in arms], settings_record, seeds,
                       init_std, threshold, seed, "per-seed-3"] + (["trace"] if trace else []),
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_ablation(games: List, arms: Sequence[ArmSpec], settings: LearningSettings,
                 settings_record: Dict, seeds: int, init_std: float, threshold: float,
                 seed: int, out: Path, progress=None, log=print, trace: bool = False) -> Dict:
    """Runs (or resumes) every game and writes ``ablation.json/.csv/.png``."""
    out = Path(out)
    results = []
    for game in games:
        key = cache_key(game, arms, settings_record, seeds, init_std, threshold, seed, trace)
        cached = out / ".cache" / f"ablation-{game.name}-{key}.json"
        if cached.exists():
            log(f"[ablation] {game.name}: reusing finished result {cached.name}")
            results.append(json.loads(cached.read_text()))
            continue
        log(f"[ablation] {game.name}: {len(arms)} arms x {seeds} paired seeds, "
            f"{settings.steps} steps")
        r = run_game(game, arms, settings, seeds, init_std, threshold, seed,
                     progress=progress, trace=trace)
        atomic.write_json(cached, r)
        results.append(r)
    doc = {"experiment": "ablation", "threshold": threshold, "seeds": seeds,
           "init_std": init_std, "seed": seed, "settings": settings_record,
           "games": {r["game"]: r["arms"] for r in results}}
    rows = []
    for r in results:
        for arm, e in r["arms"].items():
            vs = e.get("vs_reference", {})
            rows.append([r["game"], arm, e["n"], e["successes"], f"{e['rate']:.4f}",
                         f"{e['wilson95'][0]:.4f}", f"{e['wilson95'][1]:.4f}",
                         vs.get("gained", ""), vs.get("lost", ""),
                         "" if not vs else f"{vs['mcnemar_p']:.3g}"])
    with atomic.file_set(out) as stage:  # the set appears whole or not at all
        atomic.write_csv(stage / "ablation.csv", ["game", "arm", "n", "successes", "rate",
                                                  "wilson_lo", "wilson_hi", "gained_vs_reference",
                                                  "lost_vs_reference",
                                                  "mcnemar_p_vs_reference"], rows)
        atomic.write_figure(stage / "ablation.png", ablation_figure(doc))
        if trace:
            atomic.write_csv(stage / "trace.csv", ["game", "arm", "step", "quantity", "mean",
                                                   "median"], trace_rows(doc))
        atomic.write_json(stage / "ablation.json", doc)
    return doc


def trace_rows(doc: Dict) -> List[List]:
    """``trace.csv``: one row per game, arm, step and traced quantity."""
    rows = []
    for g, arms in doc["games"].items():
        for arm, e in arms.items():
            for key, t in e.get("trace", {}).items():
                rows += [[g, arm, n, key, m, md] for n, (m, md) in
                         enumerate(zip(t["mean"], t["median"]))]
    return rows


def format_table(doc: Dict) -> str:
    """Markdown table of success rates with Wilson CIs and McNemar p-values."""
    games = list(doc["games"])
    arms = list(doc["games"][games[0]])
    lines = ["| arm | " + " | ".join(games) + " |", "|---|" + "---|" * len(games)]
    for arm in arms:
        cells = []
        for g in games:
            e = doc["games"][g].get(arm)
            if e is None:
                cells.append("")
                continue
            lo, hi = e["wilson95"]
            cell = f"{100 * e['rate']:.0f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
            if "vs_reference" in e:
                cell += f" (p={e['vs_reference']['mcnemar_p']:.2g})"
            cells.append(cell)
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    repeated = [g for g in games if "reciprocates" in next(iter(doc["games"][g].values()))]
    if repeated:
        lines += ["", "| arm | game | reward/step median [IQR] | seeds with a tit-for-tat-like "
                  "player (one / both) |", "|---|---|---|---|"]
        for g in repeated:
            for arm, e in doc["games"][g].items():
                r = np.array([np.nan if v is None else v for v in e["reward_per_step"]])
                q = np.nanpercentile(r, [25, 50, 75]) if np.isfinite(r).any() else [np.nan] * 3
                rec = np.array(e["reciprocates"], dtype=bool).reshape(-1, 2)
                lines.append(f"| {arm} | {g} | {q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}] | "
                             f"{rec.any(1).mean():.0%} / {rec.all(1).mean():.0%} |")
    return "\n".join(lines)


def ablation_figure(doc: Dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = list(doc["games"])
    arms = list(doc["games"][games[0]])
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(games) * len(arms) / 3, 3.6))
    width = 0.8 / len(arms)
    x = np.arange(len(games))
    for k, arm in enumerate(arms):
        rates = np.array([doc["games"][g][arm]["rate"] for g in games])
        lo = np.array([doc["games"][g][arm]["wilson95"][0] for g in games])
        hi = np.array([doc["games"][g][arm]["wilson95"][1] for g in games])
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, 100 * rates, width, label=arm,
               yerr=[100 * (rates - lo), 100 * (hi - rates)], capsize=3)
    ax.set_xticks(x, games)
    ax.set_ylabel("success rate (%) with Wilson 95% CI")
    ax.set_title(f"Component ablation, {doc['seeds']} paired seeds")
    ax.legend(fontsize=8)
    return fig
