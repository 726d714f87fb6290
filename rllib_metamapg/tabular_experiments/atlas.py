"""Alignment atlas: where the paper's condition mu_M > 0 holds, and whether it predicts
the peer term's basin gain.

For every game (Stag Hunt with the temptation payoff swept, and the 21 no-conflict
games) and entropy temperature tau, at the target equilibrium phi*_tau (action 0 for
every player; Newton on the tau-regularised PG field):

* ``mu = -lambda_max(sym(Dv))`` and ``mu_M`` for M = M_peer, M_own, M_own + M_peer
  (exact Jacobians, float64);
* the certified radii ``rho_0 = mu / 2L`` and ``rho_lambda = (mu + lambda mu_M) / 2L``
  with L the local Lipschitz estimate of ``D(v + lambda M_peer)`` on a ball;
* once per game (it does not depend on tau): the basin gain of the peer arm (the
  ``atlas`` arm in the registry, ``peer_only``) over PG
  (fraction of a grid of initial probabilities, exact mode) and the paper's cosine
  proxy (mean cosine of the first-update peer correction with the direction to the
  target corner).

``precision_study`` recomputes mu_M(peer) at one point in float32 and float64, with
the exact Jacobian and with central finite differences of several step sizes, and
reports how far phi* is from saturation, so the sign of a tiny mu_M is shown rather
than asserted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from rllib_metamapg import atomic
from rllib_metamapg.registry import experiment_arms, get_arm, reference_arm
from rllib_metamapg.tabular.equilibria import (correction_field, drift_constant,
                                               jacobian_lipschitz, shaped_field, solve_zero)
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular_experiments.alignment import cosine_map
from rllib_metamapg.tabular_experiments.basin import initial_theta, run_basin
from rllib_metamapg.tabular.games import get_game, symmetric_two_player
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.settings import LearningSettings
from rllib_metamapg.tabular.values import GameValues

TAUS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.8)
TEMPTATIONS = (2.5, 3.0, 3.5)  # Stag Hunt [[4, 0], [T, 2]]: (stag, stag) stays a NE


def atlas_games(temptations: Sequence[float] = TEMPTATIONS) -> List:
    games = [symmetric_two_player(f"stag_hunt_T{t:g}", [[4, 0], [t, 2]], ["stag", "hare"])
             for t in temptations]
    return games + [get_game(f"no_conflict_{k}") for k in range(1, 22)]


def _engine(game, tau: float, dtype=torch.float64) -> ExactEngine:
    policy = TabularPolicy.for_game(game)
    return ExactEngine(GameValues(game, policy, tau, dtype=dtype))


# Newton starts, p(action 0) of both players.  The target equilibrium is the converged
# zero with every player's p(action 0) highest (a start can also land on the mixed
# saddle between the basins, which is not the payoff-dominant equilibrium).
STARTS = (0.99, 0.95, 0.8, 0.65)


def target_equilibrium(engine, v, starts: Sequence[float] = STARTS):
    """The interior zero of ``v`` nearest the all-action-0 corner, or ``(None, None)``
    (it can lie beyond the logit box |theta| <= 20 at small tau, or cease to exist at
    high tau or temptation: Newton then runs to the box or to another zero)."""
    best = (None, None)
    for p in starts:
        # Newton converges in < 20 steps when it converges; a start that runs to the box
        # would otherwise spend 200 Jacobians there.
        zero = solve_zero(v, initial_theta(engine.values.policy, [p])[0], max_iter=40)
        probs = [float(engine.values.policy.probs(zero.theta, i)[0, 0]) for i in range(2)]
        if zero.converged and min(probs) > 0.5 and (best[1] is None
                                                    or min(probs) > min(best[1]) + 1e-9):
            best = (zero, probs)
    return best


def fd_drift(field, theta: torch.Tensor, h: float) -> float:
    """``-lambda_max(sym(DM))`` with the Jacobian from central differences of step h."""
    eye = torch.eye(theta.shape[0], dtype=theta.dtype)
    j = torch.stack([(field(theta + h * e) - field(theta - h * e)) / (2 * h) for e in eye], 1)
    return float(-torch.linalg.eigvalsh(0.5 * (j + j.T)).max())


def geometry(game, tau: float, settings: LearningSettings, lam: float, radius: float,
             samples: int, seed: int) -> Dict:
    """mu, mu_M and the radii at the target equilibrium of ``game`` at temperature tau.

    ``sign_stable``: mu_M(peer) from exact Jacobians and from finite differences
    (h = 1e-4) have the same sign -- near saturation the magnitudes shrink toward
    rounding, and a sign there is not evidence either way."""
    engine = _engine(game, tau)
    form, eta, length = settings.correction_form, settings.inner_lr, settings.unroll_length
    v = shaped_field(engine, form, eta, length, 0.0, 0.0)
    zero, probs = target_equilibrium(engine, v)
    if zero is None:
        return {"tau": tau, "exists": False}
    phi = zero.theta
    mu = drift_constant(v, phi)
    if mu <= 0:
        # A strict equilibrium is stable under PG (mu > 0); a zero with mu <= 0 is the
        # saddle between the basins, found when the target lies beyond the logit box.
        return {"tau": tau, "exists": False, "saddle_only": True}
    peer = correction_field(engine, form, eta, length, "peer")
    mu_m = {k: drift_constant(correction_field(engine, form, eta, length, k), phi)
            for k in ("peer", "own", "both")}
    fd = fd_drift(peer, phi, 1e-4)
    gen = torch.Generator().manual_seed(seed)
    lip = jacobian_lipschitz(shaped_field(engine, form, eta, length, 0.0, lam), phi, radius,
                             samples, gen)
    return {"tau": tau, "exists": True, "phi_star_probs": probs,
            "max_logit": float(phi.abs().max()), "mu": mu, "mu_M_peer": mu_m["peer"],
            "mu_M_peer_fd": fd, "sign_stable": bool(np.sign(fd) == np.sign(mu_m["peer"])),
            "mu_M_own": mu_m["own"], "mu_M_both": mu_m["both"], "lipschitz": lip,
            "rho_0": mu / (2 * lip) if lip > 0 else None,
            "rho_lambda": (mu + lam * mu_m["peer"]) / (2 * lip) if lip > 0 else None}


def basin_gain(game, settings: LearningSettings, grid: int, threshold: float) -> Dict:
    """Fraction of grid cells the peer arm gains (and loses) over PG, exact mode."""
    probs = np.linspace(0.05, 0.95, grid)
    exact = dataclasses.replace(settings, mode="exact")
    arm = experiment_arms("atlas")[-1]  # the peer arm (the registry names it)
    res = run_basin(game, [get_arm(arm)], exact, probs, threshold)
    ref, peer = res.success[res.arms.index(reference_arm())], res.success[res.arms.index(arm)]
    cos = cosine_map(game, exact, probs)
    return {"pg_fraction": float(ref.mean()), "peer_fraction": float(peer.mean()),
            "gain": float(peer.mean() - ref.mean()), "gained": int((peer & ~ref).sum()),
            "lost": int((~peer & ref).sum()), "cosine_mean": float(cos.mean())}


def precision_study(game, tau: float, settings: LearningSettings,
                    steps: Sequence[float] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)) -> Dict:
    """mu_M(peer) at phi*_tau by exact Jacobians (float64, float32) and by central
    finite differences of M_peer with each step size (float64)."""
    form, eta, length = settings.correction_form, settings.inner_lr, settings.unroll_length
    engine = _engine(game, tau)
    v = shaped_field(engine, form, eta, length, 0.0, 0.0)
    zero = solve_zero(v, initial_theta(engine.values.policy, [0.95])[0], tol=1e-13)
    phi = zero.theta  # Stag Hunt at tau = 0.2 converges from 0.95 (p* = 0.9925)
    m = correction_field(engine, form, eta, length, "peer")
    out = {"tau": tau, "phi_star": phi.tolist(), "residual": zero.residual,
           "mu_M_peer_exact64": drift_constant(m, phi),
           "mu": drift_constant(v, phi), "finite_differences": []}
    e32 = _engine(game, tau, torch.float32)
    m32 = correction_field(e32, form, eta, length, "peer")
    out["mu_M_peer_exact32"] = drift_constant(m32, phi.to(torch.float32))
    for h in steps:
        out["finite_differences"].append({"h": h, "mu_M_peer": fd_drift(m, phi, h)})
    sym = 0.5 * (torch.func.jacfwd(m)(phi) + torch.func.jacfwd(m)(phi).T)
    out["eigenvalues_sym_DM_peer"] = torch.linalg.eigvalsh(sym).tolist()
    return out


def check(taus: Sequence[float], grid: int, samples: int, max_games) -> None:
    if not taus or any(not (np.isfinite(t) and t > 0) for t in taus):
        raise ValueError(f"--taus={list(taus)} must be finite numbers > 0 (pure equilibria "
                         "of logit policies sit at infinity, where mu and mu_M are 0).")
    if not isinstance(grid, int) or grid < 2:
        raise ValueError(f"--grid={grid!r} must be an integer >= 2.")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"--lipschitz-samples={samples!r} must be an integer >= 1.")
    if max_games is not None and (not isinstance(max_games, int) or max_games < 1):
        raise ValueError(f"--max-games={max_games!r} must be an integer >= 1.")


def run_atlas(settings: LearningSettings, taus: Sequence[float], grid: int, threshold: float,
              lam: float, radius: float, samples: int, seed: int, out: Path,
              progress=None, max_games=None) -> Dict:
    check(taus, grid, samples, max_games)
    games = atlas_games()[:max_games]
    rows, gains = [], {}
    for k, game in enumerate(games):
        gains[game.name] = basin_gain(game, settings, grid, threshold)
        for tau in taus:
            rows.append(dict(game=game.name, **geometry(game, tau, settings, lam, radius,
                                                          samples, seed)))
        if progress is not None:
            progress(k + 1, len(games))
    doc = {"experiment": "alignment_atlas", "settings": settings.record(), "taus": list(taus),
           "lambda": lam, "grid": grid, "threshold": threshold, "rows": rows,
           "basin": gains,
           "precision_stag_hunt": precision_study(get_game("stag_hunt"), 0.2, settings),
           "tracking": tracking(rows, gains, taus)}
    write_atlas(doc, out)
    return doc


def _spearman(x, y):
    """Rank correlation, or None where it is undefined (fewer than 3 games, or ties)."""
    if len(x) < 3:
        return None
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if np.std(rx) == 0 or np.std(ry) == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def tracking(rows: List[Dict], gains: Dict, taus: Sequence[float]) -> Dict:
    """Spearman rank correlation over games of the basin gain with mu_M(peer) (per tau)
    and with the cosine proxy."""
    names = list(gains)
    gain = [gains[n]["gain"] for n in names]
    out = {"gain_vs_cosine": _spearman(gain, [gains[n]["cosine_mean"] for n in names])}
    for tau in taus:
        mu_m = {r["game"]: r["mu_M_peer"] for r in rows if r["tau"] == tau and r["exists"]}
        have = [n for n in names if n in mu_m]
        out[f"gain_vs_mu_M_peer_tau{tau:g}"] = _spearman([gains[n]["gain"] for n in have],
                                                         [mu_m[n] for n in have])
        out[f"mu_M_peer_positive_tau{tau:g}"] = [int(sum(mu_m[n] > 0 for n in have)),
                                                len(have)]
    return out


def format_table(doc: Dict) -> str:
    taus = doc["taus"]
    lines = ["| game | basin gain (peer - PG) | cosine | " + " | ".join(
        f"mu_M(peer) tau={t:g}" for t in taus) + " |", "|---|---|---|" + "---|" * len(taus)]
    by = {(r["game"], r["tau"]): r for r in doc["rows"]}

    def cell(r):
        if not r["exists"]:
            return "no target eq."
        return f"{r['mu_M_peer']:.3g}" + ("" if r["sign_stable"] else " (sign unstable)")

    for name, g in doc["basin"].items():
        cells = [cell(by[(name, t)]) for t in taus]
        lines.append(f"| {name} | {g['gain']:+.3f} | {g['cosine_mean']:.3f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def write_atlas(doc: Dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, taus = list(doc["basin"]), doc["taus"]
    by = {(r["game"], r["tau"]): r for r in doc["rows"]}
    mat = np.array([[by[(n, t)].get("mu_M_peer", np.nan) for t in taus] for n in names])
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.28 * len(names) + 1.5), layout="constrained")
    lim = float(np.nanmax(np.abs(mat))) if np.isfinite(mat).any() else 1.0
    im = axes[0].imshow(np.sign(mat) * np.abs(mat) ** 0.5, cmap="RdBu", aspect="auto",
                        vmin=-lim ** 0.5, vmax=lim ** 0.5)
    axes[0].set_xticks(range(len(taus)), [f"{t:g}" for t in taus])
    axes[0].set_yticks(range(len(names)), names, fontsize=7)
    axes[0].set_xlabel("tau")
    axes[0].set_title("sign(mu_M peer) sqrt|mu_M| (blue: condition holds)")
    fig.colorbar(im, ax=axes[0], shrink=0.6)
    gain = [doc["basin"][n]["gain"] for n in names]
    mid = taus[len(taus) // 2]
    axes[1].scatter([by[(n, mid)].get("mu_M_peer", np.nan) for n in names], gain)
    axes[1].set_xlabel(f"mu_M(peer) at tau={mid:g}")
    axes[1].set_ylabel("basin gain of peer_only over PG")
    axes[1].axvline(0, color="k", lw=0.5)
    track = doc["tracking"]
    axes[1].set_title(f"Spearman: mu_M {_fmt(track[f'gain_vs_mu_M_peer_tau{mid:g}'])}, "
                      f"cosine {_fmt(track['gain_vs_cosine'])}")
    keys = ("mu", "mu_M_peer", "mu_M_peer_fd", "mu_M_own", "mu_M_both", "rho_0", "rho_lambda")
    rows = [[r["game"], r["tau"], int(r["exists"])] + [r.get(k, "") for k in keys]
            + [r.get("sign_stable", ""), r["phi_star_probs"][0] if r["exists"] else ""]
            for r in doc["rows"]]
    with atomic.file_set(Path(out)) as stage:
        atomic.write_csv(stage / "atlas.csv", ["game", "tau", "target_eq_exists", *keys,
                                               "sign_stable", "p1_star"], rows)
        atomic.write_text(stage / "atlas.md", format_table(doc) + "\n")
        atomic.write_figure(stage / "atlas.png", fig)
        atomic.write_json(stage / "atlas.json", doc)
