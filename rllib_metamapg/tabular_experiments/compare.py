"""Every method, arm and sampler on the same paired seeds over a suite of game families.

Each game of the suite (:mod:`.suite`) runs every arm from the same initial
parameters: seed ``s`` draws one ``theta ~ N(0, init_std^2)`` shared by every arm of
every method (the ablation's :func:`~.ablation.simulate_paired`, so a game's rows
equal ``metamapg tabular ablation``'s for the same settings).  The Stag Hunt basin
family runs :func:`~.basin.run_basin` over a grid of initial probabilities (its rows
equal ``metamapg tabular basin``'s).  Compositions (``peer_only+ma_props``) are arms:
the learner's batches are drawn by the sampler (normal-form games; ``n/a`` on the
IPD).  MA-PROPS's own setting -- independent PPO with each sampler on the 21
no-conflict games, ``metamapg tabular samplers`` -- is a table of its own.

Per family and arm: success rate over (game, seed) pairs with a Wilson 95% CI, an
exact McNemar test against the reference arm on the same pairs, mean final welfare
(the players' summed values), and mean steps to entry (the step from which success
holds to the end, over the successful pairs).  Finished games are cached under
``OUT/.cache``; the output set is written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from rllib_metamapg import atomic
from rllib_metamapg.registry import ArmSpec, reference_arm
from rllib_metamapg.stats import mcnemar_paired, vs_reference_cell, wilson_ci
from rllib_metamapg.tabular_experiments import suite as suite_mod
from rllib_metamapg.tabular_experiments.ablation import simulate_paired
from rllib_metamapg.tabular_experiments.basin import grid_values, run_basin
from rllib_metamapg.tabular.settings import LearningSettings

# The independent-PPO learner's samplers in MA-PROPS's own table.
OWN_SETTING_SAMPLERS = ("on_policy", "ma_props")


@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """What the comparison runs besides the learning settings."""

    families: Sequence[str]
    seeds: int
    init_std: float
    threshold: float
    seed: int
    grid: int
    grid_low: float
    grid_high: float
    random_games: int
    own_setting_seeds: int  # MA-PROPS's own table (0: skip it)
    own_setting_steps: Optional[int] = None  # its env steps (None: 100 target updates)


def _arms_for(sg, arms: Sequence[ArmSpec]) -> List[ArmSpec]:
    """The arms that run on this game: samplers draw joint actions of one-shot games."""
    return [a for a in arms if a.sampler == "on_policy" or sg.game.num_states == 1]


def run_suite_game(sg, arms: Sequence[ArmSpec], settings: LearningSettings,
                   opts: CompareOptions, progress=None) -> Dict:
    """One game: per arm and seed, success, final welfare and entry step."""
    import torch

    from rllib_metamapg.tabular.values import GameValues

    settings = dataclasses.replace(settings, parameterization=sg.parameterization)
    run_arms = _arms_for(sg, arms)
    res = simulate_paired(sg.game, run_arms, settings, opts.seeds, opts.init_std, opts.seed,
                          progress, record=True)
    ok_hist = suite_mod.success_history(res.history, res.policy, sg, opts.threshold)
    entry = suite_mod.entry_steps(ok_hist.numpy())
    values = GameValues(sg.game, res.policy, 0.0, dtype=torch.float64)
    welfare = values(res.theta.to(torch.float64)).sum(-1).numpy()  # (A, R)
    out = {}
    for k, name in enumerate(res.arms):
        out[name] = {"success": ok_hist[-1, k].numpy().astype(int).tolist(),
                     "welfare": [float(x) for x in welfare[k]],
                     "entry_step": entry[k].astype(int).tolist()}
    return {"game": sg.name, "arms": out}


def run_basin_family(arms: Sequence[ArmSpec], settings: LearningSettings,
                     opts: CompareOptions, progress=None) -> Dict:
    """Stag Hunt from every grid cell: success per cell (welfare/entry not recorded)."""
    from rllib_metamapg.tabular.games import get_game

    probs = grid_values(opts.grid, opts.grid_low, opts.grid_high)
    res = run_basin(get_game("stag_hunt"), list(arms), settings, probs, opts.threshold,
                    opts.seed, progress=progress)
    return {"game": "stag_hunt_basin",
            "arms": {a: {"success": res.success[k].reshape(-1).astype(int).tolist()}
                     for k, a in enumerate(res.arms)}}


def _key(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached(out: Path, name: str, key: str, compute: Callable[[], Dict], log) -> Dict:
    path = out / ".cache" / f"compare-{name}-{key}.json"
    if path.exists():
        log(f"[compare] {name}: reusing finished result {path.name}")
        return json.loads(path.read_text())
    result = compute()
    atomic.write_json(path, result)
    return result


def summarise_family(games: List[Dict], arms: Sequence[str]) -> Dict[str, Dict]:
    """Per arm over the family's (game, seed) pairs, with McNemar against the reference."""
    ref = reference_arm()
    out = {}
    for arm in arms:
        ok, ref_ok, welfare, entry, n_games = [], [], [], [], 0
        for g in games:
            e = g["arms"].get(arm)
            if e is None:
                continue
            n_games += 1
            ok += e["success"]
            ref_ok += g["arms"][ref]["success"] if ref in g["arms"] else []
            welfare += e.get("welfare", [])
            entry += [s for s, hit in zip(e.get("entry_step", []), e["success"]) if hit]
        if not n_games:
            out[arm] = None  # not applicable (a sampler on a repeated game)
            continue
        s, n = int(np.sum(ok)), len(ok)
        lo, hi = wilson_ci(s, n)
        row = {"games": n_games, "n": n, "successes": s, "rate": s / n, "wilson95": [lo, hi],
               "mean_welfare": float(np.mean(welfare)) if welfare else None,
               "mean_entry_step": float(np.mean(entry)) if entry else None}
        if arm != ref and len(ref_ok) == n:
            t = mcnemar_paired(ref_ok, ok)
            row["vs_reference"] = {"arm": ref, "gained": t["b_only"], "lost": t["a_only"],
                                   "mcnemar_p": t["p_value"]}
        out[arm] = row
    return out


