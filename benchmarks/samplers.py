"""Env-runner time of the RLlib samplers: ``props`` / ``ma_props`` vs on-policy sampling.

Two measurements per env, both with the env's full tuned example (``ippo``; batch
256, 8 envs per runner, num_env_runners=0):

* in-process: wall time of the env runner's ``sample()`` inside ``algo.train()`` --
  what the sampler adds to collection (the draws, the buffer, every behaviour
  update) -- median over iterations that visit the samplers in turn, so background
  load hits all alike;
* whole process, as a user runs it: ``python -c`` that builds the algorithm and
  trains ``--iterations`` iterations (imports, Ray start, numba's cached kernels,
  the learner included), once per sampler, in turn.

The tracked figure is ``ma_props / on_policy`` of the in-process time (goal <= 1.5):
each round's ratio, then the median over rounds.
Prints a table and writes JSON atomically.

Usage: python benchmarks/samplers.py [--out benchmarks/results/samplers.json]
       [--envs stag_hunt,ipd] [--rounds 7] [--iterations 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import ray

from rllib_metamapg import __version__, atomic
from rllib_metamapg.env_specs import check_installed

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.5
SAMPLERS = ("on_policy", "props", "ma_props")
DEFAULT_ENVS = ("stag_hunt", "ipd", "mpe_simple_speaker_listener")


def tuned(env: str, sampler: str):
    """The env's full ``ippo`` tuned example, collecting with ``sampler``."""
    from rllib_metamapg import rllib_cli

    path = ROOT / "tuned_examples" / env / "ippo.yaml"
    ((_, config, _),) = rllib_cli.prepare(rllib_cli.load_experiments(str(path)), {}, str(path))
    config = config.copy(copy_frozen=False).evaluation(evaluation_interval=None)
    return config.training(sampler=sampler)


def _timed(runner, record):
    inner = runner.sample

    def sample(*args, **kwargs):
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        record.append(time.perf_counter() - t)
        return out

    runner.sample = sample


def in_process(env: str, rounds: int) -> dict:
    """Median env-runner ``sample()`` time per training iteration: each sampler's
    algorithm trains ``rounds`` iterations, the samplers in turn."""
    algos = {s: tuned(env, s).build_algo() for s in SAMPLERS}
    times = {s: [] for s in SAMPLERS}
    try:
        for s, algo in algos.items():
            algo.train()  # warm-up: numba's cached kernels, first episodes
            _timed(algo.env_runner, times[s])
        for _ in range(rounds):
            for algo in algos.values():
                algo.train()
    finally:
        for algo in algos.values():
            algo.stop()
    return times


WHOLE = r"""
import sys, ray
sys.path.insert(0, {bench!r})
from samplers import tuned
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
algo = tuned({env!r}, {sampler!r}).build_algo()
for _ in range({iterations}):
    algo.train()
algo.stop()
"""


def whole_process(env: str, iterations: int) -> dict:
    out = {}
    for s in SAMPLERS:
        code = WHOLE.format(bench=str(ROOT / "benchmarks"), env=env, sampler=s,
                            iterations=iterations)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                       cwd=ROOT, timeout=900)
        out[s] = time.perf_counter() - t
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/samplers.json"))
    p.add_argument("--envs", default=",".join(DEFAULT_ENVS))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--iterations", type=int, default=5)
    args = p.parse_args(argv)
    envs = [e for e in args.envs.split(",") if e]
    for env in envs:
        check_installed(env)
    rows = {}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for env in envs:
            times = in_process(env, args.rounds)
            rows[env] = {
                "sample_s": {s: statistics.median(v) for s, v in times.items()},
                # Per round, then the median: each round's samplers ran back to back.
                "ratio_in_process": {s: statistics.median(
                    [a / b for a, b in zip(times[s], times["on_policy"])])
                    for s in SAMPLERS[1:]}}
            print(env, "in-process", rows[env], flush=True)
    finally:
        ray.shutdown()
    for env in envs:
        rows[env]["whole_process_s"] = whole_process(env, args.iterations)
        r = rows[env]
        r["ratio_whole_process"] = {s: r["whole_process_s"][s] / r["whole_process_s"]["on_policy"]
                                    for s in SAMPLERS[1:]}
        r["meets_goal"] = r["ratio_in_process"]["ma_props"] <= GOAL_RATIO
        print(f"{env:32s} sample on/props/ma = "
              + " / ".join(f"{r['sample_s'][s]:.3f}s" for s in SAMPLERS)
              + f"  ma/on = {r['ratio_in_process']['ma_props']:.2f}"
              + f"  whole process ma/on = {r['ratio_whole_process']['ma_props']:.2f}",
              flush=True)
    doc = {"benchmark": "samplers", "goal": f"ma_props / on_policy env-runner time <= "
           f"{GOAL_RATIO}", "version": __version__, "machine": platform.platform(),
           "cpus": os.cpu_count(), "rounds": args.rounds, "iterations": args.iterations,
           "envs": rows}
    atomic.write_text(Path(args.out), json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
