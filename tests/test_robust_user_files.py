"""A result set never costs the user a file, a permission or a folder's identity.

The SIGKILL test injects a kill at every rename a result-set write makes, in a
separate process, against a folder holding the user's own files; after each
kill every user file must be in place and visible, and the next run must finish.
"""

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rllib_metamapg import atomic

ROOT = Path(__file__).resolve().parents[1]

# Only files (the case the old whole-folder swap moved), and files with a sub-folder.
USER_TREES = {"files": {"notes.txt": "mine", ".hidden": "dot"},
              "with sub-folder": {"notes.txt": "mine", "sub/data.csv": "a,b\n1,2\n"}}

# Writes a two-file set (a.csv, then a.json) into argv[1]; with argv[2] = k, the
# process SIGKILLs itself at its k-th os.replace/os.rename (counting from 1).
WRITER = textwrap.dedent("""
    import os, signal, sys
    from rllib_metamapg import atomic
    kill_at = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    calls = [0]
    def counted(real):
        def call(*a, **k):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **k)
        return call
    atomic.os.replace = counted(os.replace)
    atomic.os.rename = counted(os.rename)
    with atomic.file_set(sys.argv[1]) as stage:
        atomic.write_text(stage / "a.csv", "new\\n")
        atomic.write_text(stage / "a.json", '{"v": "new"}\\n')
    print("renames", calls[0])
""")


def run_writer(out, kill_at=0):
    return subprocess.run([sys.executable, "-c", WRITER, str(out), str(kill_at)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def user_tree(out, files):
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)


def visible_files(out):
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*")
            if p.is_file() and not any(part.startswith(".metamapg-") for part in p.parts)}


def leftovers(parent):
    return sorted(str(p) for p in parent.rglob("*") if ".metamapg-" in p.name
                  or ".previous-" in p.name or ".staging-" in p.name)


@pytest.mark.parametrize("tree", [None, *USER_TREES])
def test_sigkill_at_every_rename_keeps_every_user_file(tmp_path, tree):
    fresh = tree is None  # a new --out folder, else one holding the user's files
    user_files = USER_TREES.get(tree, {})
    probe = tmp_path / "probe"
    if not fresh:
        probe.mkdir()
        user_tree(probe, user_files)
    done = run_writer(probe)
    assert done.returncode == 0, done.stderr
    renames = int(done.stdout.split()[-1])
    assert renames >= (1 if fresh else 3)  # commit + one per file
    for k in range(1, renames + 1):
        out = tmp_path / f"run{k}"
        if not fresh:
            out.mkdir()
            user_tree(out, user_files)
            assert run_writer(out).returncode == 0  # an old set to be replaced
            atomic.write_text(out / "a.json", '{"v": "old"}\n')
        killed = run_writer(out, k)
        assert killed.returncode == -signal.SIGKILL, (k, killed.stderr)
        if not fresh:  # every user file in place and visible, right after the kill
            files = visible_files(out)
            assert {r: files.get(r) for r in user_files} == user_files, k
        again = run_writer(out)
        assert again.returncode == 0, (k, again.stderr)
        files = visible_files(out)
        assert files["a.json"] == '{"v": "new"}\n' and files["a.csv"] == "new\n", k
        if not fresh:
            assert {r: files[r] for r in user_files} == user_files, k
        assert leftovers(tmp_path) == [], k


def test_the_users_folder_keeps_its_inode_and_mode(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    os.chmod(out, 0o755)
    (out / "notes.txt").write_text("mine")
    inode = out.stat().st_ino
    assert run_writer(out).returncode == 0
    assert run_writer(out).returncode == 0
    assert out.stat().st_ino == inode
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert (out / "notes.txt").read_text() == "mine"


def test_a_new_out_folder_gets_the_mode_of_any_new_folder(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic.file_set(tmp_path / "new") as stage:
            atomic.write_text(stage / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o755  # not mkdtemp's 0700


def test_a_symlinked_out_is_written_through_and_stays_a_symlink(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    for _ in range(2):
        with atomic.file_set(link) as stage:
            atomic.write_text(stage / "a.json", "{}")
    assert link.is_symlink() and (target / "a.json").read_text() == "{}"
    assert leftovers(tmp_path) == []


def test_a_dangling_symlink_is_refused(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(atomic.OutputError, match="does not exist"):
        atomic.check_output_dir(tmp_path / "link")


def test_files_an_older_swap_hid_are_put_back_when_out_exists(tmp_path):
    # What a SIGKILL between the old swap's renames left: the new set at out, the
    # user's files in a hidden .out.previous-* folder that nothing restored.
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text("new")
    hidden = tmp_path / ".out.previous-abc"
    hidden.mkdir()
    (hidden / "notes.txt").write_text("mine")
    (hidden / "a.json").write_text("old")
    with atomic.file_set(out) as stage:
        atomic.write_text(stage / "b.json", "{}")
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "a.json").read_text() == "new"  # the newer file is not overwritten
    assert not hidden.exists()


def metamapg(*args, timeout=60, env=None):
    return subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


BASIN = ["tabular", "basin", "--grid", "3", "--mode", "exact", "--steps", "5",
         "--arms", "peer_only"]


@pytest.mark.parametrize("make_args, flag", [
    (lambda f: BASIN + ["--out", str(f / "sub")], "--out"),
    (lambda f: ["report", "/nonexistent", "--out", str(f)], "--out"),
    (lambda f: ["sweep", "--env", "stag_hunt", "--arms", "ippo", "--seeds", "0", "--smoke",
                "--storage-path", str(f / "sub")], "--storage-path"),
])
def test_an_output_path_under_a_file_is_refused_before_any_work(tmp_path, make_args, flag):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    proc = metamapg(*make_args(afile))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{flag}=" in proc.stderr and "Traceback" not in proc.stderr
    assert afile.read_text() == "mine"
