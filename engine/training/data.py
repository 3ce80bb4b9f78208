"""What a training run learns from: image paths, each with its class, and the class names.

Two ways to say it, as darknet's classifier training reads it:
- a folder with one subfolder per class: the sorted subfolder names are the classes, in order;
- a darknet `.data` file: `train=` a list of image paths (one a line), `labels=` the class names
  (one a line, in label order), optionally `classes=` and `valid=`. A path's class is the one
  label that appears in the path as written in the list (darknet's fill_truth); a path with no
  label or with two is an error naming it, before any work.
Relative paths in a `.data` file or a list are read from the current folder, as darknet does,
or else from the folder of the file that names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..image import IMAGE_SUFFIXES
from .trainer import TrainingError


@dataclass(frozen=True)
class Dataset:
    paths: tuple[str, ...]
    labels: np.ndarray  # (images,) class index of each path
    names: tuple[str, ...]  # class names, in label order
    source: str  # the folder or file it came from, for messages

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.names))


def read_dataset(source: str | Path, key: str = "train", names: tuple[str, ...] | None = None) -> Dataset:
    """The dataset of a class folder or a `.data` file (its `key=` list: train or valid).
    names: the training run's classes, which a validation folder's subfolders must be among."""
    path = Path(source)
    if path.is_dir():
        return _folder(path, names)
    if not path.exists():
        raise TrainingError(f"{source}: no such folder or .data file")
    return _data_file(path, key, names)


def _images_in(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _folder(folder: Path, names: tuple[str, ...] | None) -> Dataset:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise TrainingError(f"{folder}: no class folders in it (one subfolder of images per class)")
    if names is not None:
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise TrainingError(
                f"{folder / unknown[0]}: '{unknown[0]}' is not one of the trained classes ({', '.join(names)})"
            )
    order = names if names is not None else tuple(classes)
    paths, labels = [], []
    for name in classes:
        found = _images_in(folder / name)
        if not found:
            raise TrainingError(
                f"{folder / name}: the class folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        paths += found
        labels += [order.index(name)] * len(found)
    return Dataset(tuple(paths), np.array(labels, np.int64), tuple(order), str(folder))


def _resolve(raw: str, beside: Path) -> Path:
    """darknet reads relative paths from the current folder; a file made elsewhere names them
    from its own folder, which is tried second."""
    path = Path(raw)
    if path.is_absolute() or path.exists():
        return path
    other = beside / path
    return other if other.exists() else path


def read_options(path: Path) -> dict[str, tuple[str, int]]:
    """A darknet options file (key=value lines; '#' comments): {key: (value, line)}."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    options = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise TrainingError(f"{path}:{number}: expected key=value, got '{line}'")
        options[key.strip()] = (value.strip(), number)
    return options


def _lines(path: Path, what: str) -> list[str]:
    try:
        return [
            line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()
        ]
    except OSError as exc:
        raise TrainingError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


def _data_file(path: Path, key: str, names: tuple[str, ...] | None) -> Dataset:
    options = read_options(path)
    if "labels" not in options and names is None:
        raise TrainingError(f"{path}: needs labels= (a file with one class name a line)")
    if names is None:
        labels_file = _resolve(options["labels"][0], path.parent)
        names = tuple(_lines(labels_file, "labels"))
        if not names:
            raise TrainingError(f"{labels_file}: the labels file names no class")
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise TrainingError(f"{labels_file}: the label '{twice}' is listed twice")
        if "classes" in options:
            value, line = options["classes"]
            if value != str(len(names)):
                raise TrainingError(f"{path}:{line}: classes={value} but {labels_file} lists {len(names)} labels")
    if key not in options:
        raise TrainingError(f"{path}: needs {key}= (a file listing the images, one path a line)")
    list_file = _resolve(options[key][0], path.parent)
    paths, labels = [], []
    for number, raw in enumerate(_lines(list_file, "image list"), 1):
        found = [i for i, name in enumerate(names) if name in raw]
        if not found:
            raise TrainingError(
                f"{list_file}:{number}: {raw} names no label (each path must contain one of: {', '.join(names)})"
            )
        if len(found) > 1:
            both = " and ".join(f"'{names[i]}'" for i in found[:2])
            raise TrainingError(f"{list_file}:{number}: {raw} contains two labels, {both}: which class is it?")
        paths.append(str(_resolve(raw, list_file.parent)))
        labels.append(found[0])
    if not paths:
        raise TrainingError(f"{list_file}: the image list is empty")
    return Dataset(tuple(paths), np.array(labels, np.int64), names, str(path))
