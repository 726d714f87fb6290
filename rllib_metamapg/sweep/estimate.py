"""What a sweep or study will cost before it runs: trials, env steps, wall time and
money on a named machine shape (``metamapg sweep --plan``, ``metamapg study --plan``).

Each trial's time is its training iterations times a measured time per iteration,
plus a measured per-trial overhead (building the algorithm, Tune's bookkeeping, the
trial's share of start-up).  The time per iteration comes, in this order, from:

1. a finished sweep of the same env and arm with the same per-iteration settings
   (``--calibrate SWEEP_DIR``, e.g. a pilot at a fraction of the budget): its trials'
   own training seconds per iteration, evaluations included at their real rate;
2. the env-throughput benchmark (``benchmarks/results/envs.json``: env steps per
   second of ``ippo`` and ``meta_mapg`` at each env's tuned settings), evaluation
   priced as that many more env steps.  Arms it did not measure take the nearest
   measured arm, and the plan says so.

The overhead comes from the calibration sweep (its wall time times its slots, less
its trials' training time, per trial) or else the sweep benchmark
(``benchmarks/results/sweep.json``).  A machine shape runs as many trials at once
as its CPUs (and GPUs) allow, each as fast as one measured here; money is the
shape's on-demand list price.  Every assumption is printed with the plan.  Ray-free.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rllib_metamapg.errors import UsageError

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
# Settings that change the time of one iteration; a calibration must share them.
PER_ITERATION_KEYS = ("train_batch_size_per_learner", "minibatch_size", "num_epochs",
                      "num_envs_per_env_runner", "num_env_runners", "evaluation_interval",
                      "evaluation_duration", "evaluation_duration_unit", "env_config",
                      "model_config", "sampler", "behaviour")


@dataclass(frozen=True)
class Shape:
    """Where a sweep could run.  Prices: AWS on-demand list prices, us-east-1
    (cluster/README.md, "Costs"); check current prices before relying on them."""

    name: str
    description: str
    nodes: int
    cpus_per_node: int
    gpus_per_node: int = 0
    node_usd_per_h: Optional[float] = None
    head_usd_per_h: float = 0.0


def shapes(nodes: Optional[int] = None) -> Dict[str, Shape]:
    """The shapes the plan prices; ``nodes`` replaces each cluster's worker count."""
    here = os.cpu_count() or 1
    return {
        "here": Shape("here", f"this machine ({here} CPUs)", 1, here),
        # cluster/aws-cpu.yaml: c6i.8xlarge workers (32 vCPU), max_workers 3.
        "aws-cpu": Shape("aws-cpu", "cluster/aws-cpu.yaml: c6i.8xlarge workers",
                         nodes or 3, 32, 0, 1.36, 0.38),
        # cluster/aws-gpu.yaml: g5.12xlarge workers (48 vCPU, 4 GPUs), max_workers 2.
        "aws-gpu": Shape("aws-gpu", "cluster/aws-gpu.yaml: g5.12xlarge workers",
                         nodes or 2, 48, 4, 5.67, 0.38),
        # cluster/kuberay/raycluster.yaml: GPU worker pods (26 CPUs, 4 GPUs), up to 2.
        "kuberay": Shape("kuberay", "cluster/kuberay: GPU worker pods (price: your "
                         "provider's)", nodes or 2, 26, 4),
    }


@dataclass
class Rates:
    """Measured times the plan prices trials with, and where each came from."""

    iteration_s: Dict[Tuple[str, str], Tuple[float, str]]
    steps_per_s: Dict[Tuple[str, str], float]
    overhead_s: float
    overhead_source: str
    fixed_s: float


def _read(name: str) -> Dict[str, Any]:
    file = RESULTS / name
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


def _per_iteration(config: Dict[str, Any]) -> Dict[str, Any]:
    return {k: config.get(k) for k in PER_ITERATION_KEYS}


