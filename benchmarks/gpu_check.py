"""The GPU path in one command (``make gpu-check``): every method's learner on CUDA
against the CPU, ``critic_lr``'s two optimizers through a checkpoint, a paired sweep
on fractional GPUs, and learner throughput CPU vs GPU.

Without CUDA it says so, runs the CPU half of every check (what CI runs) and exits 0.
``--device cpu`` runs the device half on the CPU as well, so the comparisons
themselves run (and must come out exact) where there is no GPU.

Checks, one line each:

* ``parity/<case>``: one learner update of each method (``meta_mapg`` with both
  estimators, ``matrl``, ``peer_only+ma_props``) from the same seed on the same
  batch (the 12-round IPD, 21 vector envs x 12 steps), on the CPU and on the device.
  Compared: the initial weights (must be bit-equal), Meta-MAPG's own and peer
  corrections, the gradient the optimizer applies (PPO's plus the corrections, after
  clipping) and the weights after the step.  One epoch of one minibatch, because one
  step's difference is rounding; after several Adam steps the two runs drift apart
  by amounts that say nothing about correctness.  Tolerance: relative L2 error
  <= ``TOLERANCE`` (1e-4).  float32 sums of a few hundred terms in another order
  (cuBLAS against MKL) differ by ~1e-6 relative; an error in the port (a column on
  the wrong device, a scatter that drops rows, an optimizer bound to stale
  parameters) is of order 1.
* ``critic_lr``: a learner with ``critic_lr`` on the device keeps two optimizers at
  their two rates; its checkpoint restores on the device and onto the CPU with equal
  optimizer state, and the next update from each agrees to the same tolerance.
* ``sweep``: ``metamapg sweep`` with ``--gpus-per-trial 0.33`` (12 trials of 4 arms
  x 3 seeds on the Stag Hunt smoke example; one GPU runs 3 at a time): every trial
  finishes and every trial's initial-weights digest equals the CPU's for its seed.
* ``throughput/<env>``: learner update time (App. E.1: 4 epochs x minibatch 256) of
  ``ippo`` and ``meta_mapg`` on the CPU and the device, at App. E.1's batch on MPE
  simple_spread and Overcooked, and at a large batch (8192 steps, minibatch 2048).

Usage: python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check.json]
       [--device auto|cuda|cpu] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4
IPD = {"game": "ipd", "rounds": 12}
PARITY_CASES = {  # name -> (arm, extra training settings)
    "meta_mapg/trajectory": ("meta_mapg", {"correction_estimator": "trajectory"}),
    "meta_mapg/per_step": ("meta_mapg", {"correction_estimator": "per_step"}),
    "matrl": ("matrl", {}),
    "peer_only+ma_props": ("peer_only+ma_props", {}),
}
SWEEP_ARMS = "ippo,meta_mapg,matrl,peer_only+ma_props"


def rel_error(a: List[torch.Tensor], b: List[torch.Tensor]) -> float:
    """``||a - b|| / ||a||`` over the concatenated tensors (b moved to a's device).

    Infinite when the shapes differ or b is not finite; 0 for two exact zeros."""
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return float("inf")
    fa = torch.cat([x.detach().double().cpu().reshape(-1) for x in a])
    fb = torch.cat([y.detach().double().cpu().reshape(-1) for y in b])
    if not torch.isfinite(fb).all():
        return float("inf")
    diff = float((fa - fb).norm())
    scale = float(fa.norm())
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def compare(name: str, reference: Dict[str, List[torch.Tensor]],
            other: Dict[str, List[torch.Tensor]], tol: float = TOLERANCE) -> Dict[str, Any]:
    """Relative errors of every quantity in ``reference``; ``ok`` when all <= ``tol``."""
    errors = {k: rel_error(reference[k], other.get(k, [])) for k in reference}
    return {"check": name, "errors": errors, "tolerance": tol,
            "ok": all(e <= tol for e in errors.values())}


# ----------------------------------------------------------------------------------
# Building learners
# ----------------------------------------------------------------------------------

def on_device(config, device: str):
    """``config`` with its (local) learner on ``device``."""
    return config.learners(num_learners=0, num_gpus_per_learner=1 if device == "cuda" else 0)


def ipd_config(arm: str, extra: Dict[str, Any], envs: int, seed: int = 0):
    from rllib_metamapg.rllib_base.algorithm import arm_config

    batch = envs * IPD["rounds"]
    return (arm_config(arm, "matrix_game", {"env_config": dict(IPD)})
            .training(train_batch_size_per_learner=batch, minibatch_size=batch,
                      num_epochs=1, **extra)
            .rl_module(model_config={"fcnet_hiddens": [64, 64]})
            .env_runners(num_env_runners=0, num_envs_per_env_runner=envs,
                         rollout_fragment_length=IPD["rounds"])
            .debugging(seed=seed))


def learner_of(algo):
    return algo.learner_group._learner


def weights(learner) -> List[torch.Tensor]:
    return [p.detach().clone() for mid in sorted(learner.module.keys())
            for p in learner.module[mid].parameters()]


def update(learner, episodes, batch: int, epochs: int = 1, minibatch: Optional[int] = None,
           record: Optional[List[Dict[str, torch.Tensor]]] = None):
    """One ``learner.update`` on a deep copy of ``episodes``; the gradients it applies
    are appended to ``record`` (a copy, in the learner's parameter order)."""
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

    if record is not None:
        apply = type(learner).apply_gradients

        def recording(gradients_dict):
            record.append([g.detach().clone() for g in gradients_dict.values()])
            return apply(learner, gradients_dict)
        learner.apply_gradients = recording
    try:
        learner.update(episodes=copy.deepcopy(episodes),
                       timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: batch},
                       num_epochs=epochs, minibatch_size=minibatch or batch)
    finally:
        learner.__dict__.pop("apply_gradients", None)
    if learner._device.type == "cuda":
        torch.cuda.synchronize()


def _corrections(learner) -> Dict[str, List[torch.Tensor]]:
    last = getattr(learner, "last_corrections", lambda: {})()
    out = {}
    for mid in sorted(last):
        for term in ("own", "peer"):
            vecs = getattr(last[mid], term)
            if vecs is not None:
                out[f"{term} correction ({mid})"] = list(vecs)
    return out


def parity_run(arm: str, extra: Dict[str, Any], device: str, envs: int, episodes=None):
    """``(quantities, episodes)``: initial weights, corrections, applied gradient and
    the weights after one update of ``arm`` on ``device`` (``episodes`` sampled on the
    CPU when not given)."""
    algo = on_device(ipd_config(arm, extra, envs), device).build_algo()
    try:
        learner = learner_of(algo)
        batch = envs * IPD["rounds"]
        if episodes is None:
            episodes = algo.env_runner.sample(num_timesteps=batch, random_actions=False)
        out = {"initial weights": weights(learner)}
        grads: List[List[torch.Tensor]] = []
        update(learner, episodes, batch, record=grads)
        out.update(_corrections(learner))
        out["applied gradient"] = grads[-1]
        out["weights after the update"] = weights(learner)
        return out, episodes
    finally:
        algo.stop()


def check_parity(device: str, envs: int) -> List[Dict[str, Any]]:
    rows = []
    for name, (arm, extra) in PARITY_CASES.items():
        cpu, episodes = parity_run(arm, extra, "cpu", envs)
        row = {"check": f"parity/{name}", "ran_on": ["cpu"]}
        if device:
            other, _ = parity_run(arm, extra, device, envs, episodes)
            row = compare(f"parity/{name}", cpu, other)
            row["ran_on"] = ["cpu", device]
            # Exactly equal, not within tolerance: both start from the CPU's RNG.
            row["initial weights equal"] = row["errors"].pop("initial weights") == 0.0
            row["ok"] = row["ok"] and row["initial weights equal"]
        else:
            row["ok"] = all(torch.isfinite(torch.cat([t.reshape(-1) for t in v])).all()
                            for v in cpu.values())
        if arm != "matrl" and not any("peer" in k for k in cpu):
            row["ok"], row["error"] = False, "no peer correction was computed"
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------
# critic_lr's two optimizers through a checkpoint
# ----------------------------------------------------------------------------------

def _optimizer_state(learner) -> Dict[str, List[torch.Tensor]]:
    out = {}
    for name, optim in sorted(learner._named_optimizers.items()):
        tensors = [v for state in optim.state.values() for v in state.values()
                   if torch.is_tensor(v)]
        out[f"optimizer {name}"] = tensors
    return out


def _lrs(learner) -> Dict[str, List[float]]:
    return {name: [g["lr"] for g in optim.param_groups]
            for name, optim in sorted(learner._named_optimizers.items())}


def check_critic_lr(device: str, envs: int) -> Dict[str, Any]:
    """One update with critic_lr on the device, saved; restored on the device and on
    the CPU; the next update from each compared."""
    dev = device or "cpu"
    extra = {"critic_lr": 1e-3, "lr": 3e-4}

    def build(d):
        return on_device(ipd_config("meta_mapg", extra, envs), d).build_algo()

    batch = envs * IPD["rounds"]
    first = build(dev)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            learner = learner_of(first)
            episodes = first.env_runner.sample(num_timesteps=batch, random_actions=False)
            update(learner, episodes, batch)
            lrs = _lrs(learner)
            saved = {**_optimizer_state(learner), "weights": weights(learner)}
            learner.save_to_path(tmp)
        finally:
            first.stop()
        after = {}
        for d in ([dev, "cpu"] if dev != "cpu" else ["cpu"]):
            algo = build(d)
            try:
                restored = learner_of(algo)
                restored.restore_from_path(tmp)
                state = {**_optimizer_state(restored), "weights": weights(restored)}
                restored_ok = compare("", saved, state, tol=0.0)
                update(restored, episodes, batch)
                after[d] = (restored_ok, weights(restored), _lrs(restored))
            finally:
                algo.stop()
    # Each module has the actor's optimizer at lr and the critic's at critic_lr.
    rates = sorted({round(r, 12) for v in lrs.values() for r in v})
    row = {"check": "critic_lr", "ran_on": sorted(after), "optimizers": lrs,
           "rates": rates, "tolerance": TOLERANCE,
           "restored exactly": {d: v[0]["ok"] for d, v in after.items()},
           "rates after restore": {d: v[2] == lrs for d, v in after.items()}}
    row["ok"] = (rates == [3e-4, 1e-3]
                 and len(lrs) == 2 * len(learner.module.keys())
                 and all(row["restored exactly"].values())
                 and all(row["rates after restore"].values()))
    if dev != "cpu":
        err = rel_error(after["cpu"][1], after[dev][1])
        row["next update, device vs cpu"] = err
        row["ok"] = row["ok"] and err <= TOLERANCE
    return row


# ----------------------------------------------------------------------------------
# A paired sweep on fractional GPUs
# ----------------------------------------------------------------------------------

def cpu_digest(seed: int) -> str:
    """The initial-weights digest of the Stag Hunt smoke example's ``ippo`` at
    ``seed``, built here on the CPU."""
    from rllib_metamapg import tuned_examples
    from rllib_metamapg.callbacks.initial_weights_callback import weights_digest
    from rllib_metamapg.rllib_experiments import build_config

    _, exp = tuned_examples.experiment("stag_hunt", "ippo", smoke=True)
    cfg = build_config(exp["env"], {**exp["config"], "seed": seed}, "gpu_check", exp["run"])
    algo = on_device(cfg, "cpu").build_algo()
    try:
        return weights_digest(algo.learner_group.get_weights())
    finally:
        algo.stop()


def check_sweep(device: str, seeds: str, arms: str, concurrent: int) -> Dict[str, Any]:
    gpus = 0.33 if device == "cuda" else 0.0
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "rllib_metamapg.cli", "sweep", "--env", "stag_hunt",
               "--smoke", "--arms", arms, "--seeds", seeds, "--gpus-per-trial", str(gpus),
               "--max-concurrent", str(concurrent), "--storage-path", tmp,
               "--name", "gpu_check", "--quiet", "--progress-every", "0"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t
        trials = []
        for result in sorted((Path(tmp) / "gpu_check").glob("*/result.json")):
            params = json.loads((result.parent / "params.json").read_text())
            last = json.loads(result.read_text().splitlines()[-1])
            trials.append({"arm": params["arm"], "seed": params["seed"],
                           "iterations": last["training_iteration"],
                           "gpus_per_learner": params.get("num_gpus_per_learner"),
                           "digest": last["metamapg_init"]["weights_sha256"]})
    want = len(arms.split(",")) * len(seeds.split(","))
    expected = {s: cpu_digest(s) for s in sorted({t["seed"] for t in trials})}
    row = {"check": "sweep", "command": " ".join(cmd[1:]).replace(tmp, "<tmp>"),
           "gpus_per_trial": gpus, "trials": len(trials), "expected_trials": want,
           "wall_s": wall, "returncode": proc.returncode,
           "finished": sum(t["iterations"] >= 4 for t in trials),
           "digests_equal_cpu": all(t["digest"] == expected[t["seed"]] for t in trials)}
    row["ok"] = (proc.returncode == 0 and row["trials"] == want
                 and row["finished"] == want and row["digests_equal_cpu"]
                 and all(t["gpus_per_learner"] == gpus for t in trials))
    if proc.returncode:
        row["output_tail"] = (proc.stdout + proc.stderr)[-2000:]
    return row


# ----------------------------------------------------------------------------------
# Learner throughput, CPU vs device
# ----------------------------------------------------------------------------------

THROUGHPUT_CASES = {  # check name -> (env, settings on top of its tuned example)
    "mpe_simple_spread-batch256": ("mpe_simple_spread", {}),  # App. E.1's
    "overcooked_forced_coordination-batch400": ("overcooked_forced_coordination", {}),
    "mpe_simple_spread-batch8192": (
        "mpe_simple_spread", {"train_batch_size_per_learner": 8192, "minibatch_size": 2048}),
}
QUICK_THROUGHPUT = {"ipd-batch252": ("ipd", {})}
THROUGHPUT_ARMS = ("ippo", "meta_mapg")


def tuned_config(env: str, arm: str, settings: Dict[str, Any]):
    from rllib_metamapg import tuned_examples
    from rllib_metamapg.rllib_experiments import build_config

    _, exp = tuned_examples.experiment(env, arm)
    config = {**exp["config"], **settings, "evaluation_interval": None}
    return build_config(exp["env"], config, "gpu_check", exp["run"])


def check_throughput(devices: List[str], cases: Dict[str, Any], repeat: int):
    from rllib_metamapg.errors import UsageError

    rows = []
    for name, (env, settings) in cases.items():
        row = {"check": f"throughput/{name}", "ran_on": devices}
        try:
            sampler = on_device(tuned_config(env, "ippo", settings), "cpu").build_algo()
        except UsageError as err:  # the env's optional package is not installed
            rows.append({**row, "ok": True, "skipped": str(err).splitlines()[0]})
            continue
        try:
            cfg = sampler.config
            batch = cfg.train_batch_size_per_learner
            episodes = sampler.env_runner.sample(num_timesteps=batch, random_actions=False)
        finally:
            sampler.stop()
        row.update({"batch": batch, "minibatch": cfg.minibatch_size, "epochs": cfg.num_epochs,
                    "median_update_s": {}})
        for device in devices:
            for arm in THROUGHPUT_ARMS:
                algo = on_device(tuned_config(env, arm, settings), device).build_algo()
                try:
                    times = []
                    for _ in range(repeat + 1):  # the first warms up (CUDA kernels, caches)
                        t = time.perf_counter()
                        update(learner_of(algo), episodes, batch, cfg.num_epochs,
                               cfg.minibatch_size)
                        times.append(time.perf_counter() - t)
                finally:
                    algo.stop()
                row["median_update_s"][f"{arm}/{device}"] = statistics.median(times[1:])
        med = row["median_update_s"]
        row["learner_steps_per_s"] = {k: batch / v for k, v in med.items()}
        if len(devices) > 1:
            row["speedup_over_cpu"] = {arm: med[f"{arm}/cpu"] / med[f"{arm}/{devices[1]}"]
                                       for arm in THROUGHPUT_ARMS}
        row["ok"] = all(np.isfinite(v) and v > 0 for v in med.values())
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------

def line(row: Dict[str, Any]) -> str:
    """One printed line per check."""
    head = f"{'PASS' if row['ok'] else 'FAIL'}  {row['check']:<46}"
    if "skipped" in row:
        return f"SKIP  {row['check']:<46} {row['skipped']}"
    if "errors" in row:
        worst = max(row["errors"].values()) if row["errors"] else 0.0
        return f"{head} worst rel. error {worst:.1e} (tol {row['tolerance']:g}) on " \
               f"{'/'.join(row['ran_on'])}"
    if row["check"] == "critic_lr":
        extra = (f", next update device vs cpu {row['next update, device vs cpu']:.1e}"
                 if "next update, device vs cpu" in row else "")
        return f"{head} rates {row['rates']}, restored on {'/'.join(row['ran_on'])}{extra}"
    if row["check"] == "sweep":
        return (f"{head} {row['finished']}/{row['expected_trials']} trials at "
                f"{row['gpus_per_trial']:g} GPU, digests equal the CPU's: "
                f"{row['digests_equal_cpu']} ({row['wall_s']:.0f} s)")
    if "median_update_s" in row:
        return f"{head} " + ", ".join(f"{k} {v:.3f} s" for k, v in
                                      row["median_update_s"].items())
    return f"{head} computed on {'/'.join(row.get('ran_on', []))}"


def status(out: Dict[str, Any]) -> str:
    """What the run verified, in one sentence (cluster/README.md renders it)."""
    passed = sum(r["ok"] for r in out["checks"])
    if out["device_half"] == "cuda":
        return (f"verified on {out['gpu']} (torch {out['torch']}, CUDA {torch.version.cuda}): "
                f"{passed} of {len(out['checks'])} checks passed")
    why = ("the machine that ran it had no CUDA device, so only the CPU half ran"
           if out["device_half"] is None else "its device half ran on the CPU (--device cpu)")
    return (f"not verified on a GPU: {why} ({passed} of {len(out['checks'])} checks "
            "passed there)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/gpu_check.json")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                    help="the device half: auto = CUDA where there is one, else none "
                         "(the CPU half only); cpu = run the comparisons CPU vs CPU")
    ap.add_argument("--quick", action="store_true",
                    help="CI size: small batches, a 2-trial sweep, throughput on the IPD")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    import ray

    from rllib_metamapg import __version__, atomic, quiet

    cuda = torch.cuda.is_available()
    if args.device == "cuda" and not cuda:
        print("--device cuda: torch sees no CUDA device here "
              f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
              "run without --device for the CPU half.", file=sys.stderr)
        return 2
    device = {"auto": "cuda" if cuda else None, "cuda": "cuda", "cpu": "cpu"}[args.device]
    if device is None:
        print("No CUDA device (torch.cuda.is_available() is False): running the CPU half "
              "only; nothing here is checked on a GPU.", flush=True)
    envs = 4 if args.quick else 21
    quiet.drop_noise()
    # One Ray for the in-process checks; the sweep starts its own, as a user's does.
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    rows: List[Dict[str, Any]] = []

    def run(fn: Callable[[], Any]):
        for row in (lambda r: r if isinstance(r, list) else [r])(fn()):
            rows.append(row)
            print(line(row), flush=True)

    t0 = time.perf_counter()
    try:
        run(lambda: check_parity(device, envs))
        run(lambda: check_critic_lr(device, envs))
        if args.quick:
            run(lambda: check_sweep(device, "0", "ippo,meta_mapg", 2))
        else:
            run(lambda: check_sweep(device, "0,1,2", SWEEP_ARMS, 12))
        devices = ["cpu"] + ([device] if device and device != "cpu" else [])
        run(lambda: check_throughput(devices,
                                     QUICK_THROUGHPUT if args.quick else THROUGHPUT_CASES,
                                     1 if args.quick else args.repeat))
    finally:
        ray.shutdown()
    out = {"version": __version__, "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "torch": torch.__version__, "cuda_available": cuda,
           "gpu": torch.cuda.get_device_name(0) if cuda else None,
           "device_half": device, "quick": args.quick, "tolerance": TOLERANCE,
           "wall_s": time.perf_counter() - t0, "checks": rows,
           "ok": all(r["ok"] for r in rows)}
    out["status"] = status(out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, out)
    print(f"{'all checks passed' if out['ok'] else 'SOME CHECKS FAILED'} "
          f"({out['wall_s']:.0f} s); wrote {args.out}")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
