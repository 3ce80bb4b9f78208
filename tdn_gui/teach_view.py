"""The Teach view: your own classes on top of the loaded model, from dropped photos or the camera.

Left, the classes of a teach project (a folder with one subfolder per class, see teach_project);
in the middle, a live preview (the camera, or the image clicked in the strip) with its top-k bars,
the "Hold to capture" button, and the selected class's thumbnails; right, training: progress, a
loss/accuracy plot, the result, which classifier runs live (the taught classes or the base model)
and Export.

All inference and teaching happen on the shared worker as jobs (jobs.py); file copies, captured
frames and thumbnails on ProjectWriter / ThumbnailLoader threads; this class only keeps the GUI
state and never waits for any of them.
"""
from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (QButtonGroup, QFileDialog, QFrame, QHBoxLayout, QInputDialog, QLabel,
                               QListWidgetItem, QMessageBox, QProgressBar, QPushButton, QRadioButton,
                               QScrollArea, QSplitter, QStyle, QVBoxLayout, QWidget)

from engine import teach

from .canvas import ImageCanvas
from .decoder import THUMB_SIDE, Decoded, Decoder
from .export_dialog import ExportDialog, suggest_name
from .image_view import IMAGE_SUFFIXES, collect_images
from .jobs import ExportRequest, JobDone, JobProgress, TeachRequest
from .settings import Settings
from .teach_io import ProjectWriter, ThumbnailLoader, Written
from .teach_project import Project, ProjectError
from .teach_widgets import ClassTree, ThumbnailStrip, local_paths
from .top_bars import TopBars
from .training_plot import TrainingPlot
from .webcam_view import WebcamView
from .worker import InferenceWorker, ModelInfo, Result

CAPTURE_FPS = 4
ERROR_STYLE = "color: #c0392b;"
WARNING_STYLE = "color: #b9770e;"
PREVIEW_HINT = ("Start the camera to capture frames into the selected class, "
                "or click a thumbnail to see how it is classified.")