def load_rates(calibrate: Sequence[str] = (), plans: Sequence[Any] = ()) -> Rates:
    """Rates from the benchmarks, refined by finished sweeps (``calibrate``) whose
    arms ran with the planned per-iteration settings."""
    from rllib_metamapg.report.load import ReportError, load_sweep

    envs = _read("envs.json")
    steps = {(r["env"], r["arm"]): float(r["train_env_steps_per_s"])
             for r in envs.get("rows", []) if r.get("env_runners") == 0}
    bench = _read("sweep.json").get("envs", {})
    reused = [e["reused"] for e in bench.values() if "reused" in e]
    builds = [e["in_process"]["build_s_mean"] for e in bench.values() if "in_process" in e]
    overhead = (sum(r["overhead_per_trial_s"] for r in reused) / len(reused)
                + sum(builds) / len(builds)) if reused and builds else 3.0
    source = ("benchmarks/results/sweep.json (build + per-trial overhead, mean of "
              f"{len(reused)} envs)" if reused else "assumed 3 s (no sweep benchmark found)")
    fixed = sum(r["fixed_s"] for r in reused) / len(reused) if reused else 20.0
    rates = Rates({}, steps, overhead, source, fixed)
    planned = {(p.spec.env, arm): _per_iteration(c)
               for p in plans for arm, c in p.metadata["arm_configs"].items()}
    # A calibration also prices the planned envs of its env's class (one-shot matrix
    # games differ only in payoffs) when the per-iteration settings are the same.
    same_class = {}
    for env, arm in planned:
        same_class.setdefault(_bench_env(env, rates)[0], set()).add(env)
    spent, counted = 0.0, 0
    for path in calibrate:
        try:
            sweep = load_sweep(path)
        except ReportError as err:
            raise UsageError(f"--calibrate {path}: {err}") from None
        env, meta = sweep.metadata["env"], sweep.metadata
        done = [t for t in sweep.trials if t.complete and t.last_iteration and t.train_s]
        for arm in {t.arm for t in done}:
            mine = [t for t in done if t.arm == arm]
            per = sum(t.train_s / t.last_iteration for t in mine) / len(mine)
            for target in sorted(same_class.get(_bench_env(env, rates)[0], ())):
                if planned.get((target, arm)) != _per_iteration(meta["arm_configs"][arm]):
                    continue  # another arm, or other per-iteration settings
                if (target, arm) not in rates.iteration_s or target == env:
                    rates.iteration_s[(target, arm)] = (per, env)
        starts = [t.started_at for t in done if t.started_at]
        ends = [t.ended_at for t in done if t.ended_at]
        if len(done) >= 2 and starts and ends:
            slots = min(int(meta["spec"].get("max_concurrent") or 1), len(done))
            spent += (max(ends) - min(starts)) * slots - sum(t.train_s for t in done)
            counted += len(done)
    if counted:
        rates.overhead_s = max(0.0, spent / counted)
        rates.overhead_source = f"the calibration sweeps ({counted} trials)"
    return rates


def _bench_arm(arm: str, measured: Sequence[str]) -> Tuple[str, str]:
    """The measured arm whose speed ``arm`` is priced at, and a note when assumed: the
    arm itself; else a measured arm of its method (one that is not the reference arm,
    which skips the method's own terms, unless ``arm`` is the reference); else the
    reference arm."""
    from rllib_metamapg import registry

    spec, ref = registry.get_arm(arm), registry.reference_arm()
    if spec.name in measured and spec.sampler == "on_policy":
        return spec.name, ""
    same = []
    for name in measured:
        try:
            other = registry.get_arm(name)
        except registry.RegistryError:
            continue  # a benchmark row that is not an arm (RLlib's own PPO)
        if other.method == spec.method and (other.name != ref) == (spec.name != ref):
            same.append(other.name)
    if same and spec.sampler == "on_policy":
        return same[0], ""
    near = same[0] if same else ref
    return near, f"{arm}: not in the throughput benchmark; priced as {near}"


def _bench_env(env: str, rates: Rates) -> Tuple[Optional[str], str]:
    from rllib_metamapg.envs import MATRIX_GAMES, fixed_episode_length

    measured = {e for e, _ in rates.steps_per_s}
    if env not in measured and env in MATRIX_GAMES and fixed_episode_length(env) == 1:
        return "stag_hunt", f"{env}: priced as stag_hunt (one-shot 2-player matrix game)"
    return env, ""


