"""MATRL's Table 1 run (3 game types x 1000 games x IGA / IGA-PP / MATRL / WoLF): its time,
and the table docs/matrl.md renders (every learner of the default run).

Goal: <= 5 s of compute on 2 cores (the public code takes minutes).  Measured two
ways in one run: in-process (the four learners on all 3000 games, best of
``--repeat``) and as a user runs it (``metamapg tabular convergence`` as a whole
process, imports and files included).  Prints and writes JSON.

    python benchmarks/matrl_table1.py --out benchmarks/results/matrl_table1.json
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rllib_metamapg import __version__, atomic
from rllib_metamapg.tabular_experiments.convergence import DEFAULT_METHODS, PAPER, run_convergence

METHODS = ("iga", "iga_pp", "matrl", "wolf")
GOAL_S = 5.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/matrl_table1.json"))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        doc = run_convergence(1000, METHODS)
        times.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "convergence",
                        "--dynamics", ",".join(METHODS), "--out", str(Path(tmp) / "c")],
                       check=True, capture_output=True)
        whole = time.perf_counter() - t
    doc = run_convergence(1000, DEFAULT_METHODS)  # the table: every default learner
    result = {
        "version": __version__, "python": platform.python_version(),
        "machine": platform.machine(), "methods": list(METHODS), "games_per_type": 1000,
        "in_process_s": {"best": min(times), "all": times}, "whole_process_s": whole,
        "goal_s": GOAL_S, "goal_met": min(times) <= GOAL_S,
        "table": {k: {m: [r["rate"], r["mean_steps"]] for m, r in row.items()}
                  for k, row in doc["types"].items()},
        "paper": {k: {m: list(v) for m, v in row.items()} for k, row in PAPER.items()},
    }
    atomic.write_json(args.out, result)
    print(f"Table 1 (4 learners x 3000 games): {min(times):.2f} s in-process (goal <= "
          f"{GOAL_S} s: {'met' if result['goal_met'] else 'NOT met'}), {whole:.2f} s as a "
          f"whole command; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
