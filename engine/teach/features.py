"""Layer L's pooled output for every image and augmentation, with a cache by content hash."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..image import RESIZE_MODES, ImageError, load_image
from ..files import write_atomic
from .backbone import Backbone
from .dataset import Dataset, check_dataset
from .errors import Cancelled, TeachError, stop_check

BATCH = 8  # prepared images of one shape per forward pass
CROP = 0.8  # a corner crop keeps this fraction of each side
# The image prepared by another resize mode: a model taught on photos by one mode and used on
# camera frames prepared by another (the GUI's default pair, min and letterbox) sees both.
RESIZE_VARIANTS = tuple(f"resize-{mode}" for mode in RESIZE_MODES)
AUGMENTATIONS = ("flip", "crop-tl", "crop-tr", "crop-bl", "crop-br") + RESIZE_VARIANTS  # mirror, 4 corners


class FeatureCache:
    """Pooled features by (backbone identity, sha256 of the file's bytes, augmentation): in memory,
    and in `folder` when given (one small .npy each, written atomically). Keys are content hashes,
    so an entry can never be stale; a damaged file is a miss; a cache that cannot be written is
    only memory."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else None
        self._memory: dict[tuple[str, str, str], np.ndarray] = {}

    def _file(self, key: tuple[str, str, str]) -> Path:
        identity, image, variant = key
        return self.folder / identity[:32] / f"{image}.{variant}.npy"

    def get(self, key: tuple[str, str, str], channels: int) -> np.ndarray | None:
        hit = self._memory.get(key)
        if hit is None and self.folder is not None:
            try:
                hit = np.load(self._file(key), allow_pickle=False)
            except (OSError, ValueError, EOFError):
                return None
            if hit.shape != (channels,) or hit.dtype != np.float32:
                return None
            self._memory[key] = hit
        return hit

    def put(self, key: tuple[str, str, str], vector: np.ndarray) -> None:
        self._memory[key] = vector
        if self.folder is None:
            return
        buffer = io.BytesIO()
        np.save(buffer, vector)
        path = self._file(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, buffer.getvalue())
        except OSError:
            pass


def user_feature_cache() -> FeatureCache:
    """The per-user feature cache that `tdn teach` and the app share: features computed once
    serve both."""
    from ..registry import cache_dir

    return FeatureCache(cache_dir() / "features")


def variant_resize(variant: str) -> str | None:
    """The resize mode a variant asks for; None: the backbone's own."""
    return variant.removeprefix("resize-") if variant in RESIZE_VARIANTS else None


def augment_image(image: np.ndarray, variant: str) -> np.ndarray:
    """'original', 'flip' (horizontal mirror) or 'crop-tl|tr|bl|br' (a corner, CROP of each side);
    a 'resize-MODE' variant is the image itself, prepared by MODE (see variant_resize)."""
    if variant == "original" or variant in RESIZE_VARIANTS:
        return image
    if variant == "flip":
        return np.ascontiguousarray(image[:, ::-1])
    h, w = image.shape[:2]
    ch, cw = max(1, round(h * CROP)), max(1, round(w * CROP))
    top = 0 if variant[5] == "t" else h - ch
    left = 0 if variant[6] == "l" else w - cw
    return np.ascontiguousarray(image[top : top + ch, left : left + cw])


@dataclass(frozen=True)
class Features:
    """Layer L's pooled output for every readable image and each of its augmentations."""

    backbone: Backbone
    classes: tuple[str, ...]
    variants: tuple[str, ...]  # "original" first, then the augmentations
    paths: tuple[Path, ...]  # the readable images
    image_labels: np.ndarray  # (images,) class of each
    vectors: np.ndarray  # (rows, c) float32
    row_image: np.ndarray  # (rows,) index into paths
    row_variant: np.ndarray  # (rows,) index into variants; 0 is the image itself
    skipped: tuple[tuple[Path, str], ...]
    computed: int  # forward passes run
    cached: int  # vectors found in the cache
    seconds: float


def extract_features(
    backbone: Backbone,
    dataset: Dataset,
    augment: Sequence[str] = ("flip",),
    cache: FeatureCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> Features:
    """Pooled features of every image (and augmentation). progress(done, total) as work completes."""
    check_dataset(dataset)
    for name in augment:
        if name not in AUGMENTATIONS:
            raise TeachError(f"unknown augmentation '{name}' (known: {', '.join(AUGMENTATIONS)})")
    variants = ("original",) + tuple(dict.fromkeys(augment))
    cache = FeatureCache() if cache is None else cache
    stop = stop_check(cancel)
    start = time.perf_counter()
    nv, channels = len(variants), backbone.channels
    total = len(dataset.images) * nv
    vectors = np.zeros((total, channels), np.float32)
    have = np.zeros(total, bool)
    skipped = list(dataset.skipped)
    buckets: dict[tuple, list] = {}
    count = {"done": 0, "computed": 0, "cached": 0}

    def advance(n: int, kind: str | None = None) -> None:
        count["done"] += n
        if kind:
            count[kind] += n
        if progress is not None:
            progress(count["done"], total)

    def flush(shape) -> None:
        if stop():
            raise Cancelled("teaching cancelled")
        batch = buckets.pop(shape)
        for (row, key, _), vector in zip(batch, backbone.pooled(np.stack([x for _, _, x in batch]))):
            vectors[row], have[row] = vector, True
            cache.put(key, vector)
        advance(len(batch), "computed")

    for i, (path, _) in enumerate(dataset.images):
        if stop():
            raise Cancelled("teaching cancelled")
        try:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError as exc:
            skipped.append((path, f"cannot read image {path}: {exc.strerror or exc}"))
            advance(nv)
            continue
        keys = [(backbone.identity, digest, v) for v in variants]
        hits = [cache.get(key, channels) for key in keys]
        image = None
        if any(hit is None for hit in hits):
            try:
                image = load_image(path)
            except ImageError as exc:
                skipped.append((path, str(exc)))
                advance(nv)
                continue
        for j, (key, hit) in enumerate(zip(keys, hits)):
            row = i * nv + j
            if hit is not None:
                vectors[row], have[row] = hit, True
                advance(1, "cached")
                continue
            x = backbone.preprocess(augment_image(image, variants[j]), variant_resize(variants[j]))
            buckets.setdefault(x.shape, []).append((row, key, x))
            if len(buckets[x.shape]) == BATCH:
                flush(x.shape)
    for shape in list(buckets):
        flush(shape)

    readable = [i for i in range(len(dataset.images)) if have[i * nv]]
    labels = np.array([dataset.images[i][1] for i in readable], np.int64)
    for k, name in enumerate(dataset.classes):
        if not np.any(labels == k):
            files = sum(1 for _, label in dataset.images if label == k)
            raise TeachError(
                f"class '{name}' has no readable images ({files} file"
                f"{'s' if files != 1 else ''}, none could be read as an image)"
            )
    rows = np.array([i * nv + j for i in readable for j in range(nv)], np.int64)
    return Features(
        backbone,
        dataset.classes,
        variants,
        tuple(dataset.images[i][0] for i in readable),
        labels,
        vectors[rows],
        np.repeat(np.arange(len(readable)), nv),
        np.tile(np.arange(nv), len(readable)),
        tuple(skipped),
        count["computed"],
        count["cached"],
        time.perf_counter() - start,
    )
