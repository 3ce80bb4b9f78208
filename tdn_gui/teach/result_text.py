"""The Teach view's words for a training result: the accuracy and how it was measured, per class,
and the warnings (unreadable files, classes with too few images to trust)."""

from __future__ import annotations

import html
import math
from pathlib import Path

from ..worker.engine_api import MIN_TRUSTED, Features, TeachResult
from .widgets import plural


def per_class_accuracy(result: TeachResult) -> dict[str, float]:
    """Cross-validated accuracy of each class (training accuracy when there was too little to
    cross-validate)."""
    evaluation = result.cv if result.cv is not None else result.train
    return {name: float(a) for name, a in zip(result.classes, evaluation.per_class) if not math.isnan(a)}


def describe_result(result: TeachResult) -> str:
    """The result label (rich text): the accuracy and how it was measured, what fine-tuning
    tried and kept, the head chosen, what the model was trained on, and the time it took."""
    features = result.features
    if result.cv is not None:
        evaluation, what, unit = result.cv, "Cross-validated accuracy", "images"
        chosen = "chosen by cross-validation" if len(result.trials) > 1 else "cross-validated"
    else:
        # without cross-validation the figure counts every training row (each image's variants too)
        evaluation, what, unit = result.train, "Training accuracy", "training examples"
        chosen = "not chosen: too few images to cross-validate"
    correct = int(evaluation.confusion.trace())
    head = html.escape(result.head.describe(features.backbone.spec), quote=False)
    return (
        f"{what} <b>{100 * evaluation.accuracy:.1f}%</b> ({correct} of {evaluation.count} {unit}), "
        f"measured {html.escape(result.how, quote=False)}.<br>"
        + (f"{html.escape(_fine_tuning(result), quote=False)}<br>" if result.fine_tuning else "")
        + f"Head ({chosen}): {head}; l2 {result.l2:g}.<br>"
        f"The model is trained on all {plural(result.images, 'image')} "
        f"(× {len(features.variants)}: {html.escape(', '.join(features.variants), quote=False)}).<br>"
        f"Features {features.seconds:.1f} s ({features.computed} computed, {features.cached} cached); "
        f"cross-validation and training {result.seconds:.2f} s."
    )


def _fine_tuning(result: TeachResult) -> str:
    """What fine-tuning tried and kept, in a sentence short enough for the column."""
    report = result.fine_tuning
    if not report.trials:
        return f"Fine-tuning: {report.note}."
    tried = " and ".join(f"{t.cut.describe()} ({100 * t.accuracy:.1f}%)" for t in report.trials)
    kept = f"kept {report.chosen.cut.describe()}" if report.chosen else "kept the head alone"
    return f"Fine-tuning: tried {tried}; {kept}."


def skipped_warning(features: Features) -> list[str]:
    """The files feature extraction could not read, in a sentence (none: an empty list)."""
    if not features.skipped:
        return []
    n = len(features.skipped)
    names = ", ".join(Path(p).name for p, _ in features.skipped[:5])
    more = f" and {n - 5} more" if n > 5 else ""
    return [
        f"{plural(n, 'file')} could not be read and {'was' if n == 1 else 'were'} "
        f"skipped: {names}{more}. ({features.skipped[0][1]})"
    ]


def few_warnings(result: TeachResult) -> list[str]:
    """A sentence for each class with too few images to trust its figures."""
    labels = result.features.image_labels
    sentences = []
    for name in result.few:
        n = int((labels == result.classes.index(name)).sum())
        sentences.append(
            f"Class '{name}' has only {plural(n, 'image')}: too few to trust its figures; "
            f"{MIN_TRUSTED} or more would be better."
        )
    return sentences
