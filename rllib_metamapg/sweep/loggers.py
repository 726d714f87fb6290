"""What a sweep's trials log besides their ``result.json`` and ``progress.csv``.

Tune adds its TensorBoard logger to every run that has none.  In a sweep it is the
largest part of the driver's work per result: one blocking queue write per metric,
about 200 per RLlib result, about 25 ms per iteration here, which the trial waits for
(Tune asks for the next iteration after handling the last), plus 2 s to import
tensorboardX per sweep (``benchmarks/trial_overhead.py``).  A paired-seed sweep is
read through its report, so it logs TensorBoard events only with ``--tensorboard``.
"""

from __future__ import annotations

from typing import List

from ray.tune.logger import LoggerCallback, TBXLoggerCallback


class NoTensorBoard(TBXLoggerCallback):
    """Takes the TensorBoard logger's place so Tune adds none; writes nothing."""

    def __init__(self):
        LoggerCallback.__init__(self)  # not TBXLoggerCallback's: it imports tensorboardX

    def log_trial_start(self, trial) -> None:
        pass

    def log_trial_result(self, iteration: int, trial, result) -> None:
        pass

    def log_trial_end(self, trial, failed: bool = False) -> None:
        pass


def logger_callbacks(tensorboard: bool) -> List:
    """The callbacks a sweep adds to Tune's defaults (JSON and CSV stay Tune's)."""
    return [] if tensorboard else [NoTensorBoard()]
