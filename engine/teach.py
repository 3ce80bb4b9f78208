"""Teach your own classes: a new classifier head on a frozen darknet network.

The base network (Tiny Darknet by default) stays frozen up to a feature layer L; a head of plain
darknet layers follows it:

    [convolutional] filters=K size=1 activation=linear  →  [avgpool]  →  [softmax]

A linear 1×1 convolution commutes with global average pooling: avgpool(W * F + b) = W·mean(F) + b.
So the head is trained on one vector per image (layer L's output averaged over space) and is still
exactly the exported network, at any input size. Training is L2-regularised multinomial logistic
regression (mean cross-entropy + l2/2·|W|², full batch, L-BFGS from zeros): a few seconds, and the
same result for the same seed (the seed chooses the validation split). The optimiser sees
standardised features; the standardisation is folded into W and b before they leave train_head, so
the head anyone sees is always W·mean(features) + b.

API for the GUI's Teach view (no Qt here; run it on the worker thread that owns the network)::

    backbone = Backbone.load(cfg, weights, layer=None)  # or Backbone(net): layer None → default_layer
    dataset = scan_dataset(folder)           # or Dataset(("cat", "dog"), ((path, 0), (path, 1), ...))
    cache = FeatureCache(folder_or_None)     # keep one: re-extracting after adding images is instant
    features = extract_features(backbone, dataset, augment=("flip",), cache=cache,
                                progress=lambda done, total: ..., cancel=event)
    result = train_head(features, val_fraction=0.2, seed=0, epochs=100,
                        on_epoch=lambda s: ...)   # s: EpochStats(epoch, loss, train_accuracy, val_accuracy)
    result.val, result.train                 # Evaluation: .accuracy, .per_class, .confusion (true × predicted)
    model = result.model                     # TaughtModel
    model.classify(image)                    # engine.Prediction from the pooled head (live classification)
    model.classifier()                       # engine.Classifier over the exported network itself
    paths = export(model, out_dir, name)     # ExportPaths(cfg, weights, names): all three files or none

teach() does extract_features + train_head. Every error is a TeachError (an EngineError: one line);
`cancel` (a callable returning True, or a threading.Event) makes extract_features / train_head raise
Cancelled. Features computed before a cancel stay in the cache. Nothing here is thread-safe: one
thread at a time, like engine.Network.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cfg import read_sections
from .classify import Classifier, Prediction
from .errors import EngineError
from .image import ImageError, image_from_array, load_image
from .network import Network
from .spec import NetworkSpec, parse_network
from .weights import read_weights, write_atomic, write_weights

FEATURE_FORMAT = 1          # bump when preprocessing or pooling changes: old cache entries then miss
BATCH = 8                   # prepared images of one shape per forward pass
CROP = 0.8                  # a corner crop keeps this fraction of each side
AUGMENTATIONS = ("flip", "crop-tl", "crop-tr", "crop-bl", "crop-br")   # horizontal mirror, 4 corners
FEATURE_KINDS = ("convolutional", "connected", "maxpool", "avgpool", "route", "shortcut")
DEFAULT_EPOCHS = 100        # L-BFGS iterations at most (each is one full pass over the features)
DEFAULT_L2 = 1e-3           # on standardised features, next to the mean cross-entropy
DEFAULT_VAL = 0.2


class TeachError(EngineError):
    """A dataset, layer or output folder that teaching cannot use."""


class Cancelled(EngineError):
    """The caller's cancel callable (or Event) asked to stop."""


# --------------------------------------------------------------------------- the dataset

@dataclass(frozen=True)
class Dataset:
    classes: tuple[str, ...]                       # class k's name; output k of the head
    images: tuple[tuple[Path, int], ...]           # (file, class index)
    skipped: tuple[tuple[Path, str], ...] = ()     # files found but not used, with why

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
        raise TeachError(f"{folder} {'is not a folder' if folder.exists() else 'does not exist'}: "
                         "give a folder with one subfolder of images per class")
    classes, images, skipped = [], [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            classes.append(entry.name)
            files = sorted(p for p in entry.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(entry).parts))
            images.extend((p, len(classes) - 1) for p in files)
        else:
            skipped.append((entry, f"{entry}: not in a class folder"))
    dataset = Dataset(tuple(classes), tuple(images), tuple(skipped))
    check_dataset(dataset, folder)
    return dataset


