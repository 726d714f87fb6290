"""A user's mistake gets a message (exit 2), never a traceback, a hang or a silent
wrong result; every size a user types is bounded before anything is allocated."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rllib_metamapg import limits, resources
from rllib_metamapg.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, timeout=60, env=None, module="rllib_metamapg.cli"):
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full.pop("RAY_ADDRESS", None)
    if not (env or {}).get(limits.ALLOW_ENV):
        full.pop(limits.ALLOW_ENV, None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=full)


class InProcess:
    """``main(argv)`` of the metamapg command run here, as a finished process."""

    def __init__(self, capsys, argv):
        from rllib_metamapg.cli import main

        self.returncode = main(argv)
        captured = capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err


def refused(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-2000:])


@pytest.mark.parametrize("args, needles", [
    (["tabular", "ablation", "--seeds", "1000000000", "--games", "stag_hunt"],
     ["--seeds=1000000000", "limit of 100,000", limits.ALLOW_ENV]),
    (["tabular", "basin", "--grid", "100000"], ["--grid=100000", "limit of 1,000"]),
    (["sweep", "--smoke", "--env", "stag_hunt", "--arms", "ippo", "--seeds", "0-1000000000"],
     ["names 1,000,000,001 seeds", "limit of 10,000"]),
    (["sweep", "--smoke", "--env", "stag_hunt", "--arms", "ippo", "--seeds", "0-100000"],
     ["names 100,001 seeds"]),
    (["sweep", "--smoke", "--env", "stag_hunt", "--arms", "ippo,peer_only", "--seeds",
      "0-5999"], ["2 arms x 6000 seeds = 12,000 trials"]),
])
def test_huge_sizes_are_refused_at_once(tmp_path, args, needles):
    start = time.monotonic()
    proc = cli(*args, "--out" if args[0] == "tabular" else "--storage-path",
               str(tmp_path / "o"))
    refused(proc, *needles)
    assert time.monotonic() - start < 20
    assert not (tmp_path / "o").exists()


def test_the_size_override_is_explicit(monkeypatch):
    with pytest.raises(UsageError, match=limits.ALLOW_ENV):
        limits.check_size("grid", 5000)
    monkeypatch.setenv(limits.ALLOW_ENV, "1")
    limits.check_size("grid", 5000)  # allowed
    with pytest.raises(UsageError, match=">= 1"):
        limits.check_size("seeds", 0)  # a lower bound is never waived


def test_a_size_in_a_config_file_is_bounded_too(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seeds: 1000000000\n")
    refused(InProcess(capsys, ["tabular", "ablation", "--config", str(cfg), "--games",
                               "stag_hunt", "--out", str(tmp_path / "o")]),
            "--seeds=1000000000")


def test_zero_seeds_is_refused_before_the_header(tmp_path, capsys):
    proc = InProcess(capsys, ["tabular", "ablation", "--seeds", "0", "--games", "stag_hunt",
                              "--out", str(tmp_path / "o")])
    refused(proc, "--seeds=0 must be >= 1")
    assert "[ablation]" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("flag", ["--config", "--payoff"])
def test_a_binary_file_is_named_not_a_traceback(tmp_path, capsys, flag):
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(bytes(range(256)) * 4)
    refused(InProcess(capsys, ["tabular", "basin", flag, str(blob), "--out",
                               str(tmp_path / "o")]), "not a text file")


def test_a_huge_payoff_is_refused_not_run_to_zero_success(tmp_path, capsys):
    refused(InProcess(capsys, ["tabular", "basin", "--payoff", "[[1e308, 0], [3, 2]]",
                               "--out", str(tmp_path / "o")]), "payoffs must lie in")


def test_a_custom_payoff_is_recorded_as_custom_with_its_payoffs(tmp_path):
    out = tmp_path / "o"
    proc = cli("tabular", "basin", "--grid", "3", "--mode", "exact", "--steps", "3",
               "--arms", "peer_only", "--payoff", "[[5, 0], [3, 3]]", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "basin.json").read_text())
    assert doc["game"] == "custom"
    assert doc["settings"]["payoff"]["payoffs"] == [[[5, 0], [3, 3]], [[5, 3], [0, 3]]]


def test_ctrl_c_in_a_tabular_run_is_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "basin",
                             "--grid", "40", "--steps", "4000", "--out", str(tmp_path / "o")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # Wait for the first progress line: the computation has started.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "[basin]" not in (line := proc.stderr.readline()):
        assert line or proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "o").exists()


def test_sweep_arms_empty_is_refused(tmp_path, capsys):
    refused(InProcess(capsys, ["sweep", "--smoke", "--env", "stag_hunt", "--arms", "",
                               "--seeds", "0", "--storage-path", str(tmp_path)]), "--arms=''")


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", ".."])
def test_sweep_name_cannot_leave_the_storage_path(tmp_path, capsys, name):
    refused(InProcess(capsys, ["sweep", "--smoke", "--env", "stag_hunt", "--arms", "ippo",
                               "--seeds", "0", "--name", name, "--storage-path",
                               str(tmp_path / "s")]), "--name=")
    assert not any(tmp_path.iterdir())


def test_report_with_a_corrupt_params_json_names_the_file(tmp_path, capsys):
    from tests.test_report import make_sweep

    sweep = make_sweep(tmp_path / "sw")
    victim = next(sweep.glob("*/params.json"))
    victim.write_text("")
    refused(InProcess(capsys, ["report", str(sweep), "--out", str(tmp_path / "r")]),
            str(victim), "corrupt")
    assert not (tmp_path / "r").exists()


@pytest.fixture
def silent_server():
    """Accepts connections and never answers (a stale kubectl port-forward)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join()
    for c in held:
        c.close()
    srv.close()


