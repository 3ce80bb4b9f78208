"""teach(): the whole of teaching in one call, as `tdn teach` and the app run it: the features,
the head chosen by cross-validation, then (when asked) fine-tuning."""

from __future__ import annotations

from collections.abc import Sequence

from .backbone import Backbone
from .dataset import Dataset
from .features import FeatureCache, extract_features
from .finetune import fine_tune
from .training import DEFAULT_FOLDS, TeachResult, train_head


def teach(
    backbone: Backbone,
    dataset: Dataset,
    augment: Sequence[str] = ("flip",),
    folds: int = DEFAULT_FOLDS,
    l2: float | None = None,
    seed: int = 0,
    cache: FeatureCache | None = None,
    progress=None,
    cancel=None,
    fine_tuning: bool = False,
) -> TeachResult:
    """extract_features, then train_head, then (fine_tuning=True) fine_tune.
    progress(stage, done, total): stage "features", "training" or "fine-tuning"."""

    def report(stage):
        return None if progress is None else (lambda done, total: progress(stage, done, total))

    features = extract_features(backbone, dataset, augment, cache, report("features"), cancel)
    result = train_head(features, folds, l2, seed, progress=report("training"), cancel=cancel)
    return fine_tune(result, seed=seed, progress=report("fine-tuning"), cancel=cancel) if fine_tuning else result