def check_dataset(dataset: Dataset, where: str | Path = "the dataset") -> None:
    classes = dataset.classes
    if not classes:
        raise TeachError(f"{where} has no class subfolders: make one subfolder per class, named after "
                         "the class, holding its images")
    if len(classes) == 1:
        raise TeachError(f"{where} has only one class ('{classes[0]}'): teaching needs at least two")
    if len(set(classes)) != len(classes):
        raise TeachError(f"{where}: class names must be unique")
    for name in classes:
        if not name.strip() or any(ch in name for ch in "\r\n"):
            raise TeachError(f"{where}: class name {name!r} cannot be written one a line")
    for name, count in zip(classes, dataset.counts()):
        if count == 0:
            raise TeachError(f"class '{name}' has no images ({Path(where) / name})"
                             if isinstance(where, Path) else f"class '{name}' has no images")


# --------------------------------------------------------------------------- the frozen part

def default_layer(spec: NetworkSpec) -> int:
    """The last [convolutional] before the final layer with weights (the base's classifier):
    tiny's 128-channel 1×1 conv (18), darknet's 1024-channel 3×3 conv before its avgpool."""
    weighted = [layer.index for layer in spec.layers if layer.kind in ("convolutional", "connected")]
    end = weighted[-1] if weighted else len(spec.layers)
    convs = [layer.index for layer in spec.layers[:end] if layer.kind == "convolutional"]
    if not convs:
        raise TeachError(f"{spec.path}: no [convolutional] layer before the classifier: choose a layer")
    return convs[-1]


def check_layer(spec: NetworkSpec, layer: int) -> int:
    count = len(spec.layers)
    usable = [item.index for item in spec.layers if item.kind in FEATURE_KINDS]
    if not 0 <= layer < count:
        raise TeachError(f"{spec.path}: there is no layer {layer}: the network has layers 0-{count - 1} "
                         f"(feature layers: {_ranges(usable)})")
    kind = spec.layers[layer].kind
    if kind not in FEATURE_KINDS:
        raise TeachError(f"{spec.layers[layer].where}: layer {layer} is a [{kind}], which gives no "
                         f"features: choose a [convolutional] layer (feature layers: {_ranges(usable)})")
    return layer


def _ranges(indices: Sequence[int]) -> str:
    """[0, 2, 4, 5, 6] → '0, 2, 4-6'."""
    parts, start = [], None
    for i, value in enumerate(indices):
        if start is None:
            start = value
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts) or "none"


class Backbone:
    """The base network cut after layer L: preprocessing + layers 0..L + spatial mean."""

    def __init__(self, base: Network, layer: int | None = None, resize: str = "min"):
        spec = base.spec
        self.layer = default_layer(spec) if layer is None else check_layer(spec, layer)
        self.cfg_path = Path(spec.path)
        try:
            self.cfg_text = self.cfg_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise TeachError(f"{spec.path}: cannot read the base cfg: {exc.strerror or exc}") from None
        if parse_network(spec.path, self.cfg_text).layers != spec.layers:
            raise TeachError(f"{spec.path} changed on disk since the network was loaded: load it again")
        cut = dataclasses.replace(spec, layers=spec.layers[:self.layer + 1],
                                  shapes=spec.shapes[:self.layer + 1])
        self.params = base.params[:self.layer + 1]
        self.header = base.header
        self.net = Network(cut, self.params, base.header)
        self.channels = spec.shapes[self.layer][2]
        self.resize = resize
        self._prepare = Classifier(self.net, None, resize).prepare
        self.identity = self._identity()

    @classmethod
    def load(cls, cfg: str | Path, weights: str | Path, layer: int | None = None,
             resize: str = "min") -> "Backbone":
        return cls(Network.load(cfg, weights), layer, resize)

    def describe(self) -> str:
        h, w, c = self.net.spec.shapes[-1]
        item = self.net.spec.layers[-1]
        return (f"{self.cfg_path.name} layer {self.layer} [{item.kind}]: {c} channels "
                f"({w}x{h} at {self.net.input_size[0]}x{self.net.input_size[1]})")

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The network input for an image: the base Classifier's preprocessing."""
        return self._prepare(image)

    def pooled(self, inputs: np.ndarray) -> np.ndarray:
        """Prepared inputs (n, h, w, 3) of one shape → layer L's output averaged over space (n, c)."""
        out = self.net.features(inputs, self.layer)                         # (n, h', w', c)
        return out.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)

    def _identity(self) -> str:
        """What the features depend on: layers 0..L, their weights, input size, preprocessing."""
        digest = hashlib.sha256()
        spec = self.net.spec
        digest.update(repr((FEATURE_FORMAT, self.resize, spec.input_shape)).encode())
        for item in spec.layers:
            digest.update(repr(dataclasses.replace(item, where="")).encode())
        for arrays in self.params:
            for name in sorted(arrays):
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(arrays[name], "<f4").tobytes())
        return digest.hexdigest()


