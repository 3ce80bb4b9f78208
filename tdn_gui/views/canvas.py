"""ImageCanvas: shows one QImage scaled to the widget with its aspect kept, or a placeholder text."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget


BACKGROUND = QColor(32, 33, 36)


def fit_size(image_w: int, image_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest image_w:image_h size inside box_w x box_h (QSize.scaled's KeepAspectRatio)."""
    w = box_h * image_w // image_h
    return (w, box_h) if w <= box_w else (box_w, box_w * image_h // image_w)


class ImageCanvas(QWidget):
    """Video frames can arrive already scaled to `pixel_box()` (the capture thread does it with
    OpenCV): such a frame is blitted 1:1, which costs the GUI thread a fraction of a smooth
    scale (measured 2.4 ms per 640x480 frame, 15% of a core at 60 fps)."""

    def __init__(self, placeholder: str = "", parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._overlay: QImage | None = None  # a heatmap, stretched over the whole image
        self._overlay_opacity = 0.6
        self._pixel_box = (0, 0, 1.0)
        self._placeholder = placeholder
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # we fill every pixel ourselves

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None and not image.isNull() else None
        self.update()

    def set_overlay(self, overlay: QImage | None, opacity: float | None = None) -> None:
        """A picture to lay over the image (stretched to cover it exactly), or None."""
        self._overlay = overlay if overlay is not None and not overlay.isNull() else None
        if opacity is not None:
            self._overlay_opacity = opacity
        self.update()

    def overlay(self) -> QImage | None:
        return self._overlay

    def overlay_opacity(self) -> float:
        return self._overlay_opacity

    def pixel_box(self) -> tuple[int, int, float]:
        """(width, height) in device pixels and the device pixel ratio: a plain tuple, safe to
        read from the capture thread."""
        return self._pixel_box

    def resizeEvent(self, event) -> None:
        ratio = self.devicePixelRatioF()
        self._pixel_box = (round(self.width() * ratio), round(self.height() * ratio), ratio)
        super().resizeEvent(event)

    def image(self) -> QImage | None:
        return self._image

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def placeholder(self) -> str:
        return self._placeholder

    def image_rect(self) -> QRectF:
        """Where the image lands: as large as fits, centred, aspect kept."""
        if self._image is None:
            return QRectF()
        size = self._image.deviceIndependentSize()
        w, h = fit_size(round(size.width()), round(size.height()), self.width(), self.height())
        return QRectF((self.width() - w) // 2, (self.height() - h) // 2, w, h)

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self._image is None:
            painter.fillRect(self.rect(), BACKGROUND)
        else:
            rect = self.image_rect()
            # only the margins: the frame covers the rest, and filling all of it costs a pass
            painter.fillRect(QRectF(0, 0, self.width(), rect.top()), BACKGROUND)
            painter.fillRect(QRectF(0, rect.bottom(), self.width(), self.height() - rect.bottom()), BACKGROUND)
            painter.fillRect(QRectF(0, rect.top(), rect.left(), rect.height()), BACKGROUND)
            painter.fillRect(QRectF(rect.right(), rect.top(), self.width() - rect.right(), rect.height()), BACKGROUND)
            if self._image.deviceIndependentSize().toSize() == rect.size().toSize():
                painter.drawImage(QPoint(round(rect.x()), round(rect.y())), self._image)
            else:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(rect, self._image)
            if self._overlay is not None:
                # a few cells stretched smoothly over the picture: the map's own bilinear look
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.setOpacity(self._overlay_opacity)
                painter.drawImage(rect, self._overlay)
                painter.setOpacity(1.0)
        if self._image is None and self._placeholder:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(
                self.rect().adjusted(16, 16, -16, -16),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
        painter.end()