def trial_seconds(plan: Any, arm: str, rates: Rates) -> Tuple[float, List[str]]:
    """Estimated seconds of one trial of ``arm`` in ``plan``, and the assumptions."""
    from rllib_metamapg.envs import fixed_episode_length

    env, config = plan.spec.env, plan.metadata["arm_configs"][arm]
    iterations = plan.stop_iterations
    if (env, arm) in rates.iteration_s:
        per, _ = rates.iteration_s[(env, arm)]
        return iterations * per + rates.overhead_s, []
    notes = []
    bench_env, note = _bench_env(env, rates)
    bench_arm, arm_note = _bench_arm(
        arm, sorted(a for e, a in rates.steps_per_s if e == bench_env))
    notes += [n for n in (note, arm_note) if n]
    speed = rates.steps_per_s.get((bench_env, bench_arm))
    if speed is None:
        raise UsageError(f"no measured speed for env {env!r}: run `python benchmarks/envs.py "
                         f"--envs {env} --update` (writes benchmarks/results/envs.json), or "
                         "calibrate with a small finished sweep of the same settings "
                         "(--calibrate SWEEP_DIR, e.g. a pilot with --seeds 0 and a short "
                         "budget).")
    batch = int(config.get("train_batch_size_per_learner") or 4000)
    steps = iterations * batch
    evaluations = iterations // plan.evaluation_interval if plan.evaluation_interval else 0
    per_eval = int(config.get("evaluation_duration") or 10)
    if config.get("evaluation_duration_unit", "episodes") == "episodes":
        length = fixed_episode_length(env, config.get("env_config"))
        if length is None:
            notes.append(f"{env}: episode length varies; evaluation not priced")
            per_eval = 0
        else:
            per_eval *= length
    return (steps + evaluations * per_eval) / speed + rates.overhead_s, notes


def estimate(plans: Sequence[Any], rates: Rates) -> Dict[str, Any]:
    """Per sweep: trials, env steps and trial-seconds (each trial on one slot)."""
    sweeps, notes = [], []
    for plan in plans:
        seeds = len(plan.spec.seeds)
        per_arm = {}
        for arm in plan.spec.arms:
            seconds, said = trial_seconds(plan, arm, rates)
            per_arm[arm] = seconds
            notes += [n for n in said if n not in notes]
        batch = {a: int(c.get("train_batch_size_per_learner") or 4000)
                 for a, c in plan.metadata["arm_configs"].items()}
        sweeps.append({
            "name": plan.name, "env": plan.spec.env, "trials": len(plan.spec.arms) * seeds,
            "env_steps": sum(plan.stop_iterations * batch[a] for a in plan.spec.arms) * seeds,
            "trial_s": dict(per_arm),
            "trial_s_total": sum(per_arm.values()) * seeds,
            "longest_trial_s": max(per_arm.values()),
            "calibrated_arms": sorted(a for a in plan.spec.arms
                                      if (plan.spec.env, a) in rates.iteration_s)})
        sources = {rates.iteration_s[(plan.spec.env, a)][1] for a in sweeps[-1]["calibrated_arms"]}
        note = (f"{plan.spec.env}: time per iteration measured on "
                f"{', '.join(sorted(sources))} (same settings, same kind of env)")
        if sources - {plan.spec.env} and note not in notes:
            notes.append(note)
    notes.append(f"per-trial overhead {rates.overhead_s:.1f} s from {rates.overhead_source}; "
                 f"{rates.fixed_s:.0f} s per sweep to start Ray and Tune")
    return {"sweeps": sweeps, "notes": notes,
            "trials": sum(s["trials"] for s in sweeps),
            "env_steps": sum(s["env_steps"] for s in sweeps),
            "trial_hours": sum(s["trial_s_total"] for s in sweeps) / 3600,
            "fixed_s": rates.fixed_s}


