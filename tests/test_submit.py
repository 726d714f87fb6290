"""``metamapg submit`` pieces that need no cluster: input checks, the job's command line,
runtime_env, token settings, and the sweep report written to a URI."""

import json
import os
import shlex
from pathlib import Path

import pytest

from rllib_metamapg.cli import build_parser, main
from rllib_metamapg.jobs import submit as jobs
from rllib_metamapg.jobs.command import cluster_argv
from rllib_metamapg.sweep.command import sweep_setting
from rllib_metamapg.sweep.run import write_sweep_report

from test_report import make_sweep

ROOT = Path(__file__).resolve().parents[1]


def _args(*argv):
    return build_parser().parse_args(["submit", *argv])


def test_the_job_runs_the_same_sweep_and_always_reports():
    args = _args("--env", "stag_hunt", "--arms", "ippo,meta_mapg", "--seeds", "0-3", "--smoke",
                 "--storage-path", "s3://bucket/mm", "--name", "x", "--gpus-per-trial", "0.33",
                 "--config", '{"correction_clip": 2.0}', "--budget-fraction", "0.5")
    argv = cluster_argv(args)
    sweep = build_parser().parse_args(["sweep", *argv])
    for key in ("env", "smoke", "storage_path"):
        assert getattr(sweep, key) == getattr(args, key), key
    # Sweep-defining flags reach the job as given; the ones not given are not sent
    # and take the same defaults there.
    for key in ("arms", "seeds", "name", "max_concurrent", "cpus_per_trial",
                "gpus_per_trial", "max_failures", "config", "budget_fraction"):
        assert sweep_setting(sweep, key) == sweep_setting(args, key), key
    assert sweep.config == '{"correction_clip": 2.0}'
    cmd = shlex.split(jobs.sweep_command(argv))
    assert cmd[cmd.index("--config") + 1] == '{"correction_clip": 2.0}'  # quoted for the shell
    assert sweep.report and not sweep.resume
    # Trial processes are reused on the cluster too, unless the user turned it off.
    assert sweep.reuse_actors
    off = build_parser().parse_args(
        ["sweep", *cluster_argv(_args("--env", "stag_hunt", "--storage-path", "s3://b/mm",
                                      "--no-reuse-actors"))])
    assert not off.reuse_actors
    resume = build_parser().parse_args(["sweep", *cluster_argv(_args("--resume", "/nfs/mm/x"))])
    assert resume.resume == "/nfs/mm/x" and resume.env is None and resume.report
    cmd = shlex.split(jobs.sweep_command(argv))
    assert cmd[:4] == ["python", "-m", "rllib_metamapg.cli", "sweep"]