def run_compare(arms: Sequence[ArmSpec], settings: LearningSettings, settings_record: Dict,
                opts: CompareOptions, out: Path, progress=None, log=print) -> Dict:
    """Runs (or resumes) every family and writes ``compare.{json,csv,md,png}``."""
    out = Path(out)
    names = [a.name for a in arms]
    families: Dict[str, Dict] = {}
    for family in suite_mod.check_families(opts.families):
        games = []
        if family == "stag_hunt_basin":
            key = _key(names, settings_record, dataclasses.asdict(opts), family)
            games.append(_cached(out, family, key, lambda: run_basin_family(
                arms, settings, opts, progress), log))
        else:
            for sg in suite_mod.family_games(family, opts.random_games):
                key = _key(names, settings_record, dataclasses.asdict(opts), sg.describe())
                log(f"[compare] {family}: {sg.name}, {len(_arms_for(sg, arms))} arms x "
                    f"{opts.seeds} paired seeds")
                games.append(_cached(out, sg.name, key, lambda sg=sg: run_suite_game(
                    sg, arms, settings, opts, progress), log))
        families[family] = {"description": suite_mod.FAMILIES[family],
                            "summary": summarise_family(games, names),
                            "games": {g["game"]: g["arms"] for g in games}}
    doc = {"experiment": "compare", "arms": names, "reference": reference_arm(),
           "settings": settings_record, "options": dataclasses.asdict(opts),
           "families": families}
    if opts.own_setting_seeds:
        doc["ma_props_own_setting"] = _own_setting(opts, out, log)
    write_compare(doc, out)
    return doc


def _own_setting(opts: CompareOptions, out: Path, log) -> Dict:
    """MA-PROPS's own table: ``metamapg tabular samplers`` on the 21 no-conflict games."""
    from rllib_metamapg.tabular_experiments.sampling import run_samplers

    games = [f"no_conflict_{k}" for k in range(1, 22)]
    key = _key(games, opts.own_setting_seeds, opts.own_setting_steps, OWN_SETTING_SAMPLERS)
    log(f"[compare] MA-PROPS's own setting: independent PPO, {opts.own_setting_seeds} seeds")
    return _cached(out, "ma_props_own_setting", key, lambda: run_samplers(
        games, opts.own_setting_seeds, opts.own_setting_steps, OWN_SETTING_SAMPLERS), log)


