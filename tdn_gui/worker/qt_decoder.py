"""Decoding image files off the GUI thread, on a small pool of its own that runs no inference
(so a decode never waits behind a frame, nor a frame behind a decode).

A 12-megapixel JPEG takes tens of milliseconds to decode and convert; done on the GUI thread it
would stall the window. The pool also makes the display image and the thumbnail (QImage may be
built on any thread; QPixmap may not, so the views turn them into pixmaps themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

import engine

from ..qt_image import qimage_from_rgb, scaled_to_fit, square_thumbnail

DISPLAY_MAX_SIDE = 2048  # plenty for a screen; keeps a batch of photos from eating memory
# A big JPEG is decoded at 1/2, 1/4 or 1/8 of its size when it keeps this many pixels a side
# (engine.load_image's at_least): enough for the display and for any model's input (twice it,
# up to 800-pixel inputs); a 6000x4000 photo then decodes at 3000x2000, a quarter of the pixels
DECODE_AT_LEAST = 1600


@dataclass(frozen=True)
class Decoded:
    entry_id: int
    rgb: np.ndarray | None  # (H, W, 3) float32 RGB 0..1, what the classifier gets
    display: QImage | None
    thumb: QImage | None
    error: str | None = None


def display_and_thumbnail(entry_id: int, rgb: np.ndarray) -> Decoded:
    """An already decoded image with its display image and thumbnail."""
    display = scaled_to_fit(qimage_from_rgb(rgb), DISPLAY_MAX_SIDE)
    return Decoded(entry_id, rgb, display, square_thumbnail(display))


class _DecodeJob(QRunnable):
    def __init__(self, decoder: "Decoder", entry_id: int, path: str):
        super().__init__()
        self._decoder, self._entry_id, self._path = decoder, entry_id, path

    def run(self) -> None:
        try:
            result = display_and_thumbnail(self._entry_id, engine.load_image(self._path, DECODE_AT_LEAST))
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a message, never a dead pool thread
            result = Decoded(self._entry_id, None, None, None, engine.one_line(exc))
        self._decoder.decoded.emit(result)  # queued to the GUI thread, where the decoder lives


class Decoder(QObject):
    decoded = Signal(object)  # Decoded

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
