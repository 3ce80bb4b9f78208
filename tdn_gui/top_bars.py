"""TopBars: the top-5 predictions as labelled horizontal bars, or a message in their place."""
from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

ROW_HEIGHT = 44
BAR_HEIGHT = 10
MARGIN = 12


def format_percent(prob: float) -> str:
    """How a probability is written beside its bar (tests compare against this)."""
    return f"{prob * 100:.1f}%"


class TopBars(QWidget):
    """Paints up to five rows: class name and percentage on one line, a proportional bar below.

    The best class gets the palette's highlight colour, the rest a muted version of it, so the
    winner reads at a glance; bars are scaled to 100 % (not to the best class) so a confident and
    an unsure prediction look different.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self._message = ""
        self._message_is_error = False
        self._text_style = None        # fonts and metrics, built on first paint (see _fonts)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(220)

    # ---- state ---------------------------------------------------------------------------------
    def set_predictions(self, top: Sequence[tuple[int, str, float]]) -> None:
        self._rows = [(name, float(prob)) for _, name, prob in top]
        self._message = ""
        self.setToolTip("\n".join(f"{i}: {n}  {format_percent(p)}" for i, n, p in top))
        self.update()

    def set_message(self, text: str, error: bool = False) -> None:
        self._rows = []
        self._message = text
        self._message_is_error = error
        self.setToolTip("")
        self.update()

    def clear(self) -> None:
        self.set_message("")

    def rows(self) -> list[tuple[str, str]]:
        """(name, percentage text) per shown row, best first."""
        return [(name, format_percent(prob)) for name, prob in self._rows]

    def message(self) -> str:
        return self._message

    def is_error(self) -> bool:
        return bool(self._message) and self._message_is_error

    def sizeHint(self) -> QSize:
        return QSize(300, 5 * ROW_HEIGHT + 2 * MARGIN)

    def minimumSizeHint(self) -> QSize:
        return QSize(220, 5 * ROW_HEIGHT + 2 * MARGIN)

    # ---- painting ------------------------------------------------------------------------------
    def changeEvent(self, event) -> None:
        self._text_style = None          # a new font or style: measure again
        super().changeEvent(event)

    def _fonts(self):
        """(regular, bold, their metrics, the percentage column's width), built once per font:
        the bars repaint with every webcam result, and metrics are not free."""
        if self._text_style is None:
            regular, bold = QFont(self.font()), QFont(self.font())
            bold.setBold(True)
            pct_w = QFontMetrics(regular).horizontalAdvance("100.0%") + 6
            self._text_style = (regular, bold, QFontMetrics(regular), QFontMetrics(bold), pct_w)
        return self._text_style

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._message:
            self._paint_message(painter)
        else:
            self._paint_rows(painter)
        painter.end()

    def _paint_message(self, painter: QPainter) -> None:
        pal = self.palette()
        color = QColor("#c0392b") if self._message_is_error else pal.color(QPalette.ColorRole.PlaceholderText)
        painter.setPen(color)
        rect = self.rect().adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)

    def _paint_rows(self, painter: QPainter) -> None:
        pal = self.palette()
        accent = pal.color(QPalette.ColorRole.Highlight)
        muted = QColor(accent)
        muted.setAlphaF(0.45)
        track = pal.color(QPalette.ColorRole.Mid)
        track.setAlphaF(0.25)
        text_color = pal.color(QPalette.ColorRole.WindowText)

        regular, bold, metrics, bold_metrics, pct_w = self._fonts()
        width = self.width() - 2 * MARGIN
        y = MARGIN
        for rank, (name, prob) in enumerate(self._rows):
            pct_text = format_percent(prob)
            painter.setFont(bold if rank == 0 else regular)
            painter.setPen(text_color)
            fm = bold_metrics if rank == 0 else metrics
            shown = fm.elidedText(name, Qt.TextElideMode.ElideRight, width - pct_w)
            text_h = fm.height()
            painter.drawText(QRectF(MARGIN, y, width - pct_w, text_h),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, shown)
            painter.setFont(regular)
            painter.drawText(QRectF(MARGIN + width - pct_w, y, pct_w, text_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, pct_text)
            bar_y = y + text_h + 4
            radius = BAR_HEIGHT / 2
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(QRectF(MARGIN, bar_y, width, BAR_HEIGHT), radius, radius)
            fill = max(0.0, min(1.0, prob)) * width
            if fill > 0.5:
                painter.setBrush(accent if rank == 0 else muted)
                painter.drawRoundedRect(QRectF(MARGIN, bar_y, max(fill, BAR_HEIGHT), BAR_HEIGHT),
                                        radius, radius)
            y += ROW_HEIGHT
