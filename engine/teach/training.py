"""Training the head: the seeded split, L2 softmax regression (L-BFGS), evaluation; teach()."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .backbone import Backbone
from .dataset import Dataset
from .errors import Cancelled, TeachError, stop_check
from .features import FeatureCache, Features, extract_features
from .model import TaughtModel, softmax_ce

DEFAULT_EPOCHS = 100        # L-BFGS iterations at most (each is one full pass over the features)
DEFAULT_L2 = 1e-3           # on standardised features, next to the mean cross-entropy
DEFAULT_VAL = 0.2


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
    model: TaughtModel
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
    stop = stop_check(cancel)
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
        p, ce = softmax_ce(z @ w.T + b, y)
        g = (p - onehot) / n
        grad = np.concatenate([(g.T @ z + l2 * w).ravel(), g.sum(axis=0)])
        return ce + 0.5 * l2 * float(np.sum(w * w)), grad

    history: list[EpochStats] = []

    def after_iteration(theta):
        w, b = unpack(np.asarray(theta))
        p, ce = softmax_ce(z @ w.T + b, y)
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


def teach(backbone: Backbone, dataset: Dataset, augment: Sequence[str] = ("flip",),
          val_fraction: float = DEFAULT_VAL, seed: int = 0, epochs: int = DEFAULT_EPOCHS,
          l2: float = DEFAULT_L2, cache: FeatureCache | None = None, progress=None, on_epoch=None,
          cancel=None) -> TeachResult:
    features = extract_features(backbone, dataset, augment, cache, progress, cancel)
    return train_head(features, val_fraction, seed, epochs, l2, on_epoch, cancel)