def test_submit_gives_up_on_a_dashboard_that_never_answers(silent_server):
    start = time.monotonic()
    proc = cli("submit", "--address", silent_server, "--attach", "job1", timeout=60,
               env={"METAMAPG_SUBMIT_TIMEOUT": "2"})
    refused(proc, "did not answer GET /api/version within 2 s", "port-forward")
    assert time.monotonic() - start < 30


def test_submit_refuses_an_address_that_is_not_a_url():
    refused(cli("submit", "--address", "not a url", "--attach", "j"), "--address 'not a url'")


def test_a_second_driver_on_the_same_sweep_is_refused_and_a_killed_one_frees_it(tmp_path):
    from rllib_metamapg.sweep.run import driver_lock

    folder = tmp_path / "sweep"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom rllib_metamapg.sweep.run import "
         "driver_lock\nwith driver_lock(sys.argv[1]):\n    print('held', flush=True)\n"
         "    time.sleep(60)", str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UsageError, match="another metamapg sweep that is still running"):
        with driver_lock(str(folder)):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with driver_lock(str(folder)):  # the kernel dropped the dead driver's lock
        assert folder.is_dir()
    fresh = tmp_path / "new" / "sweep"
    with driver_lock(str(fresh)):
        assert fresh.is_dir()
    assert not (tmp_path / "new").exists()  # nothing was started: no stub left behind


def test_resume_while_the_first_driver_runs_is_refused(tmp_path):
    from tests.test_report import make_sweep

    from rllib_metamapg.sweep.run import driver_lock

    sweep = make_sweep(tmp_path / "sw")
    with driver_lock(str(sweep)):
        refused(cli("sweep", "--resume", str(sweep)), "another metamapg sweep")


def test_report_flag_is_kept_for_resume(tmp_path):
    from rllib_metamapg.sweep.command import _wants_report
    from rllib_metamapg.results import METADATA_FILE

    (tmp_path / METADATA_FILE).write_text(json.dumps({"spec": {"report": True}}))

    class Args:
        report = False

    assert _wants_report(Args, None, str(tmp_path))
    (tmp_path / METADATA_FILE).write_text(json.dumps({"spec": {"report": False}}))
    assert not _wants_report(Args, None, str(tmp_path))


def test_a_cluster_wait_is_bounded_and_says_what_it_waits_for(monkeypatch, capsys):
    monkeypatch.setattr(resources, "cluster_state", lambda: ({"CPU": 2.0}, [{"CPU": 2.0}]))
    start = time.monotonic()
    assert not resources.wait_for({"each trial of x": [{"CPU": 1.0}] * 3}, "rllib",
                                  timeout_s=1.0, poll_s=0.2)
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert "each trial of x needs CPU 3 but the Ray cluster has CPU 2" in err
    monkeypatch.setattr(resources, "cluster_state", lambda: ({"CPU": 4.0}, [{"CPU": 4.0}]))
    assert resources.wait_for({"x": [{"CPU": 1.0}] * 3}, "rllib", timeout_s=1.0)


