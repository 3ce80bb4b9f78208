"""Writing files so that nobody ever sees half of one. Every file tdn writes goes through here.

A file is written beside its destination under a temporary name, flushed to the disk (fsync),
then renamed over the destination in one step (os.replace: atomic within a filesystem). A
reader, a crash or a full disk leaves the old file or the new one, never a torn one, and a
failure removes the temporary file. Temporary names start with a dot and end in `.part`, so
folder listings skip them and a leftover is easy to recognise. The file gets the mode any program
gives a new file, 0o666 less the umask (-rw-r--r-- under the usual 022), not mkstemp's private
0600: exported models and CSVs are meant to be shared.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PART_SUFFIX = ".part"


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask can only be
    read by setting it, which another thread creating a file at that moment would see)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(final: Path) -> tuple[int, str]:
    """A new temporary file beside `final`, with the mode `final` has (a file replaced keeps its
    mode, as one rewritten in place would), else a new file's usual mode."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=PART_SUFFIX, dir=final.parent)
    try:
        try:
            mode = final.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~current_umask()
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


@contextmanager
def replacing(final: str | Path) -> Iterator:
    """`with replacing(path) as f: f.write(...)`: the file appears at `path` whole when the block
    ends, or (if it raises) not at all."""
    final = Path(final)
    fd, tmp = _temporary(final)
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
    fd, tmp = _temporary(final)
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
