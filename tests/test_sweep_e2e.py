"""End to end: a 2-arm stag_hunt sweep through Tune, killed and resumed, then reported
(2 seeds in make test, 3 in make test-long)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rllib_metamapg.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def finished_trials(exp: Path, last_iteration: int):
    """Trial folder -> number of result rows, for trials that reached the last iteration."""
    done = {}
    for result in exp.glob("MetaMAPG_*/result.json"):
        lines = [ln for ln in result.read_text().splitlines() if ln.strip()]
        try:
            rows = [json.loads(ln) for ln in lines]
        except json.JSONDecodeError:  # polled while Tune appends a row: skip the partial one
            rows = [json.loads(ln) for ln in lines[:-1]]
        if rows and rows[-1]["training_iteration"] >= last_iteration:
            done[result.parent.name] = len(rows)
    return done


def _metamapg(*args, env=None, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "rllib_metamapg.cli", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, **kwargs)


@pytest.mark.parametrize("n", [2, pytest.param(3, marks=pytest.mark.long)])
def test_sweep_interrupted_resumed_and_reported(tmp_path, n):
    exp = tmp_path / "results" / "e2e"
    trials, seeds = 2 * n, f"0-{n - 1}"
    sweep = _metamapg("sweep", "--env", "stag_hunt", "--arms", "ippo,meta_mapg",
                      "--seeds", seeds, "--smoke", "--max-concurrent", "1",
                      "--storage-path", str(tmp_path / "results"), "--name", "e2e",
                      "--quiet", "--progress-every", "0",
                      # Snapshot the experiment state every second (not every 5 s), so
                      # the kill below can come before the remaining trials finish:
                      # with reused trial processes a smoke trial takes about a second.
                      env={"TUNE_GLOBAL_CHECKPOINT_S": "1"})
    deadline = time.time() + 400
    while (len(finished_trials(exp, 4)) < n - 1 and sweep.poll() is None
           and time.time() < deadline):
        time.sleep(0.2)
    # Trials finished now are in Tune's experiment snapshot by the time of the kill (it
    # is taken every second). One that finishes during the wait may not be: Tune then
    # reruns it from its last checkpoint on resume, which adds rows (the report keeps
    # one value per step), so only these are checked for being left alone.
    settled = finished_trials(exp, 4)
    time.sleep(1.5)  # let Tune snapshot the experiment state
    assert sweep.poll() is None, sweep.stdout.read()[-3000:]
    os.killpg(sweep.pid, signal.SIGKILL)  # the driver and the Ray it started
    sweep.wait()
    before = finished_trials(exp, 4)
    assert n - 1 <= len(settled) <= len(before) < trials, before

    # The same command again continues it (what a retried cluster job does).
    resumed = _metamapg("sweep", "--env", "stag_hunt", "--arms", "ippo,meta_mapg",
                        "--seeds", seeds, "--smoke", "--max-concurrent", "1",
                        "--storage-path", str(tmp_path / "results"), "--name", "e2e",
                        "--resume-if-exists", "--quiet")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    # Quiet: our lines only, not Ray's routine notices or Tune's banners.
    for noise in ("new API stack", "Token authentication", "Configuration for experiment",
                  "View detailed results", "INFO"):
        assert noise not in out, (noise, out[-3000:])
    assert "trials finished, 0 failed" in out
    after = finished_trials(exp, 4)
    assert len(after) == trials, out[-3000:]
    # Trials that had finished were not run again: their result rows are unchanged.
    assert {k: after[k] for k in settled} == settled

    # Every seed started both arms from the same weights.
    digests = {}
    # A trial killed before Tune's driver logged it leaves a folder without params.json
    # (Tune restarts it in a new folder; the report skips such folders too).
    for d in (d for d in exp.glob("MetaMAPG_*") if (d / "params.json").is_file()):
        params = json.loads((d / "params.json").read_text())
        last = json.loads((d / "result.json").read_text().splitlines()[-1])
        digests.setdefault(params["seed"], set()).add(last["metamapg_init"]["weights_sha256"])
    assert sorted(digests) == list(range(n)) and all(len(v) == 1 for v in digests.values())
    # A sweep writes no TensorBoard files unless asked (--tensorboard; sweep/loggers.py).
    assert not list(exp.glob("MetaMAPG_*/events.out.tfevents*"))

    report = tmp_path / "report"
    assert main(["report", str(exp), "--out", str(report)]) == 0
    doc = json.loads((report / "report.json").read_text())
    (result,) = doc["results"]
    assert set(result["arms"]) == {"ippo", "meta_mapg"}
    assert all(r["n"] == n for r in result["arms"].values())
    assert result["tests_vs_reference"]["meta_mapg"]["pairs"] == n
    assert result["pairing_broken"] == [] and result["incomplete"] == []
    assert (report / "stag_hunt_curves.png").stat().st_size > 1000
