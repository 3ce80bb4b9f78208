"""Helpers the GUI tests import by name (conftest.py itself is not importable by a unique name)."""
from __future__ import annotations

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
