"""Runs and resumes paired-seed sweeps with Ray Tune.

A sweep is one Tune experiment: trials = arms x seeds of one environment, at
most ``max_concurrent`` at once, each the algorithm of its arm's method (``MetaMAPG``,
``MATRL``, ...) with its own resources.  Beside Tune's own files the experiment folder holds
``metamapg_sweep.json`` (env, arms, seeds, tau, metric) for ``metamapg report``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from rllib_metamapg import resources
from rllib_metamapg.errors import UsageError
from rllib_metamapg.results import METADATA_FILE, metadata_differences
from rllib_metamapg.sweep.plan import (SweepPlan, SweepSpec,
                                        param_space_from_metadata, plan_sweep)
from rllib_metamapg.sweep.trainable import sweep_trainable

# Tune snapshots the experiment state at most this often; a resumed sweep can
# only skip what the last snapshot saw finish.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
# ... which is deliberate, so Tune need not warn about frequent state syncs.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def storage_location(path: str) -> str:
    """A local path made absolute (Tune needs that); a URI kept as it is."""
    return path.rstrip("/") if "://" in path else str(Path(path).expanduser().resolve())


def experiment_path(storage_path: str, name: str) -> str:
    """``storage_path/name`` as Tune will write it."""
    return storage_location(storage_path) + "/" + name


def _filesystem(path: str):
    import pyarrow.fs

    if "://" in path:
        return pyarrow.fs.FileSystem.from_uri(path)
    return pyarrow.fs.LocalFileSystem(), path


def write_metadata(path: str, metadata: Dict[str, Any]) -> None:
    """Writes the sweep metadata next to Tune's files (atomically for local paths)."""
    if "://" not in path:
        from rllib_metamapg.atomic import write_json

        write_json(Path(path) / METADATA_FILE, metadata)
        return
    fs, root = _filesystem(path)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{METADATA_FILE}") as f:  # object puts are atomic
        f.write((json.dumps(metadata, indent=2) + "\n").encode())


def read_metadata(path: str) -> Dict[str, Any]:
    """The ``metamapg_sweep.json`` of a sweep folder; a clear error if it is not one."""
    import pyarrow.fs

    fs, root = _filesystem(path)
    try:
        with fs.open_input_stream(f"{root}/{METADATA_FILE}") as f:
            return json.loads(f.read().decode())
    except (FileNotFoundError, OSError, pyarrow.ArrowException):
        raise UsageError(f"{path}: not a metamapg sweep folder (no {METADATA_FILE}); pass "
                         "the folder 'metamapg sweep' printed.") from None


def _is_experiment(path: str) -> bool:
    import pyarrow.fs

    fs, root = _filesystem(path)
    info = fs.get_file_info(f"{root}/{METADATA_FILE}")
    return info.type != pyarrow.fs.FileType.NotFound


@contextlib.contextmanager
def driver_lock(path: str) -> Iterator[None]:
    """Holds the sweep folder's lock while this driver writes it.

    Two drivers on one sweep (a ``--resume`` while the first still runs) would
    train seeds twice and write their rows twice; the second is refused.  The
    lock is an advisory ``flock`` on the folder itself (no file is added to it),
    which the kernel drops when the holder dies (SIGKILL included), so a killed
    driver never leaves a stale lock.  A sweep on a URI cannot be locked this
    way (object stores have no locks).
    """
    if "://" in path:
        yield
        return
    import fcntl

    folder = Path(path)
    made = [p for p in [folder, *folder.parents] if not p.exists()]  # ours to remove
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{path} is being written by another metamapg sweep that is "
                             "still running; wait for it to finish, or stop it (Ctrl-C or "
                             "SIGTERM; it saves its state) and then resume.") from None
        yield
    finally:
        os.close(fd)
        if made and not (folder / METADATA_FILE).exists():  # nothing started: no stub left
            for p in made:  # innermost first; a folder that is not empty stays
                try:
                    p.rmdir()
                except OSError:
                    break


