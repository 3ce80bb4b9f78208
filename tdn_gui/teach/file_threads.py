"""File work for the Teach view, off the GUI thread (none of it is inference).

ProjectWriter copies dropped images into a class folder and writes captured frames as PNG, on a
single thread, so writes happen in the order they were asked for and a name chosen by one cannot be
taken by another. Each file is written the engine's way (engine.files.replacing: a hidden
temporary name, flushed to the disk, renamed into place): the project (and `tdn teach`, which
skips hidden files) never sees half a file, and a failed write leaves nothing behind. ThumbnailLoader reads small
thumbnails with QImageReader's scaled decoding (cheap even for big photos) on two threads.
QImage may be used on any thread; the views turn thumbnails into pixmaps themselves.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Qt, Signal
from PySide6.QtGui import QImage, QImageReader

from ..qt_image import THUMB_SIDE, png_bytes, square_thumbnail
from ..worker.engine_api import replacing
from .project_folder import unique_path

CAMERA_FRAME = "camera frame"  # the Written.source of a captured frame (a copy names its file)


@dataclass(frozen=True)
class Written:
    """One file the writer put into (or failed to put into) a class folder."""

    class_name: str
    path: Path | None
    thumb: QImage | None
    source: str  # the dropped file, or CAMERA_FRAME
    error: str | None = None


def read_thumbnail(path: str | Path) -> QImage | None:
    """A THUMB_SIDE square thumbnail of an image file, or None if Qt cannot read it."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > 2 * THUMB_SIDE:
        reader.setScaledSize(size.scaled(2 * THUMB_SIDE, 2 * THUMB_SIDE, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return None if image.isNull() else square_thumbnail(image)


class _CopyJob(QRunnable):
    def __init__(self, writer: "ProjectWriter", class_name: str, folder: Path, source: Path):
        super().__init__()
        self._writer, self._class, self._folder, self._source = writer, class_name, folder, source

    def run(self) -> None:
        try:
            final = unique_path(self._folder, self._source.name)
            with open(self._source, "rb") as source, replacing(final) as out:
                shutil.copyfileobj(source, out)
            result = Written(self._class, final, read_thumbnail(final), str(self._source))
        except OSError as exc:
            result = Written(self._class, None, None, str(self._source), f"{self._source.name}: {exc.strerror or exc}")
        self._writer._done.emit(result)


class _FrameJob(QRunnable):
    def __init__(self, writer: "ProjectWriter", class_name: str, folder: Path, image: QImage, stem: str):
        super().__init__()
        self._writer, self._class, self._folder = writer, class_name, folder
        self._image, self._stem = image, stem

    def run(self) -> None:
        try:
            final = unique_path(self._folder, f"{self._stem}.png")
            data = png_bytes(self._image)
            with replacing(final) as out:
                out.write(data)
            result = Written(self._class, final, square_thumbnail(self._image), CAMERA_FRAME)
        except OSError as exc:
            result = Written(self._class, None, None, CAMERA_FRAME, str(exc.strerror or exc))
        self._writer._done.emit(result)


class ProjectWriter(QObject):
    """Writes into class folders on one thread; `pending` counts what is not written yet."""

    written = Signal(object)  # Written, on the GUI thread; `pending` already counts it done
    idle = Signal()  # after the `written` that brought pending to 0
    _done = Signal(object)  # from the pool thread, queued to the writer's (GUI) thread

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self.pending = 0
        self._done.connect(self._on_done)

    def copy(self, class_name: str, folder: Path, source: Path) -> None:
        self.pending += 1
        self._pool.start(_CopyJob(self, class_name, folder, source))

    def save_frame(self, class_name: str, folder: Path, image: QImage, stem: str) -> None:
        self.pending += 1
        self._pool.start(_FrameJob(self, class_name, folder, image, stem))

    def _on_done(self, result: Written) -> None:
        self.pending -= 1
        self.written.emit(result)
        if self.pending == 0:
            self.idle.emit()

    def shutdown(self) -> None:
        """Finish what was asked (each job is one file): dropping it would lose the user's images."""
        self._pool.waitForDone()


class _ThumbJob(QRunnable):
    def __init__(self, loader: "ThumbnailLoader", path: Path):
        super().__init__()
        self._loader, self._path = loader, path

    def run(self) -> None:
        self._loader.loaded.emit(self._path, read_thumbnail(self._path))


class ThumbnailLoader(QObject):
    loaded = Signal(object, object)  # Path, QImage or None (unreadable)

    def __init__(self, threads: int = 2, parent=None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._asked: set[Path] = set()

    def request(self, path: Path) -> None:
        if path not in self._asked:
            self._asked.add(path)
            self._pool.start(_ThumbJob(self, path))

    def forget(self, path: Path) -> None:
        self._asked.discard(path)

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()