# --------------------------------------------------------------------------- features

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


def augment_image(image: np.ndarray, variant: str) -> np.ndarray:
    """'original', 'flip' (horizontal mirror) or 'crop-tl|tr|bl|br' (a corner, CROP of each side)."""
    if variant == "original":
        return image
    if variant == "flip":
        return np.ascontiguousarray(image[:, ::-1])
    h, w = image.shape[:2]
    ch, cw = max(1, round(h * CROP)), max(1, round(w * CROP))
    top = 0 if variant[5] == "t" else h - ch
    left = 0 if variant[6] == "l" else w - cw
    return np.ascontiguousarray(image[top:top + ch, left:left + cw])


@dataclass(frozen=True)
class Features:
    """Layer L's pooled output for every readable image and each of its augmentations."""
    backbone: Backbone
    classes: tuple[str, ...]
    variants: tuple[str, ...]           # "original" first, then the augmentations
    paths: tuple[Path, ...]             # the readable images
    image_labels: np.ndarray            # (images,) class of each
    vectors: np.ndarray                 # (rows, c) float32
    row_image: np.ndarray               # (rows,) index into paths
    row_variant: np.ndarray             # (rows,) index into variants; 0 is the image itself
    skipped: tuple[tuple[Path, str], ...]
    computed: int                       # forward passes run
    cached: int                         # vectors found in the cache
    seconds: float


def extract_features(backbone: Backbone, dataset: Dataset, augment: Sequence[str] = ("flip",),
                     cache: FeatureCache | None = None,
                     progress: Callable[[int, int], None] | None = None, cancel=None) -> Features:
    """Pooled features of every image (and augmentation). progress(done, total) as work completes."""
    check_dataset(dataset)
    for name in augment:
        if name not in AUGMENTATIONS:
            raise TeachError(f"unknown augmentation '{name}' (known: {', '.join(AUGMENTATIONS)})")
    variants = ("original",) + tuple(dict.fromkeys(augment))
    cache = FeatureCache() if cache is None else cache
    stop = _stop_check(cancel)
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
            x = backbone.prepare(augment_image(image, variants[j]))
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
            raise TeachError(f"class '{name}' has no readable images ({files} file"
                             f"{'s' if files != 1 else ''}, none could be read as an image)")
    rows = np.array([i * nv + j for i in readable for j in range(nv)], np.int64)
    return Features(backbone, dataset.classes, variants, tuple(dataset.images[i][0] for i in readable),
                    labels, vectors[rows], np.repeat(np.arange(len(readable)), nv),
                    np.tile(np.arange(nv), len(readable)), tuple(skipped),
                    count["computed"], count["cached"], time.perf_counter() - start)


def _stop_check(cancel) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    return cancel.is_set if hasattr(cancel, "is_set") else cancel


# --------------------------------------------------------------------------- training

def split_images(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded: round(val_fraction · n) of each class's n images held out, at least one
    when val_fraction > 0, never all (every class keeps a training image)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for k in range(int(labels.max()) + 1 if labels.size else 0):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(members.size)]
        n_val = 0
        if val_fraction > 0 and members.size >= 2:
            n_val = min(members.size - 1, max(1, round(val_fraction * members.size)))
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return np.sort(np.array(train, np.int64)), np.sort(np.array(val, np.int64))


@dataclass(frozen=True)
class EpochStats:
    epoch: int                  # 1, 2, ...
    loss: float                 # mean cross-entropy on the training rows (without the L2 term)
    train_accuracy: float
    val_accuracy: float | None  # None without a validation split


