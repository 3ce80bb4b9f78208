"""The mistakes window: where cross-validation went wrong, and the photos to put right.

Opened from the training column (Mistakes…) once a training has cross-validated. Left, the
confusion matrix of the cross-validated predictions (rows: the class a photo is in; columns: what
a head that never saw that photo predicted), and each class's photos, recall and precision.
Clicking a cell lists its photos with the class predicted and its probability, the least sure
first; the selected ones can be moved to another class or removed from the project. The Teach
view does the file work and trains again (on the cached features: seconds), then hands the new
result back here.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..qt_image import THUMB_SIDE
from ..worker.engine_api import TeachResult
from .file_threads import ThumbnailLoader
from .widgets import heading, plural

RIGHT = QColor(46, 160, 67)  # the diagonal: photos predicted as their own class
WRONG = QColor(207, 34, 46)  # off the diagonal
FIGURE_COLUMNS = ("photos", "recall", "precision")


def _shade(color: QColor, share: float) -> QBrush:
    """color at an opacity that grows with the share of the row the cell holds."""
    shaded = QColor(color)
    shaded.setAlphaF(0.12 + 0.55 * share if share > 0 else 0.0)
    return QBrush(shaded)


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.0f}%"


class MistakesWindow(QDialog):
    move_requested = Signal(list, str, str)  # photo paths, the class they are in, the class to move them to
    remove_requested = Signal(list, str)  # photo paths, the class they are in

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Mistakes")
        self.setModal(False)
        self.result: TeachResult | None = None
        self.cell: tuple[int, int] | None = None  # (true class, predicted class) listed
        self.thumbnails = ThumbnailLoader(parent=self)  # its own: the class strip's has asked already
        self._thumbs: dict[Path, object] = {}
        self._items: dict[str, QListWidgetItem] = {}
        self.thumbnails.loaded.connect(self._on_thumbnail)
        self._build()
        self.resize(980, 560)

    def _build(self) -> None:
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.matrix.cellClicked.connect(self.select_cell)
        self.figures = QTableWidget(0, len(FIGURE_COLUMNS))
        self.figures.setHorizontalHeaderLabels(FIGURE_COLUMNS)
        self.figures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.figures.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for table in (self.matrix, self.figures):
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        left = QVBoxLayout()
        left.addWidget(heading("Cross-validated predictions"))
        left.addWidget(
            QLabel(
                "Rows: the class a photo is in. Columns: the class predicted for it by a head "
                "trained without it. Click a cell to see its photos."
            )
        )
        left.addWidget(self.matrix, 3)
        left.addWidget(heading("Per class"))
        left.addWidget(self.figures, 2)

        self.cell_label = QLabel("Click a cell of the matrix.")
        self.cell_label.setWordWrap(True)
        self.photos = QListWidget()
        self.photos.setViewMode(QListView.ViewMode.IconMode)
        self.photos.setResizeMode(QListView.ResizeMode.Adjust)
        self.photos.setMovement(QListView.Movement.Static)
        self.photos.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.photos.setGridSize(QSize(THUMB_SIDE + 40, THUMB_SIDE + 44))
        self.photos.setWordWrap(True)
        self.photos.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.photos.itemSelectionChanged.connect(self._update_buttons)
        self._busy = False
        self.target = QComboBox()
        self.move_button = QPushButton("Move to class")
        self.move_button.clicked.connect(self._move)
        self.remove_button = QPushButton("Remove from project…")
        self.remove_button.clicked.connect(self._ask_remove)
        actions = QHBoxLayout()
        actions.addWidget(self.move_button)
        actions.addWidget(self.target, 1)
        actions.addSpacing(12)
        actions.addWidget(self.remove_button)
        self.status = QLabel()
        right = QVBoxLayout()
        right.addWidget(self.cell_label)
        right.addWidget(self.photos, 1)
        right.addLayout(actions)
        right.addWidget(self.status)

        columns = QHBoxLayout()
        columns.addLayout(left, 5)
        columns.addLayout(right, 6)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(columns, 1)
        self._update_buttons()

    # ---- the result ------------------------------------------------------------------------------
    def show_result(self, result: TeachResult) -> None:
        """Fill the window from a training's cross-validation; the cell listed stays listed."""
        self.result = result
        evaluation, classes = result.cv, result.classes
        k = len(classes)
        self.set_busy("")  # a new result: the training it waited for is over
        if evaluation is None:
            self.summary.setText("Too few photos to cross-validate: there are no held-out predictions to show.")
            self.matrix.setRowCount(0)
            self.matrix.setColumnCount(0)
            self.figures.setRowCount(0)
            self._list([])
            return
        wrong = evaluation.count - int(evaluation.confusion.trace())
        self.summary.setText(
            f"{plural(wrong, 'photo')} of {evaluation.count} predicted wrong by cross-validation "
            f"({100 * evaluation.accuracy:.1f}% right)."
        )
        self.matrix.setRowCount(k)
        self.matrix.setColumnCount(k)
        self.matrix.setHorizontalHeaderLabels([f"→ {name}" for name in classes])
        self.matrix.setVerticalHeaderLabels(list(classes))
        for t in range(k):
            row_total = max(int(evaluation.confusion[t].sum()), 1)
            for p in range(k):
                count = int(evaluation.confusion[t, p])
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(_shade(RIGHT if t == p else WRONG, count / row_total))
                item.setToolTip(f"{plural(count, 'photo')} of {classes[t]} predicted as {classes[p]}")
                self.matrix.setItem(t, p, item)
        self.figures.setRowCount(k)
        self.figures.setVerticalHeaderLabels(list(classes))
        for c in range(k):
            values = (str(int(evaluation.counts[c])), _percent(evaluation.recall[c]), _percent(evaluation.precision[c]))
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.figures.setItem(c, column, item)
        self.figures.item(0, 1).setToolTip("recall: of the class's photos, the share predicted as it")
        self.figures.item(0, 2).setToolTip("precision: of the photos predicted as the class, the share in it")
        if self.cell is not None and max(self.cell) < k:
            self.select_cell(*self.cell)
        else:
            self.cell = None
            self._list([])

    def select_cell(self, true: int, predicted: int) -> None:
        """List the photos of class `true` that cross-validation predicted as `predicted`."""
        if self.result is None or self.result.cv is None:
            return
        self.cell = (true, predicted)
        classes = self.result.classes
        self.matrix.setCurrentCell(true, predicted)
        judged = [j for j in self.result.judged() if j.true == true and j.predicted == predicted]
        judged.sort(key=lambda j: j.probabilities[j.predicted])
        what = "right" if true == predicted else "wrong"
        self.cell_label.setText(
            f"{plural(len(judged), 'photo')} of <b>{classes[true]}</b> predicted as "
            f"<b>{classes[predicted]}</b> ({what}), the least sure first:"
        )
        self.target.clear()
        self.target.addItems([name for name in classes if name != classes[true]])
        if predicted != true:
            self.target.setCurrentText(classes[predicted])
        self._list(judged)

    def _list(self, judged) -> None:
        self.photos.clear()
        self._items.clear()
        classes = self.result.classes if self.result is not None else ()
        for j in judged:
            item = QListWidgetItem(f"{classes[j.predicted]} {100 * j.probabilities[j.predicted]:.0f}%")
            item.setData(Qt.ItemDataRole.UserRole, str(j.path))
            item.setToolTip(
                f"{j.path}\n{classes[j.true]}: {100 * j.probabilities[j.true]:.1f}%, "
                f"{classes[j.predicted]}: {100 * j.probabilities[j.predicted]:.1f}%"
            )
            item.setIcon(self._icon(self._thumbs.get(j.path)))
            if j.path not in self._thumbs:
                self.thumbnails.request(j.path)
            self.photos.addItem(item)
            self._items[str(j.path)] = item
        self._update_buttons()

    def _on_thumbnail(self, path: Path, thumb) -> None:
        self._thumbs[path] = thumb
        item = self._items.get(str(path))
        if item is not None:
            item.setIcon(self._icon(thumb))

    def _icon(self, thumb) -> QIcon:
        if thumb is None:
            pixmap = QPixmap(THUMB_SIDE, THUMB_SIDE)
            pixmap.fill(Qt.GlobalColor.darkGray)
            return QIcon(pixmap)
        return QIcon(QPixmap.fromImage(thumb))

    # ---- actions ---------------------------------------------------------------------------------
    def listed_paths(self) -> list[str]:
        return [self.photos.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.photos.count())]

    def selected_paths(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.photos.selectedItems()]

    def _current_class(self) -> str:
        return self.result.classes[self.cell[0]]

    def _move(self) -> None:
        paths = self.selected_paths()
        if paths and self.target.currentText():
            self.move_requested.emit(paths, self._current_class(), self.target.currentText())

    def _ask_remove(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        answer = QMessageBox.question(
            self,
            "Remove photos",
            f"Delete {plural(len(paths), 'photo')} of '{self._current_class()}' from the project folder?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_requested.emit(paths, self._current_class())

    def set_busy(self, text: str) -> None:
        """Training again (text says why), or done (empty text): the actions wait for it."""
        self.status.setText(text)
        self._busy = bool(text)
        self._update_buttons()

    def _update_buttons(self) -> None:
        ready = bool(self.photos.selectedItems()) and not self._busy
        self.move_button.setEnabled(ready and self.target.count() > 0)
        self.remove_button.setEnabled(ready)
