"""The tabular commands timed as a user runs them: whole processes, quiet and beside
one other CPU-bound process, and the prototype side by side when its checkout is given.

Cases (paper settings; 5 arms = the basin experiment's arms):
  help            metamapg --help
  basin_sampled   metamapg tabular basin --mode sampled --arms <5 arms>  (21x21, 140 steps, B=192)
  ablation        metamapg tabular ablation --arms <5 arms>          (stag_hunt + ipd, 100 seeds)
  basin_unroll    metamapg tabular basin --mode exact --correction-form unroll --arms <5 arms>
plus the in-process compute of each (imports and output excluded).

Goals: help <= 0.5 s, basin_sampled <= 1.5 s, ablation <= 3.5 s (whole process, quiet);
basin_unroll <= 1.0 s compute; loaded / quiet <= 2 for each.  Each case runs with the
thread policy the commands use (auto: the cores idle at start) and, loaded, also with
METAMAPG_THREADS=<all cores> (the policy before it) to show what the choice is worth.
Ratios are taken within this one run; the machine is noisy.

--prototype DIR: a checkout of the paper's prototype (guernicastars/Meta-MAPG-R; not
part of this repository) whose run_basin / run_ablation are timed the same way, per arm.

Usage: python benchmarks/tabular_process.py [--repeat 3] [--prototype DIR [--prototype-repeat 1]]
                                            [--out benchmarks/results/tabular_process.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rllib_metamapg import __version__, atomic
from rllib_metamapg.registry import get_method

ARMS = list(get_method("meta_mapg").experiments["basin"])  # Meta-MAPG's five arms
GOALS_S = {"help": 0.5, "basin_sampled": 1.5, "ablation": 3.5}
GOAL_COMPUTE_S = {"basin_unroll": 1.0}
GOAL_LOAD_RATIO = 2.0
CLI = [sys.executable, "-m", "rllib_metamapg.cli"]


def cases(out: Path):
    arms = ",".join(ARMS)
    return {
        "help": [*CLI, "--help"],
        "basin_sampled": [*CLI, "tabular", "basin", "--mode", "sampled", "--arms", arms,
                          "--out", str(out / "bs")],
        "ablation": [*CLI, "tabular", "ablation", "--arms", arms, "--out", str(out / "ab")],
        "basin_unroll": [*CLI, "tabular", "basin", "--mode", "exact", "--correction-form",
                         "unroll", "--arms", arms, "--out", str(out / "bu")],
    }


def compute_s(case: str) -> float:
    """In-process seconds of a case's computation (after a warm-up call)."""
    code = f"""
import time
from rllib_metamapg.tabular import threads
threads.configure()
from rllib_metamapg.registry import parse_arms
from rllib_metamapg.tabular.dynamics import LearningSettings, simulate
from rllib_metamapg.tabular_experiments.ablation import paired_init
from rllib_metamapg.tabular_experiments.basin import grid_values, run_basin
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
arms = parse_arms({ARMS!r})
def basin(mode, form="taylor"):
    s = LearningSettings(mode=mode, steps=140, batch_size=192, correction_form=form)
    run_basin(get_game("stag_hunt"), arms, s, grid_values(21, 0.05, 0.95), 0.82, 0)
def ablation():
    for name in ("stag_hunt", "ipd"):
        g = get_game(name)
        simulate(g, arms, paired_init(TabularPolicy.for_game(g), 100, 1.35, 0),
                 LearningSettings(steps=260, batch_size=384), seed=1)
fn = {{"basin_sampled": lambda: basin("sampled"), "ablation": ablation,
       "basin_unroll": lambda: basin("exact", "unroll")}}[{case!r}]
fn()
t = time.perf_counter(); fn(); print(time.perf_counter() - t)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, env=os.environ.copy())
    return float(r.stdout.strip().splitlines()[-1])


def wall_s(argv, env=None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - t


class Busy:
    """One other CPU-bound process for the duration of a ``with`` block."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)  # let it reach the scheduler before we measure
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def median_of(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    return statistics.median(runs), runs


PROTO_DRIVER = """
import sys, time, types
from pathlib import Path
sys.path.insert(0, {exp!r})
sys.argv = ["proto"]
import run_meta_mapg_experiments as m
args = m.parse_args()
args.basin_peer_coef = args.peer_coef
out = Path({out!r}); out.mkdir(parents=True, exist_ok=True)
{{"basin": m.run_basin, "ablation": m.run_ablation}}[{case!r}](args, out)
"""


def prototype(dir_: Path, out: Path, repeat: int) -> dict:
    """The prototype's basin map (2 arms) and ablation (its METHODS, 2 games), per arm."""
    exp = str(dir_ / "experiments")
    sys.path.insert(0, exp)
    try:
        import run_meta_mapg_experiments as m  # noqa: F401 - only for its arm count
        n_ablation_arms = len(m.METHODS)
    finally:
        sys.path.remove(exp)
    res = {}
    for case, arms in (("basin", 2), ("ablation", n_ablation_arms)):
        code = PROTO_DRIVER.format(exp=exp, out=str(out / f"proto_{case}"), case=case)
        med, runs = median_of(lambda: wall_s([sys.executable, "-c", code]), repeat)
        res[case] = {"median_s": med, "runs_s": runs, "arms": arms, "per_arm_s": med / arms}
        print(f"prototype {case:<10} {med:8.2f} s  ({arms} arms)", flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prototype", type=Path, default=None,
                    help="checkout of guernicastars/Meta-MAPG-R to time side by side")
    ap.add_argument("--prototype-repeat", type=int, default=1,
                    help="runs of each prototype case (its ablation takes minutes)")
    ap.add_argument("--out", type=Path,
                    default=Path("benchmarks/results/tabular_process.json"))
    args = ap.parse_args()
    if args.prototype is not None and not (args.prototype / "experiments" /
                                           "run_meta_mapg_experiments.py").is_file():
        ap.error(f"--prototype {args.prototype}: no experiments/run_meta_mapg_experiments.py "
                 "there; give a checkout of guernicastars/Meta-MAPG-R.")
    all_cores = str(os.cpu_count() or 1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, argv in cases(out).items():
            wall_s(argv)  # warm-up: numba cache, page cache
            quiet, q_runs = median_of(lambda: wall_s(argv), args.repeat)
            with Busy():
                loaded, l_runs = median_of(lambda: wall_s(argv), args.repeat)
                env = dict(os.environ, METAMAPG_THREADS=all_cores)
                loaded_all, la_runs = median_of(lambda: wall_s(argv, env), args.repeat)
            row = {"quiet_s": quiet, "loaded_s": loaded, "load_ratio": loaded / quiet,
                   f"loaded_threads_{all_cores}_s": loaded_all,
                   f"load_ratio_threads_{all_cores}": loaded_all / quiet,
                   "runs_s": {"quiet": q_runs, "loaded": l_runs,
                              f"loaded_threads_{all_cores}": la_runs}}
            if name != "help":
                row["compute_s"] = compute_s(name)
            results[name] = row
            print(f"{name:<14} quiet {quiet:6.2f} s  loaded {loaded:6.2f} s "
                  f"(x{loaded / quiet:.2f}; {all_cores} threads: x{loaded_all / quiet:.2f})"
                  + (f"  compute {row['compute_s']:.2f} s" if "compute_s" in row else ""),
                  flush=True)
        proto = (prototype(args.prototype, out, args.prototype_repeat) if args.prototype
                 else None)
    met = {f"{k}_quiet_s": results[k]["quiet_s"] <= v for k, v in GOALS_S.items()}
    met.update({f"{k}_compute_s": results[k]["compute_s"] <= v
                for k, v in GOAL_COMPUTE_S.items()})
    met.update({f"{k}_load_ratio": r["load_ratio"] <= GOAL_LOAD_RATIO
                for k, r in results.items()})
    doc = {"benchmark": "tabular_process", "version": __version__,
           "python": platform.python_version(), "cpu_count": os.cpu_count(),
           "arms": ARMS, "repeat": args.repeat, "goals_s": GOALS_S,
           "goals_compute_s": GOAL_COMPUTE_S, "goal_load_ratio": GOAL_LOAD_RATIO,
           "results": results, "met": met}
    if proto:
        ours = {"basin": results["basin_sampled"]["quiet_s"] / len(ARMS),
                "ablation": results["ablation"]["quiet_s"] / len(ARMS)}
        doc["prototype"] = proto
        doc["per_arm_speedup_vs_prototype"] = {k: proto[k]["per_arm_s"] / ours[k]
                                               for k in ours}
        print("per-arm speed-up vs the prototype (whole process):",
              {k: round(v, 1) for k, v in doc["per_arm_speedup_vs_prototype"].items()})
    atomic.write_json(args.out, doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
