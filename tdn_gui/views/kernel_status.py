"""The status bar's word on the engine's kernels: which ones classify, and how fast.

On a fresh install the compiled kernels take a minute or so to compile, in another process;
meanwhile the portable ones answer. The widget says so, with the compile's progress and the
time per image as it falls, then announces the switch once.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

COMPILING = "Compiling fast kernels in the background (first start only) — portable path meanwhile"
EXPLAINED = (
    "tdn compiles its fast kernels once per install, in a process of its own. Until they are "
    "ready it classifies with its portable (numpy) kernels: the same answers, more slowly. "
    "`tdn compile` in a terminal compiles them in the foreground."
)
SMOOTHING = 0.3  # weight of the newest time in the running mean
UPDATE_SECONDS = 0.25  # text updates at most 4 times a second (a webcam answers 30-60)


class KernelStatusLabel(QWidget):
    """Shows a KernelStatus (from the worker's kernels_changed), the compile's progress, and the
    running ms per image (from each result's seconds)."""

    announced = Signal(str)  # one-off news for the status bar: the fast kernels took over

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFixedWidth(90)
        self.progress.setToolTip("Share of the fast kernels compiled")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.progress)
        self.setToolTip(EXPLAINED)
        self.status = None
        self.ms: float | None = None  # running mean of the time per image
        self._portable_ms: float | None = None  # the last figure on the portable path
        self._shown_at = 0.0
        self._later = QTimer(self)  # a figure that came too soon after the last update
        self._later.setSingleShot(True)
        self._later.timeout.connect(self._show)
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def set_status(self, status) -> None:
        was_compiled = self.status is not None and self.status.path == "compiled"
        if status.path == "compiled" and not was_compiled and self.status is not None:
            self._portable_ms, self.ms = self.ms, None  # start the new figure afresh
            self.announced.emit("The fast kernels are ready: classifying on the compiled path now")
        self.status = status
        self._show()

    def add_timing(self, seconds: float) -> None:
        ms = seconds * 1e3
        self.ms = ms if self.ms is None else (1 - SMOOTHING) * self.ms + SMOOTHING * ms
        wait = UPDATE_SECONDS - (time.monotonic() - self._shown_at)
        if wait <= 0:
            self._show()
        elif not self._later.isActive():
            self._later.start(int(wait * 1000) + 1)

    def text_for(self) -> str:
        status = self.status
        if status is None:
            return ""
        timing = "" if self.ms is None else f" · {self.ms:.0f} ms per image"
        if status.path == "compiled":
            was = "" if self._portable_ms is None or self.ms is None else f" (portable: {self._portable_ms:.0f} ms)"
            return f"Compiled kernels{timing}{was}"
        if status.mode == "portable":
            return f"Portable kernels (TDN_KERNELS=portable){timing}"
        if status.compiling:
            return f"{COMPILING}{timing}"
        return (
            f"Portable kernels: the fast ones did not compile ({status.compiled} of {status.total} "
            f"ready; `tdn compile` says why){timing}"
        )

    def _show(self) -> None:
        self._later.stop()
        self._shown_at = time.monotonic()
        self.label.setText(self.text_for())
        compiling = (
            self.status is not None
            and self.status.mode == "auto"
            and self.status.compiling
            and self.status.path != "compiled"
        )
        self.progress.setVisible(compiling)
        if compiling:
            self.progress.setValue(round(100 * self.status.progress))
        self.setVisible(bool(self.label.text()))
