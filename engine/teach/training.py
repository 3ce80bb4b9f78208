"""Training the head: cross-validation picks the head and its regularisation, the chosen head is
fitted again on every image; evaluation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import Cancelled, TeachError, stop_check
from .features import Features
from .heads import Head
from .model import TaughtModel
from .regression import Problem, log_probabilities
from .tuned_part import Cut, layer_span

DEFAULT_FOLDS = 5
# The regularisation grid, on standardised features next to the balanced mean cross-entropy.
# On teach-dev (5 seeded 70/30 splits) held-out accuracy was flat from 0.03 to 1 for the route
# head (87.7-88.5 %) and fell below 0.01; the grid brackets that, cross-validation picks.
L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
L2_WITHOUT_CV = 0.3  # when there are too few images to cross-validate
MIN_TRUSTED = 5  # a class with fewer images gets a warning: its figures are noise


def assign_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of each image: every class's images shuffled (seeded) and dealt to the folds in
    turn from a random fold, so each fold gets its share of every class, and a class with fewer
    images than folds is in some folds only (its images are then judged by heads that never saw
    that class: the cross-validation says so by getting them wrong)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(labels.size, np.int64)
    for k in range(int(labels.max()) + 1 if labels.size else 0):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(members.size)]
        fold[members] = (np.arange(members.size) + rng.integers(folds)) % folds
    return fold


@dataclass(frozen=True)
class Evaluation:
    confusion: np.ndarray  # (k, k) int: row = true class, column = predicted class

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.count, 1))

    @property
    def per_class(self) -> np.ndarray:
        """(k,) accuracy of each class's examples (its recall); NaN for a class without any."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, np.diag(self.confusion) / totals, np.nan)

    @property
    def recall(self) -> np.ndarray:
        """(k,) of each class's images, the share predicted as that class; NaN without images."""
        return self.per_class

    @property
    def precision(self) -> np.ndarray:
        """(k,) of the images predicted as each class, the share that are of it; NaN when no
        image was predicted as it."""
        predicted = self.confusion.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(predicted > 0, np.diag(self.confusion) / predicted, np.nan)

    @property
    def counts(self) -> np.ndarray:
        """(k,) images of each class."""
        return self.confusion.sum(axis=1)


@dataclass(frozen=True)
class Judged:
    """One image as cross-validation judged it: by a head that never saw it."""

    path: Path
    true: int  # class index
    predicted: int
    probabilities: np.ndarray  # (k,) over the classes

    @property
    def right(self) -> bool:
        return self.true == self.predicted


def evaluate(probs: np.ndarray, labels: np.ndarray, classes: int) -> Evaluation:
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, np.argmax(probs, axis=1)), 1)
    return Evaluation(confusion)


@dataclass(frozen=True)
class Trial:
    """One head at one l2, cross-validated: every image judged by a fit that never saw it."""

    head: Head
    l2: float
    log_loss: float  # mean over the images of -log p(true class)
    log_loss_se: float  # its standard error
    accuracy: float


@dataclass(frozen=True)
class TuneTrial:
    """One depth of fine-tuning (finetune.py), cross-validated on the linear head's folds."""

    cut: Cut
    epochs: int  # chosen by the held-out folds (0: the linear head)
    log_loss: float  # held-out, at that many epochs
    accuracy: float
    gain: float  # the linear head's held-out log-loss minus this one's, photo by photo, mean
    gain_se: float  # its standard error
    probabilities: np.ndarray  # (images, k) held-out
    curve: tuple[float, ...] = ()  # held-out log-loss after 0, 1, ... epochs

    @property
    def wins(self) -> bool:
        return self.epochs > 0 and self.gain > self.gain_se


@dataclass(frozen=True)
class FineTuning:
    trials: tuple[TuneTrial, ...]
    chosen: TuneTrial | None  # None: the linear head stays
    linear_log_loss: float
    linear_accuracy: float
    views: int
    seconds: float
    note: str = ""  # why no depth could be tried, or which were not

    def describe(self) -> str:
        """One line: what was tried and what was kept."""
        if not self.trials:
            return f"fine-tuning: {self.note}"
        tried = ", ".join(
            f"{t.cut.describe()} {t.accuracy * 100:.1f} % ({t.epochs} epoch{'' if t.epochs == 1 else 's'})"
            for t in self.trials
        )
        kept = (
            f"kept {self.chosen.cut.describe()} fine-tuned"
            if self.chosen
            else "kept the linear head (no depth beat it by more than its noise)"
        )
        note = f"; {self.note}" if self.note else ""
        return f"fine-tuning: linear head {self.linear_accuracy * 100:.1f} %, {tried} held out; {kept}{note}"


