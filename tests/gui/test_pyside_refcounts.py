"""A window that runs for hours makes millions of void PySide calls and Signal emits; none may
wear down the reference counts of None/True. PySide6 6.12.0 on Python 3.11 did (the interpreter
aborts with "none_dealloc"), so pyproject.toml excludes it; this guards the installed version."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    ping = Signal()


def test_many_void_calls_and_emits_do_not_exhaust_none_or_true(qtbot):
    label = QLabel()
    emitter = _Emitter()
    emitter.ping.connect(lambda: None)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(20_000):
        label.setText("x")
        emitter.ping.emit()
    assert sys.getrefcount(None) > none_before - 1_000
    assert sys.getrefcount(True) > true_before - 1_000
