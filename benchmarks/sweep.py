"""What a paired-seed sweep costs beyond its training: ``metamapg sweep`` as a user
runs it (whole process) against its trials' in-process build + train time.

For each env of the neural study (studies/neural: Stag Hunt and the IPD), one
sweep of ``--arms`` x ``--seeds`` at ``--max-concurrent`` slots runs

* ``reused``: as ``metamapg sweep`` runs by default (Tune reuses trial processes);
* ``fresh``: with ``--no-reuse-actors`` (a new process per trial, as before);

in alternating order, each a whole ``metamapg sweep`` process, at two sizes
(a small and a large seed range).  The same trials of the small sweep also run
one after another in one process (``in_process``: each trial's algorithm built
and trained, imports and Ray's start excluded, torch on one thread as Tune
gives a 1-CPU trial).

* per trial per slot = (wall(large) - wall(small)) x slots / (trials(large) -
  trials(small)): what one more trial costs, the driver's fixed start-up and
  shutdown (``fixed_s``, the intercept) apart, which a 200-trial study pays once;
* overhead per trial = that minus the in-process build + train of an average
  trial.

Also timed: importing Ray RLlib + torch + the package and ``ray.init`` in a
fresh process (what every new trial process and every driver pays).

Goal (issue: many short trials, fast): overhead <= 1.5 s per trial per slot.
Ratios are taken within this one run; the machine is noisy.

Usage: python benchmarks/sweep.py [--envs stag_hunt,ipd] [--arms ippo,meta_mapg]
           [--seeds stag_hunt=0-1/0-5,ipd=0-1/0-3] [--max-concurrent 2] [--repeat 1]
           [--out benchmarks/results/sweep.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "neural"
GOAL_OVERHEAD_S = 1.5
CLI = [sys.executable, "-m", "rllib_metamapg.cli"]

# Builds and trains every trial of a sweep, one after another, in this process.
_IN_PROCESS = r"""
import json, sys, time
import torch
torch.set_num_threads(1)  # as Tune runs a 1-CPU trial (OMP_NUM_THREADS=1)
from rllib_metamapg.sweep.plan import SweepSpec, parse_seeds, plan_sweep
from rllib_metamapg.sweep.trainable import sweep_trainable
import ray
env, arms, seeds, study = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
spec = SweepSpec(env=env, arms=arms, seeds=parse_seeds(seeds), tuned_examples=study,
                 storage_path="/tmp/unused")
plan = plan_sweep(spec)
from rllib_metamapg.hash_seed import worker_runtime_env
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
         runtime_env=worker_runtime_env())
from rllib_metamapg.rllib_base.algorithm import register_all
register_all()
trainable = sweep_trainable(spec.arms)


class _Spec:  # what Tune hands a sample_from function
    def __init__(self, config):
        self.config = config


rows = []
for seed in spec.seeds:
    for arm in spec.arms:
        config = {}
        for key, value in plan.param_space.items():
            if isinstance(value, dict) and "grid_search" in value:
                value = {"arm": arm, "seed": seed}[key]
            config[key] = value
        for key, value in list(config.items()):
            if hasattr(value, "func"):  # tune.sample_from
                config[key] = value.func(_Spec(config))
        t0 = time.perf_counter()
        algo = trainable._build(config)
        t1 = time.perf_counter()
        for _ in range(plan.stop_iterations):
            algo.train()
        t2 = time.perf_counter()
        algo.stop()
        rows.append({"arm": arm, "seed": seed, "build_s": t1 - t0, "train_s": t2 - t1})
