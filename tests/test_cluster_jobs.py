"""``metamapg submit`` against a live local Ray head with token authentication.

The head is a real ``ray start --head`` (dashboard and Jobs API on 127.0.0.1, its own
temp dir, a token made here).  Sweeps are submitted through the CLI exactly as a
user would, from the project checkout uploaded as the job's working_dir.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ray_head import clean_env, start_head
from test_sweep_e2e import finished_trials

pytest.importorskip("aiohttp", reason="the Jobs API needs ray[default] (the 'cluster' extra)")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SMOKE_LAST_ITERATION = 4  # stag_hunt smoke budget, in training iterations


def _finished(exp: Path):
    return finished_trials(exp, SMOKE_LAST_ITERATION)


@pytest.fixture(scope="module")
def head():
    h = start_head(num_cpus=2)
    yield h
    h.stop()
    assert not h.pids(), "processes of the test head survived its stop"


def _metamapg(args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def _sweep_args(head, storage, name, seeds):
    return ["submit", "--address", head.address, "--env", "stag_hunt",
            "--arms", "ippo,meta_mapg", "--seeds", seeds, "--smoke", "--max-concurrent", "2",
            "--storage-path", str(storage), "--name", name, "--quiet"]


def test_submit_follows_to_success_and_finds_the_report(head, tmp_path):
    # --tensorboard reaches the job like every sweep flag (a sweep writes no
    # TensorBoard files without it: tests/test_sweep_e2e.py).
    run = _metamapg(_sweep_args(head, tmp_path / "results", "accept", "0-1")
                    + ["--follow", "--tensorboard"], head.client_env(tmp_path / "home"))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "SUCCEEDED" in out and head.token_path.read_text() not in out
    # The job's own log was streamed: the sweep's summary line came through.
    assert "[metamapg sweep] 4/4 trials finished" in run.stdout
    report = tmp_path / "results" / "accept" / "report"
    assert f"report: {report}" in out
    doc = json.loads((report / "report.json").read_text())
    (result,) = doc["results"]
    assert {a: r["n"] for a, r in result["arms"].items()} == {"ippo": 2, "meta_mapg": 2}
    assert result["tests_vs_reference"]["meta_mapg"]["pairs"] == 2
    assert (report / "report.md").is_file()
    trials = [d for d in (tmp_path / "results" / "accept").iterdir()
              if (d / "params.json").is_file()]
    assert len(trials) == 4 and all(list(d.glob("events.out.tfevents*")) for d in trials)


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_submission_without_the_valid_token_is_refused(head, tmp_path, token):
    env = clean_env(tmp_path / "home")
    if token:
        env["RAY_AUTH_TOKEN"] = token
    run = _metamapg(_sweep_args(head, tmp_path / "results", "refused", "0"), env)
    assert run.returncode == 2, run.stdout + run.stderr
    message = run.stderr
    assert ("403" if token else "401") in message
    assert "RAY_AUTH_TOKEN_PATH" in message and "ray get-auth-token" in message
    assert head.token_path.read_text() not in run.stdout + message
    # Nothing reached the cluster: no job runs a sweep named "refused".
    listed = subprocess.run([str(Path(sys.executable).parent / "ray"), "job", "list",
                             "--address", head.address],
                            env={**head.client_env(tmp_path / "home"), "RAY_AUTH_MODE": "token"},
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "--name refused" not in listed.stdout


def _training_workers(head):
    """PIDs of this head's trial actors busy in ``train`` (title ``ray::MetaMAPG.train``)."""
    pids = []
    for pid in head.pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("ray::MetaMAPG.train"):
            pids.append(pid)
    return pids


# About 150 s: in `make test-full`; `make test` keeps the submit-to-report path below.
@pytest.mark.full
def test_worker_loss_is_retried_and_a_killed_driver_resumes(head, tmp_path):
    storage, name = tmp_path / "results", "faults"
    exp = storage / name
    env = head.client_env(tmp_path / "home")
    # One trial at a time, so the driver can be stopped with some trials left.
    args = _sweep_args(head, storage, name, "0-2")
    args[args.index("--max-concurrent") + 1] = "1"
    sub = _metamapg(args + ["--job-id", "faults-1"], env)
    assert sub.returncode == 0, sub.stdout + sub.stderr

    # 1. Kill the first trial's worker process while it trains.
    deadline, killed = time.time() + 300, None
    while killed is None and time.time() < deadline:
        workers = _training_workers(head)
        if workers and not _finished(exp):
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    assert killed, "no trial worker seen training"

    # 2. Once two trials have finished (in this driver, retry included), stop the driver.
    while len(_finished(exp)) < 2 and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(6)  # one experiment-state snapshot (TUNE_GLOBAL_CHECKPOINT_S=5)
    stop = subprocess.run([str(Path(sys.executable).parent / "ray"), "job", "stop",
                           "--address", head.address, "faults-1"],
                          env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True,
                          text=True, timeout=120)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    attach = _metamapg(["submit", "--address", head.address, "--attach", "faults-1", "--wait"],
                       env)
    assert attach.returncode == 3 and "STOPPED" in attach.stdout, attach.stdout + attach.stderr
    before = _finished(exp)
    assert 2 <= len(before) < 6, before

    # 3. Resume as a new job: all six finish, the finished ones are not rerun.
    resumed = _metamapg(["submit", "--address", head.address, "--resume", str(exp),
                         "--quiet", "--wait"], env)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
    after = _finished(exp)
    assert len(after) == 6
    assert {k: after[k] for k in before} == before
    # The killed worker's trial failed once (Tune kept its error) and was retried
    # to the end by the first driver (FailureConfig), before the driver was stopped.
    retried = [d.name for d in exp.glob("MetaMAPG_*") if (d / "error.txt").is_file()]
    assert len(retried) == 1 and retried[0] in before, (retried, before)
    assert "died" in (exp / retried[0] / "error.txt").read_text().lower()
    assert (exp / "report" / "report.json").is_file()
