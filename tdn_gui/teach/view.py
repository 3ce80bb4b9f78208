"""The Teach view: your own classes on top of the loaded model, from dropped photos or the camera.

Above the columns, the project's buttons and a message banner. Left, the classes of a teach
project (a folder with one subfolder per class: project_folder.py), kept by ClassList
(class_list.py); in the middle, the LivePanel (live_panel.py: the camera or the image clicked in
the strip, its top-k bars, "Hold to capture") above the selected class's thumbnails, kept by
ClassImages (class_images.py); right, the TrainingPanel (training_panel.py: progress, the
cross-validation chart, result, live classifier choice, Export).

This module lays the columns out, wires them together and decides whether training may start.
All inference and teaching happen on the shared worker as jobs; file copies, captured frames and
thumbnails on the ProjectWriter / ThumbnailLoader threads; nothing here waits for any of them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget

from ..settings import Settings
from ..views.webcam_view import WebcamView
from ..worker.engine_api import TeachResult
from ..worker.qt_worker import InferenceWorker
from ..worker.scheduler import LoadedModel
from .class_images import ClassImages
from .class_list import ClassList
from .file_threads import ProjectWriter, ThumbnailLoader
from .live_panel import LivePanel
from .mistakes import MistakesWindow
from .project_folder import ProjectError
from .result_text import per_class_accuracy
from .training_panel import TrainingPanel
from .widgets import ClassTree, ThumbnailStrip, heading, local_paths, plural

ERROR_STYLE = "color: #c0392b;"
WARNING_STYLE = "color: #b9770e;"


def _quoted(names) -> str:
    return ", ".join(f"'{n}'" for n in names)


class TeachView(QWidget):
    project_changed = Signal(str)  # the project folder, for the settings

    def __init__(self, worker: InferenceWorker, webcam: WebcamView, settings: Settings, parent=None):
        super().__init__(parent)
        self._worker = worker
        self._webcam = webcam
        self._settings = settings
        self._model_ready = False
        self._train_when_written = False
        self._fine_tune_when_written: bool | None = None
        self.mistakes: MistakesWindow | None = None
        self.writer = ProjectWriter(self)
        self.thumbnails = ThumbnailLoader(parent=self)
        self.setAcceptDrops(True)
        self._build()
        self.classes = ClassList(self.tree, self.project_label, self.show_message, self._blocked, self)
        self.images = ClassImages(
            self.classes,
            self.strip,
            self.strip_label,
            self.writer,
            self.thumbnails,
            self.show_message,
            self._blocked,
            self,
        )
        self._connect()
        self.classes.refresh()

    # ---- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.new_button = QPushButton("New project")
        self.open_button = QPushButton("Open project…")
        self.save_button = QPushButton("Save project as…")
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

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._build_classes())
        split.addWidget(self._build_images())
        split.addWidget(self._build_training())
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

    def _build_classes(self) -> QWidget:
        self.tree = ClassTree()
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Add a class (a folder of its images in the project)")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete")
        class_buttons = QHBoxLayout()
        for w in (self.add_button, self.rename_button, self.delete_button):
            class_buttons.addWidget(w)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(heading("Classes"))
        left_layout.addWidget(self.tree, 1)
        left_layout.addLayout(class_buttons)
        return left

    def _build_images(self) -> QWidget:
        """The live preview and capture above the selected class's thumbnails."""
        self.live = LivePanel(self._worker, self._webcam, self.writer, self._capture_target, self.show_message)
        self.strip_label = QLabel()
        self.strip = ThumbnailStrip()
        self.strip.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.remove_action = QAction("Remove from class…", self.strip)
        self.remove_action.setShortcut(QKeySequence.StandardKey.Delete)
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.strip.addAction(self.remove_action)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(self.live, 3)
        middle_layout.addWidget(self.strip_label)
        middle_layout.addWidget(self.strip, 2)
        return middle

    def _build_training(self) -> QWidget:
        self.training = TrainingPanel(self._worker, self._settings, self.show_message, self._export_name)
        return self.training

    def _export_name(self) -> str:
        """The Export dialog's default model name: the saved project's."""
        project = self.classes.project
        return project.title if project and not project.untitled else "taught"

    def _connect(self) -> None:
        classes, images = self.classes, self.images
        self.new_button.clicked.connect(classes.ask_new_project)
        self.open_button.clicked.connect(classes.ask_open_project)
        self.save_button.clicked.connect(classes.ask_save_project)
        self.add_button.clicked.connect(classes.ask_add_class)
        self.rename_button.clicked.connect(classes.ask_rename_class)
        self.delete_button.clicked.connect(classes.ask_delete_class)
        classes.project_changed.connect(self.project_changed)
        classes.project_replaced.connect(self.live.stop_capture)
        classes.project_replaced.connect(images.forget_thumbnails)
        classes.files_moved.connect(images.forget_thumbnails)
        classes.classes_changed.connect(self._show_class)
        self.tree.currentItemChanged.connect(lambda *_: self._show_class())
        self.tree.files_dropped.connect(images.drop_paths)
        self.strip.currentItemChanged.connect(lambda *_: self._preview_selected())
        self.remove_action.triggered.connect(images.ask_remove_images)
        self.writer.idle.connect(self._on_writer_idle)  # after ClassImages has summed the drop up
        self.training.train_button.clicked.connect(lambda: self.train())  # not clicked(checked) as fine_tune
        self.training.trained.connect(self._on_trained)
        self.training.mistakes_button.clicked.connect(self.open_mistakes)
        self._worker.job_finished.connect(lambda _done: self._mistakes_settled())
        self._worker.classifier_changed.connect(lambda _info: self.live.reclassify())

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

    def _blocked(self, what: str) -> bool:
        """Some changes must wait for writes in flight or for training (which reads the files)."""
        if self.writer.pending:
            self.show_message(f"Still writing {plural(self.writer.pending, 'image')}: {what} in a moment.", "warning")
            return True
        if self.training.is_teaching():
            self.show_message(f"Training is reading this project: cancel it or wait, then {what}.", "warning")
            return True
        return False

    # ---- the columns together --------------------------------------------------------------------
    def restore(self, folder: str) -> None:
        """Reopen the project remembered from the last run, if it is still there."""
        self.classes.restore(folder)

    def _show_class(self) -> None:
        self.images.show_class()
        self._update_buttons()

    def _capture_target(self) -> tuple[str, Path] | None:
        name = self.classes.current()
        if name is None or self.classes.project is None:
            self.show_message("Add or select a class to capture into.", "error")
            return None
        return name, self.classes.project.class_folder(name)

    def _preview_selected(self) -> None:
        item = self.strip.currentItem()
        self.live.preview_file(item.data(Qt.ItemDataRole.UserRole) if item is not None else None)

    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.images.drop_paths(self.classes.current(), paths)

    def _on_writer_idle(self) -> None:
        if self._train_when_written:
            self._train_when_written = False
            self.train(self._fine_tune_when_written)
        self._update_buttons()

    # ---- training --------------------------------------------------------------------------------
    def _training_problem(self) -> str | None:
        if not self._model_ready:
            return "Load a model first (Model menu): teaching builds on its features."
        names = self.classes.names()
        if not names:
            return (
                "Add at least two classes (Add…), and give each some images: drop photos on a class, "
                "or hold “Hold to capture” with the camera running. Then Train."
            )
        if len(names) == 1:
            return f"Teaching needs at least two classes: '{names[0]}' is the only one. Add another class."
        empty = [name for name, count in self.classes.counts().items() if not count]
        if empty:
            what = f"Class {_quoted(empty)} has" if len(empty) == 1 else f"Classes {_quoted(empty)} have"
            return f"{what} no images: drop images onto it or capture some from the camera, or delete it."
        if self._worker.busy:
            return "The model is busy with another job: wait for it to finish."
        return None

    def train(self, fine_tune: bool | None = None) -> bool:
        """Read the project, extract features and train a head, on the worker; False (with a
        message) if it cannot start. fine_tune: None for the training panel's check box."""
        if self.training.is_busy():
            return False
        problem = self._training_problem()
        if problem:
            self.show_message(problem, "error")
            return False
        if self.writer.pending:
            self._train_when_written = True
            self._fine_tune_when_written = fine_tune
            self.show_message(f"Writing {plural(self.writer.pending, 'image')} first…")
            return True
        self.live.stop_capture()
        self.show_message("")
        self.training.start(self.classes.project.folder, self.classes.counts(), fine_tune)
        return True

    def _on_trained(self, result: TeachResult) -> None:
        self.classes.set_accuracy(per_class_accuracy(result))
        if self.mistakes is not None:
            self.mistakes.show_result(result)

    # ---- the mistakes window ---------------------------------------------------------------------
    def open_mistakes(self) -> MistakesWindow | None:
        """Show the last training's cross-validated predictions (the window is made once)."""
        result = self.training.result
        if result is None or result.cv is None:
            self.show_message(
                "Train first (with at least two photos a class): the mistakes are the cross-validation's.", "error"
            )
            return None
        if self.mistakes is None:
            self.mistakes = MistakesWindow(self)
            self.mistakes.move_requested.connect(self.move_photos)
            self.mistakes.remove_requested.connect(self.remove_photos)
        self.mistakes.show_result(result)
        self.mistakes.show()
        self.mistakes.raise_()
        return self.mistakes

    def move_photos(self, paths, source: str, target: str) -> bool:
        """Move photos to another class (from the mistakes window) and train again."""
        files = [Path(p) for p in paths]
        return self._edit_photos(
            "move photos",
            lambda project: project.move_files(source, target, files),
            f"Moved {plural(len(files), 'photo')} from '{source}' to '{target}'",
        )

    def remove_photos(self, paths, name: str) -> bool:
        """Delete photos from the project (from the mistakes window) and train again."""
        files = [Path(p) for p in paths]
        return self._edit_photos(
            "remove photos",
            lambda project: project.remove_files(name, files),
            f"Removed {plural(len(files), 'photo')} from '{name}'",
        )

    def _edit_photos(self, what: str, change, done: str) -> bool:
        """change(project) on the files, then the lists again and, when it went through, a new
        training; False (with the one message) when it could not start or failed."""
        if self._blocked(what) or self.classes.project is None:
            return False
        try:
            change(self.classes.project)
        except ProjectError as exc:  # those done before it stay done: the lists show them
            self._show_project_again()
            self.show_message(str(exc), "error")
            return False
        self._show_project_again()
        if self.train(fine_tune=False):  # the head only, on the cached features: seconds
            self.show_message(f"{done}; training again…")
            if self.mistakes is not None:
                self.mistakes.set_busy(f"{done}; training again…")
        else:
            self._mistakes_settled()
        return True

    def _show_project_again(self) -> None:
        self.images.forget_thumbnails()
        self.classes.refresh()

    def _mistakes_settled(self) -> None:
        if self.mistakes is not None and not self.training.is_busy():
            self.mistakes.set_busy("")

    # ---- the model -------------------------------------------------------------------------------
    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        self.live.set_model_ready(ready)

    def set_base_model(self, info: LoadedModel) -> None:
        """A model was loaded: it is the live classifier again and what the next training builds on."""
        self.training.set_base_model(info)

    # ---- state -----------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        has_class = self.classes.current() is not None
        self.rename_button.setEnabled(has_class)
        self.delete_button.setEnabled(has_class)
        self.live.set_capture_allowed(has_class)
        self.save_button.setEnabled(self.classes.project is not None)

    def shutdown(self) -> None:
        self.live.shutdown()
        self.writer.shutdown()
        self.thumbnails.shutdown()
        if self.mistakes is not None:
            self.mistakes.thumbnails.shutdown()
