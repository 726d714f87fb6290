"""``SweepProgress``: one status line per interval while a sweep runs (a Tune ``Callback``)."""

from __future__ import annotations

import math
import statistics
import sys
import time
from typing import Dict, Optional

from ray.tune import Callback

from rllib_metamapg.results import lookup


class SweepProgress(Callback):
    """Prints trial counts and the best/median latest greedy return across trials.

    Args:
        total: Number of trials in the sweep.
        metric: ``/``-path of the evaluation score in a result (its return, or
            another score such as ``on_target_rate``).
        tau: Learner threshold, to count seeds at or above it (optional).
        every_s: Minimum seconds between lines (a finished trial always prints).
    """

    def __init__(self, total: int, metric: str, tau: Optional[float] = None,
                 every_s: float = 30.0, stream=None):
        self.total, self.metric, self.tau, self.every_s = total, metric, tau, every_s
        self.stream = stream
        self._latest: Dict[str, float] = {}
        self._last_print = 0.0
        # "return", or the score's own name: what the line's numbers are.
        last = metric.rsplit("/", 1)[-1]
        self._label = "return" if last == "episode_return_mean" else last

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = lookup(result, self.metric)
        # RLlib reports NaN for the evaluation return in the iterations between two
        # evaluations (its metric windows are empty): keep the trial's last real one.
        if value is not None and math.isfinite(float(value)):
            self._latest[trial.trial_id] = float(value)
        self._print(trials, force=False)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._print(trials, force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(trials, force=True)

    def line(self, trials) -> str:
        running = sum(1 for t in trials if t.status == "RUNNING")
        done = sum(1 for t in trials if t.status == "TERMINATED")
        errored = sum(1 for t in trials if t.status == "ERROR")
        text = (f"[metamapg sweep] {done}/{self.total} done, {running} running, "
                f"{errored} errored")
        if self._latest:
            values = list(self._latest.values())
            text += (f"; greedy {self._label} best {max(values):.3g}, median "
                     f"{statistics.median(values):.3g} over {len(values)} trials")
            if self.tau is not None:
                text += f"; {sum(v >= self.tau for v in values)} at or above tau={self.tau:g}"
        return text

    def _print(self, trials, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_print < self.every_s:
            return
        self._last_print = now
        print(self.line(trials), file=self.stream or sys.stdout, flush=True)
