"""How close the learner's correction estimators come to the exact engine on the IPD.

The set-up of the trajectory-estimator issue: the 12-round IPD, tabular modules,
theta ~ N(0, 0.7^2) per state (one draw, seed 0), inner step 0.5, 30 batches x
2000 episodes, advantages gamma^t G_t (no baseline) or gamma^t (G_t - V_t(s_t))
(the exact state-and-time value as baseline), against
``ExactEngine.corrections(form="unroll")``.  ``compute_corrections`` is the
learner's own function.  The per-step estimator averages over rows, the
trajectory one over episodes; to compare estimators and not normalisations, the
per-step rows use inner step ``eta * T`` and are scaled by ``T`` (its per-episode
equivalent).  Prints a table and writes JSON.

Usage: python benchmarks/ipd_corrections.py [--out benchmarks/results/ipd_corrections.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ipd_samples import IPD, POLICY, Sampler, exact, match, modules, slices  # noqa: E402

from rllib_metamapg import __version__, atomic  # noqa: E402
from rllib_metamapg.metamapg.torch.corrections import compute_corrections  # noqa: E402
from rllib_metamapg.tabular.exact import ExactEngine  # noqa: E402
from rllib_metamapg.tabular.values import GameValues  # noqa: E402

ETA = 0.5


def measure(theta, estimator, baseline, batches, episodes, split=True):
    mods, sampler = modules(theta), Sampler(theta, seed=0, baseline=baseline)
    horizon = IPD.horizon
    eta, scale = (ETA, 1.0) if estimator == "trajectory" else (ETA * horizon, horizon)
    terms = {k: np.zeros((2, 5)) for k in ("pg", "own", "peer")}
    for _ in range(batches):
        data = sampler.batch(episodes)
        for player in range(2):
            agents, layout = slices(mods, data, player)
            c = compute_corrections(agents, None, inner_lr=eta, estimator=estimator,
                                    layout=layout, split=split)
            for k in terms:
                terms[k][player] += scale * getattr(c, k)[0].reshape(-1).numpy() / batches
    return terms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/ipd_corrections.json")
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--episodes", type=int, default=2000)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    theta = np.random.default_rng(0).normal(0.0, 0.7, 10)
    own_ref, peer_ref = exact(theta, ETA)
    field = ExactEngine(GameValues(IPD, POLICY)).field(
        torch.tensor(theta[None], dtype=torch.float64))[0].numpy().reshape(2, 5)
    ref = {"pg": field, "own": own_ref, "peer": peer_ref}
    rows = []
    for baseline in (False, True):
        for estimator in ("per_step", "trajectory"):
            t = time.perf_counter()
            est = measure(theta, estimator, baseline, args.batches, args.episodes)
            row = {"estimator": estimator, "baseline": baseline,
                   "seconds": round(time.perf_counter() - t, 2)}
            for term in ("pg", "own", "peer"):
                for player in range(2):
                    cos, err = match(est[term][player], ref[term][player], 0.0)
                    row[f"{term}_{player}"] = {"cos": round(cos, 3), "rel_error": round(err, 3)}
            rows.append(row)
            cells = "  ".join(f"{k} {v['cos']:+.2f}/{v['rel_error']:.2f}"
                              for k, v in row.items() if isinstance(v, dict))
            print(f"{estimator:<10} baseline={str(baseline):<5} {cells}", flush=True)
    out = {"version": __version__, "theta": theta.round(4).tolist(), "inner_lr": ETA,
           "batches": args.batches, "episodes_per_batch": args.episodes,
           "game": "ipd (12 rounds, discount 0.96)", "reference": "ExactEngine unroll, L=1",
           "cells": "cos / relative error per term and player", "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
