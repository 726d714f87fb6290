"""Cooldown: plain PG vs constant shaping vs shape-then-cool.

Constant shaping converges to a zero of ``F = v + own_coef M_own + peer_coef
M_peer`` (the shaped fixed point), displaced by O(lambda) from the original
game's equilibrium; cooling the correction after the handoff removes the shift.
Both fixed points are interior only with an entropy bonus (``temperature > 0``),
so the distances are reported for ``temperature > 0`` and are ``null`` otherwise.

Near an entropy-regularised equilibrium logit PG contracts slowly (drift
constant ~1e-2), far slower than the success-rate horizon, so distances are
measured after a *settle* phase: every run continues noise-free (exact mode)
for ``settle_steps`` more steps under its own arm's step sizes and lambda
schedule.  Success rates are those at the end of the main phase.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch

from rllib_metamapg import atomic, registry
from rllib_metamapg.tabular_experiments import defaults
from rllib_metamapg.registry import ArmSpec
from rllib_metamapg.stats import mcnemar_paired, wilson_ci
from rllib_metamapg.tabular.dynamics import LearningSettings, SettingsError, simulate
from rllib_metamapg.tabular.equilibria import shaped_field, solve_zero
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular_experiments.ablation import paired_init
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.values import GameValues

DEFAULTS = defaults.COOLDOWN


def fixed_points(game, settings: LearningSettings, start: torch.Tensor) -> Dict:
    """Original equilibrium phi* and shaped fixed point phi*_lambda near ``start``."""
    policy = TabularPolicy.for_game(game, settings.parameterization)
    engine = ExactEngine(GameValues(game, policy, settings.temperature))
    form, eta, L = settings.correction_form, settings.inner_lr, settings.unroll_length
    base = solve_zero(shaped_field(engine, form, eta, L, 0.0, 0.0), start)
    shaped = solve_zero(shaped_field(engine, form, eta, L, settings.own_coef,
                                     settings.peer_coef), base.theta)
    return {"phi_star": base, "phi_star_lambda": shaped}


def run_cooldown(game, arms: Sequence[ArmSpec], settings: LearningSettings, settings_record: Dict,
                 seeds: int, init_std: float, threshold: float, seed: int, out: Path,
                 settle_steps: int = 3000, progress=None, settle_progress=None) -> Dict:
    names = [a.name for a in arms]
    handing_off = [a.name for a in arms if a.handoff]
    if settings.schedule.kind == "constant" and handing_off:
        raise SettingsError(f"lambda_schedule='constant' never hands off, so arm(s) "
                            f"{handing_off} would never cool down; choose 'hard' or "
                            "'anneal' for a cooldown.")
    policy = TabularPolicy.for_game(game, settings.parameterization)
    theta0 = paired_init(policy, seeds, init_std, seed)
    res = simulate(game, arms, theta0, settings, seed=seed + 1, progress=progress)
    ok = res.success(threshold).numpy()
    final = res.theta.to(torch.float64)  # (A, R, D)
    doc = {"experiment": "cooldown", "game": game.name, "threshold": threshold,
           "seeds": seeds, "init_std": init_std, "seed": seed, "settings": settings_record,
           "settle_steps": settle_steps, "arms": {}}
    fp = None
    measure = settings.temperature > 0 and ok.any() and settle_steps > 0
    if measure:
        settle = dataclasses.replace(settings, mode="exact", steps=settle_steps,
                                     dtype="float64")
        final = simulate(game, arms, final, settle, start_step=settings.steps,
                         stacked=True, progress=settle_progress).theta
        start = final[torch.as_tensor(ok)].mean(0)
        fp = fixed_points(game, settings, start)
        shift = float((fp["phi_star_lambda"].theta - fp["phi_star"].theta).norm())
        doc["fixed_points"] = {
            "phi_star": fp["phi_star"].theta.tolist(),
            "phi_star_converged": fp["phi_star"].converged,
            "phi_star_lambda": fp["phi_star_lambda"].theta.tolist(),
            "phi_star_lambda_converged": fp["phi_star_lambda"].converged,
            "shift_norm": shift,
            "note": "phi* solves v = 0 and phi*_lambda solves v + own_coef*M_own + "
                    "peer_coef*M_peer = 0 (exact mode, entropy-regularised game), "
                    "both found by Newton's method from the mean successful final iterate; "
                    "distances are taken after the noise-free settle phase.",
        }
    else:
        doc["fixed_points"] = None
        doc["fixed_points_note"] = ("distances need temperature > 0 (pure equilibria sit at "
                                    "infinite logits), settle_steps > 0 and at least one "
                                    "successful run.")
    rows = []
    ref = registry.reference_arm()
    # The paper's rates, where it reports this experiment on this game (Stag Hunt).
    paper = registry.paper_results("cooldown") if game.name == "stag_hunt" else {}
    doc["reference_arm"] = ref if ref in names else None
    for k, name in enumerate(names):
        s = int(ok[k].sum())
        lo, hi = wilson_ci(s, seeds)
        entry = {"n": seeds, "successes": s, "rate": s / seeds, "wilson95": [lo, hi]}
        if name in paper:
            entry["paper_rate"] = paper[name]
        if ref in names and name != ref:  # paired seeds: exact McNemar on the outcomes
            entry["vs_reference"] = _paired(ok[names.index(ref)], ok[k])
        twin = _constant_twin(arms[k], arms)
        if twin is not None:  # shape-then-cool against the same arm never cooled
            entry["vs_constant"] = {"arm": twin, **_paired(ok[names.index(twin)], ok[k])}
        if fp is not None and s > 0:
            th = final[k][torch.as_tensor(ok[k])]
            d0 = (th - fp["phi_star"].theta).norm(dim=-1).numpy()
            d1 = (th - fp["phi_star_lambda"].theta).norm(dim=-1).numpy()
            entry.update({"dist_to_phi_star_mean": float(d0.mean()),
                          "dist_to_phi_star_median": float(np.median(d0)),
                          "dist_to_shaped_mean": float(d1.mean()),
                          "dist_to_shaped_median": float(np.median(d1)),
                          "closer_to": "phi_star" if np.median(d0) < np.median(d1)
                          else "phi_star_lambda"})
        doc["arms"][name] = entry
        rows.append([name, seeds, s, f"{s / seeds:.4f}", f"{lo:.4f}", f"{hi:.4f}",
                     _fmt(entry.get("paper_rate")),
                     _fmt(entry.get("vs_reference", {}).get("mcnemar_p")),
                     _fmt(entry.get("dist_to_phi_star_median")),
                     _fmt(entry.get("dist_to_shaped_median"))])
    with atomic.file_set(out) as stage:  # the set appears whole or not at all
        atomic.write_csv(stage / "cooldown.csv", ["arm", "n", "successes", "rate",
                                                  "wilson_lo", "wilson_hi", "paper_rate",
                                                  "mcnemar_p_vs_reference",
                                                  "median_dist_phi_star",
                                                  "median_dist_shaped"], rows)
        atomic.write_figure(stage / "cooldown.png", _figure(doc, res, settings))
        atomic.write_json(stage / "cooldown.json", doc)
    return doc


def _paired(a, b) -> Dict:
    test = mcnemar_paired(a, b)
    return {"gained": test["b_only"], "lost": test["a_only"], "mcnemar_p": test["p_value"]}


def _constant_twin(arm: ArmSpec, arms: Sequence[ArmSpec]):
    """The arm among ``arms`` that is ``arm`` without its handoff (same method, sampler
    and options but the schedule's), or ``None``."""
    if not arm.handoff:
        return None
    keep = {k: v for k, v in arm.options.items() if k != "cooldown"}
    return next((a.name for a in arms if not a.handoff and a.method == arm.method
                 and a.sampler == arm.sampler
                 and {k: v for k, v in a.options.items() if k != "cooldown"} == keep), None)


def _fmt(x):
    return "" if x is None else f"{x:.4g}"


def _figure(doc: Dict, res, settings: LearningSettings):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    names = list(doc["arms"])
    rates = np.array([doc["arms"][a]["rate"] for a in names])
    lo = np.array([doc["arms"][a]["wilson95"][0] for a in names])
    hi = np.array([doc["arms"][a]["wilson95"][1] for a in names])
    axes[0].bar(names, 100 * rates, yerr=[100 * (rates - lo), 100 * (hi - rates)], capsize=4)
    axes[0].set_ylabel("success rate (%), Wilson 95% CI")
    axes[0].set_title(f"{doc['game']}: success")
    if doc["fixed_points"] is not None:
        d0 = [doc["arms"][a].get("dist_to_phi_star_median", np.nan) for a in names]
        d1 = [doc["arms"][a].get("dist_to_shaped_median", np.nan) for a in names]
        x = np.arange(len(names))
        axes[1].bar(x - 0.2, d0, 0.4, label="to phi* (original game)")
        axes[1].bar(x + 0.2, d1, 0.4, label="to phi*_lambda (shaped)")
        axes[1].set_xticks(x, names)
        axes[1].set_ylabel("median final distance (successful runs)")
        axes[1].set_title(f"fixed-point shift |phi*_l - phi*| = "
                          f"{doc['fixed_points']['shift_norm']:.3f}")
        axes[1].legend(fontsize=8)
    else:
        axes[1].text(0.5, 0.5, "distances need temperature > 0", ha="center", va="center")
        axes[1].set_axis_off()
    return fig
