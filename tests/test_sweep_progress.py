"""The sweep's progress line: trial counts and the latest greedy returns."""

import io
from types import SimpleNamespace

from rllib_metamapg.sweep.progress import SweepProgress

METRIC = "evaluation/env_runners/episode_return_mean"


def _result(value):
    return {"evaluation": {"env_runners": {"episode_return_mean": value}}}


def test_iterations_between_evaluations_keep_each_trials_last_return():
    out = io.StringIO()
    progress = SweepProgress(total=3, metric=METRIC, tau=-75.0, every_s=0.0, stream=out)
    trials = [SimpleNamespace(trial_id=str(k), status=s)
              for k, s in enumerate(("RUNNING", "RUNNING", "TERMINATED"))]
    progress.on_trial_result(0, trials, trials[0], _result(-80.0))
    progress.on_trial_result(0, trials, trials[1], _result(-70.0))
    # RLlib's evaluation return is NaN between two evaluations.
    progress.on_trial_result(0, trials, trials[0], _result(float("nan")))
    progress.on_trial_result(0, trials, trials[1], {})
    line = out.getvalue().splitlines()[-1]
    assert line == ("[metamapg sweep] 1/3 done, 2 running, 0 errored; greedy return best -70, "
                    "median -75 over 2 trials; 1 at or above tau=-75")
