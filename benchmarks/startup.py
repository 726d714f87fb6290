"""How long ``rllib train file`` takes to its first result, and whose time that is.

A user's ``rllib train file tuned_examples/<env>/<arm>-smoke.yaml`` runs as a whole
process ``--repeat`` times; the first result is the moment the trial's
``result.json`` gets its first row (Tune writes it as the trial reports), the
total the process's exit (checkpoint and shutdown included).  Beside it, in fresh
processes of this same run:

* ``imports_s`` / ``ray_init_s``: importing Ray RLlib, torch and the package, and a
  local ``ray.init`` (what the driver pays before Tune starts anything);
* ``build_s`` / ``first_iteration_s``: building the file's algorithm in-process
  and its first ``train()`` (what the trial itself pays).

What remains of the time to the first result is Tune's: starting the trial's
worker process (which imports the same modules again), registering and placing
it. Goal (issue: many short trials, fast): first result <= 8 s.

Usage: python benchmarks/startup.py [--file tuned_examples/stag_hunt/ippo-smoke.yaml]
           [--repeat 3] [--out benchmarks/results/startup.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from sweep import _result, start_up  # noqa: E402

from rllib_metamapg import __version__, atomic  # noqa: E402

RLLIB = [sys.executable, "-m", "rllib_metamapg.rllib_cli"]

_BUILD = r"""
import sys, time
import ray, torch
from rllib_metamapg.rllib_experiments import build_config, load_experiments
torch.set_num_threads(1)
(name, exp), = load_experiments(sys.argv[1]).items()
# Started first: building an algorithm starts Ray itself when none is running,
# and ray_init_s counts that already.
ray.init(address="local", include_dashboard=False, log_to_driver=False)
t0 = time.perf_counter()
algo = build_config(exp["env"], exp["config"], name, exp.get("run")).build_algo()
t1 = time.perf_counter()
algo.train()
t2 = time.perf_counter()
algo.stop()
ray.shutdown()
print("RESULT", t1 - t0, t2 - t1)
"""


def first_result(file: str, storage: Path):
    """``(seconds to the first result row, seconds to exit)`` of one whole process."""
    name = f"startup-{time.monotonic_ns()}"
    cmd = [*RLLIB, "train", "file", file, "--storage-path", str(storage),
           "--experiment-name", name]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None:
        if first is None and any(p.stat().st_size > 0
                                 for p in (storage / name).glob("*/result.json")):
            first = time.perf_counter() - t0
        time.sleep(0.05)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return (first if first is not None else total), total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default="tuned_examples/stag_hunt/ippo-smoke.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/startup.json")
    args = ap.parse_args(argv)
    runs, parts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            first, total = first_result(args.file, Path(tmp))
            runs.append({"first_result_s": round(first, 2), "total_s": round(total, 2)})
            build, iteration = (float(x) for x in _result(
                [sys.executable, "-c", _BUILD, args.file], cwd=ROOT).split())
            parts.append({**start_up(), "build_s": build, "first_iteration_s": iteration})
            print(f"run {k}: first result {first:.2f} s, exit {total:.2f} s; "
                  + ", ".join(f"{key} {v:.2f} s" for key, v in parts[-1].items()), flush=True)
    med = {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
    med.update({key: round(statistics.median(p[key] for p in parts), 2) for key in parts[0]})
    med["remainder_s"] = round(med["first_result_s"] - med["imports_s"] - med["ray_init_s"]
                               - med["build_s"] - med["first_iteration_s"], 2)
    doc = {"version": __version__, "file": args.file, "repeat": args.repeat,
           "median": med, "runs": runs, "parts": parts, "goal_first_result_s": 8.0}
    atomic.write_json(args.out, doc)
    print(f"median: {med}\nwrote {args.out}")


if __name__ == "__main__":
    main()