_STARTED_LOCAL_RAY = False


def _init_ray(on_ray_started: Optional[Callable[[], None]] = None, ray_ui: bool = False) -> bool:
    """Starts or joins Ray; True when this process started a local instance.

    A local instance starts without Ray's dashboard unless ``ray_ui`` (as RLlib's
    own ``rllib train --ray-ui``): its eleven extra processes take seconds to start
    and CPU throughout, which on a small machine the trials pay.
    """
    global _STARTED_LOCAL_RAY
    import ray

    from rllib_metamapg.hash_seed import worker_runtime_env
    from rllib_metamapg.rllib_base.algorithm import register_all

    if not ray.is_initialized():
        common = {"log_to_driver": False, "runtime_env": worker_runtime_env()}
        if os.environ.get("RAY_ADDRESS"):
            ray.init(**common)  # a cluster, or the job's cluster
        else:
            # A fresh local instance (not whatever `ray start` left running): its
            # resources are all there will ever be, so the resource check is exact.
            ray.init(address="local", include_dashboard=ray_ui, **common)
            _STARTED_LOCAL_RAY = True
    if on_ray_started is not None:
        on_ray_started()
    register_all()
    return _STARTED_LOCAL_RAY


def shutdown_ray() -> None:
    """Stops the local Ray instance this process started (a cluster is left alone)."""
    global _STARTED_LOCAL_RAY
    if _STARTED_LOCAL_RAY:
        import ray

        ray.shutdown()
        _STARTED_LOCAL_RAY = False


def trial_request(spec: SweepSpec, arm_configs: Dict[str, Dict[str, Any]]):
    """RLlib's own resource request of each arm's trial: ``{arm: [bundle, ...]}``."""
    from rllib_metamapg.rllib_base.algorithm import arm_config

    out = {}
    for arm, cfg in arm_configs.items():
        config = {("_model_config" if k == "model_config" else k): v for k, v in cfg.items()}
        config.update(num_cpus_for_main_process=spec.cpus_per_trial,
                      num_gpus_per_learner=spec.gpus_per_trial)
        algo_config = arm_config(arm, spec.env, config)
        out[arm] = [dict(b) for b in
                    algo_config.algo_class.default_resource_request(algo_config).bundles]
    return out


def check_resources(spec: SweepSpec, arm_configs: Dict[str, Dict[str, Any]], *,
                    exact: bool, total: Optional[Dict[str, float]] = None) -> None:
    """Refuses a sweep whose trials can never be scheduled on this Ray cluster.

    Args:
        exact: The cluster cannot grow (a local instance this process started):
            a shortfall is refused.  Otherwise (a running cluster, which may
            autoscale) the sweep waits a bounded time for it to grow, saying what
            it waits for, and is refused when the wait runs out.
        total: Resources of a one-node cluster to check against instead of
            asking Ray (the pre-check before a local instance starts).
    """
    requests = trial_request(spec, arm_configs)
    if total is None:
        total, nodes = resources.cluster_state()
    else:
        nodes = [total]
    problems = [(arm, b) for arm, b in requests.items() if not resources.fits(b, total, nodes)]
    if not problems:
        return
    if not exact and resources.wait_for({f"each trial of arm {a!r}": b for a, b in problems},
                                        "metamapg sweep"):
        return
    have = {k: total.get(k, 0.0) for k in ("CPU", "GPU")}
    arm, bundles = problems[0]
    need = resources.total_need(bundles)
    text = (f"each trial needs {resources.fmt(need)} (arm {arm!r}: --cpus-per-trial "
            f"{spec.cpus_per_trial:g}, --gpus-per-trial {spec.gpus_per_trial:g}, plus its "
            f"env runners), but the Ray cluster has {resources.fmt(have)} in all")
    fix = ("use --gpus-per-trial 0 on a machine without GPUs" if need.get("GPU", 0.0) >
           have["GPU"] else "lower --cpus-per-trial or the tuned example's num_env_runners")
    where = ("no trial could ever start" if exact else
             f"the cluster did not grow within the wait ({resources.WAIT_ENV})")
    raise UsageError(f"{text}: {where}. Fix: {fix}, or run on a cluster that has them "
                     "(RAY_ADDRESS, or metamapg submit).")


