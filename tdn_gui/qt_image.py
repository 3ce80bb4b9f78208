"""The numpy <-> QImage boundary, done so that no QImage ever points at a buffer that can vanish.

QImage(bytes, ...) does not copy: it keeps a raw pointer into the numpy array. If the array is a
temporary (a slice, a conversion result) the image paints garbage or crashes later. Every function
here therefore returns a QImage that owns its pixels (``.copy()``), and numpy arrays that own theirs.
QImage (unlike QPixmap) may be built on any thread, so decoders and the capture thread use these;
so is painting on a QImage, which is how thumbnails are made.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage, QPainter

THUMB_SIDE = 96  # pixels: the image strips' thumbnails are squares of this side


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float 0..1 or uint8 -> C-contiguous (H, W, 3) uint8."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def qimage_from_rgb(image: np.ndarray) -> QImage:
    """(H, W, 3) RGB array (uint8, or float 0..1) -> a QImage that owns a copy of the pixels."""
    rgb = to_uint8_rgb(image)
    h, w, _ = rgb.shape
    # bytesPerLine is given explicitly: rows of 3*w bytes are not 4-byte aligned, and QImage
    # would otherwise assume padded rows and shear the picture.
    view = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return view.copy()  # detach from `rgb`, which dies with this frame


def rgb_from_qimage(image: QImage) -> np.ndarray:
    """QImage of any format -> (H, W, 3) uint8 RGB array that owns its memory."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = rgb.height(), rgb.width()
    stride = rgb.bytesPerLine()  # may include padding at the end of each row
    buf = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


def scaled_to_fit(image: QImage, max_side: int) -> QImage:
    """A smaller copy whose longest side is at most max_side (aspect kept); the image if it fits."""
    if max(image.width(), image.height()) <= max_side:
        return image
    return image.scaled(
        max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def square_thumbnail(image: QImage) -> QImage:
    """The image fitted into a transparent THUMB_SIDE square, so that strip labels line up."""
    small = image.scaled(
        THUMB_SIDE, THUMB_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    thumb = QImage(THUMB_SIDE, THUMB_SIDE, QImage.Format.Format_ARGB32_Premultiplied)
    thumb.fill(Qt.GlobalColor.transparent)
    painter = QPainter(thumb)  # painting on a QImage is allowed off the GUI thread
    painter.drawImage((THUMB_SIDE - small.width()) // 2, (THUMB_SIDE - small.height()) // 2, small)
    painter.end()
    return thumb


def png_bytes(image: QImage) -> bytes:
    """The image encoded as PNG (to be written whole, see engine_api.replacing); OSError if Qt
    cannot encode it."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    encoded = image.save(buffer, "PNG")
    buffer.close()
    if not encoded:
        raise OSError("could not encode the image as PNG")
    return bytes(data)
