"""The Teach view's images: the selected class's thumbnails, and images arriving in a class.

Dropped files and folders are copied into a class folder, and captured frames written there, by
the ProjectWriter's thread (file_threads.py); ClassImages records each file the writer reports,
adds its thumbnail when its class is on show, and, once the writer is idle, sums the drop up in
one message ("Added 7 images. Not added: …"). Thumbnails are read on the ThumbnailLoader's
threads and kept by file while the project stays the same.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidgetItem, QMessageBox, QStyle, QWidget

from ..qt_image import THUMB_SIDE
from ..views.image_view import collect_images
from ..worker.engine_api import IMAGE_SUFFIXES
from .class_list import Blocked, ClassList, Report
from .file_threads import CAMERA_FRAME, ProjectWriter, ThumbnailLoader, Written
from .project_folder import ProjectError
from .widgets import ThumbnailStrip, plural

NOT_ADDED_SHOWN = 5  # failures named in the message after a drop; the rest are counted


class ClassImages(QObject):
    def __init__(
        self,
        classes: ClassList,
        strip: ThumbnailStrip,
        strip_label: QLabel,
        writer: ProjectWriter,
        thumbnails: ThumbnailLoader,
        report: Report,
        blocked: Blocked,
        parent: QWidget,
    ):
        super().__init__(parent)
        self._classes = classes
        self._strip = strip
        self._strip_label = strip_label
        self._writer = writer
        self._thumbnails = thumbnails
        self._report = report
        self._blocked = blocked
        self._dialog_parent = parent
        self._drop_added = 0
        self._drop_failed: list[str] = []
        self._thumbs: dict[Path, QImage | None] = {}  # by file; None: Qt cannot read it
        self._strip_items: dict[str, QListWidgetItem] = {}  # the strip's items by file
        writer.written.connect(self._on_written)
        writer.idle.connect(self._on_writer_idle)
        thumbnails.loaded.connect(self._on_thumbnail)
        strip.files_dropped.connect(lambda paths: self.drop_paths(classes.current(), paths))

    # ---- the strip -----------------------------------------------------------------------------
    def show_class(self) -> None:
        """Fill the strip with the selected class's thumbnails."""
        name = self._classes.current()
        self._strip.clear()
        self._strip_items.clear()
        project = self._classes.project
        if name is None or project is None:
            self._strip_label.setText("Add a class, then drop images or folders on it (or here).")
            return
        files = project.get(name).files
        self._set_strip_label(name, len(files))
        for path in files:
            self._add_thumbnail(path)

    def forget_thumbnails(self) -> None:
        self._thumbs.clear()

    def strip_paths(self) -> list[str]:
        return [self._strip.item(r).data(Qt.ItemDataRole.UserRole) for r in range(self._strip.count())]

    def _set_strip_label(self, name: str, count: int) -> None:
        self._strip_label.setText(
            f"<b>{name}</b>: {plural(count, 'image')}. Drop images or folders "
            "here or on a class; Delete removes the selected ones."
        )

    def _add_thumbnail(self, path: Path) -> None:
        item = QListWidgetItem()
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(path.name)
        if path in self._thumbs:
            item.setIcon(self._icon(self._thumbs[path]))
        else:
            item.setIcon(self._placeholder_icon())
            self._thumbnails.request(path)
        self._strip.addItem(item)
        self._strip_items[str(path)] = item

    def _on_thumbnail(self, path: Path, thumb: QImage | None) -> None:
        self._thumbs[path] = thumb
        item = self._strip_items.get(str(path))
        if item is not None:
            item.setIcon(self._icon(thumb))

    def _icon(self, thumb: QImage | None) -> QIcon:
        if thumb is None:
            return self._dialog_parent.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        icon = QIcon()
        pixmap = QPixmap.fromImage(thumb)
        for mode in (QIcon.Mode.Normal, QIcon.Mode.Selected):  # no selection tint: the frame shows it
            icon.addPixmap(pixmap, mode)
        return icon

    @staticmethod
    def _placeholder_icon() -> QIcon:
        pm = QPixmap(THUMB_SIDE, THUMB_SIDE)
        pm.fill(Qt.GlobalColor.darkGray)
        return QIcon(pm)

    # ---- removing ------------------------------------------------------------------------------
    def remove_images(self, paths) -> None:
        name = self._classes.current()
        if name is None or self._blocked("remove images"):
            return
        try:
            self._classes.project.remove_files(name, [Path(p) for p in paths])
        except ProjectError as exc:
            self._report(str(exc), "error")
        for p in paths:
            self._thumbnails.forget(Path(p))
        self._classes.refresh()

    def ask_remove_images(self) -> None:
        paths = [i.data(Qt.ItemDataRole.UserRole) for i in self._strip.selectedItems()]
        if not paths:
            return
        answer = QMessageBox.question(
            self._dialog_parent,
            "Remove images",
            f"Delete {plural(len(paths), 'image')} from the project folder?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_images(paths)

    # ---- adding --------------------------------------------------------------------------------
    def drop_paths(self, name: str | None, paths) -> int:
        """Copy images into class `name`; with no class, each dropped folder becomes a class of
        its own (named after it) and loose files go to the selected class. Returns files queued."""
        paths = [Path(p) for p in paths]
        if name is not None:
            return self.add_images(name, paths)
        folders = [p for p in paths if p.is_dir()]
        files = [p for p in paths if not p.is_dir()]
        queued = 0
        for folder in folders:
            existing = {n.casefold(): n for n in self._classes.names()}.get(folder.name.casefold())
            if existing is None and not self._classes.add_class(folder.name):
                continue
            queued += self.add_images(existing or folder.name, [folder])
        if files:
            current = self._classes.current()
            if current is None:
                self._report("Add a class first, then drop images on it.", "error")
            else:
                queued += self.add_images(current, files)
        return queued

    def add_images(self, name: str, paths) -> int:
        """Copy image files (and the images in folders) into class `name`, off the GUI thread."""
        project = self._classes.ensure_project()
        try:
            project.get(name)
        except ProjectError as exc:
            self._report(str(exc), "error")
            return 0
        found = collect_images(paths)
        images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        not_images = [p.name for p in found if p.suffix.lower() not in IMAGE_SUFFIXES]
        if self._writer.pending == 0:  # a new batch: the message on idle counts from here
            self._drop_added, self._drop_failed = 0, []
        self._drop_failed += [f"{n} (not an image)" for n in not_images]
        folder = project.class_folder(name)
        for path in images:
            self._writer.copy(name, folder, path)
        if not images:
            self._report(
                f"No images there for '{name}' (looked for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ").", "error"
            )
        else:
            self._report(f"Adding {plural(len(images), 'image')} to '{name}'…", "info")
        self._classes.select(name)
        return len(images)

    def _on_written(self, w: Written) -> None:
        project = self._classes.project
        if project is None:
            return
        if w.error is None:
            try:
                project.file_added(w.class_name, w.path)
            except ProjectError:
                return  # the class went away (its folder with it)
            if w.thumb is not None:
                self._thumbs[w.path] = w.thumb
            if self._classes.current() == w.class_name:
                self._add_thumbnail(w.path)
                self._set_strip_label(w.class_name, len(project.get(w.class_name).files))
            self._classes.update_count(w.class_name)
        if w.source != CAMERA_FRAME:
            if w.error is None:
                self._drop_added += 1
            else:
                self._drop_failed.append(w.error)
        elif w.error is not None:
            self._report(f"A captured frame could not be saved: {w.error}", "error")

    def _on_writer_idle(self) -> None:
        if not (self._drop_added or self._drop_failed):
            return
        text = f"Added {plural(self._drop_added, 'image')}."
        failed = self._drop_failed
        if failed:
            more = len(failed) - NOT_ADDED_SHOWN
            text += " Not added: " + "; ".join(failed[:NOT_ADDED_SHOWN]) + (f" and {more} more" if more > 0 else "")
            text += "."
        self._report(text, "warning" if failed else "info")
        self._drop_added, self._drop_failed = 0, []