def _precheck_local(spec: SweepSpec, arm_configs: Dict[str, Dict[str, Any]]) -> None:
    """The resource check before a local Ray starts (seconds sooner); exact after."""
    if not resources.will_start_local_ray():
        return
    total = resources.local_resources()
    if total is not None:
        check_resources(spec, arm_configs, exact=True, total=total)


def run_sweep(spec: SweepSpec, *, verbose: int = 1, progress_every_s: float = 30.0,
              resume_existing: bool = False, ray_ui: bool = False,
              on_ray_started: Optional[Callable[[], None]] = None,
              plan: Optional[SweepPlan] = None) -> Tuple[str, int]:
    """Runs a new sweep; returns ``(experiment folder, number of failed trials)``.

    Args:
        plan: ``plan_sweep(spec)`` when the caller has made it already (a study
            checks it against the sweep on disk first); made here otherwise.
        resume_existing: If the experiment folder already holds this same sweep,
            continue it (what a retried cluster job wants) instead of refusing.
        on_ray_started: Called once Ray runs (Ray's driver installs its own SIGTERM
            handler; the CLI puts its graceful one back here).
        ray_ui: Start Ray's dashboard with a local Ray instance.

    Raises:
        UsageError: Bad settings, or an existing sweep at the same place (resume it)
            or, with ``resume_existing``, a different sweep there.
    """
    if "://" not in spec.storage_path:  # before any work: a file in the way fails late
        from rllib_metamapg.atomic import check_output_dir

        check_output_dir(spec.storage_path, "--storage-path")
    if plan is None:
        plan = plan_sweep(spec)
    elif plan.spec != spec:
        raise ValueError("run_sweep: plan is not the plan of spec.")
    path = experiment_path(spec.storage_path, plan.name)
    with driver_lock(path):
        return _run_new(spec, plan, path, verbose, progress_every_s, resume_existing,
                        on_ray_started, ray_ui)


def _run_new(spec, plan, path, verbose, progress_every_s, resume_existing, on_ray_started,
             ray_ui):
    if _is_experiment(path):
        if not resume_existing:
            raise UsageError(f"{path} already holds a sweep; continue it with "
                             f"'metamapg sweep --resume {path}' or choose another --name.")
        differs = metadata_differences(read_metadata(path), plan.metadata)
        if differs:
            raise UsageError(f"{path} holds a different sweep ({', '.join(differs)} differ); "
                             "choose another --name.")
        return _resume(path, verbose, on_ray_started, ray_ui)
    from rllib_metamapg.envs.rollout import random_policy_score

    _precheck_local(spec, plan.metadata["arm_configs"])
    exact = _init_ray(on_ray_started, ray_ui)
    check_resources(spec, plan.metadata["arm_configs"], exact=exact)
    # What random play scores, for the report's trivial-tau check.
    plan.metadata["random_score"] = random_policy_score(spec.env, plan.env_spec.score)
    write_metadata(path, plan.metadata)
    tuner = _tuner(plan, verbose, progress_every_s)
    return path, _report(tuner.fit(), path)


def resume_sweep(path: str, *, verbose: int = 1,
                 on_ray_started: Optional[Callable[[], None]] = None,
                 ray_ui: bool = False) -> Tuple[str, int]:
    """Continues an interrupted sweep: finished trials stay, the rest resume or restart."""
    path = storage_location(path)
    read_metadata(path)  # the clear error for a folder that is not a sweep, before locking
    with driver_lock(path):
        return _resume(path, verbose, on_ray_started, ray_ui)


