"""Atomic output: every file appears complete or not at all, and so does every set."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence


def check_output_dir(path, flag: str = "--out") -> Path:
    """Refuses an output folder that cannot be one, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{flag}={str(path)!r} is an existing file; give a folder "
                              "(it is created if missing).")
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{flag}={str(path)!r}: {str(parent)!r} is not writable.")
    return path


# Sub-folders an output folder may hold and still be swapped whole (our own cache).
SWAPPABLE_DIRS = (".cache",)


@contextlib.contextmanager
def file_set(out) -> Iterator[Path]:
    """Stages a set of files and publishes them together.

    Yields a hidden staging folder beside ``out``; write the whole set there.
    Nothing reaches ``out`` until the block has finished, and any failure (an
    exception, Ctrl-C) removes the staging folder and leaves ``out`` as it was.

    Publishing: when ``out`` is missing or holds only files (and our ``.cache``),
    the staging folder becomes ``out`` by rename and the previous folder's other
    entries are moved across, so ``out`` holds either the complete previous set
    or the complete new one, even under SIGKILL (killed between the two renames,
    the previous folder waits at ``.<name>.previous-*`` and the next
    ``file_set`` puts it back).  A folder with other sub-folders (a sweep, a
    home directory) is never renamed: the files are renamed into it one by one,
    JSON last, which only a SIGKILL within those few renames could interrupt.
    """
    out = Path(out)
    check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted_swap(out)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        yield stage
        if not out.exists():
            os.replace(stage, out)
        elif all(e.is_file() or e.name in SWAPPABLE_DIRS for e in out.iterdir()):
            previous = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous-", dir=out.parent))
            os.replace(out, previous)
            os.replace(stage, out)
            for entry in previous.iterdir():
                if not (out / entry.name).exists():
                    os.replace(entry, out / entry.name)
            shutil.rmtree(previous)
        else:
            for entry in sorted(stage.iterdir(), key=lambda e: e.suffix == ".json"):
                os.replace(entry, out / entry.name)
            shutil.rmtree(stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _restore_interrupted_swap(out: Path) -> None:
    previous = sorted(out.parent.glob(f".{out.name}.previous-*"))
    if previous and not out.exists():
        os.replace(previous[-1], out)
    for leftover in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)


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