def test_rllib_train_fits_rllib_s_default_runners_to_the_machine(monkeypatch, capsys):
    from rllib_metamapg import rllib_experiments as rx

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(resources, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0})
    (exp,) = rx.prepare_experiments({"cp": {"run": "PPO", "env": "CartPole-v1"}},
                                    {"stop": {"training_iteration": 1}}, "test")
    assert exp.config.num_env_runners == 2  # RLlib's default: 3 CPUs in all
    rx.fit_to_machine([exp], None)
    assert exp.config.num_env_runners == 1
    assert "runs with num_env_runners=1" in capsys.readouterr().out
    (mine,) = rx.prepare_experiments(
        {"cp": {"run": "PPO", "env": "CartPole-v1", "config": {"num_env_runners": 3}}},
        {"stop": {"training_iteration": 1}}, "test")
    with pytest.raises(UsageError, match="num_env_runners=3"):
        rx.fit_to_machine([mine], None)  # the user's own choice is refused, not changed


def test_rllib_train_with_too_many_runners_exits_2_at_once():
    start = time.monotonic()
    proc = cli("train", "--algo", "PPO", "--env", "CartPole-v1", "--config",
               '{"num_env_runners": 64}', "--stop", '{"training_iteration": 1}',
               module="rllib_metamapg.rllib_cli")
    assert proc.returncode == 2 and "num_env_runners=64" in proc.stderr, proc.stderr[-2000:]
    assert time.monotonic() - start < 30


def test_rllib_train_refuses_a_zero_iteration_stop():
    proc = cli("train", "--algo", "PPO", "--env", "CartPole-v1", "--stop",
               '{"training_iteration": 0}', module="rllib_metamapg.rllib_cli")
    assert proc.returncode == 2 and "training_iteration=0 must be >= 1" in proc.stderr


def fake_checkpoint(folder, modules=True, ctor=b"\x80\x04K"):
    folder.mkdir(parents=True)
    (folder / "algorithm_state.pkl").write_bytes(b"x")
    (folder / "class_and_ctor_args.pkl").write_bytes(ctor)
    if modules:
        m = folder / "learner_group/learner/rl_module/p0"
        m.mkdir(parents=True)
        (m / "module_state.pkl").write_bytes(b"x")
    return folder


@pytest.mark.parametrize("modules, ctor, needle", [
    (False, b"\x80\x04K", "holds no trained weights"),
    (True, b"\x80\x04\x95", "truncated or corrupt"),
])
def test_rllib_evaluate_refuses_a_partial_checkpoint(tmp_path, modules, ctor, needle):
    ck = fake_checkpoint(tmp_path / "checkpoint_000001", modules, ctor)
    proc = cli("evaluate", str(ck), module="rllib_metamapg.rllib_cli")
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    proc = cli("--debug", "tabular", "basin", "--grid", "100000", "--out", str(tmp_path))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_memory_stays_small_when_a_huge_size_is_refused(tmp_path):
    # The unbounded versions reached 8-10 GB before any message.
    # VmHWM: this process's peak (ru_maxrss would include the forking pytest's).
    code = ("import re, sys\nfrom rllib_metamapg.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])\n"
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "sweep", "--smoke", "--env",
                           "stag_hunt", "--arms", "ippo", "--seeds", "0-1000000000",
                           "--storage-path", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert int(proc.stdout.split()[-1]) < 1_000_000  # KiB: under 1 GB


def test_rllib_train_storage_path_under_a_file_is_refused_before_ray(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    start = time.monotonic()
    proc = cli("train", "--algo", "PPO", "--env", "CartPole-v1", "--stop",
               '{"training_iteration": 1}', "--storage-path", str(afile / "sub"),
               module="rllib_metamapg.rllib_cli")
    assert proc.returncode == 2 and "--storage-path=" in proc.stderr, proc.stderr[-2000:]
    assert time.monotonic() - start < 30 and afile.read_text() == "mine"


def test_sampler_steps_below_one_update_are_refused_not_a_nan_traceback(tmp_path, capsys):
    # 3x3 games update every 60+ env steps: 40 steps used to write NaN and crash.
    refused(InProcess(capsys, ["tabular", "samplers", "--games", "penalty", "--seeds", "2",
                               "--steps", "40", "--out", str(tmp_path / "o")]),
            "--steps=40 is less than one target update")
    assert not (tmp_path / "o").exists()