def _resume(path: str, verbose: int, on_ray_started, ray_ui: bool = False) -> Tuple[str, int]:
    from ray import tune

    metadata = read_metadata(path)
    spec = SweepSpec(**metadata["spec"])
    _precheck_local(spec, metadata["arm_configs"])
    exact = _init_ray(on_ray_started, ray_ui)
    check_resources(spec, metadata["arm_configs"], exact=exact)
    if not tune.Tuner.can_restore(path):
        raise UsageError(f"{path}: Tune saved no experiment state here yet; start it again.")
    tuner = tune.Tuner.restore(path, trainable=sweep_trainable(spec.arms),
                               resume_unfinished=True,
                               resume_errored=True,
                               param_space=param_space_from_metadata(metadata))
    return path, _report(tuner.fit(), path)


def checkpoint_config(plan: SweepPlan):
    """A trial checkpoints every ``plan.checkpoint_interval`` iterations and at its end,
    keeping the last two."""
    from ray import tune

    return tune.CheckpointConfig(checkpoint_frequency=plan.checkpoint_interval,
                                 checkpoint_at_end=True, num_to_keep=2)


def _tuner(plan: SweepPlan, verbose: int, progress_every_s: float):
    from ray import tune

    from rllib_metamapg.sweep.loggers import logger_callbacks
    from rllib_metamapg.sweep.progress import SweepProgress

    spec = plan.spec
    storage = storage_location(spec.storage_path)
    total = len(spec.arms) * len(spec.seeds)
    run_config = tune.RunConfig(
        name=plan.name, storage_path=storage, verbose=verbose,
        stop={"training_iteration": plan.stop_iterations},
        checkpoint_config=checkpoint_config(plan),
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        callbacks=[SweepProgress(total, plan.env_spec.metric, plan.env_spec.tau,
                                 progress_every_s), *logger_callbacks(spec.tensorboard)])
    return tune.Tuner(sweep_trainable(spec.arms), param_space=plan.param_space,
                      run_config=run_config,
                      tune_config=tune.TuneConfig(max_concurrent_trials=spec.max_concurrent,
                                                  reuse_actors=spec.reuse_actors))


# What ``metamapg report`` reads of a trial; checkpoints stay where they are.
_REPORT_INPUTS = ("params.json", "result.json", METADATA_FILE)


def write_sweep_report(path: str) -> str:
    """Writes ``metamapg report`` output to ``<path>/report``; returns that folder.

    A sweep on a URI is reported from a local copy of the files the report reads,
    and the report is uploaded beside it.
    """
    from rllib_metamapg.report.write import write_report

    if "://" not in path:
        write_report([path], f"{path}/report")
        return f"{path}/report"
    import tempfile

    import pyarrow.fs

    fs, root = _filesystem(path)
    with tempfile.TemporaryDirectory(prefix="metamapg-report-") as tmp:
        local = Path(tmp) / "sweep"
        for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True)):
            if info.type == pyarrow.fs.FileType.File and info.base_name in _REPORT_INPUTS:
                target = local / Path(info.path).relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                with fs.open_input_stream(info.path) as f:
                    target.write_bytes(f.read())
        write_report([str(local)], str(Path(tmp) / "report"))
        fs.create_dir(f"{root}/report", recursive=True)
        pyarrow.fs.copy_files(str(Path(tmp) / "report"), f"{root}/report",
                              source_filesystem=pyarrow.fs.LocalFileSystem(),
                              destination_filesystem=fs)
    return f"{path}/report"


def _report(results, path: str) -> int:
    failed = results.num_errors
    print(f"[metamapg sweep] {results.num_terminated}/{len(results)} trials finished, "
          f"{failed} failed; results in {path}\n[metamapg sweep] next: metamapg report "
          f"{path} --out {path}/report", flush=True)
    return failed
