"""The memory budget: a plan adds up its buffers before it allocates any, and is refused over budget.

A cfg with width=60000 would otherwise ask numpy for 40 GiB in one go (a traceback), and a size
just below what fails at once would touch memory until the kernel's OOM killer ends the process,
or the app. So every step allocates its buffers through `empty` here, and engine/plan.py first
builds the plan in a dry run, where `empty` only counts (and hands back a zero-byte stand-in):
the steps' own constructors are the one place their sizes are written down.

The budget: TDN_MEMORY_BUDGET (bytes, or with K/M/G: "4G", "512M"; `tdn --memory` sets it), else
DEFAULT_SHARE of the memory the system says is available now.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re

import numpy as np

from .errors import EngineError

ENV = "TDN_MEMORY_BUDGET"
# Half of what is available: the rest is for the image being decoded and resized, the GUI, the
# compiled kernels and whatever else the user runs (Tiny at 1024x1024 needs ~0.4 GiB of it)
DEFAULT_SHARE = 0.5

_counting: contextvars.ContextVar[list | None] = contextvars.ContextVar("tdn_counting", default=None)


class MemoryBudgetError(EngineError):
    """A plan (or an input) that would need more memory than the budget allows."""


# Buffers start on a cache line. numpy's own start 16 bytes in: then a kernel's 16-float (64-byte)
# stores and loads each straddle two lines, and where two threads write neighbouring blocks of
# filters they share a line at every pixel (Tiny runs ~7 % slower so; `tdn bench tiny`).
CACHE_LINE_BYTES = 64
ALIGNMENT = CACHE_LINE_BYTES


def empty(shape, dtype=np.float32) -> np.ndarray:
    """np.empty starting on a cache line (ALIGNMENT), or in a dry run (see counting) a zero-byte
    read-only stand-in of that shape, its bytes added to the count."""
    shape = tuple(shape) if np.iterable(shape) else (shape,)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    count = _counting.get()
    if count is not None:
        count[0] += nbytes
        return np.broadcast_to(np.zeros((), dtype), shape)
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


@contextlib.contextmanager
def counting():
    """`with counting() as count:` every `empty` in the block only adds to count[0] (bytes)."""
    count = [0]
    token = _counting.set(count)
    try:
        yield count
    finally:
        _counting.reset(token)


def parse_size(text: str) -> int:
    """ "4G", "512M", "1.5g", "300000000" → bytes; ValueError with the one line to show."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not match:
        raise ValueError(f"memory size {text!r}: give bytes, or a number with K, M, G or T (e.g. 4G)")
    number, unit = float(match.group(1)), match.group(2).upper()
    return int(number * 1024 ** " KMGT".index(unit or " "))


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def available() -> int | None:
    """Bytes the system can give without swapping now (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def budget() -> tuple[int | None, str]:
    """(bytes a plan may use, how that was decided), or (None, ...) for no limit known."""
    text = os.environ.get(ENV, "").strip()
    if text:
        try:
            return parse_size(text), f"{ENV}={text}"
        except ValueError as exc:
            raise MemoryBudgetError(f"{ENV}: {exc}") from None
    free = available()
    if free is None:
        return None, "no limit: the available memory is unknown here"
    return int(free * DEFAULT_SHARE), (
        f"{DEFAULT_SHARE:.0%} of the {format_bytes(free)} available now; --memory or {ENV} sets it"
    )


def check(needed: int, what: str) -> None:
    """MemoryBudgetError (one line: what, the bytes needed and the budget) when needed is over it."""
    limit, how = budget()
    if limit is not None and needed > limit:
        raise MemoryBudgetError(
            f"{what} needs {format_bytes(needed)}, over the memory budget of {format_bytes(limit)} ({how})"
        )


def give_back() -> None:
    """Hand freed memory back to the system: after a model is replaced or a long job ends, glibc
    keeps the freed buffers in its arenas (the GUI soak: RSS 546 MB back on Tiny after Darknet
    Reference, 413 MB after this), so the process's size would show its largest past, not now."""
    import gc

    gc.collect()
    trim()


def trim() -> None:
    """Ask glibc to return the free pages of its arenas (a few milliseconds; nothing elsewhere).
    A long stream needs it now and then, not only at switches: frames of megabytes are allocated
    and freed by several threads, each in an arena of its own, and the freed space creeps up
    (the GUI soak at 60 fps: +7 to +14 MB in each 2.5-minute phase, returned at the next switch)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to ask
        pass