@dataclass(frozen=True)
class Evaluation:
    confusion: np.ndarray       # (k, k) int: row = true class, column = predicted class

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.count, 1))

    @property
    def per_class(self) -> np.ndarray:
        """(k,) accuracy of each class's examples; NaN for a class without any."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, np.diag(self.confusion) / totals, np.nan)


def evaluate(probs: np.ndarray, labels: np.ndarray, classes: int) -> Evaluation:
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, np.argmax(probs, axis=1)), 1)
    return Evaluation(confusion)


@dataclass(frozen=True)
class TeachResult:
    model: "TaughtModel"
    history: tuple[EpochStats, ...]
    train: Evaluation           # training rows (augmentations included)
    val: Evaluation | None      # held-out images (never augmented); None without a split
    train_images: int
    val_images: int
    features: Features
    seconds: float              # training only

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes


def train_head(features: Features, val_fraction: float = DEFAULT_VAL, seed: int = 0,
               epochs: int = DEFAULT_EPOCHS, l2: float = DEFAULT_L2,
               on_epoch: Callable[[EpochStats], None] | None = None, cancel=None) -> TeachResult:
    """Softmax regression on the pooled features of the training images; on_epoch after each
    L-BFGS iteration (one full pass; it stops early once converged)."""
    from scipy.optimize import minimize

    if not 0 <= val_fraction < 1:
        raise TeachError(f"the validation fraction must be at least 0 and below 1 (got {val_fraction:g})")
    if epochs < 1:
        raise TeachError(f"epochs must be at least 1 (got {epochs})")
    if l2 < 0:
        raise TeachError(f"l2 must not be negative (got {l2:g})")
    stop = _stop_check(cancel)
    start = time.perf_counter()
    k, c = len(features.classes), features.backbone.channels
    train_images, val_images = split_images(features.image_labels, val_fraction, seed)
    row_labels = features.image_labels[features.row_image]
    train_rows = np.isin(features.row_image, train_images)
    val_rows = np.isin(features.row_image, val_images) & (features.row_variant == 0)
    x = features.vectors[train_rows].astype(np.float64)
    y = row_labels[train_rows]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0                    # a constant feature: leave it, its weight stays 0
    z = (x - mean) / scale
    zv = (features.vectors[val_rows] - mean) / scale
    yv = row_labels[val_rows]
    onehot = np.eye(k)[y]
    n = len(y)

    def unpack(theta):
        return theta[:k * c].reshape(k, c), theta[k * c:]

    def objective(theta):
        w, b = unpack(theta)
        p, ce = _softmax_ce(z @ w.T + b, y)
        g = (p - onehot) / n
        grad = np.concatenate([(g.T @ z + l2 * w).ravel(), g.sum(axis=0)])
        return ce + 0.5 * l2 * float(np.sum(w * w)), grad

    history: list[EpochStats] = []

    def after_iteration(theta):
        w, b = unpack(np.asarray(theta))
        p, ce = _softmax_ce(z @ w.T + b, y)
        val_acc = float(np.mean(np.argmax(zv @ w.T + b, axis=1) == yv)) if len(yv) else None
        stats = EpochStats(len(history) + 1, ce, float(np.mean(np.argmax(p, axis=1) == y)), val_acc)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if stop():
            raise Cancelled("teaching cancelled")

    solution = minimize(objective, np.zeros(k * c + k), jac=True, method="L-BFGS-B",
                        callback=after_iteration,
                        options={"maxiter": epochs, "gtol": 1e-7, "ftol": 1e-12, "maxcor": 20})
    w, b = unpack(solution.x)
    weights = w / scale                           # fold the standardisation: W·(x - m)/s + b
    bias = b - weights @ mean
    model = TaughtModel(features.backbone, features.classes, weights.astype(np.float32),
                        bias.astype(np.float32))
    train_eval = evaluate(model.probabilities(features.vectors[train_rows]), y, k)
    val_eval = evaluate(model.probabilities(features.vectors[val_rows]), yv, k) if len(yv) else None
    return TeachResult(model, tuple(history), train_eval, val_eval, len(train_images), len(val_images),
                       features, time.perf_counter() - start)


def _softmax_ce(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """Row softmax of (n, k) logits and the mean cross-entropy of the true labels."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_norm
    return np.exp(log_p), float(-np.mean(log_p[np.arange(len(labels)), labels]))


def teach(backbone: Backbone, dataset: Dataset, augment: Sequence[str] = ("flip",),
          val_fraction: float = DEFAULT_VAL, seed: int = 0, epochs: int = DEFAULT_EPOCHS,
          l2: float = DEFAULT_L2, cache: FeatureCache | None = None, progress=None, on_epoch=None,
          cancel=None) -> TeachResult:
    features = extract_features(backbone, dataset, augment, cache, progress, cancel)
    return train_head(features, val_fraction, seed, epochs, l2, on_epoch, cancel)


# --------------------------------------------------------------------------- the taught model

