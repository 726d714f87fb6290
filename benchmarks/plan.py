"""How close ``--plan`` comes to a real sweep's wall time (issue: App. F priced before
it runs; goal: within 30 %).

One env of the RLlib comparison study (``--env``, its settings from
studies/compare_rllib), ``--arms`` from the three methods:

1. ``pilot``: ``metamapg sweep ... --budget-fraction F --seeds P`` as a user runs it
   (whole process, timed);
2. the plan of the ``target`` sweep (full budget, ``--seeds T``), twice: from the
   benchmark tables alone (``metamapg sweep ... --plan``) and calibrated on the pilot
   (``--plan --calibrate <pilot>``);
3. ``target``: the same ``metamapg sweep`` at full budget (whole process, timed).

The JSON records both estimates, the measured wall time and their ratios (same
machine, same run).  The plan prices this machine at the sweep's --max-concurrent.

Usage: python benchmarks/plan.py [--env no_conflict_19] [--arms ippo,peer_only,matrl]
           [--pilot-seeds 0-1] [--target-seeds 0-5] [--budget-fraction 0.25]
           [--max-concurrent 2] [--out benchmarks/results/plan.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "compare_rllib"
GOAL = 0.30
CLI = [sys.executable, "-m", "rllib_metamapg.cli"]


def _sweep(args, seeds: str, name: str, storage: Path, extra=()) -> list:
    return CLI + ["sweep", "--env", args.env, "--arms", args.arms, "--seeds", seeds,
                  "--tuned-examples", str(STUDY), "--max-concurrent",
                  str(args.max_concurrent), "--name", name, "--storage-path", str(storage),
                  "--quiet", "--progress-every", "600", *extra]


def _timed(cmd: list) -> float:
    start = time.monotonic()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def _plan(cmd: list, out: Path) -> dict:
    subprocess.run(cmd + ["--plan", "--shape", "here", "--plan-json", str(out)], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="no_conflict_19")
    p.add_argument("--arms", default="ippo,peer_only,matrl")
    p.add_argument("--pilot-seeds", default="0-1")
    p.add_argument("--target-seeds", default="0-5")
    p.add_argument("--budget-fraction", type=float, default=0.25)
    p.add_argument("--max-concurrent", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "plan.json"))
    args = p.parse_args(argv)
    from rllib_metamapg import __version__, atomic
    from rllib_metamapg.sweep.plan import parse_seeds

    with tempfile.TemporaryDirectory(prefix="metamapg-bench-plan-") as tmp:
        tmp = Path(tmp)
        pilot_cmd = _sweep(args, args.pilot_seeds, "pilot", tmp,
                           ["--budget-fraction", str(args.budget_fraction)])
        pilot_s = _timed(pilot_cmd)
        print(f"pilot: {pilot_s:.1f} s", flush=True)
        target_cmd = _sweep(args, args.target_seeds, "target", tmp)
        table = _plan(target_cmd, tmp / "table.json")
        calibrated = _plan(target_cmd + ["--calibrate", str(tmp / "pilot")],
                           tmp / "calibrated.json")
        target_s = _timed(target_cmd)
        print(f"target: {target_s:.1f} s", flush=True)
    estimates = {"table": table["shapes"][0]["wall_s"],
                 "calibrated": calibrated["shapes"][0]["wall_s"]}
    doc = {"benchmark": "plan", "version": __version__, "python": platform.python_version(),
           "cpu_count": os.cpu_count(), "goal_relative_error": GOAL,
           "env": args.env, "arms": args.arms.split(","),
           "pilot": {"seeds": args.pilot_seeds, "budget_fraction": args.budget_fraction,
                     "trials": len(args.arms.split(",")) * len(parse_seeds(args.pilot_seeds)),
                     "wall_s": pilot_s},
           "target": {"seeds": args.target_seeds, "trials": table["trials"],
                      "env_steps": table["env_steps"], "wall_s": target_s},
           "estimate_s": estimates,
           "relative_error": {k: v / target_s - 1 for k, v in estimates.items()},
           "notes": {"table": table["notes"], "calibrated": calibrated["notes"]}}
    doc["goal_met"] = abs(doc["relative_error"]["calibrated"]) <= GOAL
    for k, v in estimates.items():
        print(f"estimate ({k}): {v:.1f} s, {100 * doc['relative_error'][k]:+.0f} % against "
              f"the measured {target_s:.1f} s", flush=True)
    atomic.write_json(Path(args.out), doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
