"""Where a training iteration's time goes on the matrix games, and how much of it is ours.

On the neural study's Stag Hunt and IPD settings (studies/neural), one process, one
CPU: the median time of a training iteration (``algo.train()``, evaluation off) of

* RLlib's own PPO with the same settings and one module per agent (RLlib's cost);
* this package's ``ippo`` (PPO through our algorithm, connectors and callbacks);
* this package's ``meta_mapg`` (plus the corrections and the peer-column connector),

in rounds (each algorithm one iteration per round, so a slow spell of the machine hits
all alike).  Then one profiled run of ``meta_mapg`` attributes its iteration to our
entry points (cumulative time of the outermost ``rllib_metamapg`` frames) and to the
rest.  Prints a table and writes JSON.

Usage: python benchmarks/iteration_profile.py [--out benchmarks/results/iteration_profile.json]
       [--rounds 7]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import time
from pathlib import Path

ENVS = ("stag_hunt", "ipd")
ARMS = ("ippo", "meta_mapg")
STUDY = Path(__file__).resolve().parents[1] / "studies" / "neural"


def configs(env: str):
    """``{label: config}``: RLlib's PPO and our arms at the study's settings."""
    from ray.rllib.algorithms.ppo import PPOConfig

    from rllib_metamapg import tuned_examples
    from rllib_metamapg.rllib_base.algorithm import per_agent_wiring
    from rllib_metamapg.rllib_experiments import build_config

    out = {}
    for arm in ARMS:
        _, exp = tuned_examples.experiment(env, arm, folder=STUDY)
        out[arm] = build_config(exp["env"], {**exp["config"], "evaluation_interval": None},
                                "profile", exp["run"])
    ours = out["ippo"]
    base = PPOConfig()
    plain = {k: v for k, v in exp["config"].items() if hasattr(base, k)}
    plain["evaluation_interval"] = None
    ppo = build_config(ours.env, plain, "profile", "PPO")
    wiring = per_agent_wiring(ours.env, ours.env_config)
    out = {"rllib_ppo": ppo.multi_agent(**wiring), **out}
    return out


def median_iterations(cfgs, rounds: int):
    algos = {k: c.build_algo() for k, c in cfgs.items()}
    times = {k: [] for k in algos}
    parts = {k: {"sampling": [], "learner": []} for k in algos}
    try:
        for k, a in algos.items():  # warm-up
            a.train()
        for _ in range(rounds):
            for k, a in algos.items():
                t = time.perf_counter()
                result = a.train()
                times[k].append(time.perf_counter() - t)
                # RLlib's own timers (smoothed over iterations): sampling and learning.
                timers = result.get("timers", {})
                parts[k]["sampling"].append(timers.get("env_runner_sampling_timer"))
                parts[k]["learner"].append(timers.get("learner_update_timer"))
    finally:
        for a in algos.values():
            a.stop()
    split = {k: {p: v[-1] for p, v in d.items()} for k, d in parts.items()}
    return {k: statistics.median(v) for k, v in times.items()}, times, split


def our_share(cfg, iterations: int = 5):
    """Profiled ``meta_mapg`` iterations: ``(total s, own s, {our entry point:
    cumulative s})``.  ``own s`` is the time spent in this package's own lines (a lower
    bound of its cost: the torch calls it makes count as torch's); an entry point's
    cumulative time includes what RLlib runs beneath it (an upper bound)."""
    algo = cfg.build_algo()
    try:
        algo.train()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(iterations):
            algo.train()
        prof.disable()
    finally:
        algo.stop()
    stats = pstats.Stats(prof).stats
    total = sum(tt for (_, _, _), (_, _, tt, _, _) in stats.items())
    own = sum(tt for (fn, _, _), (_, _, tt, _, _) in stats.items() if "rllib_metamapg" in fn)
    ours = {}
    for (fn, line, name), (_, _, _, ct, callers) in stats.items():
        if "rllib_metamapg" not in fn:
            continue
        # Outermost: no caller of ours (so nested time is not counted twice).
        if any("rllib_metamapg" in c[0] for c in callers):
            continue
        key = f"{fn.split('rllib_metamapg/')[-1]}:{name}"
        ours[key] = ours.get(key, 0.0) + ct
    return total, own, dict(sorted(ours.items(), key=lambda kv: -kv[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/iteration_profile.json")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    import ray
    import torch

    from rllib_metamapg import __version__, atomic, quiet

    quiet.drop_noise()
    torch.set_num_threads(1)  # as a 1-CPU trial runs
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    results = {}
    try:
        for env in ENVS:
            cfgs = configs(env)
            med, all_times, split = median_iterations(cfgs, args.rounds)
            batch = cfgs["ippo"].train_batch_size_per_learner
            total, own, ours = our_share(cfgs["meta_mapg"])
            share = sum(ours.values()) / total
            results[env] = {
                "batch_env_steps": batch,
                "median_iteration_s": med, "iteration_s": all_times,
                "rllib_timers_s": split,
                "env_steps_per_s": {k: batch / v for k, v in med.items()},
                "over_rllib_ppo": {k: v / med["rllib_ppo"] for k, v in med.items()},
                "meta_mapg_profile": {
                    "profiled_s": total, "own_lines_share": own / total,
                    "entry_points_share": share,
                    "entry_points_s": dict(list(ours.items())[:12])},
            }
            r = results[env]
            print(f"{env}: " + ", ".join(
                f"{k} {v:.3f} s/iter ({r['env_steps_per_s'][k]:.0f} steps/s, "
                f"{r['over_rllib_ppo'][k]:.2f}x PPO)" for k, v in med.items())
                + f"; meta_mapg profile: our lines {100 * own / total:.1f} %, our entry "
                f"points with what runs beneath them {100 * share:.1f} %")
    finally:
        ray.shutdown()
    out = {"version": __version__, "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "torch_threads": 1,
           "settings": "studies/neural (App. E.1 PPO, default MLP; batch_env_steps per env)",
           "envs": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
