"""Every code block of README.md and docs/*.md runs, or says why it does not.

Each fenced ``python``, ``bash``, ``sh`` or ``console`` block is run in a fresh
folder per document (the blocks of one document share it, in order, so a report
can read the sweep an earlier block ran), with ``METAMAPG_SMOKE=1``: every
documented command then runs at a smoke size (``rllib_metamapg/limits.py``).  A
block that must not run here is preceded by

    <!-- doc-example: skip: <the reason> -->

and is reported as skipped with that reason.  A broken example fails the suite.
The blocks are marked ``full``: ``make test-docs`` runs them, and ``.ci/run`` runs
that after ``make test``.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGS = ("python", "bash", "sh", "console")
BLOCK = re.compile(r"(?:^<!-- doc-example: skip: (?P<skip>.+?) -->\n)?^```(?P<lang>\w*)\n"
                   r"(?P<code>.*?)^```", re.S | re.M)
# Inputs the examples read by relative path, linked into each document's folder.
INPUTS = ("tuned_examples", "studies")
BLOCK_TIMEOUT_S = 600


def collect():
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in BLOCK.finditer(text):
            if m.group("lang") not in LANGS:
                continue
            line = text[:m.start("lang")].count("\n") + 1
            # Each block takes 3-150 s (Ray's start-up, torch's import per command):
            # marked `full`; `make test-docs` runs them and .ci/run runs that after
            # `make test`, so every block runs in CI while `make test` stays as long.
            out.append(pytest.param(doc, m.group("lang"), m.group("code"), m.group("skip"),
                                    id=f"{doc.relative_to(ROOT)}:{line}",
                                    marks=[pytest.mark.full]))
    return out


EXAMPLES = collect()
_FOLDERS = {}


def folder_for(doc: Path) -> Path:
    if doc not in _FOLDERS:
        # Short: Ray's socket paths under RAY_TMPDIR are limited to 107 bytes.
        path = Path(tempfile.mkdtemp(prefix="mmdoc", dir="/tmp"))
        for name in INPUTS:
            (path / name).symlink_to(ROOT / name)
        _FOLDERS[doc] = path
    return _FOLDERS[doc]


def environment(folder: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(METAMAPG_SMOKE="1", PYTHONUNBUFFERED="1", RAY_TMPDIR=str(folder),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               HOME=str(folder))  # ~/ray_results of an example lands here
    return env


def test_the_collector_finds_the_readme_examples():
    ids = [p.id for p in EXAMPLES]
    assert sum(i.startswith("README.md:") for i in ids) >= 5
    assert any(p.values[1] == "python" for p in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("doc, lang, code, skip", EXAMPLES)
def test_doc_example(doc, lang, code, skip):
    if skip:
        pytest.skip(skip)
    folder = folder_for(doc)
    if lang == "python":
        cmd = [sys.executable, "-c", code]
    else:
        cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
    proc = subprocess.run(cmd, cwd=folder, env=environment(folder), capture_output=True,
                          text=True, timeout=BLOCK_TIMEOUT_S)
    assert proc.returncode == 0, (f"{doc.relative_to(ROOT)} example failed "
                                  f"(exit {proc.returncode}):\n{code}\n--- stdout\n"
                                  f"{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")


def test_smoke_mode_caps_sizes_and_keeps_the_documented_sweep_folder(monkeypatch, capsys):
    import argparse

    from rllib_metamapg import limits
    from rllib_metamapg.sweep.command import add_sweep_arguments, spec_from_args

    monkeypatch.delenv(limits.SMOKE_ENV, raising=False)
    values = {"seeds": 100, "steps": 140, "grid": 21, "lr": 0.9}
    assert limits.apply_smoke(values) == {} and values["seeds"] == 100  # off by default
    monkeypatch.setenv(limits.SMOKE_ENV, "1")
    assert limits.apply_smoke(values) == {"seeds": 2, "steps": 5, "grid": 3}
    assert values["lr"] == 0.9
    p = argparse.ArgumentParser()
    add_sweep_arguments(p)
    args = p.parse_args(["--env", "stag_hunt", "--arms", "ippo,peer_only", "--seeds", "3-9",
                         "--gpus-per-trial", "0.33", "--max-concurrent", "12"])
    spec = spec_from_args(args)
    assert spec.smoke and list(spec.seeds) == [3] and spec.gpus_per_trial == 0.0
    assert spec.name == "stag_hunt" and spec.max_concurrent == 2  # --resume <storage>/stag_hunt
    assert "METAMAPG_SMOKE=1: smoke run" in capsys.readouterr().err