print("RESULT " + json.dumps({"trials": rows, "iterations": plan.stop_iterations}))
"""

_IMPORT = r"""
import time
t0 = time.perf_counter()
import torch, ray, ray.rllib, ray.tune  # noqa: E401
import rllib_metamapg.sweep.trainable, rllib_metamapg.metamapg  # noqa: E401
t1 = time.perf_counter()
ray.init(address="local", include_dashboard=False, log_to_driver=False)
t2 = time.perf_counter()
ray.shutdown()
print("RESULT", t1 - t0, t2 - t1)
"""


def _result(cmd, **kwargs):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, **kwargs).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return line[len("RESULT "):]


def in_process(env: str, arms: str, seeds: str):
    return json.loads(_result([sys.executable, "-c", _IN_PROCESS, env, arms, seeds, str(STUDY)],
                              cwd=ROOT))


def start_up():
    imports_s, ray_init_s = (float(x) for x in _result([sys.executable, "-c", _IMPORT]).split())
    return {"imports_s": imports_s, "ray_init_s": ray_init_s}


def whole_sweep(env: str, arms: str, seeds: str, slots: int, reuse: bool, storage: Path):
    name = f"{env}-{'reused' if reuse else 'fresh'}-{time.monotonic_ns()}"
    cmd = [*CLI, "sweep", "--env", env, "--arms", arms, "--seeds", seeds,
           "--tuned-examples", str(STUDY), "--max-concurrent", str(slots),
           "--storage-path", str(storage), "--name", name, "--quiet", "--progress-every", "0"]
    if not reuse:
        cmd.append("--no-reuse-actors")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    pids, train = set(), []
    for result in (storage / name).glob("*/result.json"):
        rows = [json.loads(ln) for ln in result.read_text().splitlines() if ln]
        pids.add(rows[0]["pid"])
        train.append(rows[-1]["time_total_s"])
    return {"wall_s": wall, "trials": len(train), "processes": len(pids),
            "train_in_sweep_s_mean": statistics.mean(train)}


def run_env(env, arms, seeds, slots, repeat, storage):
    small, large = seeds.split("/")
    ref = in_process(env, arms, small)
    trials = ref["trials"]
    build = statistics.mean(t["build_s"] for t in trials)
    train = statistics.mean(t["train_s"] for t in trials)
    runs = {(mode, size): [] for mode in ("reused", "fresh") for size in (small, large)}
    for i in range(repeat):  # alternate the order: the machine drifts
        for size in (small, large):
            for mode in (("reused", "fresh") if i % 2 == 0 else ("fresh", "reused")):
                row = whole_sweep(env, arms, size, slots, mode == "reused", storage)
                runs[mode, size].append(row)
                print(f"  {env} {mode} seeds {size}: {row['trials']} trials, "
                      f"{row['wall_s']:.1f} s", flush=True)
    out = {"arms": arms.split(","), "seeds": {"small": small, "large": large},
           "iterations": ref["iterations"], "max_concurrent": slots,
           "in_process": {"trials": len(trials), "build_s_mean": build,
                          "train_s_mean": train, "per_trial_s": build + train}}
    for mode in ("reused", "fresh"):
        a, b = runs[mode, small], runs[mode, large]
        wall_a = statistics.median(r["wall_s"] for r in a)
        wall_b = statistics.median(r["wall_s"] for r in b)
        n_a, n_b = a[0]["trials"], b[0]["trials"]
        per_slot = (wall_b - wall_a) * slots / (n_b - n_a)
        out[mode] = {"trials": {"small": n_a, "large": n_b},
                     "wall_s": {"small": wall_a, "large": wall_b},
                     "runs_wall_s": {"small": [r["wall_s"] for r in a],
                                     "large": [r["wall_s"] for r in b]},
                     "processes_large": b[0]["processes"],
                     "train_in_sweep_s_mean": statistics.median(
                         r["train_in_sweep_s_mean"] for r in b),
                     "per_trial_per_slot_s": per_slot,
                     "fixed_s": wall_a - per_slot * n_a / slots,
                     "overhead_per_trial_s": per_slot - (build + train)}
    out["fresh_over_reused_large"] = out["fresh"]["wall_s"]["large"] / \
        out["reused"]["wall_s"]["large"]
    out["goal_met"] = out["reused"]["overhead_per_trial_s"] <= GOAL_OVERHEAD_S
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default="stag_hunt,ipd")
    p.add_argument("--arms", default="ippo,meta_mapg")
    p.add_argument("--seeds", default="stag_hunt=0-1/0-5,ipd=0-1/0-3",
                   help="per env: env=small/large,... (a bare small/large applies to "
                        "every env)")
    p.add_argument("--max-concurrent", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweep.json"))
    args = p.parse_args(argv)
    seeds = dict(part.split("=", 1) for part in args.seeds.split(",") if "=" in part) \
        if "=" in args.seeds else {}
    from rllib_metamapg import __version__, atomic

    doc = {"benchmark": "sweep", "version": __version__, "python": platform.python_version(),
           "cpu_count": os.cpu_count(), "goal_overhead_s": GOAL_OVERHEAD_S,
           "start_up": start_up(), "envs": {}}
    print(f"imports {doc['start_up']['imports_s']:.2f} s, ray.init "
          f"{doc['start_up']['ray_init_s']:.2f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="metamapg-bench-sweep-") as tmp:
        for env in args.envs.split(","):
            env_seeds = seeds.get(env, args.seeds if not seeds else "0-1/0-3")
            r = doc["envs"][env] = run_env(env, args.arms, env_seeds, args.max_concurrent,
                                           args.repeat, Path(tmp))
            print(f"{env}: in-process {r['in_process']['per_trial_s']:.2f} s/trial (build "
                  f"{r['in_process']['build_s_mean']:.2f}); one more trial per slot: reused "
                  f"{r['reused']['per_trial_per_slot_s']:.2f} s (overhead "
                  f"{r['reused']['overhead_per_trial_s']:.2f}, fixed "
                  f"{r['reused']['fixed_s']:.1f}), fresh "
                  f"{r['fresh']['per_trial_per_slot_s']:.2f} s (overhead "
                  f"{r['fresh']['overhead_per_trial_s']:.2f}, fixed "
                  f"{r['fresh']['fixed_s']:.1f}); fresh/reused at the large size "
                  f"{r['fresh_over_reused_large']:.2f}x", flush=True)
    atomic.write_json(Path(args.out), doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
