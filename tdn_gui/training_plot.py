"""TrainingPlot: loss and accuracy per epoch, drawn with QPainter while the head trains."""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

LOSS_COLOR = QColor("#2f80ed")
TRAIN_COLOR = QColor("#27ae60")
VAL_COLOR = QColor("#e67e22")
MIN_EPOCHS = 10   # the x axis spans at least this many, so the first epochs do not fill it


class TrainingPlot(QWidget):
    """Loss (left axis, from 0 to its largest value) and training / validation accuracy (right axis,
    0-100 %; the validation curve is the held-out images') against the epoch. Feed it EpochStats with add(); clear() for a new run."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.epochs: list = []     # EpochStats
        self._placeholder = "Loss and accuracy appear here while training."
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 150)

    def clear(self) -> None:
        self.epochs = []
        self.update()

    def add(self, stats) -> None:
        self.epochs.append(stats)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, 200)

    # ---- painting ------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        painter.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        fm = QFontMetrics(self.font())
        text = pal.color(QPalette.ColorRole.WindowText)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        if not self.epochs:
            painter.setPen(muted)
            painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            painter.end()
            return
        top_loss = max(s.loss for s in self.epochs) or 1.0
        top_loss = _nice_ceiling(top_loss)
        ticks = [_tick_text(top_loss * (4 - i) / 4) for i in range(5)]
        left = max(fm.horizontalAdvance(t) for t in ticks) + 10
        right = fm.horizontalAdvance("100%") + 10
        legend_h = fm.height() + 6
        plot = QRectF(left, legend_h + 6, self.width() - left - right, self.height() - legend_h - fm.height() - 16)
        if plot.width() < 20 or plot.height() < 20:
            painter.end()
            return
        span = max(MIN_EPOCHS, len(self.epochs))

        def x_of(epoch: int) -> float:
            return plot.left() + plot.width() * (epoch - 1) / max(span - 1, 1)

        # grid and axes
        grid = QColor(muted)
        grid.setAlphaF(0.35)
        painter.setPen(QPen(grid, 1))
        for i in range(5):
            y = plot.top() + plot.height() * i / 4
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        painter.setPen(muted)
        for i in range(5):
            y = plot.top() + plot.height() * i / 4
            painter.drawText(QRectF(0, y - fm.height() / 2, left - 6, fm.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, ticks[i])
            painter.drawText(QRectF(plot.right() + 6, y - fm.height() / 2, right - 6, fm.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{25 * (4 - i)}%")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 4, plot.width(), fm.height()),
                         Qt.AlignmentFlag.AlignLeft, "epoch 1")
        painter.drawText(QRectF(plot.left(), plot.bottom() + 4, plot.width(), fm.height()),
                         Qt.AlignmentFlag.AlignRight, f"{span}")

        def curve(values, color, scale, dashed=False) -> None:
            points = [(x_of(s.epoch), v) for s, v in zip(self.epochs, values) if v is not None]
            if not points:
                return
            path = QPainterPath()
            for i, (x, v) in enumerate(points):
                p = QPointF(x, plot.bottom() - plot.height() * min(max(v / scale, 0.0), 1.0))
                path.moveTo(p) if i == 0 else path.lineTo(p)
            pen = QPen(color, 2)
            if dashed:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            if len(points) == 1:
                painter.setBrush(color)
                painter.drawEllipse(path.currentPosition(), 2.5, 2.5)

        curve([s.loss for s in self.epochs], LOSS_COLOR, top_loss)
        curve([s.train_accuracy for s in self.epochs], TRAIN_COLOR, 1.0, dashed=True)
        curve([s.val_accuracy for s in self.epochs], VAL_COLOR, 1.0)

        # legend
        x = plot.left()
        for label, color in (("loss", LOSS_COLOR), ("train accuracy", TRAIN_COLOR),
                             ("validation", VAL_COLOR)):
            if label == "validation" and all(s.val_accuracy is None for s in self.epochs):
                continue
            painter.setPen(QPen(color, 3))
            painter.drawLine(QPointF(x, legend_h / 2 + 2), QPointF(x + 14, legend_h / 2 + 2))
            painter.setPen(text)
            painter.drawText(QPointF(x + 18, legend_h / 2 + 2 + fm.ascent() / 2 - 1), label)
            x += 18 + fm.horizontalAdvance(label) + 14
        painter.end()


def _tick_text(value: float) -> str:
    """Loss axis labels: two significant digits, whatever the scale (1.2, 0.25, 0.0075)."""
    return "0" if value == 0 else f"{value:.2g}"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 4 × 10^k not below value: its quarters are round axis labels."""
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 4, 10):
        if step * 10 ** exponent >= value:
            return step * 10 ** exponent
    return 10 ** (exponent + 1)
