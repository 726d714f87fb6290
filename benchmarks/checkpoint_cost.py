"""What a sweep's trial checkpoints cost, and what checkpointing at most four times
before the end saves, on the studies' settings.

For each ``--envs`` entry (``study:env``) the study's ``ippo`` tuned example is built
in this process and trained one iteration; then, ``--repeat`` times each:

* ``save_s``: RLlib's ``Algorithm.save_to_path`` (what Tune's ``save`` runs in the
  trial);
* ``persist_s``: copying that checkpoint folder and deleting an older one (what Tune
  does with it in the trial folder, ``num_to_keep=2``; local storage);
* ``iteration_s``: one more training iteration (evaluation included where due).

Checkpoints per trial are counted as the sweep made them before (every evaluation
interval) and as it makes them now (``sweep.plan.checkpoint_interval``); the saving
per trial is the difference times ``save_s + persist_s``.  Both costs are measured
in one process, so their ratio to ``iteration_s`` holds on a noisy machine even
where the seconds do not.

Usage: python benchmarks/checkpoint_cost.py
           [--envs compare_rllib:climbing,neural:stag_hunt,neural:ipd] [--repeat 10]
           [--out benchmarks/results/checkpoint_cost.json]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from rllib_metamapg import __version__, atomic  # noqa: E402


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(study: str, env: str, repeat: int) -> dict:
    from rllib_metamapg.rllib_experiments import build_config
    from rllib_metamapg.sweep.plan import SweepSpec, plan_sweep

    folder = ROOT / "studies" / study
    plan = plan_sweep(SweepSpec(env=env, arms=["ippo"], seeds=[0], tuned_examples=str(folder)))
    from rllib_metamapg.tuned_examples import experiment

    _, exp = experiment(env, "ippo", False, folder)
    algo = build_config(exp["env"], exp["config"], f"{study}/{env}", exp["run"]).build_algo()
    try:
        algo.train()
        save, persist, iteration = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            older = None
            for k in range(repeat):
                path = Path(tmp) / f"checkpoint_{k:06d}"
                save.append(_timed(lambda: algo.save_to_path(str(path))))
                kept = Path(tmp) / f"trial_checkpoint_{k:06d}"

                def persist_one():
                    shutil.copytree(path, kept)
                    if older is not None:
                        shutil.rmtree(older)

                persist.append(_timed(persist_one))
                shutil.rmtree(path)
                older = kept
                iteration.append(_timed(algo.train))
    finally:
        algo.stop()
    per_checkpoint = statistics.median(save) + statistics.median(persist)
    before = plan.stop_iterations // plan.evaluation_interval
    after = plan.stop_iterations // plan.checkpoint_interval
    iteration_s = statistics.median(iteration)
    return {
        "study": study, "env": env, "iterations": plan.stop_iterations,
        "evaluation_interval": plan.evaluation_interval,
        "checkpoint_interval": plan.checkpoint_interval,
        "save_s": statistics.median(save), "persist_s": statistics.median(persist),
        "iteration_s": iteration_s,
        "checkpoint_over_iteration": per_checkpoint / iteration_s,
        "checkpoints_before": before, "checkpoints_after": after,
        "saved_per_trial_s": (before - after) * per_checkpoint,
        "saved_over_training": (before - after) * per_checkpoint
        / (plan.stop_iterations * iteration_s),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="compare_rllib:climbing,neural:stag_hunt,neural:ipd")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                         "checkpoint_cost.json"))
    args = ap.parse_args(argv)
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    import torch

    torch.set_num_threads(1)  # as Tune runs a 1-CPU trial
    rows = {}
    try:
        for item in args.envs.split(","):
            study, env = item.split(":")
            row = measure(study, env, args.repeat)
            rows[f"{study}:{env}"] = row
            print(f"{study}/{env}: checkpoint {1000 * (row['save_s'] + row['persist_s']):.0f} "
                  f"ms (= {row['checkpoint_over_iteration']:.2f} iterations); "
                  f"{row['checkpoints_before']} -> {row['checkpoints_after']} per trial "
                  f"saves {row['saved_per_trial_s']:.2f} s "
                  f"({100 * row['saved_over_training']:.1f} % of its training)", flush=True)
    finally:
        ray.shutdown()
    doc = {"benchmark": "checkpoint_cost", "version": __version__, "repeat": args.repeat,
           "python": sys.version.split()[0], "envs": rows}
    atomic.write_json(args.out, doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
