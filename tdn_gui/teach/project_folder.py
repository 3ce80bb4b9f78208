"""A teach project: a folder laid out exactly as `tdn teach FOLDER` reads it.

One subfolder per class, named after the class, holding its images; nothing else. The folder *is*
the project: adding a class makes its subfolder, renaming renames it, dropped images are copied in
and captured frames are written there as PNG files, at once. A new project starts in an "untitled"
temporary folder; "Save as" moves (or copies) it to a folder the user chooses, and it goes on
living there. So saving and reopening round-trip by construction, and the CLI can train on it.

A class folder's files are listed by the engine's own rule (teach.class_files: every non-hidden
file below it, sorted; hidden files, such as half-written ones, are not examples), so the view
counts what `tdn teach` will read; scan_dataset itself refuses projects still being built (fewer
than two classes, an empty class). No Qt here; the Teach view owns one Project on the GUI thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..worker.engine_api import class_files

UNTITLED_PREFIX = "tdn-teach-untitled-"
PARTIAL_PREFIX = "."  # hidden: scan_dataset and class_files ignore it


class ProjectError(Exception):
    """Something the user asked for that cannot be done; str() is one line for a message."""


@dataclass
class TeachClass:
    name: str
    files: list[Path] = field(default_factory=list)


def check_class_name(name: str) -> str:
    """The name as it will be used (surrounding spaces dropped), or ProjectError saying why not."""
    name = name.strip()
    if not name:
        raise ProjectError("A class needs a name.")
    if name in (".", "..") or name.startswith("."):
        raise ProjectError(f"'{name}' cannot be a class name: it may not start with a dot.")
    bad = [ch for ch in '/\\:*?"<>|\0\r\n\t' if ch in name]
    if bad:
        raise ProjectError(
            f"'{name}' cannot be a class name: it is a folder name, so no {' '.join(repr(ch) for ch in bad)}."
        )
    return name


def unique_path(folder: Path, file_name: str) -> Path:
    """folder/file_name, or folder/stem-2.ext, -3, ... if taken."""
    candidate = folder / file_name
    stem, suffix = Path(file_name).stem, Path(file_name).suffix
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


class Project:
    def __init__(self, folder: str | Path, untitled: bool = False):
        self.folder = Path(folder)
        self.untitled = untitled
        self.classes: list[TeachClass] = []
        self.reload()

    @classmethod
    def new_untitled(cls, parent: str | Path | None = None) -> "Project":
        return cls(tempfile.mkdtemp(prefix=UNTITLED_PREFIX, dir=parent), untitled=True)

    @classmethod
    def open(cls, folder: str | Path) -> "Project":
        folder = Path(folder)
        if not folder.is_dir():
            raise ProjectError(
                f"{folder} is not a folder: a teach project is a folder with one subfolder of images per class."
            )
        return cls(folder, untitled=folder.name.startswith(UNTITLED_PREFIX))

    @property
    def title(self) -> str:
        return "untitled" if self.untitled else self.folder.name

    def reload(self) -> None:
        """Read the classes and their files from disk."""
        try:
            entries = sorted(self.folder.iterdir())
        except OSError as exc:
            raise ProjectError(f"Cannot read {self.folder}: {exc.strerror or exc}") from None
        self.classes = [
            TeachClass(e.name, class_files(e)) for e in entries if e.is_dir() and not e.name.startswith(".")
        ]

    # ---- classes -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def get(self, name: str) -> TeachClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise ProjectError(f"There is no class '{name}'.")

    def class_folder(self, name: str) -> Path:
        return self.folder / name

    def image_count(self) -> int:
        return sum(len(c.files) for c in self.classes)

    def _check_free(self, name: str, ignore: str | None = None) -> None:
        for c in self.classes:
            if c.name != ignore and c.name.casefold() == name.casefold():
                raise ProjectError(f"There is already a class '{c.name}'.")

    def add_class(self, name: str) -> TeachClass:
        name = check_class_name(name)
        self._check_free(name)
        try:
            self.class_folder(name).mkdir()
        except FileExistsError:
            raise ProjectError(f"{self.class_folder(name)} is in the way (a file of that name).") from None
        except OSError as exc:
            raise ProjectError(f"Cannot make {self.class_folder(name)}: {exc.strerror or exc}") from None
        added = TeachClass(name)
        self.classes.append(added)
        self.classes.sort(key=lambda c: c.name)
        return added

    def rename_class(self, old: str, new: str) -> TeachClass:
        item = self.get(old)
        new = check_class_name(new)
        if new == old:
            return item
        self._check_free(new, ignore=old)
        try:
            os.rename(self.class_folder(old), self.class_folder(new))
        except OSError as exc:
            raise ProjectError(f"Cannot rename {self.class_folder(old)}: {exc.strerror or exc}") from None
        item.name = new
        item.files = [self.class_folder(new) / f.relative_to(self.class_folder(old)) for f in item.files]
        self.classes.sort(key=lambda c: c.name)
        return item

    def delete_class(self, name: str) -> None:
        item = self.get(name)
        try:
            shutil.rmtree(self.class_folder(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ProjectError(f"Cannot delete {self.class_folder(name)}: {exc.strerror or exc}") from None
        self.classes.remove(item)

    def remove_files(self, name: str, files) -> None:
        item = self.get(name)
        for f in map(Path, files):
            try:
                f.unlink(missing_ok=True)
            except OSError as exc:
                raise ProjectError(f"Cannot delete {f}: {exc.strerror or exc}") from None
            if f in item.files:
                item.files.remove(f)

    def move_files(self, source: str, target: str, files) -> list[Path]:
        """Move files from class `source`'s folder into class `target`'s (renamed -2, -3... where
        the name is taken there). Returns where each went; one that cannot move stops the rest
        with a ProjectError, the ones moved before it staying moved."""
        origin, destination = self.get(source), self.get(target)
        moved = []
        for f in map(Path, files):
            if f not in origin.files:
                raise ProjectError(f"{f.name} is not in class '{source}' any more")
            new = unique_path(self.class_folder(target), f.name)
            try:
                os.replace(f, new)
            except OSError as exc:
                raise ProjectError(f"Cannot move {f} to {self.class_folder(target)}: {exc.strerror or exc}") from None
            origin.files.remove(f)
            destination.files.append(new)
            moved.append(new)
        destination.files.sort()
        return moved

    def file_added(self, name: str, path: Path) -> None:
        """Record a file written into a class folder (by the Teach view's writer thread)."""
        item = self.get(name)
        if path not in item.files:
            item.files.append(path)
            item.files.sort()

    # ---- the folder ----------------------------------------------------------------------------
    def save_as(self, destination: str | Path) -> None:
        """Put the project in `destination` (new, or an empty folder) and go on there. It is copied
        to a hidden folder beside it first and renamed into place: a failure leaves nothing behind.
        An untitled project's temporary folder is removed afterwards."""
        dest = Path(destination).absolute()
        if dest == self.folder.absolute():
            return
        if dest.exists():
            if not dest.is_dir():
                raise ProjectError(f"Cannot save to {dest}: it is a file.")
            if any(dest.iterdir()):
                raise ProjectError(f"Cannot save to {dest}: it is not empty. Choose a new or empty folder.")
        if self.folder.absolute() in dest.parents:
            raise ProjectError(f"Cannot save the project inside itself ({dest}).")
        parent = dest.parent
        if not parent.is_dir():
            raise ProjectError(f"Cannot save to {dest}: {parent} is not a folder.")
        staging = None
        try:
            staging = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{dest.name}.", suffix=".partial", dir=parent))
            for c in self.classes:
                shutil.copytree(self.class_folder(c.name), staging / c.name, ignore=shutil.ignore_patterns(".*"))
            if dest.exists():
                dest.rmdir()
            os.rename(staging, dest)
        except OSError as exc:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise ProjectError(f"Cannot save to {dest}: {exc.strerror or exc}") from None
        old, was_untitled = self.folder, self.untitled
        self.folder, self.untitled = dest, False
        self.reload()
        if was_untitled:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Remove an untitled project's temporary folder (a saved project is the user's: kept)."""
        if self.untitled:
            shutil.rmtree(self.folder, ignore_errors=True)
