"""Decoding image files off the GUI thread, on a small pool that does no inference.

A 12-megapixel JPEG takes tens of milliseconds to decode and convert; done on the GUI thread it
would stall the window. The pool also prepares the display image and the thumbnail (QImage may be
built on any thread; QPixmap may not, so the view turns them into pixmaps itself).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Qt, Signal
from PySide6.QtGui import QImage, QPainter

import engine

from .qt_image import qimage_from_rgb, scaled_to_fit

DISPLAY_MAX_SIDE = 2048   # plenty for a screen; keeps a batch of photos from eating memory
THUMB_SIDE = 96


@dataclass(frozen=True)
class Decoded:
    entry_id: int
    rgb: np.ndarray | None        # (H, W, 3) float32 RGB 0..1, what the classifier gets
    display: QImage | None
    thumb: QImage | None
    error: str | None = None


def prepare(entry_id: int, rgb: np.ndarray) -> Decoded:
    """Display image and thumbnail for an already decoded array."""
    display = scaled_to_fit(qimage_from_rgb(rgb), DISPLAY_MAX_SIDE)
    return Decoded(entry_id, rgb, display, square_thumbnail(display))


def square_thumbnail(image: QImage) -> QImage:
    """The image fitted into a transparent THUMB_SIDE square, so that strip labels line up."""
    small = image.scaled(THUMB_SIDE, THUMB_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    thumb = QImage(THUMB_SIDE, THUMB_SIDE, QImage.Format.Format_ARGB32_Premultiplied)
    thumb.fill(Qt.GlobalColor.transparent)
    painter = QPainter(thumb)   # painting on a QImage is allowed off the GUI thread
    painter.drawImage((THUMB_SIDE - small.width()) // 2, (THUMB_SIDE - small.height()) // 2, small)
    painter.end()
    return thumb


class _DecodeJob(QRunnable):
    def __init__(self, decoder: "Decoder", entry_id: int, path: str):
        super().__init__()
        self._decoder, self._entry_id, self._path = decoder, entry_id, path

    def run(self) -> None:
        try:
            result = prepare(self._entry_id, engine.load_image(self._path))
        except Exception as exc:  # any unreadable file must become a message, never a dead pool thread
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            result = Decoded(self._entry_id, None, None, None, message)
        self._decoder.decoded.emit(result)   # queued to the GUI thread, where the decoder lives


class Decoder(QObject):
    decoded = Signal(object)   # Decoded

    def __init__(self, threads: int = 2, parent=None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)

    def decode(self, entry_id: int, path: str) -> None:
        self._pool.start(_DecodeJob(self, entry_id, path))

    def shutdown(self) -> None:
        """Drop jobs not yet started and wait for the running ones (each is one file)."""
        self._pool.clear()
        self._pool.waitForDone()
