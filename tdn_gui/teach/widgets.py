"""The Teach view's widgets: the class list (name, image count, accuracy) and a class's
thumbnails, which take dropped files and folders and say where they landed (the view does the
copying); and the small helpers its columns share (`heading`, `plural`)."""

from __future__ import annotations

import math

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QTreeWidget,
    QTreeWidgetItem,
)

from ..qt_image import THUMB_SIDE


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def heading(text: str) -> QLabel:
    """A column's bold title."""
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def local_paths(mime) -> list[str]:
    """The local files and folders in a drag's data (empty if it carries none)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]


class _DropTarget:
    """Mixin for item views: accept drags of local files, report drops by signal."""

    def _accept_drags(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragEnterEvent(self, event) -> None:
        self._accept_drags(event)

    def dragMoveEvent(self, event) -> None:
        self._accept_drags(event)


class ClassTree(_DropTarget, QTreeWidget):
    """One row per class: name (editable in place), image count, cross-validated accuracy."""

    files_dropped = Signal(object, list)  # class name (None: not on a class), paths
    rename_requested = Signal(str, str)  # old, new

    NAME, COUNT, ACCURACY = range(3)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["Class", "Images", "Accuracy"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        header = self.header()
        header.setSectionResizeMode(self.NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(self.COUNT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(self.ACCURACY, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.itemChanged.connect(self._on_item_changed)
        self._filling = False

    def set_classes(self, rows, current: str | None) -> None:
        """rows: (name, count, accuracy or None)."""
        self._filling = True
        self.clear()
        for name, count, accuracy in rows:
            item = QTreeWidgetItem([name, str(count), _percent(accuracy)])
            item.setData(self.NAME, Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsDropEnabled)
            item.setTextAlignment(self.COUNT, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setTextAlignment(self.ACCURACY, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(self.NAME, "Double-click to rename; drop images or folders here to add them")
            item.setToolTip(
                self.ACCURACY,
                "Cross-validated accuracy of this class after the last training "
                "(each image predicted by a head that did not see it)",
            )
            self.addTopLevelItem(item)
            if name == current:
                self.setCurrentItem(item)
        self._filling = False

    def current_class(self) -> str | None:
        item = self.currentItem()
        return item.data(self.NAME, Qt.ItemDataRole.UserRole) if item is not None else None

    def item_for(self, name: str) -> QTreeWidgetItem | None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.data(self.NAME, Qt.ItemDataRole.UserRole) == name:
                return item
        return None

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != self.NAME:
            return
        old = item.data(self.NAME, Qt.ItemDataRole.UserRole)
        if item.text(self.NAME) != old:
            self.rename_requested.emit(old, item.text(self.NAME))

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        item = self.itemAt(event.position().toPoint())
        name = item.data(self.NAME, Qt.ItemDataRole.UserRole) if item is not None else None
        event.acceptProposedAction()
        self.files_dropped.emit(name, paths)


class ThumbnailStrip(_DropTarget, QListWidget):
    """The selected class's images, in a row; drops go to that class."""

    files_dropped = Signal(list)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.setGridSize(QSize(THUMB_SIDE + 14, THUMB_SIDE + 14))
        self.setUniformItemSizes(True)
        self.setSpacing(4)
        # Items are pictures without text: show the selection as a frame, not a tinted icon over
        # an empty highlighted text line.
        self.setStyleSheet(
            "QListView::item { border: 2px solid transparent; border-radius: 4px; }"
            "QListView::item:selected { border: 2px solid palette(highlight);"
            " background: transparent; }"
        )
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setMinimumHeight(THUMB_SIDE + 40)

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.files_dropped.emit(paths)


def _percent(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{100 * value:.0f}%"
