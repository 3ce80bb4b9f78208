"""Helpers the GUI tests import by name (conftest.py itself is not importable by a unique name)."""

from __future__ import annotations

import threading

import engine
import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

# A stall bound, not a speed requirement: the GUI tests run on the portable kernels (nothing to
# compile), where a model loads in well under a second; the bound is for a loaded CI machine.
MODEL_LOAD_MS = 60_000


def pattern(seed: int, w: int = 48, h: int = 40) -> np.ndarray:
    """A distinct, deterministic RGB uint8 picture per seed (noise plus a coloured gradient)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, np.full_like(xx, seed * 37 % 256)], axis=-1)
    return np.clip(base * rng.uniform(0.2, 1.0, 3) + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def drop_files(target, paths, pos: QPoint | None = None) -> bool:
    """A real drag-enter, drag-move and drop of file URLs on `target` (a widget, or an item view's
    viewport) at `pos` (its centre by default), as a file manager sends them. True if all accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    if pos is None:
        pos = QPoint(target.width() // 2, target.height() // 2)
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, enter)
    move = QDragMoveEvent(pos, Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, move)
    drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, drop)
    return enter.isAccepted() and move.isAccepted() and drop.isAccepted()


ANY_IMAGE = object()


class Gate:
    """Holds every classifier pass over `image` (that very array, or ANY_IMAGE) on the worker's
    thread until the test opens it: the test then knows the worker is busy, without timing anything."""

    def __init__(self, image):
        self.image = image
        self.entered = threading.Event()
        self.opened = threading.Event()

    def hold(self, image) -> None:
        if self.image is ANY_IMAGE or image is self.image:
            self.entered.set()
            if not self.opened.wait(MODEL_LOAD_MS / 1000):
                raise RuntimeError("the test never opened the gate")


def gated(gate: Gate):
    """A make_classifier for InferenceWorker: real engine Classifiers whose passes wait at `gate`."""

    class GatedClassifier(engine.Classifier):
        def classify(self, image, keep_going=None):
            gate.hold(image)
            return super().classify(image, keep_going)

    return lambda net, names, resize: GatedClassifier(net, names=names, resize=resize)