@pytest.mark.parametrize("argv, message", [
    (["--env", "stag_hunt"], "--storage-path is required"),
    (["--env", "stag_hunt", "--storage-path", "results"], "relative path"),
    (["--resume", "results/x"], "relative path"),
    (["--env", "no_such_env", "--storage-path", "/tmp/r"], "no_such_env"),
    (["--env", "stag_hunt", "--storage-path", "/tmp/r", "--arms", "ippo,nope"], "nope"),
    (["--env", "stag_hunt", "--storage-path", "/tmp/r", "--env-var", "NOEQUALS"], "KEY=VALUE"),
    (["--env", "stag_hunt", "--storage-path", "/tmp/r", "--env-var", "RAY_AUTH_TOKEN=x"],
     "never ship"),
    (["--env", "stag_hunt", "--storage-path", "/tmp/r", "--address", "ray://h:10001"],
     "http(s) address"),
    (["--env", "stag_hunt", "--storage-path", "/tmp/r", "--working-dir", "/tmp"],
     "no rllib_metamapg/"),
])
def test_bad_input_is_refused_before_contacting_a_cluster(argv, message, capsys):
    # 127.0.0.1:9 (discard) has no dashboard: reaching the network would fail differently.
    if "--address" not in argv:
        argv = argv + ["--address", "http://127.0.0.1:9"]
    assert main(["submit", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "cannot reach" not in err


def test_an_unreachable_cluster_is_named(capsys):
    assert main(["submit", "--env", "stag_hunt", "--smoke", "--storage-path", "/tmp/r",
                 "--address", "127.0.0.1:9"]) == 2
    assert "cannot reach a Ray dashboard at http://127.0.0.1:9" in capsys.readouterr().err


def test_address_resolution(monkeypatch):
    for var in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    assert jobs.resolve_address(None) == jobs.DEFAULT_ADDRESS
    monkeypatch.setenv("RAY_ADDRESS", "auto")  # a driver setting, not a dashboard
    assert jobs.resolve_address(None) == jobs.DEFAULT_ADDRESS
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "head:8265/")
    assert jobs.resolve_address(None) == "http://head:8265"
    assert jobs.resolve_address("https://c.example:443") == "https://c.example:443"


def test_token_settings_imply_token_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        # setenv first so that monkeypatch restores the original state at the end
        # (delenv of an unset variable records nothing, and the RAY_AUTH_MODE=token
        # the function sets below would then outlive this test and break ray.init).
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    jobs.enable_token_auth_from_environment()
    assert "RAY_AUTH_MODE" not in os.environ
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    jobs.enable_token_auth_from_environment()
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit choice is kept
    jobs.enable_token_auth_from_environment()
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


def test_runtime_env_uploads_the_checkout_without_local_clutter():
    assert jobs.project_root(ROOT / "rllib_metamapg" / "jobs") == ROOT
    env = jobs.runtime_env(str(ROOT), {"A": "1"}, ["scipy"])
    assert env["working_dir"] == str(ROOT) and env["env_vars"] == {"A": "1"}
    assert {".git", ".venv", "demo_out", "study_out"} <= set(env["excludes"])
    assert env["pip"] == ["scipy"]
    assert jobs.runtime_env(None, {}, []) == {}  # --installed: nothing uploaded


def checkout(tmp_path):
    """A checkout holding 3 MiB of results: results/, a sweep folder, a checkpoint."""
    root = tmp_path / "co"
    (root / "rllib_metamapg").mkdir(parents=True)
    (root / "rllib_metamapg" / "a.py").write_text("x = 1\n")
    for rel in ("results/big.bin", "runs/mine/MetaMAPG_x/checkpoint_000001/w.bin",
                "elsewhere/params.bin"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"0" * 2 ** 20)
    (root / "elsewhere" / "metamapg_sweep.json").write_text("{}")
    return root


def test_results_and_sweep_folders_are_left_out_of_the_upload(tmp_path):
    root = checkout(tmp_path)
    env = jobs.runtime_env(str(root), {}, [], max_upload_mib=0.5)  # 3 MiB would be refused
    total, sizes = jobs.upload_size(root, list(env["excludes"]))
    assert set(sizes) == {"rllib_metamapg"} and total < 100
    assert "/elsewhere" in env["excludes"]
    everything = jobs.upload_excludes(root, [], upload_results=True)
    assert jobs.upload_size(root, everything)[0] >= 3 * 2 ** 20


def test_an_oversize_upload_is_refused_with_its_size_and_the_fix(tmp_path):
    root = checkout(tmp_path)
    with pytest.raises(jobs.UsageError, match=r"would upload 3\.0 MiB .*results \(1\.0 MiB\)"
                                              r".*--exclude"):
        jobs.runtime_env(str(root), {}, [], upload_results=True, max_upload_mib=2)
    env = jobs.runtime_env(str(root), {}, [], upload_results=True, max_upload_mib=2,
                           exclude=["/results", "/runs"])
    assert "/runs" in env["excludes"]


@pytest.mark.parametrize("uri", [False, True])
def test_sweep_report_is_written_beside_the_sweep_local_or_uri(tmp_path, uri):
    sweep = make_sweep(tmp_path / "sweep")
    for trial in [d for d in sweep.iterdir() if d.is_dir()][:1]:
        (trial / "checkpoint_000001").mkdir()  # checkpoints are not copied for the report
        (trial / "checkpoint_000001" / "algorithm_state.pkl").write_bytes(b"x" * 10)
    path = f"file://{sweep}" if uri else str(sweep)
    assert write_sweep_report(path) == f"{path}/report"
    doc = json.loads((sweep / "report" / "report.json").read_text())
    assert doc["results"][0]["env"] == "stag_hunt"
    assert (sweep / "report" / "report.md").is_file()
