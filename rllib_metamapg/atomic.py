"""Atomic output: every file appears complete or not at all, and so does every set.

A result set never costs the user a file, a permission or a folder's identity:
the user's ``--out`` folder is never moved or replaced.  A new folder is built
beside its final name and renamed into place (the set appears whole); an
existing folder gets the set through a journal kept inside it (below), so a
SIGKILL at any point leaves every file of the user's in place and visible, and
the next write of the set finishes or discards the interrupted one and says so.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from rllib_metamapg.errors import UsageError

# Inside an existing output folder: a set being written (discarded if interrupted)
# and a set being published (its files moved in one by one; finished if interrupted).
STAGING = ".metamapg-staging-"
PUBLISHING = ".metamapg-publishing-"


class OutputError(UsageError):
    """An output path that cannot hold a result set; says what to give instead."""


def check_output_dir(path, flag: str = "--out") -> Path:
    """Refuses an output folder that cannot be one, before any work is done.

    A folder, a missing path under a writable folder, or a symlink to a folder
    are fine; a file, a path under a file, a dangling symlink or a read-only
    parent are refused with the flag named.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{flag}={str(path)!r} is a symlink to {os.readlink(path)!r}, "
                          "which does not exist; create its target or give another folder.")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag}={str(path)!r} is an existing file; give a folder "
                          "(it is created if missing).")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"{flag}={str(path)!r}: {str(parent)!r} is a file, so no folder "
                              "can be made under it; give a path under a folder.")
    existing = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{flag}={str(path)!r}: {str(existing)!r} is not writable.")
    return path


def _new_dir_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _note(text: str) -> None:
    print(f"[metamapg] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def file_set(out) -> Iterator[Path]:
    """Stages a set of files and publishes them together.

    Yields a staging folder; write the whole set there.  Nothing reaches ``out``
    until the block has finished, and any failure (an exception, Ctrl-C) removes
    the staging folder and leaves ``out`` as it was.

    Publishing: a missing ``out`` is the staging folder renamed (with the mode a
    new folder gets), so it appears whole.  An existing ``out`` (the user's
    folder, a symlink to one, a folder with sub-folders) is never moved: the
    staging folder inside it is renamed to a publishing journal (the commit
    point), its files are renamed into ``out`` one by one, JSON last, and the
    journal is removed.  Files of ``out`` that the set does not name are never
    touched.  A SIGKILL before the commit point leaves the old set; after it,
    the next ``file_set`` on ``out`` finishes the publication first.
    """
    out = Path(out)
    check_output_dir(out)
    recover(out)
    if out.exists():
        stage = Path(tempfile.mkdtemp(prefix=STAGING, dir=out))
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING}", dir=out.parent))
    try:
        yield stage
        if stage.parent != out:  # a new folder: appears whole, with a new folder's mode
            os.chmod(stage, _new_dir_mode())
            try:
                os.rename(stage, out)  # refuses (not replaces) a folder made meanwhile
                return
            except OSError:
                if not out.is_dir():
                    raise
                moved = Path(tempfile.mkdtemp(prefix=STAGING, dir=out))
                os.rmdir(moved)
                os.replace(stage, moved)
                stage = moved
        journal = stage.with_name(PUBLISHING + stage.name[len(STAGING):])
        os.replace(stage, journal)  # the commit point
        _publish(journal, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _publish(journal: Path, out: Path) -> None:
    for entry in sorted(journal.iterdir(), key=lambda e: (e.suffix == ".json", e.name)):
        target = out / entry.name
        if entry.is_dir() and target.is_dir():  # our own sub-folder (.cache): merge it
            for item in entry.iterdir():
                os.replace(item, target / item.name)
            os.rmdir(entry)
        else:
            os.replace(entry, target)
    os.rmdir(journal)


def recover(out) -> None:
    """Finishes or discards what an interrupted ``file_set`` left, and says so.

    Also puts back the files an older version of this package left in a
    hidden ``.<out>.previous-*`` folder when it was killed mid-swap: each file
    the folder does not hold again is moved back (nothing is overwritten).
    """
    out = Path(out)
    parent = out.parent
    if parent.is_dir():
        for leftover in parent.glob(f".{out.name}{STAGING}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in parent.glob(f".{out.name}.staging-*"):  # older versions' staging
            shutil.rmtree(leftover, ignore_errors=True)
        for previous in sorted(parent.glob(f".{out.name}.previous-*")):
            if not out.exists():
                os.replace(previous, out)
            else:
                for entry in previous.iterdir():
                    if not (out / entry.name).exists():
                        os.replace(entry, out / entry.name)
                shutil.rmtree(previous)
            _note(f"{out}: put back the files an interrupted write had moved to "
                  f"{previous.name}.")
    if not out.is_dir():
        return
    for leftover in out.glob(f"{STAGING}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for journal in sorted(out.glob(f"{PUBLISHING}*")):
        _publish(journal, out)
        _note(f"{out}: finished publishing a result set that an interrupted run had "
              "started to write.")


def write_bytes(path, data: bytes) -> Path:
    """Writes ``data`` to a temporary file beside ``path`` and renames it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would surprise users
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_csv(path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return write_text(path, buf.getvalue())


def write_figure(path, fig) -> Path:
    """Saves a matplotlib figure atomically as PNG and closes it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return write_bytes(path, buf.getvalue())
