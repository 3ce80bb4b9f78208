"""Writing files so that nobody ever sees half of one. Every file tdn writes goes through here.

A file is written beside its destination under a temporary name, flushed to the disk (fsync),
then renamed over the destination in one step (os.replace: atomic within a filesystem). A
reader, a crash or a full disk leaves the old file or the new one, never a torn one, and a
failure removes the temporary file. Temporary names start with a dot and end in `.part`, so
folder listings skip them and a leftover is easy to recognise.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PART_SUFFIX = ".part"


@contextmanager
def replacing(final: str | Path) -> Iterator:
    """`with replacing(path) as f: f.write(...)`: the file appears at `path` whole when the block
    ends, or (if it raises) not at all."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=PART_SUFFIX, dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(final: str | Path, data: bytes) -> None:
    """Write `data` to `final` whole, or not at all."""
    with replacing(final) as f:
        f.write(data)


def stage(final: str | Path, data: bytes) -> Path:
    """Write `data` under a temporary name beside `final`, on the disk, and return that name: for
    files that must appear together (publish each once all are staged and checked)."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=PART_SUFFIX, dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def publish(staged: Path, final: str | Path) -> None:
    """Put a staged file in place (an atomic rename)."""
    os.replace(staged, final)
