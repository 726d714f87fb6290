"""Thread policy of the tabular commands: METAMAPG_THREADS, auto from idle cores."""

import subprocess
import sys

import pytest

from rllib_metamapg.tabular import threads


def test_env_var_fixes_the_count_within_the_usable_cores(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "1")
    assert threads.choose_threads() == 1
    monkeypatch.setenv(threads.ENV_VAR, "999")
    assert threads.choose_threads() == threads.usable_cpus()
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv(threads.ENV_VAR, bad)
        with pytest.raises(ValueError, match="METAMAPG_THREADS"):
            threads.choose_threads()


def test_auto_takes_the_idle_cores_and_at_least_one(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    cap = threads.usable_cpus()
    monkeypatch.setattr(threads, "busy_cpus", lambda window_s=0.05: 0.0)
    assert threads.choose_threads() == cap
    monkeypatch.setattr(threads, "busy_cpus", lambda window_s=0.05: cap - 0.2)
    assert threads.choose_threads() == 1
    monkeypatch.setattr(threads, "busy_cpus", lambda window_s=0.05: 50.0)
    assert threads.choose_threads() == 1
    total, idle = threads._cpu_times()
    assert 0 <= idle <= total


def test_a_bad_env_var_is_a_usage_error_before_work(tmp_path):
    env = {"METAMAPG_THREADS": "zero", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "basin",
                        "--out", str(tmp_path / "b")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 2 and "METAMAPG_THREADS='zero'" in r.stderr, r.stderr
    assert not (tmp_path / "b").exists()
