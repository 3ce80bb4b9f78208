"""Keep PySide6 6.12.0 on CPython 3.11 from aborting the app after a few minutes.

That binding returns None from every void method (setText, update, repaint, ...) without taking a
reference to it, and True from Signal.emit likewise. CPython 3.12+ makes None/True/False immortal,
so nothing happens there; on 3.11 each call lowers the count by one, and a live camera view makes
thousands of such calls a second until the interpreter aborts with "Fatal Python error:
none_dealloc: deallocating None". Measured here with the installed versions; the proper cure is a
PySide6 without the bug (or Python >= 3.12).

The workaround: detect the stolen references with a few probe calls, and only then add a large
constant to those singletons' reference counts. They are static objects that are never freed, so
an inflated count has no other effect than keeping the count from reaching zero.
"""
from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

PROBE_CALLS = 16
HEADROOM = 1 << 40   # ~10**12 leaked calls before the count could reach zero again


class _Probe(QObject):
    ping = Signal()


def _steals(obj, call) -> bool:
    before = sys.getrefcount(obj)
    for _ in range(PROBE_CALLS):
        call()
    return sys.getrefcount(obj) <= before - PROBE_CALLS


def _add_headroom(obj) -> None:
    # In CPython < 3.12 an object starts with its Py_ssize_t ob_refcnt, at id(obj). The GIL is
    # held here, so no other thread changes the count between the read and the write.
    ctypes.c_ssize_t.from_address(id(obj)).value += HEADROOM


def apply() -> list[str]:
    """Protect the singletons this PySide6 over-releases; returns their names (empty if none)."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return []
    probe = _Probe()
    fixed = []
    if _steals(None, lambda: probe.setObjectName("probe")):
        _add_headroom(None)
        fixed.append("None")
    if _steals(True, probe.ping.emit):
        _add_headroom(True)
        _add_headroom(False)
        fixed += ["True", "False"]
    return fixed


PROTECTED = apply()
