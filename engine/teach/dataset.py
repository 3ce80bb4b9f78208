"""The dataset: one subfolder of images per class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import TeachError


@dataclass(frozen=True)
class Dataset:
    classes: tuple[str, ...]  # class k's name; output k of the head
    images: tuple[tuple[Path, int], ...]  # (file, class index)
    skipped: tuple[tuple[Path, str], ...] = ()  # files found but not used, with why

    def counts(self) -> list[int]:
        counts = [0] * len(self.classes)
        for _, label in self.images:
            counts[label] += 1
        return counts


def scan_dataset(folder: str | Path) -> Dataset:
    """One subfolder per class, named after the class; every non-hidden file below it is an
    example (unreadable ones are skipped and counted later). Loose files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TeachError(
            f"{folder} {'is not a folder' if folder.exists() else 'does not exist'}: "
            "give a folder with one subfolder of images per class"
        )
    classes, images, skipped = [], [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            classes.append(entry.name)
            images.extend((p, len(classes) - 1) for p in class_files(entry))
        else:
            skipped.append((entry, f"{entry}: not in a class folder"))
    dataset = Dataset(tuple(classes), tuple(images), tuple(skipped))
    check_dataset(dataset, folder)
    return dataset


def class_files(folder: str | Path) -> list[Path]:
    """A class folder's examples: every file below it, sorted, but for hidden ones (a name, or
    a folder on the way, starting with a dot)."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def check_dataset(dataset: Dataset, where: str | Path = "the dataset") -> None:
    classes = dataset.classes
    if not classes:
        raise TeachError(
            f"{where} has no class subfolders: make one subfolder per class, named after the class, holding its images"
        )
    if len(classes) == 1:
        raise TeachError(f"{where} has only one class ('{classes[0]}'): teaching needs at least two")
    if len(set(classes)) != len(classes):
        raise TeachError(f"{where}: class names must be unique")
    for name in classes:
        if not name.strip() or any(ch in name for ch in "\r\n"):
            raise TeachError(f"{where}: class name {name!r} cannot be written one a line")
    for name, count in zip(classes, dataset.counts()):
        if count == 0:
            raise TeachError(
                f"class '{name}' has no images ({Path(where) / name})"
                if isinstance(where, Path)
                else f"class '{name}' has no images"
            )
