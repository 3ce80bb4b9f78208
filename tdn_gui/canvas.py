"""ImageCanvas: shows one QImage scaled to the widget with its aspect kept, or a placeholder text."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget


class ImageCanvas(QWidget):
    def __init__(self, placeholder: str = "", parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._placeholder = placeholder
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # we fill every pixel ourselves

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None and not image.isNull() else None
        self.update()

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
        size = QSize(self._image.size()).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 33, 36))
        if self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.image_rect(), self._image)
        elif self._placeholder:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect().adjusted(16, 16, -16, -16),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
        painter.end()
