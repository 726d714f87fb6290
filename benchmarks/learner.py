"""Learner update time per arm relative to ``ippo`` on the same batch (every method).

Goals (2 agents, 64x64 MLP, batch 4000, PPO 4 epochs x minibatch 256):
``meta_mapg`` (trajectory estimator, the default) <= 1.5x ``ippo`` with 2 agents
(the IPD batch) and <= 2x with 3 agents; ``matrl`` (its Table 3 best response:
5 steps, clip 0.1) <= 1.2x ``ippo`` (the paper's 1.1-1.2x claim).
One batch of episodes is sampled once per agent count and every arm's learner
updates on a deep copy of it, so only the update differs.  Prints a table and
writes JSON.

Usage: python benchmarks/learner.py [--out benchmarks/results/learner.json]
       [--repeat 5] [--batch 4000]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import ray
import torch
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_metamapg import __version__, atomic, registry
from rllib_metamapg.rllib_base.algorithm import arm_config

GOALS = {2: 1.5, 3: 2.0}
MATRL_GOAL = 1.2
# The default estimator is the trajectory one; the per-step proxy rows show its cost.
# Meta-MAPG's arms from the registry (the handoff arm is meta_mapg until T), then
# the full arm's estimator variants.
REFERENCE = registry.reference_arm()
FULL = "meta_mapg"
ARMS = ([(a, {}) for a in registry.arm_names(FULL, engine="rllib")
         if not registry.get_arm(a).handoff]
        + [(FULL, {"correction_estimator": "per_step"}),
           (FULL, {"correction_estimator": "per_step", "correction_granularity": "minibatch"})]
        + [(a, dict(registry.get_method("matrl").rllib_defaults))
           for a in registry.arm_names("matrl")])


def three_player_game(rounds=10):
    rng = np.random.default_rng(0)
    return {"game": {"payoffs": rng.uniform(0, 4, (3, 2, 2, 2)).round(2).tolist()},
            "rounds": rounds}


def config(arm, extra, env_config, batch):
    return (arm_config(arm, "matrix_game", {"env_config": env_config})
            .training(train_batch_size_per_learner=batch, minibatch_size=256,
                      num_epochs=4, **extra)
            .rl_module(model_config={"fcnet_hiddens": [64, 64]})
            .env_runners(num_env_runners=0, num_envs_per_env_runner=16)
            .debugging(seed=0))


def time_update(learner, episodes, batch):
    eps = copy.deepcopy(episodes)
    t = time.perf_counter()
    learner.update(episodes=eps, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: batch},
                   num_epochs=4, minibatch_size=256)
    return time.perf_counter() - t


def run(agents, batch, repeat):
    env_config = {"game": "ipd", "rounds": 12} if agents == 2 else three_player_game()
    sampler = config(REFERENCE, {}, env_config, batch).build_algo()
    episodes = sampler.env_runner.sample(num_timesteps=batch, random_actions=False)
    sampler.stop()
    labels = [arm + ("" if not extra or registry.get_arm(arm).method != FULL
                     else f" ({', '.join(map(str, extra.values()))})")
              for arm, extra in ARMS]
    algos = [config(arm, extra, env_config, batch).build_algo() for arm, extra in ARMS]
    times = {label: [] for label in labels}
    try:
        # Round robin over the arms, so a slow spell of this (noisy) machine hits
        # every arm alike; round 0 warms up.
        for round_ in range(repeat + 1):
            for label, algo in zip(labels, algos):
                t = time_update(algo.learner_group._learner, episodes, batch)
                if round_:
                    times[label].append(t)
    finally:
        for algo in algos:
            algo.stop()
    rows = [{"arm": label, "median_s": statistics.median(ts), "times_s": ts}
            for label, ts in times.items()]
    for r in rows:
        print(f"  {agents} agents  {r['arm']:<34} {r['median_s']:7.3f} s", flush=True)
    base = rows[0]["median_s"]
    for r in rows:
        r["ratio_to_ippo"] = r["median_s"] / base
    meta = next(r for r in rows if r["arm"] == FULL)
    matrl = next(r for r in rows if r["arm"] == "matrl")
    return {"agents": agents, "batch": batch, "env_steps": sum(len(e) for e in episodes),
            "rows": rows, "goal_ratio": GOALS[agents],
            "meta_mapg_ratio": meta["ratio_to_ippo"],
            "goal_met": meta["ratio_to_ippo"] <= GOALS[agents],
            "matrl_goal_ratio": MATRL_GOAL, "matrl_ratio": matrl["ratio_to_ippo"],
            "matrl_goal_met": matrl["ratio_to_ippo"] <= MATRL_GOAL}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/learner.json")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4000)
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = [run(n, args.batch, args.repeat) for n in (2, 3)]
    finally:
        ray.shutdown()
    for r in results:
        print(f"{r['agents']} agents: meta_mapg / ippo = {r['meta_mapg_ratio']:.2f} "
              f"(goal <= {r['goal_ratio']}) -> {'met' if r['goal_met'] else 'NOT met'}; "
              f"matrl / ippo = {r['matrl_ratio']:.2f} (goal <= {MATRL_GOAL}) -> "
              f"{'met' if r['matrl_goal_met'] else 'NOT met'}")
    out = {"version": __version__, "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "settings": "PPO 4 epochs x minibatch 256, 64x64 MLP, matrix-game episodes "
                       "(IPD 12 rounds; 3-player 10 rounds)",
           "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
