"""Alignment of the peer correction, and the local geometry of Proposition 2.

Part 1 (the paper's directional proxy): cosine between the exact first-update
peer correction at each grid cell and the direction to the all-cooperate
corner ``(+clip, ..., +clip)`` of the clipped logit box, over the whole grid and
on the cells the peer-aware arm gains over ``pg`` in a basin map.

Part 2 (what the paper states but never measures): at the target equilibrium
phi* of the entropy-regularised game (``eq_temperature > 0`` makes it
interior), the drift constants ``mu = -lambda_max(sym(Dv))`` and
``mu_M = -lambda_max(sym(DM))`` for M = M_peer, M_own and M_own + M_peer, an
estimate of the local Lipschitz constant L of ``DF_lambda`` (largest observed
ratio on a ball; a lower estimate), the certified radii
``rho_0 = mu / 2L`` and ``rho_lambda = (mu + lambda mu_M) / 2L`` with
``F_lambda = v + lambda M_peer``, and the fixed-point shift
``||phi*_lambda - phi*||`` against lambda, next to its first-order prediction
``lambda ||A^-1 M(phi*)||`` (A = Dv(phi*), Eq. 31).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch
from torch.func import jacfwd

from rllib_metamapg import atomic
from rllib_metamapg.tabular_experiments import defaults
from rllib_metamapg.registry import ArmSpec, experiment_arms, get_arm, reference_arm
from rllib_metamapg.tabular.dynamics import LearningSettings, SettingsError
from rllib_metamapg.tabular.equilibria import (correction_field, drift_constant,
                                               jacobian_lipschitz, shaped_field, solve_zero)
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular_experiments.basin import initial_theta, run_basin
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.values import GameValues

DEFAULTS = defaults.ALIGNMENT


def cosine_map(game, settings: LearningSettings, probs: np.ndarray) -> np.ndarray:
    """``(G, G)`` cosine of the exact peer correction with the direction to (C, ..., C)."""
    policy = TabularPolicy.for_game(game, settings.parameterization)
    engine = ExactEngine(GameValues(game, policy, settings.temperature))
    theta = initial_theta(policy, probs)
    _, peer = engine.corrections(theta, settings.inner_lr, settings.correction_form,
                                 settings.unroll_length)
    corner = initial_theta(policy, [1.0 - 1e-12])[0].clamp(-settings.logit_bound or 8.0,
                                                          settings.logit_bound or 8.0)
    direction = corner - theta
    cos = torch.nn.functional.cosine_similarity(peer, direction, dim=-1)
    g = len(probs)
    return cos.view(g, g).numpy()


def local_geometry(game, settings: LearningSettings, eq_temperature: float,
                   lambdas: Sequence[float], radius: float, samples: int,
                   target_prob: float, seed: int) -> Dict:
    if not eq_temperature > 0:
        raise SettingsError(f"eq_temperature={eq_temperature} must be > 0: pure equilibria "
                            "of logit policies sit at infinity, where mu and mu_M are 0.")
    policy = TabularPolicy.for_game(game, settings.parameterization)
    engine = ExactEngine(GameValues(game, policy, eq_temperature))
    form, eta, L = settings.correction_form, settings.inner_lr, settings.unroll_length
    v = shaped_field(engine, form, eta, L, 0.0, 0.0)
    start = initial_theta(policy, [target_prob])[0]
    zero = solve_zero(v, start)
    phi = zero.theta
    mu = drift_constant(v, phi)
    mu_m = {k: drift_constant(correction_field(engine, form, eta, L, k), phi)
            for k in ("peer", "own", "both")}
    m_peer = correction_field(engine, form, eta, L, "peer")(phi)
    a = jacfwd(v)(phi)
    first_order = torch.linalg.solve(a, m_peer).norm()
    gen = torch.Generator().manual_seed(int(seed))
    lam_max = max(lambdas)
    lip = max(jacobian_lipschitz(shaped_field(engine, form, eta, L, 0.0, lam), phi, radius,
                                 samples, gen) for lam in sorted({0.0, lam_max}))
    rows, prev = [], phi
    for lam in lambdas:
        z = solve_zero(shaped_field(engine, form, eta, L, 0.0, lam), prev)
        prev = z.theta
        rows.append({"lambda": lam, "shift": float((z.theta - phi).norm()),
                     "shift_first_order": float(lam * first_order),
                     "converged": z.converged,
                     "rho_lambda": (mu + lam * mu_m["peer"]) / (2 * lip) if lip > 0 else None})
    return {
        "eq_temperature": eq_temperature, "phi_star": phi.tolist(),
        "phi_star_converged": zero.converged, "phi_star_residual": zero.residual,
        "target_probs": [float(p) for p in _coop_probs(policy, phi)],
        "mu": mu, "sos": mu > 0, "mu_M": {"peer": mu_m["peer"], "own": mu_m["own"],
                                          "own_plus_peer": mu_m["both"]},
        "alignment_condition_holds": mu_m["peer"] > 0,
        "lipschitz_estimate": lip, "lipschitz_radius": radius,
        "lipschitz_samples": samples,
        "rho_0": mu / (2 * lip) if lip > 0 else None, "by_lambda": rows,
        "field": "F_lambda = v + lambda * M_peer (peer-only shaping)",
    }


def _coop_probs(policy, theta):
    return [float(policy.probs(theta, i)[0, 0]) for i in range(policy.num_players)]


def run_alignment(game, arms: Sequence[ArmSpec], settings: LearningSettings,
                  settings_record: Dict, probs: np.ndarray, threshold: float, seed: int,
                  eq_temperature: float, lambdas: Sequence[float], radius: float,
                  samples: int, target_prob: float, out: Path, progress=None) -> Dict:
    if not lambdas or any((not np.isfinite(x)) or x < 0 for x in lambdas):
        raise SettingsError(f"lambdas={list(lambdas)} must be finite numbers >= 0.")
    if not radius > 0:
        raise SettingsError(f"radius={radius} must be > 0.")
    if not 0.5 < target_prob < 1.0:
        raise SettingsError(f"target_prob={target_prob} must lie in (0.5, 1).")
    geometry = local_geometry(game, settings, eq_temperature, lambdas, radius, samples,
                              target_prob, seed)
    cos = cosine_map(game, settings, probs)
    shaped_arms = [a for a in arms if a.name != reference_arm()]
    arm = shaped_arms[0] if shaped_arms else get_arm(experiment_arms("alignment")[0])
    basin = run_basin(game, [arm], settings, probs, threshold, seed, progress=progress)
    ref, shaped = basin.success[0], basin.success[1]
    gained, lost = shaped & ~ref, ~shaped & ref
    doc = {
        "experiment": "alignment", "game": game.name, "settings": settings_record,
        "cosine": {"arm": arm.name, "direction": "to the all-action-0 corner of the "
                   "clipped logit box", "mean_grid": float(cos.mean()),
                   "mean_gained": float(cos[gained].mean()) if gained.any() else None,
                   "gained_cells": int(gained.sum()), "lost_cells": int(lost.sum()),
                   "grid": [float(x) for x in probs], "map": cos.tolist()},
        "local_geometry": geometry,
    }
    rows = [[r["lambda"], f"{r['shift']:.6g}", f"{r['shift_first_order']:.6g}",
             "" if r["rho_lambda"] is None else f"{r['rho_lambda']:.6g}"]
            for r in geometry["by_lambda"]]
    with atomic.file_set(out) as stage:  # the set appears whole or not at all
        atomic.write_csv(stage / "alignment.csv", ["lambda", "shift_norm",
                                                   "shift_first_order", "rho_lambda"], rows)
        atomic.write_figure(stage / "alignment.png", _figure(doc, cos, probs, gained))
        atomic.write_json(stage / "alignment.json", doc)
    return doc


def _figure(doc, cos, probs, gained):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    geo = doc["local_geometry"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    h = (probs[-1] - probs[0]) / (2 * (len(probs) - 1))  # cells centred on grid values
    im = axes[0].imshow(cos.T, origin="lower", extent=(probs[0] - h, probs[-1] + h,
                        probs[0] - h, probs[-1] + h), vmin=-1, vmax=1, cmap="RdBu")
    ys, xs = np.nonzero(gained.T)
    axes[0].scatter(probs[xs], probs[ys], s=6, c="k", marker="x", label="gained cells")
    axes[0].set_title(f"cos(peer, to C..C): mean {doc['cosine']['mean_grid']:.2f}")
    axes[0].set_xlabel("p1 at start")
    axes[0].set_ylabel("p2 at start")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    lam = [r["lambda"] for r in geo["by_lambda"]]
    axes[1].plot(lam, [r["shift"] for r in geo["by_lambda"]], "o-", label="Newton")
    axes[1].plot(lam, [r["shift_first_order"] for r in geo["by_lambda"]], "--",
                 label="first order (Eq. 31)")
    axes[1].set_xlabel("lambda")
    axes[1].set_ylabel("||phi*_lambda - phi*||")
    axes[1].legend(fontsize=8)
    axes[1].set_title("fixed-point shift")
    if geo["rho_0"] is not None:
        axes[2].plot(lam, [r["rho_lambda"] for r in geo["by_lambda"]], "o-",
                     label="rho_lambda")
        axes[2].axhline(geo["rho_0"], color="k", ls="--", label="rho_0 (PG)")
        axes[2].legend(fontsize=8)
    axes[2].set_xlabel("lambda")
    axes[2].set_title(f"mu={geo['mu']:.3g}, mu_M(peer)={geo['mu_M']['peer']:.3g}")
    return fig