def on_shape(doc: Dict[str, Any], shape: Shape, cpus_per_trial: float,
             gpus_per_trial: float, max_concurrent: Optional[int]) -> Dict[str, Any]:
    """Wall time and cost of the estimated sweeps on ``shape``, run one after another."""
    per_node = int(shape.cpus_per_node // cpus_per_trial)
    if gpus_per_trial > 0:
        per_node = min(per_node, int(shape.gpus_per_node / gpus_per_trial + 1e-9))
    if per_node < 1:
        return {"shape": shape.name, "fits": False, "slots": 0,
                "why": f"a trial needs {cpus_per_trial:g} CPUs and {gpus_per_trial:g} GPUs; "
                       f"a node has {shape.cpus_per_node} and {shape.gpus_per_node}"}
    slots = per_node * shape.nodes
    if max_concurrent:
        slots = min(slots, max_concurrent)
    wall = sum(doc["fixed_s"] + max(s["trial_s_total"] / slots, s["longest_trial_s"])
               for s in doc["sweeps"])
    nodes = math.ceil(slots / per_node)
    cost = None if shape.node_usd_per_h is None else (
        wall / 3600 * (nodes * shape.node_usd_per_h + shape.head_usd_per_h))
    return {"shape": shape.name, "description": shape.description, "fits": True,
            "slots": slots, "nodes": nodes, "wall_s": wall, "wall_h": wall / 3600,
            "usd": cost}


def plan_document(plans: Sequence[Any], *, calibrate: Sequence[str] = (),
                  shape_names: Sequence[str] = ("here", "aws-cpu", "aws-gpu", "kuberay"),
                  nodes: Optional[int] = None, cpus_per_trial: float = 1.0,
                  gpus_per_trial: float = 0.0,
                  max_concurrent: Optional[int] = None) -> Dict[str, Any]:
    """The whole plan: the estimate and its price on each named shape.  The study's or
    sweep's ``max_concurrent`` caps this machine only; a cluster runs every slot."""
    known = shapes(nodes)
    unknown = [s for s in shape_names if s not in known]
    if unknown:
        raise UsageError(f"--shape {unknown[0]!r} is not a shape the plan knows; choose from "
                         f"{sorted(known)}.")
    doc = estimate(plans, load_rates(calibrate, plans))
    doc["shapes"] = [on_shape(doc, known[s], cpus_per_trial, gpus_per_trial,
                              max_concurrent if s == "here" else None) for s in shape_names]
    return doc


def format_plan(doc: Dict[str, Any]) -> str:
    lines = [f"[metamapg plan] {doc['trials']:,} trials, {doc['env_steps']:,} env steps, "
             f"{doc['trial_hours']:.1f} trial-hours (one trial per slot)", "",
             "| sweep | trials | env steps | mean trial | calibrated arms |",
             "|---|---:|---:|---:|---|"]
    for s in doc["sweeps"]:
        mean = s["trial_s_total"] / max(1, s["trials"])
        lines.append(f"| {s['name']} | {s['trials']} | {s['env_steps']:,} | {mean:,.0f} s | "
                     f"{', '.join(s['calibrated_arms']) or '-'} |")
    lines += ["", "| shape | slots | nodes | wall time | cost (on-demand) |",
              "|---|---:|---:|---:|---:|"]
    for s in doc["shapes"]:
        if not s["fits"]:
            lines.append(f"| {s['shape']} | - | - | does not fit: {s['why']} | |")
            continue
        cost = "-" if s["usd"] is None else f"${s['usd']:,.0f}"
        lines.append(f"| {s['shape']} ({s['description']}) | {s['slots']} | {s['nodes']} | "
                     f"{s['wall_h']:,.1f} h | {cost} |")
    lines += ["", "Assumptions:"] + [f"- {n}" for n in doc["notes"]] + [
        "- a cluster slot trains as fast as one trial here; sweeps run one after another",
        "- prices: AWS on-demand list prices, us-east-1 (cluster/README.md); the head "
        "node included"]
    return "\n".join(lines)


def add_plan_arguments(p) -> None:
    """``--plan`` and its options, shared by ``metamapg sweep`` and ``metamapg study``."""
    g = p.add_argument_group("plan (price it before it runs; nothing is run)")
    g.add_argument("--plan", action="store_true",
                   help="print the number of trials, env steps, and the estimated wall time "
                        "and cost on each --shape, then exit without running anything")
    g.add_argument("--shape", default="here,aws-cpu,aws-gpu,kuberay",
                   help="shapes to price: 'here' (this machine) and the cluster/ configs "
                        "aws-cpu, aws-gpu, kuberay")
    g.add_argument("--nodes", type=int, default=None,
                   help="worker nodes of each cluster shape (default: its config's maximum)")
    g.add_argument("--calibrate", metavar="SWEEP_DIR", action="append", default=[],
                   help="a finished sweep of the same settings (e.g. a pilot) whose measured "
                        "time per iteration prices the plan; repeatable")
    g.add_argument("--plan-json", metavar="FILE", default=None,
                   help="also write the plan as JSON")


def print_plan(plans: Sequence[Any], args, *, cpus_per_trial: float = 1.0,
               gpus_per_trial: float = 0.0, max_concurrent: Optional[int] = None) -> int:
    """Prices ``plans`` as ``--plan`` and its options ask; returns the exit code."""
    from rllib_metamapg import atomic

    if args.nodes is not None and args.nodes < 1:
        raise UsageError(f"--nodes={args.nodes} must be at least 1.")
    names = [s.strip() for s in args.shape.split(",") if s.strip()]
    if not names:
        raise UsageError(f"--shape={args.shape!r} names no shape.")
    doc = plan_document(plans, calibrate=args.calibrate, shape_names=names, nodes=args.nodes,
                        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                        max_concurrent=max_concurrent)
    print(format_plan(doc), flush=True)
    if args.plan_json:
        atomic.write_json(Path(args.plan_json), doc)
    return 0
