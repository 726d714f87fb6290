"""Where a sweep trial's time outside its training iterations goes: checkpoints and
Tune's handling of each result, on the studies' settings.

For each ``--envs`` entry (``study:env``) the study's ``ippo`` tuned example is built
in this process and trained one iteration; then, ``--repeat`` times each:

* ``save_s``: RLlib's ``Algorithm.save_to_path`` (what Tune's ``save`` runs in the
  trial);
* ``persist_s``: copying that checkpoint folder and deleting an older one (what Tune
  does with it in the trial folder, ``num_to_keep=2``; local storage);
* ``iteration_s``: one more training iteration (evaluation included where due).

Checkpoints per trial are counted as sweeps made them before (every evaluation
interval) and as they make them now (``sweep.plan.checkpoint_interval``); the saving
per trial is the difference times ``save_s + persist_s``.

Tune's cost per result: a trainable that does nothing but return this env's RLlib
result (hundreds of metrics), with the algorithm's settings as its trial config (Tune
adds the config to every result it logs), runs ``--results`` iterations under
``tune.Tuner``, and one that returns a single number with an empty config runs as
many; so does the rich one again with a sweep's loggers (no TensorBoard unless
``--tensorboard``), all alternating, twice each.  The difference per iteration,
``result_extra_s``, is what the driver spends logging (JSON, CSV, TensorBoard) and
handling one RLlib result; ``tensorboard_s`` is the TensorBoard part.  The trial waits
for it, since Tune asks for the next iteration after handling the last.

Everything is measured in one process and run, so the ratios to ``iteration_s`` hold
on a noisy machine even where the seconds do not.

Usage: python benchmarks/trial_overhead.py
           [--envs compare_rllib:climbing,neural:stag_hunt,neural:ipd] [--repeat 10]
           [--results 100] [--out benchmarks/results/trial_overhead.json]
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

# Keys Tune fills in itself; a trainable must not return them.
_TUNE_KEYS = {"timestamp", "date", "time_total_s", "time_this_iter_s", "training_iteration",
              "trial_id", "pid", "hostname", "node_ip", "time_since_restore", "done",
              "iterations_since_restore", "timesteps_since_restore", "config",
              "checkpoint_dir_name", "should_checkpoint", "experiment_tag"}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def checkpoints(study: str, env: str, repeat: int) -> dict:
    from rllib_metamapg.rllib_experiments import build_config
    from rllib_metamapg.sweep.plan import SweepSpec, plan_sweep
    from rllib_metamapg.tuned_examples import experiment

    folder = ROOT / "studies" / study
    plan = plan_sweep(SweepSpec(env=env, arms=["ippo"], seeds=[0], tuned_examples=str(folder)))
    _, exp = experiment(env, "ippo", False, folder)
    algo = build_config(exp["env"], exp["config"], f"{study}/{env}", exp["run"]).build_algo()
    try:
        result = algo.train()
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
    row = {
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
    # What Tune adds to each result of a sweep trial: the trial's config (the
    # algorithm's settings, as the sweep's param space resolves them).
    config = {k: v for k, v in algo.config.to_dict().items()
              if isinstance(v, (int, float, str, bool, type(None)))}
    return row, {k: v for k, v in result.items() if k not in _TUNE_KEYS}, config


def tune_result_cost(result: dict, config: dict, iterations: int) -> dict:
    """Seconds per iteration of a do-nothing trainable under Tune, returning ``result``
    with ``config`` as its trial's config, and returning one number with none,
    alternated twice; their difference per iteration."""
    from ray import tune

    class Rich(tune.Trainable):
        def step(self):
            return dict(result)

    class Bare(tune.Trainable):
        def step(self):
            return {"x": 1.0}

    from rllib_metamapg.sweep.loggers import logger_callbacks

    times = {"bare": [], "rich": [], "rich_sweep": []}
    for kind in ("bare", "rich", "rich_sweep") * 2:
        with tempfile.TemporaryDirectory() as tmp:
            run = tune.RunConfig(storage_path=tmp, name="r", verbose=0,
                                 stop={"training_iteration": iterations},
                                 checkpoint_config=tune.CheckpointConfig(
                                     checkpoint_at_end=False),
                                 # "rich_sweep": as a sweep logs without --tensorboard
                                 callbacks=logger_callbacks(kind != "rich_sweep"))
            cls, space = (Bare, {}) if kind == "bare" else (Rich, config)
            times[kind].append(_timed(lambda: tune.Tuner(
                cls, param_space=space, run_config=run).fit()) / iterations)
    rich, bare, sweep = (min(times[k]) for k in ("rich", "bare", "rich_sweep"))
    return {"metrics": _leaves(result), "config_keys": len(config),
            "rich_per_iteration_s": rich, "bare_per_iteration_s": bare,
            "rich_without_tensorboard_per_iteration_s": sweep,
            "result_extra_s": rich - bare, "tensorboard_s": rich - sweep}


def _leaves(d) -> int:
    return sum(_leaves(v) if isinstance(v, dict) else 1 for v in d.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="compare_rllib:climbing,neural:stag_hunt,neural:ipd")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--results", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                         "trial_overhead.json"))
    args = ap.parse_args(argv)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    import torch

    torch.set_num_threads(1)  # as Tune runs a 1-CPU trial
    rows = {}
    try:
        for item in args.envs.split(","):
            study, env = item.split(":")
            row, result, config = checkpoints(study, env, args.repeat)
            row.update(tune_result_cost(result, config, args.results))
            row["result_over_iteration"] = row["result_extra_s"] / row["iteration_s"]
            row["results_per_trial_s"] = row["result_extra_s"] * row["iterations"]
            row["tensorboard_per_trial_s"] = row["tensorboard_s"] * row["iterations"]
            rows[f"{study}:{env}"] = row
            print(f"{study}/{env}: checkpoint {1000 * (row['save_s'] + row['persist_s']):.0f} "
                  f"ms (= {row['checkpoint_over_iteration']:.2f} iterations); "
                  f"{row['checkpoints_before']} -> {row['checkpoints_after']} per trial "
                  f"saves {row['saved_per_trial_s']:.2f} s "
                  f"({100 * row['saved_over_training']:.1f} % of its training); Tune's "
                  f"handling of a {row['metrics']}-metric result with {row['config_keys']} config "
                  f"keys {1000 * row['result_extra_s']:.0f}"
                  f" ms (= {row['result_over_iteration']:.2f} iterations), "
                  f"{row['results_per_trial_s']:.2f} s per trial, TensorBoard "
                  f"{row['tensorboard_per_trial_s']:.2f} s of it", flush=True)
    finally:
        ray.shutdown()
    doc = {"benchmark": "trial_overhead", "version": __version__, "repeat": args.repeat,
           "results": args.results, "python": sys.version.split()[0], "envs": rows}
    atomic.write_json(args.out, doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