@dataclass(frozen=True)
class TeachResult:
    model: TaughtModel  # fitted on every image (and augmentation) with `head` and `l2`
    head: Head
    l2: float
    cv: Evaluation | None  # the chosen head and l2's cross-validation; None: too few images
    folds: int  # 0 without cross-validation
    trials: tuple[Trial, ...]  # every head × l2 tried, in the order tried
    train: Evaluation  # the final head on its own training rows
    images: int
    few: tuple[str, ...]  # classes with fewer than MIN_TRUSTED images
    features: Features
    seconds: float  # cross-validation and training
    cv_probabilities: np.ndarray | None = None  # (images, k) the chosen head's out-of-fold ones
    fine_tuning: FineTuning | None = None  # what fine-tuning tried and kept (finetune.py); None: not tried

    def judged(self) -> list[Judged]:
        """Every image as cross-validation judged it, in the features' order (empty without
        cross-validation)."""
        if self.cv_probabilities is None:
            return []
        labels = self.features.image_labels
        return [
            Judged(Path(path), int(labels[i]), int(np.argmax(self.cv_probabilities[i])), self.cv_probabilities[i])
            for i, path in enumerate(self.features.paths)
        ]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes

    @property
    def how(self) -> str:
        """How the accuracy was measured, in a sentence."""
        if self.cv is None:
            return "on the training images: too few images to hold any out"
        if self.model.tuned_layers:
            return (
                f"by {self.folds}-fold cross-validation: each image predicted by a head and "
                f"{layer_span(self.model.tuned_layers)} fine-tuned on the other folds' images"
            )
        return (
            f"by {self.folds}-fold cross-validation: each image predicted by a head trained on the other folds' images"
        )


def train_head(
    features: Features,
    folds: int = DEFAULT_FOLDS,
    l2: float | None = None,
    seed: int = 0,
    balanced: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
) -> TeachResult:
    """Cross-validate every candidate head of the backbone at every l2 of L2_GRID (or `l2`), pick
    one (the most preferred head whose log-loss is within one standard error of the best), and
    fit it again on every image. progress(done, total) after each fold and at the end."""
    if folds < 2:
        raise TeachError(f"cross-validation needs at least 2 folds (got {folds})")
    if l2 is not None and not l2 >= 0:
        raise TeachError(f"l2 must be 0 or more (got {l2:g})")
    stop = stop_check(cancel)
    start = time.perf_counter()
    backbone, k = features.backbone, len(features.classes)
    labels = features.image_labels
    images = labels.size
    row_labels = labels[features.row_image]
    grid = sorted(L2_GRID if l2 is None else (l2,), reverse=True)  # strong to weak: warm starts
    n_folds = min(folds, images) if images >= 2 else 0
    fold_of = assign_folds(labels, n_folds, seed) if n_folds else None
    total = len(backbone.heads) * n_folds + 1
    done = 0
    trials: list[Trial] = []
    out_of_fold: dict[tuple[Head, float], np.ndarray] = {}
    for head in backbone.heads if n_folds else ():
        columns = backbone.columns(head)
        log_p = {value: np.zeros((images, k)) for value in grid}
        for fold in range(n_folds):
            if stop():
                raise Cancelled("teaching cancelled")
            held = fold_of == fold
            train_rows = ~held[features.row_image]
            test_rows = held[features.row_image] & (features.row_variant == 0)
            problem = Problem(features.vectors[train_rows][:, columns], row_labels[train_rows], k, balanced)
            state = None
            for value in grid:
                fit = problem.fit(value, state)
                state = fit.state
                log_p[value][features.row_image[test_rows]] = log_probabilities(
                    features.vectors[test_rows][:, columns], fit.weights, fit.bias
                )
            done += 1
            if progress is not None:
                progress(done, total)
        for value in grid:
            losses = -log_p[value][np.arange(images), labels]
            trials.append(
                Trial(
                    head,
                    value,
                    float(losses.mean()),
                    float(losses.std() / np.sqrt(images)),
                    float(np.mean(np.argmax(log_p[value], axis=1) == labels)),
                )
            )
            out_of_fold[(head, value)] = np.exp(log_p[value])
    head, chosen_l2 = _choose(backbone.heads, trials, L2_WITHOUT_CV if l2 is None else l2)
    columns = backbone.columns(head)
    fit = Problem(features.vectors[:, columns], row_labels, k, balanced).fit(chosen_l2)
    model = TaughtModel(backbone, head, features.classes, fit.weights.astype(np.float32), fit.bias.astype(np.float32))
    if progress is not None:
        progress(total, total)
    counts = np.bincount(labels, minlength=k)
    return TeachResult(
        model,
        head,
        chosen_l2,
        evaluate(out_of_fold[(head, chosen_l2)], labels, k) if n_folds else None,
        n_folds,
        tuple(trials),
        evaluate(model.probabilities(features.vectors), row_labels, k),
        images,
        tuple(name for name, n in zip(features.classes, counts) if n < MIN_TRUSTED),
        features,
        time.perf_counter() - start,
        out_of_fold[(head, chosen_l2)] if n_folds else None,
    )


def _choose(heads, trials: list[Trial], fallback_l2: float) -> tuple[Head, float]:
    """The most preferred head (heads come in order of preference) whose best log-loss is within
    one standard error of the best of all, at its best l2. One standard error: the folds of a
    few dozen images are noisy, and on teach-dev picking the lowest log-loss outright chose the
    base classifier's logits alone and scored 85 % held out, this rule the route head and 88 %."""
    if not trials:
        return heads[0], fallback_l2
    best = min(trials, key=lambda t: t.log_loss)
    for head in heads:
        own = min((t for t in trials if t.head == head), key=lambda t: t.log_loss)
        if own.log_loss <= best.log_loss + best.log_loss_se:
            return head, own.l2
    return best.head, best.l2
