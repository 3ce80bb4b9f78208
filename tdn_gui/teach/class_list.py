"""The Teach view's project and its classes: New / Open / Save project as…, and Add, Rename,
Delete in the class list (whose rows show each class's image count and accuracy).

ClassList keeps the Project (project_folder.py) and the per-class accuracy of the last training,
and fills the ClassTree and the project line from them. It asks before discarding an untitled
project, refuses changes while files are being written or training reads the project (`blocked`,
which the view answers), and says what went wrong through the view's banner (`report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLabel, QMessageBox, QWidget

from .project_folder import Project, ProjectError, TeachClass
from .widgets import ClassTree, plural

Report = Callable[[str, str], None]  # (text, level): the view's message banner
Blocked = Callable[[str], bool]  # (what the user wants to do) -> True, with a message, if it must wait


class ClassList(QObject):
    project_changed = Signal(str)  # the project folder ("" for none), for the settings
    project_replaced = Signal()  # another project (or none): capture stops, thumbnails are stale
    files_moved = Signal()  # the project or a class moved: thumbnails are stale
    classes_changed = Signal()  # the list was refilled: show the selected class again

    def __init__(self, tree: ClassTree, project_label: QLabel, report: Report, blocked: Blocked, parent: QWidget):
        super().__init__(parent)
        self._tree = tree
        self._project_label = project_label
        self._report = report
        self._blocked = blocked
        self._dialog_parent = parent
        self.project: Project | None = None
        self.accuracy: dict[str, float] = {}  # per class, from the last training
        tree.rename_requested.connect(self._on_rename_in_place)

    # ---- reading -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return self.project.names() if self.project else []

    def counts(self) -> dict[str, int]:
        return {c.name: len(c.files) for c in self.project.classes} if self.project else {}

    def current(self) -> str | None:
        return self._tree.current_class()

    def get(self, name: str) -> TeachClass:
        """The class (ProjectError when there is no such class, or no project)."""
        if self.project is None:
            raise ProjectError(f"There is no class '{name}'.")
        return self.project.get(name)

    def select(self, name: str) -> None:
        item = self._tree.item_for(name)
        if item is not None:
            self._tree.setCurrentItem(item)

    # ---- the project ---------------------------------------------------------------------------
    def restore(self, folder: str) -> None:
        """Reopen the project remembered from the last run, if it is still there."""
        if folder and Path(folder).is_dir():
            try:
                self._set_project(Project.open(folder))
            except ProjectError:
                pass

    def ensure_project(self) -> Project:
        if self.project is None:
            self._set_project(Project.new_untitled())
        return self.project

    def _set_project(self, project: Project | None) -> None:
        self.project = project
        self.accuracy = {}
        self.project_replaced.emit()
        self.refresh()
        self.project_changed.emit(str(project.folder) if project else "")

    def new_project(self) -> None:
        if self._blocked("start a new project"):
            return
        if self.project is not None:
            self.project.discard()
        self._set_project(None)
        self._report("New project: add classes, then drop images on them or capture from the camera.", "info")

    def open_project(self, folder: str) -> bool:
        if self._blocked("open another project"):
            return False
        try:
            project = Project.open(folder)
        except ProjectError as exc:
            self._report(str(exc), "error")
            return False
        if self.project is not None and self.project.folder != project.folder:
            self.project.discard()
        self._set_project(project)
        counts = ", ".join(f"{c.name} ({len(c.files)})" for c in project.classes) or "no classes yet"
        self._report(f"Opened {project.folder}: {counts}.", "info")
        return True

    def save_project_as(self, folder: str) -> bool:
        if self.project is None:
            self._report("There is nothing to save yet: add a class first.", "error")
            return False
        if self._blocked("save the project"):
            return False
        try:
            self.project.save_as(folder)
        except ProjectError as exc:
            self._report(str(exc), "error")
            return False
        self.files_moved.emit()
        self.refresh()
        self.project_changed.emit(str(self.project.folder))
        self._report(f"Saved to {self.project.folder}; changes go there from now on.", "info")
        return True

    def _may_drop_project(self) -> bool:
        """True when the current project may be replaced (asks before losing an untitled one)."""
        p = self.project
        if p is None or not p.untitled or p.image_count() == 0:
            return True
        answer = QMessageBox.question(
            self._dialog_parent,
            "Discard the untitled project?",
            f"The untitled project has {plural(p.image_count(), 'image')} in "
            f"{plural(len(p.classes), 'class')}. Discard it? (Save project as… keeps it.)",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    def ask_new_project(self) -> None:
        if self._may_drop_project():
            self.new_project()

    def ask_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self._dialog_parent,
            "Open a teach project (a folder with one subfolder of images per class)",
            str(self.project.folder.parent) if self.project and not self.project.untitled else "",
        )
        if folder and self._may_drop_project():
            self.open_project(folder)

    def ask_save_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self._dialog_parent, "Save the teach project into a new, empty folder"
        )
        if folder:
            self.save_project_as(folder)

    # ---- classes -------------------------------------------------------------------------------
    def add_class(self, name: str) -> bool:
        try:
            added = self.ensure_project().add_class(name)
        except ProjectError as exc:
            self._report(str(exc), "error")
            return False
        self.refresh(select=added.name)
        self.project_changed.emit(str(self.project.folder))
        return True

    def rename_class(self, old: str, new: str) -> bool:
        if self.project is None or self._blocked("rename it"):
            self.refresh()
            return False
        try:
            renamed = self.project.rename_class(old, new)
        except ProjectError as exc:
            self._report(str(exc), "error")
            self.refresh()
            return False
        if old in self.accuracy:
            self.accuracy[renamed.name] = self.accuracy.pop(old)
        self.files_moved.emit()
        self.refresh(select=renamed.name)
        return True

    def delete_class(self, name: str) -> bool:
        if self.project is None or self._blocked("delete it"):
            return False
        try:
            self.project.delete_class(name)
        except ProjectError as exc:
            self._report(str(exc), "error")
            return False
        self.accuracy.pop(name, None)
        self.refresh()
        return True

    def set_accuracy(self, accuracy: dict[str, float]) -> None:
        self.accuracy = accuracy
        self.refresh()

    def ask_add_class(self) -> None:
        name, ok = QInputDialog.getText(
            self._dialog_parent, "Add a class", "Class name (it names a folder in the project):"
        )
        if ok and name.strip():
            self.add_class(name)

    def ask_rename_class(self) -> None:
        old = self.current()
        if old is None:
            return
        new, ok = QInputDialog.getText(self._dialog_parent, "Rename class", f"New name for '{old}':", text=old)
        if ok:
            self.rename_class(old, new)

    def _on_rename_in_place(self, old: str, new: str) -> None:
        # Out of the item's own signal: rebuilding the tree inside it would pull the item away.
        QTimer.singleShot(0, lambda: self.rename_class(old, new))

    def ask_delete_class(self) -> None:
        name = self.current()
        if name is None:
            return
        count = len(self.project.get(name).files)
        answer = QMessageBox.question(
            self._dialog_parent,
            "Delete class",
            f"Delete class '{name}' and its {plural(count, 'image')} "
            f"({self.project.class_folder(name)}) from the disk?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_class(name)

    # ---- showing -------------------------------------------------------------------------------
    def refresh(self, select: str | None = None) -> None:
        """Fill the tree and the project line again, keeping (or choosing) the selected class."""
        current = select or self._tree.current_class()
        rows = [(c.name, len(c.files), self.accuracy.get(c.name)) for c in self.project.classes] if self.project else []
        self._tree.set_classes(rows, current)
        if self._tree.currentItem() is None and self._tree.topLevelItemCount():
            self._tree.setCurrentItem(self._tree.topLevelItem(0))
        if self.project is None:
            self._project_label.setText("Project: none yet. Add a class to start one.")
        elif self.project.untitled:
            self._project_label.setText("Project: untitled (in a temporary folder until you save it)")
        else:
            self._project_label.setText(f"Project: {self.project.folder}")
        self._project_label.setToolTip(str(self.project.folder) if self.project else "")
        self.classes_changed.emit()

    def update_count(self, name: str) -> None:
        item = self._tree.item_for(name)
        if item is not None and self.project is not None:
            item.setText(ClassTree.COUNT, str(len(self.project.get(name).files)))
