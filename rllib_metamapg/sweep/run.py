"""Runs and resumes paired-seed sweeps with Ray Tune.

A sweep is one Tune experiment: trials = arms x seeds of one environment, at
most ``max_concurrent`` at once, each a ``MetaMAPG`` algorithm with its own
resources.  Beside Tune's own files the experiment folder holds
``metamapg_sweep.json`` (env, arms, seeds, tau, metric) for ``metamapg report``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Tuple

from rllib_metamapg.rllib_cli import UsageError
from rllib_metamapg.sweep.plan import (METADATA_FILE, METRIC, SweepPlan, SweepSpec,
                                        param_space_from_metadata, plan_sweep)

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


def _init_ray() -> None:
    import ray

    from rllib_metamapg.metamapg import register

    if not ray.is_initialized():
        # Connects to RAY_ADDRESS (a cluster, or the job's cluster) when set.
        ray.init(log_to_driver=False)
    register()


def run_sweep(spec: SweepSpec, *, verbose: int = 1, progress_every_s: float = 30.0,
              resume_existing: bool = False) -> Tuple[str, int]:
    """Runs a new sweep; returns ``(experiment folder, number of failed trials)``.

    Args:
        resume_existing: If the experiment folder already holds this same sweep,
            continue it (what a retried cluster job wants) instead of refusing.

    Raises:
        UsageError: Bad settings, or an existing sweep at the same place (resume it)
            or, with ``resume_existing``, a different sweep there.
    """
    plan = plan_sweep(spec)
    path = experiment_path(spec.storage_path, plan.name)
    if _is_experiment(path):
        if not resume_existing:
            raise UsageError(f"{path} already holds a sweep; continue it with "
                             f"'metamapg sweep --resume {path}' or choose another --name.")
        found = read_metadata(path)
        differs = [k for k in ("env", "arms", "seeds", "smoke")
                   if found.get(k) != plan.metadata.get(k)]
        if differs:
            raise UsageError(f"{path} holds a different sweep ({', '.join(differs)} differ); "
                             "choose another --name.")
        return resume_sweep(path, verbose=verbose)
    from rllib_metamapg.env_specs import random_policy_return

    _init_ray()
    plan.metadata["random_return"] = random_policy_return(spec.env)
    write_metadata(path, plan.metadata)
    tuner = _tuner(plan, verbose, progress_every_s)
    return path, _report(tuner.fit(), path)


def resume_sweep(path: str, *, verbose: int = 1) -> Tuple[str, int]:
    """Continues an interrupted sweep: finished trials stay, the rest resume or restart."""
    from ray import tune

    from rllib_metamapg.metamapg import MetaMAPG

    path = storage_location(path)
    metadata = read_metadata(path)
    _init_ray()
    if not tune.Tuner.can_restore(path):
        raise UsageError(f"{path}: Tune saved no experiment state here yet; start it again.")
    tuner = tune.Tuner.restore(path, trainable=MetaMAPG, resume_unfinished=True,
                               resume_errored=True,
                               param_space=param_space_from_metadata(metadata))
    return path, _report(tuner.fit(), path)


def _tuner(plan: SweepPlan, verbose: int, progress_every_s: float):
    from ray import tune

    from rllib_metamapg.metamapg import MetaMAPG
    from rllib_metamapg.sweep.progress import SweepProgress

    spec = plan.spec
    storage = storage_location(spec.storage_path)
    total = len(spec.arms) * len(spec.seeds)
    run_config = tune.RunConfig(
        name=plan.name, storage_path=storage, verbose=verbose,
        stop={"training_iteration": plan.stop_iterations},
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=plan.evaluation_interval, checkpoint_at_end=True,
            num_to_keep=2),
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        callbacks=[SweepProgress(total, METRIC, plan.env_spec.tau, progress_every_s)])
    return tune.Tuner(MetaMAPG, param_space=plan.param_space, run_config=run_config,
                      tune_config=tune.TuneConfig(max_concurrent_trials=spec.max_concurrent))


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
    failed = sum(1 for r in results if r.error is not None)
    print(f"[metamapg sweep] {len(results) - failed}/{len(results)} trials finished; results "
          f"in {path}\n[metamapg sweep] next: metamapg report {path} --out "
          f"{path}/report", flush=True)
    return failed
