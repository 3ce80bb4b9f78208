"""The Teach view: your own classes on top of the loaded model, from dropped photos or the camera.

Left, the classes of a teach project (a folder with one subfolder per class, see teach_project);
in the middle, the LivePanel (teach_live: the camera or the image clicked in the strip, its top-k
bars, "Hold to capture") above the selected class's thumbnails; right, the TrainingPanel
(teach_training: progress, the cross-validation chart, result, live classifier choice, Export).

All inference and teaching happen on the shared worker as jobs (jobs.py); file copies, captured
frames and thumbnails on ProjectWriter / ThumbnailLoader threads; this class only keeps the GUI
state and never waits for any of them.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QInputDialog, QLabel, QListWidgetItem,
                               QMessageBox, QPushButton, QScrollArea, QSplitter, QStyle, QVBoxLayout, QWidget)

from engine import teach

from .decoder import THUMB_SIDE
from .image_view import IMAGE_SUFFIXES, collect_images
from .settings import Settings
from .teach_io import ProjectWriter, ThumbnailLoader, Written
from .teach_live import LivePanel
from .teach_project import Project, ProjectError
from .teach_training import TrainingPanel, heading, per_class_accuracy, plural
from .teach_widgets import ClassTree, ThumbnailStrip, local_paths
from .webcam_view import WebcamView
from .worker import InferenceWorker, ModelInfo

ERROR_STYLE = "color: #c0392b;"
WARNING_STYLE = "color: #b9770e;"


def _quoted(names) -> str:
    return ", ".join(f"'{n}'" for n in names)


class TeachView(QWidget):
    project_changed = Signal(str)      # the project folder, for the settings

    def __init__(self, worker: InferenceWorker, webcam: WebcamView, settings: Settings, parent=None):
        super().__init__(parent)
        self._worker = worker
        self._webcam = webcam
        self._settings = settings
        self.project: Project | None = None
        self.accuracy: dict[str, float] = {}   # per class, from the last training
        self._model_ready = False
        self._train_when_written = False
        self._drop_added = 0
        self._drop_failed: list[str] = []
        self._thumbs: dict[Path, QImage | None] = {}       # by file; None: Qt cannot read it
        self._strip_items: dict[str, QListWidgetItem] = {}  # the strip's items by file

        self.writer = ProjectWriter(self)
        self.writer.written.connect(self._on_written)
        self.writer.idle.connect(self._on_writer_idle)
        self.thumbnails = ThumbnailLoader(parent=self)
        self.thumbnails.loaded.connect(self._on_thumbnail)
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
        self.tree.files_dropped.connect(self.drop_paths)
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
        left_layout.addWidget(heading("Classes"))
        left_layout.addWidget(self.tree, 1)
        left_layout.addLayout(class_buttons)

        # live preview and capture, thumbnails
        self.live = LivePanel(self._worker, self._webcam, self.writer, self._capture_target, self.show_message)
        self._worker.classifier_changed.connect(lambda _info: self.live.reclassify())
        self.strip_label = QLabel()
        self.strip = ThumbnailStrip()
        self.strip.files_dropped.connect(lambda paths: self.drop_paths(self.tree.current_class(), paths))
        self.strip.currentItemChanged.connect(lambda *_: self._preview_selected())
        self.strip.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        remove = QAction("Remove from class…", self.strip)
        remove.setShortcut(QKeySequence.StandardKey.Delete)
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(self._ask_remove_images)
        self.strip.addAction(remove)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(self.live, 3)
        middle_layout.addWidget(self.strip_label)
        middle_layout.addWidget(self.strip, 2)

        # training
        self.training = TrainingPanel(self._worker, self._settings, self.show_message,
                                      lambda: self.project.title if self.project and not self.project.untitled
                                      else "taught")
        self.training.train_button.clicked.connect(self.train)
        self.training.trained.connect(self._on_trained)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(middle)
        split.addWidget(self.training)
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
        self.live.stop_capture()
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
            f"The untitled project has {plural(p.image_count(), 'image')} in "
            f"{plural(len(p.classes), 'class')}. Discard it? (Save project as… keeps it.)",
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
            self.show_message(f"Still writing {plural(self.writer.pending, 'image')}: "
                              f"{what} in a moment.", "warning")
            return True
        if self.training.is_teaching():
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
            self, "Delete class", f"Delete class '{name}' and its {plural(count, 'image')} "
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
        self.strip_label.setText(f"<b>{name}</b>: {plural(count, 'image')}. Drop images or folders "
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
                                      f"Delete {plural(len(paths), 'image')} from the project folder?",
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
            self.show_message(f"Adding {plural(len(images), 'image')} to '{name}'…")
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
            text = f"Added {plural(self._drop_added, 'image')}."
            if self._drop_failed:
                text += " Not added: " + "; ".join(self._drop_failed[:5]) + \
                        (f" and {len(self._drop_failed) - 5} more" if len(self._drop_failed) > 5 else "") + "."
            self.show_message(text, "warning" if self._drop_failed else "info")
            self._drop_added, self._drop_failed = 0, []
        if self._train_when_written:
            self._train_when_written = False
            self.train()
        self._update_buttons()

    # ---- live panel glue -------------------------------------------------------------------------
    def _capture_target(self) -> tuple[str, Path] | None:
        name = self.tree.current_class()
        if name is None or self.project is None:
            self.show_message("Add or select a class to capture into.", "error")
            return None
        return name, self.project.class_folder(name)

    def _preview_selected(self) -> None:
        item = self.strip.currentItem()
        self.live.preview_file(item.data(Qt.ItemDataRole.UserRole) if item is not None else None)

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
        if self.training.is_busy():
            return False
        problem = self._training_problem()
        if problem:
            self.show_message(problem, "error")
            return False
        if self.writer.pending:
            self._train_when_written = True
            self.show_message(f"Writing {plural(self.writer.pending, 'image')} first…")
            return True
        try:
            dataset = teach.scan_dataset(self.project.folder)
        except teach.TeachError as exc:
            self.show_message(str(exc), "error")
            return False
        self.live.stop_capture()
        self.show_message("")
        self.training.start(dataset)
        return True

    def _on_trained(self, result: teach.TeachResult) -> None:
        self.accuracy = per_class_accuracy(result)
        self._refresh_classes()

    # ---- live classifier -------------------------------------------------------------------------
    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        self.live.set_model_ready(ready)

    def set_base_model(self, info: ModelInfo) -> None:
        """A model was loaded: it is the live classifier again and what the next training builds on."""
        self.training.set_base_model(info)

    # ---- state -----------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        has_class = self.tree.current_class() is not None
        self.rename_button.setEnabled(has_class)
        self.delete_button.setEnabled(has_class)
        self.live.set_capture_allowed(has_class)
        self.save_button.setEnabled(self.project is not None)

    def shutdown(self) -> None:
        self.live.shutdown()
        self.writer.shutdown()
        self.thumbnails.shutdown()

