"""Output sets appear whole or not at all, and ``--out`` is checked before any work."""

import json
import subprocess
import sys

import pytest

from rllib_metamapg import atomic
from rllib_metamapg.cli import main

BASIN = ["tabular", "basin", "--grid", "3", "--mode", "exact", "--steps", "5",
         "--arms", "peer_only"]


def leftovers(folder):
    return sorted(p.name for p in folder.parent.rglob("*")
                  if p.name.endswith(".tmp") or ".staging-" in p.name or ".previous-" in p.name)


@pytest.mark.parametrize("extra", [[], ["notes"]])
def test_failure_after_the_first_file_keeps_the_complete_old_set(tmp_path, monkeypatch, extra):
    out = tmp_path / "basin"
    assert main(BASIN + ["--out", str(out)]) == 0
    for name in extra:  # a sub-folder of the user's: files are published one by one
        (out / name).mkdir()
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert set(old) == {"basin.json", "basin.csv", "basin.png"}

    def fail(*args, **kwargs):  # the set's second file: the CSV is already staged
        raise OSError("disk full")

    monkeypatch.setattr(atomic, "write_figure", fail)
    with pytest.raises(OSError, match="disk full"):
        main(BASIN + ["--steps", "7", "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == old
    assert leftovers(out) == []
    monkeypatch.undo()
    assert main(BASIN + ["--steps", "7", "--out", str(out)]) == 0
    doc = json.loads((out / "basin.json").read_text())
    assert doc["settings"]["steps"] == 7 and (out / "basin.csv").read_bytes() != old["basin.csv"]
    assert leftovers(out) == [] and all((out / n).is_dir() for n in extra)


def test_a_swap_killed_between_its_renames_is_put_back(tmp_path):
    out = tmp_path / "r"
    with atomic.file_set(out) as stage:
        atomic.write_text(stage / "a.json", "old")
    previous = tmp_path / ".r.previous-x"
    out.rename(previous)  # what a SIGKILL after the first rename leaves
    with atomic.file_set(out) as stage:
        assert (out / "a.json").read_text() == "old"  # restored before anything else
        atomic.write_text(stage / "a.json", "new")
    assert (out / "a.json").read_text() == "new" and not previous.exists()


def test_out_naming_a_file_is_refused_before_the_computation(tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", *BASIN, "--grid", "21",
                           "--steps", "4000", "--out", str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--out=" in proc.stderr and "existing file" in proc.stderr
    assert "step" not in proc.stderr  # no progress line: refused before the work
    assert target.read_text() == "mine"
