"""TopBars: the top-5 predictions as labelled horizontal bars, or a message in their place."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QStaticText
from PySide6.QtWidgets import QSizePolicy, QWidget

ROW_HEIGHT = 44
BAR_HEIGHT = 10
MARGIN = 12
MAX_CACHED_TEXTS = 4096  # laid-out names and percentages; 1000 classes need ~3000


def format_percent(prob: float) -> str:
    """How a probability is written beside its bar (tests compare against this)."""
    return f"{prob * 100:.1f}%"


class TopBars(QWidget):
    """Paints up to five rows: class name and percentage on one line, a proportional bar below.

    The best class gets the palette's highlight colour, the rest a muted version of it, so the
    winner reads at a glance; bars are scaled to 100 % (not to the best class) so a confident and
    an unsure prediction look different.
    """

    class_clicked = Signal(int)  # the class index of the row clicked

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self._indices: list[int] = []
        self._selected: int | None = None  # a class whose row gets a frame (the heatmap's)
        self._message = ""
        self._message_is_error = False
        self._style: _Style | None = None  # built on first paint (see _paint_style)
        self._texts: dict[tuple[str, bool, int], QStaticText] = {}  # see _static_text
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(220)

    # ---- state ---------------------------------------------------------------------------------
    def set_predictions(self, top: Sequence[tuple[int, str, float]]) -> None:
        self._rows = [(name, float(prob)) for _, name, prob in top]
        self._indices = [int(i) for i, _, _ in top]
        self._message = ""
        self.setToolTip("\n".join(f"{i}: {n}  {format_percent(p)}" for i, n, p in top))
        self.update()

    def set_selected(self, index: int | None) -> None:
        """Frame the row of class `index` (when shown), or none."""
        if index != self._selected:
            self._selected = index
            self.update()

    def selected(self) -> int | None:
        return self._selected

    def top_class(self) -> int | None:
        """The class index of the top row shown, or None."""
        return self._indices[0] if self._indices else None

    def row_at(self, y: float) -> int | None:
        """The class index of the row at height y, or None."""
        row = int((y - MARGIN) // ROW_HEIGHT)
        return self._indices[row] if 0 <= row < len(self._indices) and y >= MARGIN else None

    def mousePressEvent(self, event) -> None:
        index = self.row_at(event.position().y())
        if index is not None and event.button() == Qt.MouseButton.LeftButton:
            self.class_clicked.emit(index)
        super().mousePressEvent(event)

    def set_message(self, text: str, error: bool = False) -> None:
        self._rows = []
        self._indices = []
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
        self._style = None  # a new font, palette or style: measure again
        self._texts.clear()
        super().changeEvent(event)

    def _paint_style(self) -> "_Style":
        """Fonts, metrics and colours, built once per font and palette: with a webcam the bars
        repaint 30-60 times a second."""
        if self._style is None:
            regular, bold = QFont(self.font()), QFont(self.font())
            bold.setBold(True)
            pal = self.palette()
            accent = pal.color(QPalette.ColorRole.Highlight)
            muted = QColor(accent)
            muted.setAlphaF(0.45)
            track = pal.color(QPalette.ColorRole.Mid)
            track.setAlphaF(0.25)
            metrics = (QFontMetrics(regular), QFontMetrics(bold))
            self._style = _Style(
                (regular, bold),
                metrics,
                metrics[0].horizontalAdvance("100.0%") + 6,
                pal.color(QPalette.ColorRole.WindowText),
                accent,
                muted,
                track,
            )
        return self._style

    def _static_text(self, text: str, bold: bool, width: int) -> QStaticText:
        """`text` elided to `width` and laid out once, mostly the same names paint after paint:
        drawText lays out every string every time (measured: 0.52 ms per paint with drawText,
        0.3 ms with cached QStaticText)."""
        key = (text, bold, width)
        laid_out = self._texts.get(key)
        if laid_out is None:
            style = self._paint_style()
            if len(self._texts) >= MAX_CACHED_TEXTS:
                self._texts.clear()
            laid_out = QStaticText(style.metrics[bold].elidedText(text, Qt.TextElideMode.ElideRight, width))
            laid_out.setTextFormat(Qt.TextFormat.PlainText)
            laid_out.prepare(font=style.fonts[bold])
            self._texts[key] = laid_out
        return laid_out

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
        style = self._paint_style()
        width = self.width() - 2 * MARGIN
        radius = BAR_HEIGHT / 2
        y = MARGIN
        for rank, (name, prob) in enumerate(self._rows):
            best = rank == 0
            if self._selected is not None and self._indices[rank] == self._selected:
                painter.setPen(style.accent)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(QRectF(MARGIN / 2, y - 3, width + MARGIN, ROW_HEIGHT - 2), 6, 6)
            text_h = style.metrics[best].height()
            painter.setPen(style.text)
            painter.setFont(style.fonts[best])
            shown = self._static_text(name, best, width - style.pct_w)
            painter.drawStaticText(QPointF(MARGIN, y + (text_h - shown.size().height()) / 2), shown)
            painter.setFont(style.fonts[False])
            pct = self._static_text(format_percent(prob), False, style.pct_w)
            painter.drawStaticText(
                QPointF(MARGIN + width - pct.size().width(), y + (text_h - pct.size().height()) / 2), pct
            )
            bar_y = y + text_h + 4
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(style.track)
            painter.drawRoundedRect(QRectF(MARGIN, bar_y, width, BAR_HEIGHT), radius, radius)
            fill = max(0.0, min(1.0, prob)) * width
            if fill > 0.5:
                painter.setBrush(style.accent if best else style.muted)
                painter.drawRoundedRect(QRectF(MARGIN, bar_y, max(fill, BAR_HEIGHT), BAR_HEIGHT), radius, radius)
            y += ROW_HEIGHT


class _Style(NamedTuple):
    fonts: tuple[QFont, QFont]  # (regular, bold): index with `bold`
    metrics: tuple[QFontMetrics, QFontMetrics]
    pct_w: int  # the percentage column
    text: QColor
    accent: QColor  # the best class's bar
    muted: QColor  # the others'
    track: QColor  # the bar's background