def _quoted(names) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class TeachView(QWidget):
    exported = Signal(object)          # teach.ExportPaths of a model just written
    project_changed = Signal(str)      # the project folder, for the settings

    def __init__(self, worker: InferenceWorker, webcam: WebcamView, settings: Settings, parent=None):
        super().__init__(parent)
        self._worker = worker
        self._webcam = webcam
        self._settings = settings
        self.project: Project | None = None
        self.taught: teach.TaughtModel | None = None
        self.result: teach.TeachResult | None = None
        self.accuracy: dict[str, float] = {}
        self.last_train_seconds: float | None = None
        self._model_ready = False
        self._base_name = "the loaded model"
        self._job = None
        self._job_kind = ""
        self._train_started = 0.0
        self._train_when_written = False
        self._drop_added = 0
        self._drop_failed: list[str] = []
        self._thumbs: dict[Path, QImage | None] = {}       # by file; None: Qt cannot read it
        self._strip_items: dict[str, QListWidgetItem] = {}  # the strip's items by file
        self._preview_ids = itertools.count()
        self._preview_id = -1           # the decode in flight for the preview
        self._preview_path = ""
        self._preview_tag = None        # the worker request in flight for it
        self._preview_pixels = None
        self._preview_dropped = False
        self._last_captured = None      # the Frame captured last (never twice)
        self._capture_class = ""
        self.captured = 0

        self.writer = ProjectWriter(self)
        self.writer.written.connect(self._on_written)
        self.writer.idle.connect(self._on_writer_idle)
        self.thumbnails = ThumbnailLoader(parent=self)
        self.thumbnails.loaded.connect(self._on_thumbnail)
        self._decoder = Decoder(threads=1, parent=self)
        self._decoder.decoded.connect(self._on_preview_decoded)
        self._capture_timer = QTimer(self)
        self._capture_timer.setInterval(1000 // CAPTURE_FPS)
        self._capture_timer.timeout.connect(self._capture_frame)

        worker.job_progress.connect(self._on_job_progress)
        worker.job_finished.connect(self._on_job_finished)
        worker.result_ready.connect(self._on_result)
        worker.superseded.connect(self._on_superseded)
        worker.classifier_changed.connect(self._on_classifier_changed)
        webcam.frame_shown.connect(self._on_camera_frame)
        webcam.result_shown.connect(self._on_camera_result)
        webcam.running_changed.connect(self._on_camera_running)
        webcam.add_viewer(self)
        self.setAcceptDrops(True)
        self._build()
        self._refresh_classes()
        self._update_buttons()

    # ---- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.new_button = QPushButton("New project")
        self.new_button.clicked.connect(self._ask_new_project)
        self.open_button = QPushButton("Open project…")
        self.open_button.clicked.connect(self._ask_open_project)
        self.save_button = QPushButton("Save project as…")
        self.save_button.clicked.connect(self._ask_save_project)
        self.project_label = QLabel()
        self.project_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        for w in (self.new_button, self.open_button, self.save_button):
            top.addWidget(w)
        top.addSpacing(8)
        top.addWidget(self.project_label, 1)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        # classes
        self.tree = ClassTree()
        self.tree.currentItemChanged.connect(lambda *_: self._show_class())
        self.tree.files_dropped.connect(self._on_tree_drop)
        self.tree.rename_requested.connect(self._on_rename_in_place)
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Add a class (a folder of its images in the project)")
        self.add_button.clicked.connect(self._ask_add_class)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._ask_rename_class)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._ask_delete_class)
        class_buttons = QHBoxLayout()
        for w in (self.add_button, self.rename_button, self.delete_button):
            class_buttons.addWidget(w)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(_heading("Classes"))
        left_layout.addWidget(self.tree, 1)
        left_layout.addLayout(class_buttons)

        # preview, capture, thumbnails
        self.preview = ImageCanvas(PREVIEW_HINT)
        self.preview.setMinimumSize(240, 180)
        self.bars = TopBars()
        self.bars.set_message("No model loaded yet.")
        self.preview_label = QLabel()
        self.preview_label.setWordWrap(True)
        font = self.preview_label.font()
        font.setBold(True)
        self.preview_label.setFont(font)
        bars_box = QWidget()
        bars_layout = QVBoxLayout(bars_box)
        bars_layout.setContentsMargins(0, 0, 0, 0)
        bars_layout.addWidget(self.preview_label)
        bars_layout.addWidget(self.bars)
        bars_layout.addStretch(1)
        preview_row = QSplitter(Qt.Orientation.Horizontal)
        preview_row.addWidget(self.preview)
        preview_row.addWidget(bars_box)
        preview_row.setStretchFactor(0, 3)
        preview_row.setStretchFactor(1, 2)
        preview_row.setChildrenCollapsible(False)
        self.camera_button = QPushButton("Start camera")
        self.camera_button.setToolTip("The camera (or video file) chosen in the Webcam tab")
        self.camera_button.clicked.connect(self._toggle_camera)
        self.capture_button = QPushButton("Hold to capture")
        self.capture_button.setToolTip(f"While held, {CAPTURE_FPS} frames a second go into the selected class")
        self.capture_button.pressed.connect(self.start_capture)
        self.capture_button.released.connect(self.stop_capture)
        self.capture_label = QLabel()
        capture_row = QHBoxLayout()
        capture_row.addWidget(self.camera_button)
        capture_row.addWidget(self.capture_button)
        capture_row.addWidget(self.capture_label, 1)
        self.strip_label = QLabel()
        self.strip = ThumbnailStrip()
        self.strip.files_dropped.connect(lambda paths: self.drop_paths(self.tree.current_class(), paths))
        self.strip.currentItemChanged.connect(lambda *_: self._preview_selected())
        self.strip.itemClicked.connect(lambda *_: self._preview_selected())
        self.strip.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        remove = QAction("Remove from class…", self.strip)
        remove.setShortcut(QKeySequence.StandardKey.Delete)
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(self._ask_remove_images)
        self.strip.addAction(remove)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(preview_row, 3)
        middle_layout.addLayout(capture_row)
        middle_layout.addWidget(self.strip_label)
        middle_layout.addWidget(self.strip, 2)

        # training
        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.train_button.clicked.connect(self.train)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_job)
        train_row = QHBoxLayout()
        train_row.addWidget(self.train_button, 1)
        train_row.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.train_status = QLabel("Not trained yet.")
        self.train_status.setWordWrap(True)
        self.plot = TrainingPlot()
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.base_radio = QRadioButton()
        self.taught_radio = QRadioButton("Taught classes (train first)")
        self.base_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.base_radio)
        group.addButton(self.taught_radio)
        self.taught_radio.toggled.connect(self._on_live_choice)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write NAME.cfg, NAME.weights and NAME.names and add the model "
                                      "to the Model menu")
        self.export_button.clicked.connect(self._ask_export)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(_heading("Training"))
        right_layout.addLayout(train_row)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.train_status)
        right_layout.addWidget(self.plot, 1)
        right_layout.addWidget(self.result_label)
        right_layout.addWidget(_heading("Live classification"))
        right_layout.addWidget(self.taught_radio)
        right_layout.addWidget(self.base_radio)
        right_layout.addWidget(self.export_button)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(middle)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 6)
        split.setStretchFactor(2, 3)
        split.setSizes([230, 700, 330])
        split.setChildrenCollapsible(False)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)
        # Three columns need room: in a small window they scroll rather than hold the window large.
        scroll = QScrollArea()
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    # ---- messages --------------------------------------------------------------------------------
    def show_message(self, text: str, level: str = "info") -> None:
        """One line (or a few) above the columns: level is info, warning or error."""
        self.message.setText(text)
        self.message.setStyleSheet({"error": ERROR_STYLE, "warning": WARNING_STYLE}.get(level, ""))
        self.message.setProperty("level", level)
        self.message.setVisible(bool(text))

    def message_text(self) -> str:
        return self.message.text()

    def message_level(self) -> str:
        return self.message.property("level") or "info"

    # ---- the project -----------------------------------------------------------------------------
    def restore(self, folder: str) -> None:
        """Reopen the project remembered from the last run, if it is still there."""
        if folder and Path(folder).is_dir():
            try:
                self._set_project(Project.open(folder))
            except ProjectError:
                pass

    def _ensure_project(self) -> Project:
        if self.project is None:
            self._set_project(Project.new_untitled())
        return self.project

    def _set_project(self, project: Project | None) -> None:
        self.stop_capture()
        self.project = project
        self.accuracy = {}
        self._thumbs.clear()
        self._refresh_classes()
        self.project_changed.emit(str(project.folder) if project else "")

    def _can_drop_project(self) -> bool:
        """True when the current project may be replaced (asks before losing an untitled one)."""
        p = self.project
        if p is None or not p.untitled or p.image_count() == 0:
            return True
        answer = QMessageBox.question(
            self, "Discard the untitled project?",
            f"The untitled project has {_plural(p.image_count(), 'image')} in "
            f"{_plural(len(p.classes), 'class')}. Discard it? (Save project as… keeps it.)",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Discard

    def new_project(self) -> None:
        if self._blocked("start a new project"):
            return
        if self.project is not None:
            self.project.discard()
        self._set_project(None)
        self.show_message("New project: add classes, then drop images on them or capture from the camera.")

    def open_project(self, folder: str) -> bool:
        if self._blocked("open another project"):
            return False
        try:
            project = Project.open(folder)
        except ProjectError as exc:
            self.show_message(str(exc), "error")
            return False
        if self.project is not None and self.project.folder != project.folder:
            self.project.discard()
        self._set_project(project)
        counts = ", ".join(f"{c.name} ({len(c.files)})" for c in project.classes) or "no classes yet"
        self.show_message(f"Opened {project.folder}: {counts}.")
        return True

    def save_project_as(self, folder: str) -> bool:
        if self.project is None:
            self.show_message("There is nothing to save yet: add a class first.", "error")
            return False
        if self._blocked("save the project"):
            return False
        try:
            self.project.save_as(folder)
        except ProjectError as exc:
            self.show_message(str(exc), "error")
            return False
        self._thumbs.clear()
        self._refresh_classes()
        self.project_changed.emit(str(self.project.folder))
        self.show_message(f"Saved to {self.project.folder}; changes go there from now on.")
        return True

    def _blocked(self, what: str) -> bool:
        """Some changes must wait for writes in flight or for training (which reads the files)."""
        if self.writer.pending:
            self.show_message(f"Still writing {_plural(self.writer.pending, 'image')}: "
                              f"{what} in a moment.", "warning")
            return True
        if self._job is not None and self._job_kind == "teach":
            self.show_message(f"Training is reading this project: cancel it or wait, then {what}.", "warning")
            return True
        return False

    def _ask_new_project(self) -> None:
        if self._can_drop_project():
            self.new_project()

    def _ask_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a teach project (a folder with one subfolder of images per class)",
            str(self.project.folder.parent) if self.project and not self.project.untitled else "")
        if folder and self._can_drop_project():
            self.open_project(folder)

    def _ask_save_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the teach project into a new, empty folder")
        if folder:
            self.save_project_as(folder)

    # ---- classes ---------------------------------------------------------------------------------
    def class_names(self) -> list[str]:
        return self.project.names() if self.project else []

    def class_counts(self) -> dict[str, int]:
        return {c.name: len(c.files) for c in self.project.classes} if self.project else {}

    def select_class(self, name: str) -> None:
        item = self.tree.item_for(name)
        if item is not None:
            self.tree.setCurrentItem(item)

    def add_class(self, name: str) -> bool:
        try:
            added = self._ensure_project().add_class(name)
        except ProjectError as exc:
            self.show_message(str(exc), "error")
            return False
        self._refresh_classes(select=added.name)
        self.project_changed.emit(str(self.project.folder))
        return True

    def rename_class(self, old: str, new: str) -> bool:
        if self.project is None or self._blocked("rename it"):
            self._refresh_classes()
            return False
        try:
            renamed = self.project.rename_class(old, new)
        except ProjectError as exc:
            self.show_message(str(exc), "error")
            self._refresh_classes()
            return False
        if old in self.accuracy:
            self.accuracy[renamed.name] = self.accuracy.pop(old)
        self._thumbs.clear()
        self._refresh_classes(select=renamed.name)
        return True

    def delete_class(self, name: str) -> bool:
        if self.project is None or self._blocked("delete it"):
            return False
        try:
            self.project.delete_class(name)
        except ProjectError as exc:
            self.show_message(str(exc), "error")
            return False
        self.accuracy.pop(name, None)
        self._refresh_classes()
        return True

    def _ask_add_class(self) -> None:
        name, ok = QInputDialog.getText(self, "Add a class", "Class name (it names a folder in the project):")
        if ok and name.strip():
            self.add_class(name)

    def _ask_rename_class(self) -> None:
        old = self.tree.current_class()
        if old is None:
            return
        new, ok = QInputDialog.getText(self, "Rename class", f"New name for '{old}':", text=old)
        if ok:
            self.rename_class(old, new)

    def _on_rename_in_place(self, old: str, new: str) -> None:
        # Out of the item's own signal: rebuilding the tree inside it would pull the item away.
        QTimer.singleShot(0, lambda: self.rename_class(old, new))

    def _ask_delete_class(self) -> None:
        name = self.tree.current_class()
        if name is None:
            return
        count = len(self.project.get(name).files)
        answer = QMessageBox.question(
            self, "Delete class", f"Delete class '{name}' and its {_plural(count, 'image')} "
            f"({self.project.class_folder(name)}) from the disk?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_class(name)

    def _refresh_classes(self, select: str | None = None) -> None:
        current = select or self.tree.current_class()
        rows = [(c.name, len(c.files), self.accuracy.get(c.name)) for c in self.project.classes] \
            if self.project else []
        self.tree.set_classes(rows, current)
        if self.tree.currentItem() is None and self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        if self.project is None:
            self.project_label.setText("Project: none yet. Add a class to start one.")
        elif self.project.untitled:
            self.project_label.setText("Project: untitled (in a temporary folder until you save it)")
        else:
            self.project_label.setText(f"Project: {self.project.folder}")
        self.project_label.setToolTip(str(self.project.folder) if self.project else "")
        self._show_class()
        self._update_buttons()

    def _update_count(self, name: str) -> None:
        item = self.tree.item_for(name)
        if item is not None and self.project is not None:
            item.setText(ClassTree.COUNT, str(len(self.project.get(name).files)))

    # ---- the selected class's images --------------------------------------------------------------
    def _show_class(self) -> None:
        name = self.tree.current_class()
        self.strip.clear()
        self._strip_items.clear()
        if name is None or self.project is None:
            self.strip_label.setText("Add a class, then drop images or folders on it (or here).")
            self._update_buttons()
            return
        files = self.project.get(name).files
        self._set_strip_label(name, len(files))
        for path in files:
            self._add_thumbnail(path)
        self._update_buttons()

    def _set_strip_label(self, name: str, count: int) -> None:
        self.strip_label.setText(f"<b>{name}</b>: {_plural(count, 'image')}. Drop images or folders "
                                 "here or on a class; Delete removes the selected ones.")

    def _add_thumbnail(self, path: Path) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(path.name)
        if path in self._thumbs:
            item.setIcon(self._icon(self._thumbs[path]))
        else:
            item.setIcon(self._placeholder_icon())
            self.thumbnails.request(path)
        self.strip.addItem(item)
        self._strip_items[str(path)] = item

    def _on_thumbnail(self, path: Path, thumb: QImage | None) -> None:
        self._thumbs[path] = thumb
        item = self._strip_items.get(str(path))
        if item is not None:
            item.setIcon(self._icon(thumb))

    def _icon(self, thumb: QImage | None) -> QIcon:
        if thumb is None:
            return self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        icon = QIcon()
        pixmap = QPixmap.fromImage(thumb)
        for mode in (QIcon.Mode.Normal, QIcon.Mode.Selected):   # no selection tint: the frame shows it
            icon.addPixmap(pixmap, mode)
        return icon

    def _placeholder_icon(self) -> QIcon:
        pm = QPixmap(THUMB_SIDE, THUMB_SIDE)
        pm.fill(Qt.GlobalColor.darkGray)
        return QIcon(pm)

    def strip_paths(self) -> list[str]:
        return [self.strip.item(r).data(Qt.ItemDataRole.UserRole) for r in range(self.strip.count())]

    def remove_images(self, paths) -> None:
        name = self.tree.current_class()
        if name is None or self._blocked("remove images"):
            return
        try:
            self.project.remove_files(name, [Path(p) for p in paths])
        except ProjectError as exc:
            self.show_message(str(exc), "error")
        for p in paths:
            self.thumbnails.forget(Path(p))
        self._refresh_classes()

    def _ask_remove_images(self) -> None:
        paths = [i.data(Qt.ItemDataRole.UserRole) for i in self.strip.selectedItems()]
        if not paths:
            return
        answer = QMessageBox.question(self, "Remove images",
                                      f"Delete {_plural(len(paths), 'image')} from the project folder?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_images(paths)

    # ---- drops -----------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.drop_paths(self.tree.current_class(), paths)

    def _on_tree_drop(self, name: str | None, paths: list) -> None:
        self.drop_paths(name, paths)

    def drop_paths(self, name: str | None, paths) -> int:
        """Copy images into class `name`; with no class, each dropped folder becomes a class of
        its own (named after it) and loose files go to the selected class. Returns files queued."""
        paths = [Path(p) for p in paths]
        if name is None:
            folders = [p for p in paths if p.is_dir()]
            files = [p for p in paths if not p.is_dir()]
            queued = 0
            for folder in folders:
                existing = {n.casefold(): n for n in self.class_names()}.get(folder.name.casefold())
                if existing is None and not self.add_class(folder.name):
                    continue
                queued += self.add_images(existing or folder.name, [folder])
            if files:
                current = self.tree.current_class()
                if current is None:
                    self.show_message("Add a class first, then drop images on it.", "error")
                else:
                    queued += self.add_images(current, files)
            return queued
        return self.add_images(name, paths)

    def add_images(self, name: str, paths) -> int:
        """Copy image files (and the images in folders) into class `name`, off the GUI thread."""
        project = self._ensure_project()
        try:
            project.get(name)
        except ProjectError as exc:
            self.show_message(str(exc), "error")
            return 0
        found = collect_images(paths)
        images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        not_images = [p.name for p in found if p.suffix.lower() not in IMAGE_SUFFIXES]
        if self.writer.pending == 0:     # a new batch: the message on idle counts from here
            self._drop_added, self._drop_failed = 0, []
        self._drop_failed += [f"{n} (not an image)" for n in not_images]
        folder = project.class_folder(name)
        for path in images:
            self.writer.copy(name, folder, path)
        if not images:
            self.show_message(f"No images there for '{name}' (looked for "
                              + ", ".join(sorted(IMAGE_SUFFIXES)) + ").", "error")
        else:
            self.show_message(f"Adding {_plural(len(images), 'image')} to '{name}'…")
        self.select_class(name)
        return len(images)

    def _on_written(self, w: Written) -> None:
        if self.project is None:
            return
        if w.error is None:
            try:
                self.project.file_added(w.class_name, w.path)
            except ProjectError:
                return   # the class went away (its folder with it)
            if w.thumb is not None:
                self._thumbs[w.path] = w.thumb
            if self.tree.current_class() == w.class_name:
                self._add_thumbnail(w.path)
                self._set_strip_label(w.class_name, len(self.project.get(w.class_name).files))
            self._update_count(w.class_name)
        if w.source != "camera frame":
            if w.error is None:
                self._drop_added += 1
            else:
                self._drop_failed.append(w.error)
        elif w.error is not None:
            self.show_message(f"A captured frame could not be saved: {w.error}", "error")

    def _on_writer_idle(self) -> None:
        if self._drop_added or self._drop_failed:
            text = f"Added {_plural(self._drop_added, 'image')}."
            if self._drop_failed:
                text += " Not added: " + "; ".join(self._drop_failed[:5]) + \
                        (f" and {len(self._drop_failed) - 5} more" if len(self._drop_failed) > 5 else "") + "."
            self.show_message(text, "warning" if self._drop_failed else "info")
            self._drop_added, self._drop_failed = 0, []
        if self._train_when_written:
            self._train_when_written = False
            self.train()
        self._update_buttons()

    # ---- camera and capture ----------------------------------------------------------------------
    def _toggle_camera(self) -> None:
        if self._webcam.is_running():
            self._webcam.stop()
        else:
            self._webcam.start()

    def _on_camera_running(self, running: bool) -> None:
        self.camera_button.setText("Stop camera" if running else "Start camera")
        if not running:
            self.stop_capture()
            self._preview_selected()
        self._update_buttons()

    def _on_camera_frame(self, frame) -> None:
        if self.isVisible():
            self.preview.set_image(frame.image)

    def _on_camera_result(self, result: Result) -> None:
        if not self.isVisible():
            return
        self._show_result(result)
        self.preview_label.setText("Camera · " + self._webcam.stats.text())

    def start_capture(self) -> None:
        """Begin capturing CAPTURE_FPS frames a second from the camera into the selected class."""
        name = self.tree.current_class()
        if not self._webcam.is_running():
            self.show_message("Start the camera first (Start camera).", "error")
            return
        if name is None:
            self.show_message("Add or select a class to capture into.", "error")
            return
        self.captured = 0
        self._capture_class = name
        self._capture_frame()
        self._capture_timer.start()

    def stop_capture(self) -> None:
        if self._capture_timer.isActive():
            self._capture_timer.stop()
            self.capture_label.setText(f"{_plural(self.captured, 'frame')} captured into '{self._capture_class}'.")

    def _capture_frame(self) -> None:
        frame = self._webcam.latest_frame()
        if frame is None or frame is self._last_captured or self.project is None:
            return
        if self._capture_class not in self.project.names():
            self.stop_capture()
            return
        self._last_captured = frame
        self.captured += 1
        stem = f"capture-{time.strftime('%Y%m%d-%H%M%S')}-{self.captured:03d}"
        self.writer.save_frame(self._capture_class, self.project.class_folder(self._capture_class),
                               frame.image, stem)
        self.capture_label.setText(f"Capturing into '{self._capture_class}': {_plural(self.captured, 'frame')}")

    # ---- preview of a clicked image --------------------------------------------------------------
    def _preview_selected(self) -> None:
        if self._webcam.is_running():
            return
        item = self.strip.currentItem()
        if item is None:
            self.preview.set_image(None)
            self.preview.set_placeholder(PREVIEW_HINT)
            self.preview_label.clear()
            self._preview_tag, self._preview_pixels = None, None
            self.set_model_ready(self._model_ready)   # the matching hint in the bars
            return
        self._preview_id = next(self._preview_ids)
        self._preview_path = item.data(Qt.ItemDataRole.UserRole)
        self._decoder.decode(self._preview_id, self._preview_path)

    def _on_preview_decoded(self, d: Decoded) -> None:
        if d.entry_id != self._preview_id or self._webcam.is_running():
            return
        self.preview_label.setText(Path(self._preview_path).name)
        if d.error:
            self.preview.set_image(None)
            self.preview.set_placeholder(f"Cannot show {Path(self._preview_path).name}")
            self.bars.set_message(d.error, error=True)
            self._preview_pixels = None
            return
        self.preview.set_image(d.display)
        self._preview_pixels = d.rgb
        self._classify_preview()

    def _classify_preview(self) -> None:
        if self._preview_pixels is None or not self._model_ready or self._webcam.is_running():
            return
        self._preview_tag = ("teach", next(self._preview_ids))
        self._preview_dropped = False
        self.bars.set_message("Classifying…")
        self._worker.submit(self._preview_tag, self._preview_pixels)

    def _on_result(self, result: Result) -> None:
        if result.tag == self._preview_tag:
            self._preview_tag = None
            self._show_result(result)
        elif self._preview_dropped and self._preview_tag is not None:
            self._classify_preview()   # another view took the slot: ask again now that it is done

    def _on_superseded(self, tag) -> None:
        if tag == self._preview_tag:
            self._preview_dropped = True

    def _show_result(self, result: Result) -> None:
        if result.error:
            self.bars.set_message(result.error, error=True)
        else:
            self.bars.set_predictions(result.top)

    # ---- training --------------------------------------------------------------------------------
    def _training_problem(self) -> str | None:
        if not self._model_ready:
            return "Load a model first (Model menu): teaching builds on its features."
        names = self.class_names()
        if not names:
            return ("Add at least two classes (Add…), and give each some images: drop photos on a class, "
                    "or hold “Hold to capture” with the camera running. Then Train.")
        if len(names) == 1:
            return f"Teaching needs at least two classes: '{names[0]}' is the only one. Add another class."
        empty = [c.name for c in self.project.classes if not c.files]
        if empty:
            what = f"Class {_quoted(empty)} has" if len(empty) == 1 else f"Classes {_quoted(empty)} have"
            return f"{what} no images: drop images onto it or capture some from the camera, or delete it."
        if self._worker.busy:
            return "The model is busy with another job: wait for it to finish."
        return None

    def train(self) -> bool:
        """Extract features and train a head on the worker; False (with a message) if it cannot."""
        if self._job is not None:
            return False
        problem = self._training_problem()
        if problem:
            self.show_message(problem, "error")
            return False
        if self.writer.pending:
            self._train_when_written = True
            self.show_message(f"Writing {_plural(self.writer.pending, 'image')} first…")
            return True
        try:
            dataset = teach.scan_dataset(self.project.folder)
        except teach.TeachError as exc:
            self.show_message(str(exc), "error")
            return False
        self.stop_capture()
        self._start_job(TeachRequest(dataset), "teach")
        self._train_started = time.monotonic()
        self.plot.clear()
        self.result_label.clear()
        self.progress.setRange(0, max(1, len(dataset.images)))
        self.progress.setValue(0)
        self.progress.setFormat("Features %v/%m")
        counts = ", ".join(f"{n} ({c})" for n, c in zip(dataset.classes, dataset.counts()))
        self.train_status.setText(f"Reading features of {_plural(len(dataset.images), 'image')}: {counts}")
        self.show_message("")
        return True

    def cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.train_status.setText("Cancelling…")

    def _start_job(self, request, kind: str) -> None:
        self._job = self._worker.start_job(request)
        self._job_kind = kind
        self._update_buttons()

    def _on_job_progress(self, p: JobProgress) -> None:
        if self._job is None or p.job != self._job.id:
            return
        if p.stage == "features":
            self.progress.setRange(0, max(1, p.total))
            self.progress.setValue(p.done)
            self.progress.setFormat("Features %v/%m")
        elif p.stage == "training":
            stats = p.detail
            self.plot.add(stats)
            self.progress.setRange(0, max(1, p.total))
            self.progress.setValue(p.done)
            self.progress.setFormat("Epoch %v")
            val = "" if stats.val_accuracy is None else f", validation {100 * stats.val_accuracy:.0f}%"
            self.train_status.setText(f"Training: epoch {stats.epoch}, loss {stats.loss:.3f}, "
                                      f"accuracy {100 * stats.train_accuracy:.0f}%{val}")

    def _on_job_finished(self, done: JobDone) -> None:
        if self._job is None or done.job != self._job.id:
            return
        kind, self._job, self._job_kind = self._job_kind, None, ""
        if kind == "teach":
            self._teach_finished(done)
        elif kind == "export":
            self._export_finished(done)
        self._update_buttons()

    def _teach_finished(self, done: JobDone) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if done.value is None else 1)
        self.progress.setFormat("Done" if done.value is not None else "")
        if done.cancelled:
            self.train_status.setText("Training cancelled.")
            return
        if done.error:
            self.train_status.setText("Training failed.")
            self.show_message(done.error, "error")
            return
        result: teach.TeachResult = done.value
        self.last_train_seconds = time.monotonic() - self._train_started
        self.result, self.taught = result, result.model
        evaluation = result.val if result.val is not None else result.train
        self.accuracy = {name: float(a) for name, a in zip(result.classes, evaluation.per_class)
                         if not math.isnan(a)}
        self._refresh_classes()
        features = result.features
        self.train_status.setText(f"Trained in {self.last_train_seconds:.1f} s: {len(result.history)} epochs.")
        if result.val is not None:
            score = (f"Validation accuracy <b>{100 * result.val.accuracy:.1f}%</b> "
                     f"({int(result.val.confusion.trace())} of {result.val.count} held-out images)")
        else:
            score = (f"Training accuracy <b>{100 * result.train.accuracy:.1f}%</b> (too few images to hold "
                     "any out for validation)")
        self.result_label.setText(
            f"{score}. Trained on {_plural(result.train_images, 'image')} "
            f"(× {len(features.variants)}: {', '.join(features.variants)}); features "
            f"{features.seconds:.1f} s ({features.computed} computed, {features.cached} cached), "
            f"training {result.seconds:.2f} s.")
        if features.skipped:
            names = ", ".join(Path(p).name for p, _ in features.skipped[:5])
            more = f" and {len(features.skipped) - 5} more" if len(features.skipped) > 5 else ""
            n = len(features.skipped)
            self.show_message(f"{_plural(n, 'file')} could not be read and {'was' if n == 1 else 'were'} "
                              f"skipped: {names}{more}. ({features.skipped[0][1]})", "warning")
        self.taught_radio.setText(f"Taught classes: {', '.join(result.classes)}")
        if self.taught_radio.isChecked():
            self._worker.set_taught(self.taught)
        else:
            self.taught_radio.setChecked(True)   # -> _on_live_choice

    # ---- live classifier -------------------------------------------------------------------------
    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        if not ready:
            self.bars.set_message("No model loaded yet.")
        elif self._preview_pixels is None and not self._webcam.is_running():
            self.bars.set_message("Click a thumbnail, or start the camera, to see the live classification here.")
        self._update_buttons()

    def set_base_model(self, info: ModelInfo) -> None:
        """A model was loaded: it is the live classifier again and what the next training builds on."""
        self._base_name = info.name
        self.base_radio.setText(f"Base model: {info.name} ({info.classes} classes)")
        self._set_live_choice(taught=False)
        self._classify_preview()

    def _set_live_choice(self, taught: bool) -> None:
        for radio in (self.base_radio, self.taught_radio):
            radio.blockSignals(True)
        (self.taught_radio if taught else self.base_radio).setChecked(True)
        for radio in (self.base_radio, self.taught_radio):
            radio.blockSignals(False)

    def use_taught(self, taught: bool) -> None:
        """Classify live with the taught classes (True) or the loaded model (False)."""
        (self.taught_radio if taught else self.base_radio).setChecked(True)

    def _on_live_choice(self) -> None:
        if self.taught_radio.isChecked() and self.taught is None:
            self._set_live_choice(taught=False)
            return
        self._worker.set_taught(self.taught if self.taught_radio.isChecked() else None)

    def _on_classifier_changed(self, info: ModelInfo) -> None:
        self._set_live_choice(taught=info.taught)
        self._classify_preview()

    # ---- export ----------------------------------------------------------------------------------
    def export_model(self, folder: str, name: str) -> bool:
        """Write NAME.cfg/.weights/.names into folder on the worker (all three or none)."""
        if self.taught is None:
            self.show_message("Train first: there is no taught model to export.", "error")
            return False
        if self._job is not None or self._worker.busy:
            self.show_message("The model is busy with another job: wait for it to finish.", "error")
            return False
        self._start_job(ExportRequest(self.taught, folder, name), "export")
        self.show_message(f"Exporting {name}…")
        return True

    def _ask_export(self) -> None:
        if self.taught is None:
            self.show_message("Train first: there is no taught model to export.", "error")
            return
        folder = self._settings.export_folder() or str(Path.home())
        title = self.project.title if self.project and not self.project.untitled else "taught"
        dialog = ExportDialog(folder, suggest_name(title), self)
        if dialog.exec() != ExportDialog.DialogCode.Accepted:
            return
        folder, name = dialog.values()
        existing = [p for p in (Path(folder) / f"{name}{s}" for s in (".cfg", ".weights", ".names")) if p.exists()]
        if existing:
            answer = QMessageBox.question(self, "Replace files?",
                                          "Replace " + ", ".join(p.name for p in existing) + f" in {folder}?",
                                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.export_model(folder, name)

    def _export_finished(self, done: JobDone) -> None:
        if done.error:
            self.show_message(f"Nothing was exported: {done.error}", "error")
            return
        paths = done.value
        self._settings.set_export_folder(str(paths.cfg.parent))
        self.show_message(f"Exported {paths.cfg.stem} to {paths.cfg.parent} ({paths.cfg.name}, "
                          f"{paths.weights.name}, {paths.names.name}); it is in the Model menu now.")
        self.exported.emit(paths)

    # ---- state -----------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        has_class = self.tree.current_class() is not None
        teaching = self._job is not None
        self.rename_button.setEnabled(has_class)
        self.delete_button.setEnabled(has_class)
        self.train_button.setEnabled(not teaching)
        self.cancel_button.setEnabled(teaching and self._job_kind == "teach")
        self.capture_button.setEnabled(self._webcam.is_running() and has_class)
        self.taught_radio.setEnabled(self.taught is not None)
        self.export_button.setEnabled(self.taught is not None and not teaching)
        self.save_button.setEnabled(self.project is not None)

    def shutdown(self) -> None:
        self.stop_capture()
        self.writer.shutdown()
        self.thumbnails.shutdown()
        self._decoder.shutdown()


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
