"""Whole-process wall time of the method comparison; prints and writes JSON.

Goals (issue: the comparison harness): `metamapg tabular compare --quick` <= 60 s and
the full `metamapg tabular compare` <= 5 min on 2 cores, both as a user runs them (a
fresh process, a fresh output folder, numba's on-disk cache warm).  Each command runs
once after one warm-up of `--quick` (which also fills numba's cache), and the `--quick`
run is repeated `--repeat` times.
Usage: python benchmarks/compare.py [--out benchmarks/results/compare.json] [--repeat 2]
       [--skip-full]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rllib_metamapg import __version__, atomic

GOALS = {"compare_quick_s": 60.0, "compare_full_s": 300.0}


def run(args, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "compare", *args,
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/compare.json"))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-full", action="store_true", help="time --quick only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "c"
        run(["--quick"], work)  # warm-up (numba cache)
        quick = [run(["--quick"], work) for _ in range(args.repeat)]
        results = {"compare_quick_s": min(quick), "compare_quick_runs_s": quick}
        if not args.skip_full:
            results["compare_full_s"] = run([], work)
    doc = {"benchmark": "compare", "version": __version__, "cpus": os.cpu_count(),
           "python": platform.python_version(), "goals": GOALS, "results": results,
           "met": {k: results[k] <= g for k, g in GOALS.items() if k in results}}
    for k, v in results.items():
        if isinstance(v, float):
            print(f"{k}: {v:.1f} s (goal {GOALS.get(k, '-')})")
    atomic.write_json(args.out, doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
