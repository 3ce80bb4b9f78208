"""darknet's `classifier valid` for a folder a user has: accuracy against labels taken from
file and folder names, with images decoded on a thread pool while the engine runs batches."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classify import Classifier
from .errors import EngineError
from .image import IMAGE_SUFFIXES

WNID = re.compile(r"n\d{8}")
BATCH = 16  # images per forward pass when their input shapes agree


@dataclass(frozen=True)
class Row:
    path: Path
    label: int
    top: list[tuple[int, str, float]]  # top-5 (index, name, prob)

    @property
    def correct1(self) -> bool:
        return self.top[0][0] == self.label

    @property
    def correct5(self) -> bool:
        return any(i == self.label for i, _, _ in self.top[:5])


@dataclass
class Validation:
    rows: list[Row] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int | None = None  # the Dask workers that computed it (None: this process)

    @property
    def images(self) -> int:
        return len(self.rows)

    @property
    def top1(self) -> float:
        return sum(r.correct1 for r in self.rows) / self.images if self.rows else 0.0

    @property
    def top5(self) -> float:
        return sum(r.correct5 for r in self.rows) / self.images if self.rows else 0.0

    def summary(self) -> dict:
        summary = {
            "images": self.images,
            "top1": self.top1,
            "top5": self.top5,
            "skipped": len(self.skipped),
            "seconds": round(self.seconds, 3),
        }
        if self.workers is not None:
            summary["workers"] = self.workers
        return summary


class Labeler:
    """Label of a file: a WordNet id starting its name or naming its folder, else its folder
    named after a class (ImageNet's and ImageFolder's habits)."""

    def __init__(self, wnids: list[str] | None, names: tuple[str, ...] | list[str] | None):
        self.by_wnid = {w: i for i, w in enumerate(wnids or [])}
        self.by_name: dict[str, int] = {}
        for i, name in enumerate(names or []):
            for key in (name.lower(), name.lower().replace(" ", "_")):
                self.by_name.setdefault(key, i)

    def __call__(self, path: Path) -> int | None:
        for text in (path.name, path.parent.name):
            match = WNID.match(text)
            if match and match.group(0) in self.by_wnid:
                return self.by_wnid[match.group(0)]
        return self.by_name.get(path.parent.name.lower())

    def why_not(self, path: Path) -> str:
        """Why `path` has no label (self(path) is None)."""
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            return "not an image file"
        for text in (path.name, path.parent.name):
            match = WNID.match(text)
            if match and not self.by_wnid:
                return f"no label: WordNet id {match.group(0)}, but no list of the classes' ids (--labels FILE)"
            if match:
                return f"no label: WordNet id {match.group(0)} is not one of the network's classes"
        return "no label: no WordNet id in its name or folder, no class folder"


def find_images(folder: Path) -> list[Path]:
    """Every regular file under folder, sorted (hidden ones aside). Non-images are kept so
    they are reported as skipped instead of silently ignored."""
    if not folder.is_dir():
        raise EngineError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def validate(
    classifier: Classifier,
    folder: Path,
    labeler: Labeler,
    limit: int | None = None,
    progress: Callable[[Validation, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    workers: int = 2,
) -> Validation:
    """Classify every labelled image under folder. progress(result_so_far, total) after each batch."""
    from .image import load_image

    start = time.perf_counter()
    result = Validation()
    labelled = _labelled(folder, labeler, limit, result)

    def decode(item):
        path, label = item
        try:
            return path, label, classifier.preprocess(load_image(path, classifier.decode_size)), None
        except EngineError as exc:
            return path, label, None, str(exc)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in _shape_batches(pool.map(decode, labelled), result):
            if cancel is not None and cancel():
                break
            inputs = np.stack([x for _, _, x in batch])
            for (path, label, _), prediction in zip(batch, classifier.classify_batch(inputs)):
                result.rows.append(Row(path, label, prediction.top(5)))
            result.seconds = time.perf_counter() - start
            if progress is not None:
                progress(result, len(labelled))
    result.seconds = time.perf_counter() - start
    return result


def validate_on_cluster(
    cluster,
    model,
    folder: Path,
    labeler: Labeler,
    limit: int | None = None,
    progress: Callable[[Validation, int], None] | None = None,
    batch: int | None = None,
) -> Validation:
    """validate on a Dask cluster (engine/cluster.py): the same rows and figures, computed by its
    workers from the paths; result.workers says how many there were."""
    from .cluster import BATCH, run_batches

    start = time.perf_counter()
    result = Validation(workers=cluster.workers)
    labelled = _labelled(folder, labeler, limit, result)
    done = 0

    def advance(images: int) -> None:
        nonlocal done
        done += images
        result.seconds = time.perf_counter() - start
        if progress is not None:
            progress(result, len(labelled))

    for answer in run_batches(cluster, model, [str(p) for p, _ in labelled], 5, batch or BATCH, advance):
        path, label = labelled[answer.index]
        if answer.error is not None:
            result.skipped.append((path, answer.error))
        else:
            result.rows.append(Row(path, label, list(answer.top)))
    result.seconds = time.perf_counter() - start
    return result


def _labelled(folder: Path, labeler: Labeler, limit: int | None, result: Validation) -> list[tuple[Path, int]]:
    """(path, label) of the labelled files under folder, at most `limit`; the others recorded as
    skipped, with the reason."""
    labelled = []
    for path in find_images(folder):
        label = labeler(path)
        if label is None:
            result.skipped.append((path, labeler.why_not(path)))
        else:
            labelled.append((path, label))
    return labelled if limit is None else labelled[:limit]


def _shape_batches(decoded: Iterator, result: Validation) -> Iterator[list]:
    """Group consecutive decoded images of one input shape into batches of up to BATCH;
    record unreadable ones as skipped."""
    batch: list = []
    for path, label, x, error in decoded:
        if error is not None:
            result.skipped.append((path, error))
            continue
        if batch and (x.shape != batch[0][2].shape or len(batch) == BATCH):
            yield batch
            batch = []
        batch.append((path, label, x))
    if batch:
        yield batch


def write_csv(result: Validation, path: Path) -> None:
    """One row per image: file, label, top-5 indices, names, probabilities, correct@1, correct@5."""
    import csv
    import io

    from .files import write_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "label", "top5_indices", "top5_names", "top5_probs", "correct1", "correct5"])
    for row in result.rows:
        writer.writerow(
            [
                str(row.path),
                row.label,
                " ".join(str(i) for i, _, _ in row.top),
                "|".join(n for _, n, _ in row.top),
                " ".join(f"{p:.6f}" for _, _, p in row.top),
                int(row.correct1),
                int(row.correct5),
            ]
        )
    write_atomic(Path(path), buffer.getvalue().encode("utf-8"))