def format_tables(doc: Dict) -> str:
    """Markdown: one table per family, then MA-PROPS's own-setting row."""
    parts = []
    for family, fam in doc["families"].items():
        parts.append(f"### {family}: {fam['description']}\n")
        parts.append("| arm | success [Wilson 95%] | vs " + doc["reference"]
                     + " (+/-, McNemar p) | mean welfare | mean steps to entry |")
        parts.append("|---|---|---|---|---|")
        for arm in doc["arms"]:
            row = fam["summary"].get(arm)
            if row is None:
                parts.append(f"| {arm} | n/a | | | |")
                continue
            vs_cell = vs_reference_cell(row.get("vs_reference"))
            w = row["mean_welfare"]
            e = row["mean_entry_step"]
            parts.append(f"| {arm} | {100 * row['rate']:.1f}% [{100 * row['wilson95'][0]:.1f}"
                         f", {100 * row['wilson95'][1]:.1f}] ({row['successes']}/{row['n']})"
                         f" | {vs_cell} | {'' if w is None else f'{w:.3f}'} | "
                         f"{'' if e is None else f'{e:.1f}'} |")
        parts.append("")
    own = doc.get("ma_props_own_setting")
    if own:
        parts.append("### MA-PROPS's own setting: independent PPO on the 21 no-conflict "
                     "games\n")
        parts.append("| sampler | success over games x seeds |")
        parts.append("|---|---|")
        for s in own["samplers"]:
            rates = [own["games"][g][s]["rate"] for g in own["games"]]
            parts.append(f"| {s} | {100 * float(np.mean(rates)):.1f}% |")
    return "\n".join(parts)


def write_compare(doc: Dict, out: Path) -> None:
    rows = []
    for family, fam in doc["families"].items():
        for arm in doc["arms"]:
            r = fam["summary"].get(arm)
            if r is None:
                rows.append([family, arm, "", "", "", "", "", "", "", "", ""])
                continue
            vs = r.get("vs_reference", {})
            rows.append([family, arm, r["n"], r["successes"], f"{r['rate']:.4f}",
                         f"{r['wilson95'][0]:.4f}", f"{r['wilson95'][1]:.4f}",
                         "" if not vs else f"{vs['mcnemar_p']:.4g}",
                         "" if r["mean_welfare"] is None else f"{r['mean_welfare']:.4f}",
                         "" if r["mean_entry_step"] is None else f"{r['mean_entry_step']:.2f}",
                         r["games"]])
    with atomic.file_set(Path(out)) as stage:  # the set appears whole or not at all
        atomic.write_csv(stage / "compare.csv",
                         ["family", "arm", "n", "successes", "rate", "wilson_lo", "wilson_hi",
                          "mcnemar_p_vs_reference", "mean_welfare", "mean_entry_step",
                          "games"], rows)
        atomic.write_text(stage / "compare.md", format_tables(doc) + "\n")
        atomic.write_figure(stage / "compare.png", heat_map(doc))
        atomic.write_json(stage / "compare.json", doc)


def heat_map(doc: Dict):
    """Success rate, arms x families; n/a cells grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams, arms = list(doc["families"]), doc["arms"]
    rates = np.full((len(arms), len(fams)), np.nan)
    for j, f in enumerate(fams):
        for i, a in enumerate(arms):
            r = doc["families"][f]["summary"].get(a)
            if r is not None:
                rates[i, j] = r["rate"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(fams), 1.0 + 0.42 * len(arms)),
                           layout="constrained")
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#dddddd")
    im = ax.imshow(np.ma.masked_invalid(rates), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(len(arms)):
        for j in range(len(fams)):
            txt = "n/a" if np.isnan(rates[i, j]) else f"{100 * rates[i, j]:.0f}"
            ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                    color="k" if np.isnan(rates[i, j]) or rates[i, j] > 0.5 else "w")
    ax.set_xticks(range(len(fams)), fams, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(arms)), arms, fontsize=8)
    ax.set_title(f"success rate (%), {doc['options']['seeds']} paired seeds per game")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


# The CI-sized run (``--quick``): every family, method, arm and no-conflict game, with
# fewer seeds, cells and random games, 80 outer steps (most seeds have entered by then)
# and 20 PPO updates in MA-PROPS's own table; about 40 s on 2 cores.
QUICK = dict(seeds=6, grid=4, random_games=2, own_setting_seeds=4, own_setting_steps=400)
QUICK_STEPS = 80


def quick_options(opts: CompareOptions) -> CompareOptions:
    return dataclasses.replace(opts, **{k: min(v, getattr(opts, k) or v)
                                        for k, v in QUICK.items()})


__all__ = ["CompareOptions", "format_tables", "run_compare", "quick_options",
           "summarise_family", "run_suite_game"]
