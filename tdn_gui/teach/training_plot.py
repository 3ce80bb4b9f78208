"""TrainingPlot: what the cross-validation found, drawn with QPainter after the head is taught.

Teaching cross-validates every candidate head of the base network at every l2 of a grid and keeps
one (engine.teach.training). The chart shows each head's cross-validated accuracy against l2, one
line per head, and marks the (head, l2) that was chosen: the user sees what the choice was between
and how much it mattered.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

HEAD_COLORS = tuple(QColor(c) for c in ("#2f80ed", "#27ae60", "#e67e22", "#8e44ad", "#c0392b"))
EMPTY_TEXT = "How well each candidate head did in cross-validation appears here after training."
NO_CV_TEXT = "Too few images to cross-validate: the chart needs at least two images."
RIGHT_MARGIN = 12
CHOSEN_RADIUS = 5.5


class TrainingPlot(QWidget):
    """Cross-validated accuracy (%) against l2 (log scale) for each candidate head, the chosen
    (head, l2) marked with a filled circle and its value. show_result(result); clear()."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.trials: tuple = ()  # teach.Trial, every head × l2 tried
        self.chosen: tuple | None = None  # (teach.Head, l2) of the taught model
        self.placeholder = EMPTY_TEXT  # what it says while there are no trials to draw
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 150)

    def clear(self) -> None:
        self.trials, self.chosen = (), None
        self.placeholder = EMPTY_TEXT
        self.setToolTip("")
        self.update()

    def show_result(self, result) -> None:
        """A teach.TeachResult: its trials, and the head and l2 it chose."""
        self.trials = tuple(result.trials)
        self.chosen = (result.head, result.l2)
        self.placeholder = NO_CV_TEXT
        self.setToolTip(_table(self.trials, self.chosen) if self.trials else "")
        self.update()

    def heads(self) -> list:
        """The heads in the order they were tried (the engine's order of preference)."""
        return list(dict.fromkeys(t.head for t in self.trials))

    def l2_values(self) -> list[float]:
        return sorted({t.l2 for t in self.trials})

    def color_of(self, head) -> QColor:
        return HEAD_COLORS[self.heads().index(head) % len(HEAD_COLORS)]

    def point_of(self, head, l2: float) -> QPointF | None:
        """Where the trial of `head` at `l2` is drawn at the widget's current size (None: no such
        trial, or no room to draw)."""
        trial = next((t for t in self.trials if (t.head, t.l2) == (head, l2)), None)
        axes = self._axes(QFontMetrics(self.font())) if trial is not None else None
        return None if axes is None else axes.point(trial)

    def sizeHint(self) -> QSize:
        return QSize(320, 220)

    # ---- painting ------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        painter.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        fm = QFontMetrics(self.font())
        axes = self._axes(fm) if self.trials else None
        if not self.trials:
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.rect().adjusted(12, 12, -12, -12),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
        elif axes is not None:
            self._paint_axes(painter, fm, pal, axes)
            self._paint_lines(painter, pal, axes)
            self._paint_chosen(painter, fm, pal, axes)
            self._paint_legend(painter, fm, pal)
        painter.end()

    def _axes(self, fm: QFontMetrics) -> "_Axes | None":
        """The plot area below the legend, above the l2 labels and the axis title; None when the
        widget is too small to hold it."""
        legend_h = len(self._legend_rows(fm)) * (fm.height() + 2) + 4
        left = fm.horizontalAdvance("100%") + 10
        top = legend_h + fm.height() // 2 + 2
        plot = QRectF(left, top, self.width() - left - RIGHT_MARGIN, self.height() - top - 2 * fm.height() - 14)
        if plot.width() < 40 or plot.height() < 30:
            return None
        return _Axes(plot, self.l2_values(), min(t.accuracy for t in self.trials))

    def _paint_axes(self, painter: QPainter, fm: QFontMetrics, pal: QPalette, axes: "_Axes") -> None:
        """Grid lines, the accuracy ticks on the left, the l2 ticks and the axis title below."""
        plot = axes.plot
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        grid = QColor(muted)
        grid.setAlphaF(0.35)
        for pct in axes.y_ticks():
            y = axes.y_of(pct / 100)
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(muted)
            painter.drawText(
                QRectF(0, y - fm.height() / 2, plot.left() - 6, fm.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{pct}%",
            )
        for l2 in axes.l2_values:
            x = axes.x_of(l2)
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.setPen(muted)
            label = f"{l2:g}"
            width = fm.horizontalAdvance(label) + 4
            painter.drawText(
                QRectF(x - width / 2, plot.bottom() + 3, width, fm.height()), Qt.AlignmentFlag.AlignCenter, label
            )
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + fm.height() + 5, plot.width(), fm.height()),
            Qt.AlignmentFlag.AlignCenter,
            "l2 regularisation (stronger →)",
        )

    def _paint_lines(self, painter: QPainter, pal: QPalette, axes: "_Axes") -> None:
        """One line per head, a hollow dot per trial; the chosen head's last, so no line hides it."""
        chosen_head = self.chosen[0] if self.chosen is not None else None
        for head in sorted(self.heads(), key=lambda h: h == chosen_head):
            points = [axes.point(t) for t in sorted((t for t in self.trials if t.head == head), key=lambda t: t.l2)]
            path = QPainterPath(points[0])
            for p in points[1:]:
                path.lineTo(p)
            painter.setPen(QPen(self.color_of(head), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.setBrush(pal.color(QPalette.ColorRole.Base))
            for p in points:
                painter.drawEllipse(p, 2.5, 2.5)

    def _paint_chosen(self, painter: QPainter, fm: QFontMetrics, pal: QPalette, axes: "_Axes") -> None:
        """A filled circle on the chosen (head, l2) and its accuracy beside it, inside the plot."""
        trial = next((t for t in self.trials if (t.head, t.l2) == self.chosen), None)
        if trial is None:
            return
        text = pal.color(QPalette.ColorRole.WindowText)
        point = axes.point(trial)
        painter.setPen(QPen(text, 1.5))
        painter.setBrush(self.color_of(trial.head))
        painter.drawEllipse(point, CHOSEN_RADIUS, CHOSEN_RADIUS)
        label = f"{100 * trial.accuracy:.1f}%"
        font = painter.font()
        font.setBold(True)
        bold = QFontMetrics(font)
        width, height = bold.horizontalAdvance(label) + 6, bold.height()
        # beside the dot, away from the plot's edges
        gap = CHOSEN_RADIUS + 3
        right_side = point.x() + gap + width <= self.width() - 2
        x = point.x() + gap if right_side else point.x() - gap - width
        above = point.y() - height - 2 >= axes.plot.top()
        box = QRectF(x, point.y() - height - 2 if above else point.y() + 4, width, height)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(pal.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(text)
        painter.setFont(font)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        font.setBold(False)
        painter.setFont(font)

    def _legend_rows(self, fm: QFontMetrics) -> list[list]:
        """The heads in rows: as many entries per row as fit the width."""
        rows, row, x = [], [], 0.0
        for head in self.heads():
            width = 18 + fm.horizontalAdvance(_legend_text(head, self.chosen)) + 14
            if row and x + width > self.width() - 8:
                rows.append(row)
                row, x = [], 0.0
            row.append(head)
            x += width
        return rows + [row] if row else rows

    def _paint_legend(self, painter: QPainter, fm: QFontMetrics, pal: QPalette) -> None:
        for r, row in enumerate(self._legend_rows(fm)):
            y = 4 + r * (fm.height() + 2) + fm.height() / 2
            x = 8.0
            for head in row:
                label = _legend_text(head, self.chosen)
                painter.setPen(QPen(self.color_of(head), 3))
                painter.drawLine(QPointF(x, y), QPointF(x + 14, y))
                painter.setPen(pal.color(QPalette.ColorRole.WindowText))
                painter.drawText(QPointF(x + 18, y + fm.ascent() / 2 - 1), label)
                x += 18 + fm.horizontalAdvance(label) + 14


class _Axes:
    """Data to pixels: l2 on a log scale across the plot (a little in from its sides), accuracy
    from the bottom accuracy_axis gives to 100 % up it."""

    def __init__(self, plot: QRectF, l2_values: list[float], lowest_accuracy: float):
        self.plot = plot
        self.l2_values = l2_values
        self.bottom, self.step = accuracy_axis(lowest_accuracy)
        logs = [math.log10(v) for v in l2_values if v > 0]
        self.lo, self.hi = (min(logs), max(logs)) if logs else (0.0, 0.0)
        self.pad = 0.06 * plot.width()

    def x_of(self, l2: float) -> float:
        plot = self.plot
        if self.hi == self.lo:  # a single l2: the middle
            return plot.center().x()
        if l2 <= 0:  # no regularisation is off the log scale: at its left end
            return plot.left() + self.pad / 2
        share = (math.log10(l2) - self.lo) / (self.hi - self.lo)
        return plot.left() + self.pad + (plot.width() - 2 * self.pad) * share

    def y_of(self, accuracy: float) -> float:
        share = (100 * accuracy - self.bottom) / (100 - self.bottom)
        return self.plot.bottom() - self.plot.height() * min(max(share, 0.0), 1.0)

    def point(self, trial) -> QPointF:
        return QPointF(self.x_of(trial.l2), self.y_of(trial.accuracy))

    def y_ticks(self) -> list[int]:
        return list(range(self.bottom, 101, self.step))


def accuracy_axis(lowest: float) -> tuple[int, int]:
    """(bottom, step) of the accuracy axis in percent. The heads often lie within a few percent
    of each other, which a 0-100 % axis would flatten into one line: the axis starts at the
    multiple of 10 a little below the lowest accuracy (of 20, in steps of 20, when that spans
    more than half the scale)."""
    below = 100 * lowest - 2  # a little below: no dot sits on the axis line
    bottom = max(0, 10 * math.floor(below / 10))
    if 100 - bottom <= 50:
        return bottom, 10
    return max(0, 20 * math.floor(below / 20)), 20


def _legend_text(head, chosen) -> str:
    """'layers 17+19 (chosen)', 'layer 18': head.label, named for a reader of the chart."""
    noun = "layers" if len(head.layers) > 1 else "layer"
    return f"{noun} {head.label}" + (" (chosen)" if chosen is not None and chosen[0] == head else "")


def _table(trials, chosen) -> str:
    """The tooltip: every head × l2 as a table of accuracy and log-loss, the chosen one in bold."""
    values = sorted({t.l2 for t in trials})
    heads = list(dict.fromkeys(t.head for t in trials))
    header = "".join(f"<th>l2 {v:g}</th>" for v in values)
    rows = []
    for head in heads:
        cells = []
        for v in values:
            trial = next((t for t in trials if t.head == head and t.l2 == v), None)
            cell = "" if trial is None else f"{100 * trial.accuracy:.1f}% / {trial.log_loss:.3f}"
            cells.append(f"<td><b>{cell}</b></td>" if (head, v) == chosen else f"<td>{cell}</td>")
        rows.append(f"<tr><th>{head.label}</th>{''.join(cells)}</tr>")
    return (
        "<p>Cross-validated accuracy / log-loss of each head (layers) at each l2. In bold, the one "
        "chosen: the most preferred head whose log-loss is within one standard error of the "
        f"lowest.</p><table cellspacing='4'><tr><th></th>{header}</tr>{''.join(rows)}</table>"
    )
