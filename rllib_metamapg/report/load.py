"""Reads a sweep folder (Tune's per-trial ``params.json`` / ``result.json``) without Ray."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rllib_metamapg.errors import UsageError
from rllib_metamapg.results import METADATA_FILE, lookup

STEPS_KEY = "num_env_steps_sampled_lifetime"
# The greedy return, read beside the sweep's score when that is another key.
RETURN_KEY = "evaluation/env_runners/episode_return_mean"


class ReportError(UsageError):
    """A sweep folder or report setting that cannot be reported on; says what to do."""


@dataclass
class TrialRecord:
    """One (arm, seed) trial: its greedy-evaluation curve and final score.

    Attributes:
        evals: ``(env steps, greedy return)`` at every evaluation iteration.
        complete: Whether the trial reached the sweep's last (evaluated) iteration.
        init_digest: Digest of the initial weights (paired-seed check).
        actor_digest: Digest of the initial actors only (arms whose critics differ,
            such as MAPPO's, are paired by it), or ``None`` in older results.
        last_return: The last greedy evaluation return (also when the score is not
            the return), or ``None``.
    """

    arm: str
    seed: int
    path: str
    evals: List[Tuple[float, float]] = field(default_factory=list)
    complete: bool = False
    init_digest: Optional[str] = None
    last_iteration: int = 0
    errored: bool = False
    last_return: Optional[float] = None
    actor_digest: Optional[str] = None
    # Wall clock (Tune's result timestamps): when training began and last reported,
    # and the training seconds the trial reported.
    started_at: Optional[float] = None
    ended_at: Optional[float] = None
    train_s: float = 0.0

    @property
    def final_episode_return(self) -> Optional[float]:
        """The greedy return at the end of a complete trial, whatever the score."""
        return self.last_return if self.complete and self.evals else None

    @property
    def final_return(self) -> Optional[float]:
        return self.evals[-1][1] if self.complete and self.evals else None

    def settled_step(self, tau: float) -> Optional[float]:
        """Env steps of the first evaluation from which the learner outcome (score >=
        ``tau`` or not) stays what it is at the end: for a learner, its entry step.
        ``None`` without evaluations."""
        outcomes = [value >= tau for _, value in self.evals]
        if not outcomes:
            return None
        k = len(outcomes) - 1
        while k > 0 and outcomes[k - 1] == outcomes[-1]:
            k -= 1
        return self.evals[k][0]

    def first_hit(self, tau: float) -> Optional[float]:
        """Env steps of the first evaluation at or above ``tau``, or ``None``."""
        return next((step for step, value in self.evals if value >= tau), None)


@dataclass
class Sweep:
    path: str
    metadata: Dict[str, Any]
    trials: List[TrialRecord]

    @property
    def env(self) -> str:
        return self.metadata["env"]

    def arms(self) -> List[str]:
        return [a for a in self.metadata["arms"] if any(t.arm == a for t in self.trials)]


def _read_json(file: Path, what: str) -> Dict[str, Any]:
    """A JSON object from ``file``; a ``ReportError`` naming it if it is empty or corrupt."""
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReportError(f"{file}: {what} is empty or corrupt ({err}); the sweep folder was "
                          "damaged (disk full, or a copy cut short). Continue the sweep with "
                          "'metamapg sweep --resume' to rewrite it, or remove that trial's "
                          "folder to report without it.") from None
    if not isinstance(data, dict):
        raise ReportError(f"{file}: {what} must hold a JSON object.")
    return data


def load_trial(folder: Path, metric: str, interval: int, last_iteration: int) -> TrialRecord:
    params = _read_json(folder / "params.json", "the trial's parameters")
    if "arm" not in params or "seed" not in params:
        raise ReportError(f"{folder / 'params.json'}: no 'arm' and 'seed'; this is not a "
                          "trial of a metamapg sweep.")
    record = TrialRecord(arm=params["arm"], seed=int(params["seed"]), path=str(folder),
                         errored=any((folder / f).exists() for f in ("error.txt", "error.pkl")))
    result_file = folder / "result.json"
    if not result_file.is_file():
        return record
    for line in result_file.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a killed trial
            continue
        iteration = int(row.get("training_iteration", 0))
        if isinstance(row.get("timestamp"), (int, float)):
            start = row["timestamp"] - float(row.get("time_total_s") or 0.0)
            record.started_at = min(start, record.started_at or start)
            record.ended_at = max(row["timestamp"], record.ended_at or row["timestamp"])
            record.train_s = max(record.train_s, float(row.get("time_total_s") or 0.0))
        record.init_digest = lookup(row, "metamapg_init/weights_sha256") or record.init_digest
        record.actor_digest = lookup(row, "metamapg_init/actor_sha256") or record.actor_digest
        value = lookup(row, metric)
        episode_return = lookup(row, RETURN_KEY)
        if iteration % interval == 0 and episode_return is not None:
            record.last_return = float(episode_return)
        # RLlib repeats the last evaluation in every later result; keep fresh ones.
        if iteration % interval == 0 and value is not None:
            step = float(row.get(STEPS_KEY) or lookup(row, f"env_runners/{STEPS_KEY}") or 0)
            record.evals = [e for e in record.evals if e[0] != step] + [(step, float(value))]
        record.complete = record.complete or iteration >= last_iteration
        record.last_iteration = max(record.last_iteration, iteration)
    return record


def load_sweep(path: str) -> Sweep:
    """All trials of one sweep folder; a ``ReportError`` if it is not one."""
    folder = Path(path).expanduser()
    meta_file = folder / METADATA_FILE
    if not meta_file.is_file():
        raise ReportError(f"{path}: not a metamapg sweep folder (no {METADATA_FILE}); pass "
                          "the folder 'metamapg sweep' printed.")
    metadata = _read_json(meta_file, "the sweep's metadata")
    trials = [load_trial(d, metadata["metric"], int(metadata["evaluation_interval"]),
                         int(metadata["stop_iterations"]))
              for d in sorted(folder.iterdir()) if (d / "params.json").is_file()]
    if not trials:
        raise ReportError(f"{path}: the sweep has no trials yet.")
    return Sweep(str(folder), metadata, trials)