class TaughtModel:
    """Backbone + head (K, C) weights and (K,) bias: probabilities = softmax(W·mean(F) + b)."""

    def __init__(self, backbone: Backbone, classes: Sequence[str], weights: np.ndarray, bias: np.ndarray):
        self.backbone = backbone
        self.classes = tuple(classes)
        self.weights = np.asarray(weights, np.float32)       # (k, c)
        self.bias = np.asarray(bias, np.float32)             # (k,)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Pooled features (n, c) → (n, k) probabilities."""
        logits = np.asarray(vectors, np.float64) @ self.weights.T.astype(np.float64) + self.bias
        return _softmax_ce(logits, np.zeros(len(logits), np.int64))[0]

    def classify(self, image: np.ndarray) -> Prediction:
        """image: (h, w, 3) RGB, uint8 or float 0..1."""
        start = time.perf_counter()
        x = self.backbone.prepare(image_from_array(image))
        probs = self.probabilities(self.backbone.pooled(x[None]))[0].astype(np.float32)
        return Prediction(probs, self.classes, time.perf_counter() - start, x.shape[:2])

    def head_params(self) -> list[dict[str, np.ndarray]]:
        """darknet's arrays for the head: conv biases and (filters, c, 1, 1) weights; avgpool, softmax."""
        conv = {"biases": self.bias.copy(), "weights": self.weights.reshape(-1).copy()}
        return [conv, {}, {}]

    def cfg_text(self, name: str) -> str:
        """[net] and layers 0..L of the base cfg verbatim, then the head."""
        b = self.backbone
        last = read_sections(b.cfg_path, b.cfg_text)[b.layer + 1]       # section 0 is [net]
        end = max([last.line] + [line for _, line in last.options.values()])
        k = len(self.classes)
        lines = [
            f"# {name}: {k} classes taught by `tdn teach` ({name}.names, one a line, in output order).",
            f"# Layers 0-{b.layer} are {b.cfg_path.name}'s, copied verbatim below (its comments describe",
            "# the whole base network); the last three layers are the taught head.",
            "",
            *b.cfg_text.splitlines()[:end],
            "",
            f"# --- taught head: 1x1 conv {b.channels} -> {k} classes (linear), global average pool, softmax ---",
            "",
            "[convolutional]", f"filters={k}", "size=1", "stride=1", "activation=linear",
            "",
            "[avgpool]",
            "",
            "[softmax]", "groups=1",
        ]
        return "\n".join(lines) + "\n"

    def network(self, name: str = "taught") -> Network:
        """The exported network, in memory."""
        spec = parse_network(f"{name}.cfg", self.cfg_text(name))
        return Network(spec, list(self.backbone.params) + self.head_params(), self.backbone.header)

    def classifier(self, name: str = "taught") -> Classifier:
        return Classifier(self.network(name), list(self.classes), self.backbone.resize)


# --------------------------------------------------------------------------- export

@dataclass(frozen=True)
class ExportPaths:
    cfg: Path
    weights: Path
    names: Path


def check_output(out_dir: str | Path, name: str) -> Path:
    """Fail early (before any work) when NAME or the output folder cannot be used."""
    if not name or name in (".", "..") or any(ch in name for ch in "/\\\0\r\n") or name.startswith("."):
        raise TeachError(f"'{name}' cannot be a model name: use letters, digits, '-' or '_' (no folders)")
    out = Path(out_dir)
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = out if probe == out else probe
        raise TeachError(f"cannot write to {out}: {what} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tdn-write-check-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise TeachError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def export(model: TaughtModel, out_dir: str | Path, name: str) -> ExportPaths:
    """Write NAME.cfg, NAME.weights (darknet's current 0.2 header, the base's `seen`) and NAME.names.
    Each is written to a temporary file and checked by loading it back; only then are the three
    renamed into place. On any failure none of them (and no folder this call made) is left."""
    out = check_output(out_dir, name)
    paths = ExportPaths(out / f"{name}.cfg", out / f"{name}.weights", out / f"{name}.names")
    text = model.cfg_text(name)
    spec = parse_network(paths.cfg, text)
    params = list(model.backbone.params) + model.head_params()
    header = model.backbone.header
    made = [p for p in reversed([out, *out.parents]) if not p.exists()]
    temps: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for final in (paths.cfg, paths.weights, paths.names):
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=out)
            os.close(fd)
            temps[final] = Path(tmp)
        _write_file(temps[paths.cfg], text.encode("utf-8"))
        write_weights(temps[paths.weights], spec, params, seen=header.seen if header else 0)
        _write_file(temps[paths.names], ("\n".join(model.classes) + "\n").encode("utf-8"))
        check_spec = parse_network(temps[paths.cfg])
        read_weights(temps[paths.weights], check_spec)                   # every byte accounted for
        for final, tmp in temps.items():
            os.replace(tmp, final)
            placed.append(final)
    except BaseException as exc:
        for path in [*temps.values(), *placed]:
            path.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise TeachError(f"cannot write to {out}: {exc.strerror or exc}") from None
        raise
    return paths


def _write_file(path: Path, data: bytes) -> None:
    """Write and fsync an export's temporary file (renamed into place later)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
