"""A window that runs for hours makes millions of void PySide calls and Signal emits; none may
wear down the reference counts of None/True (see tdn_gui/pyside_fix.py)."""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

import tdn_gui  # noqa: F401  (applies the fix on import)
from tdn_gui import pyside_fix


class _Emitter(QObject):
    ping = Signal()


def test_many_void_calls_and_emits_do_not_exhaust_none_or_true(qtbot):
    label = QLabel()
    emitter = _Emitter()
    emitter.ping.connect(lambda: None)
    for _ in range(200_000):   # more than None's whole count in a fresh 3.11 interpreter
        label.setText("x")
        emitter.ping.emit()
    assert sys.getrefcount(None) > 1_000 and sys.getrefcount(True) > 1_000
    print(f"\nprotected singletons: {pyside_fix.PROTECTED or 'none needed'}")
