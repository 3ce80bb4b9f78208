"""The long requests the inference worker runs besides frames: teach, export, classify a folder.

Each is a frozen request the GUI builds and a function the worker thread calls with what it owns
(the base network, the active classifier). They run Numba kernels, which is why they run there
and nowhere else. `report(stage, done, total, detail)` is how a job shows progress; `cancel` is a
threading.Event the GUI (or the window closing) sets: teaching then raises teach.Cancelled and a
folder run stops after the batch in hand and returns what it has.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import engine
from engine import registry, teach
from engine.validate import Labeler, Validation, validate

_job_ids = itertools.count(1)


@dataclass(frozen=True)
class TeachRequest:
    """Extract features of a dataset on the loaded (base) model, cross-validate the candidate
    heads and fit the chosen one on every image."""
    dataset: teach.Dataset
    augment: tuple[str, ...] = ("flip",)
    folds: int = teach.DEFAULT_FOLDS
    seed: int = 0                  # of the folds


@dataclass(frozen=True)
class ExportRequest:
    """Write NAME.cfg, NAME.weights and NAME.names for a taught model (all three or none)."""
    model: teach.TaughtModel
    out_dir: str
    name: str


@dataclass(frozen=True)
class ClassifyFolderRequest:
    """`tdn valid` on a folder with the live classifier: labels from WordNet ids or class folders."""
    folder: str
    labels: str | None = None      # a file of WordNet ids, one per class (used for the base model)


@dataclass(frozen=True)
class JobProgress:
    job: int
    stage: str                     # "features", "training" or "classifying"
    done: int                      # training: folds cross-validated (done == total: the final fit is done)
    total: int
    detail: object = None          # classifying: (top1, top5) so far; None for the other stages


@dataclass(frozen=True)
class JobDone:
    job: int
    value: object = None           # TeachResult, ExportPaths or Validation (partial when cancelled)
    error: str | None = None       # one line
    cancelled: bool = False


class Job:
    """A long request handed to the worker; the GUI keeps it to match reports and to cancel it."""

    def __init__(self, request):
        self.id = next(_job_ids)
        self.request = request
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


Report = Callable[[str, int, int, object], None]


def run_teach(request: TeachRequest, base_net, resize: str, cache: teach.FeatureCache,
              report: Report, cancel: threading.Event, stream_resize: str | None = None) -> teach.TeachResult:
    """Features by the images' resize mode, and also by the camera frames' (stream_resize) when
    it differs: the taught classes are then recognised in both views."""
    if base_net is None:
        raise teach.TeachError("no model is loaded: teaching builds on the loaded model's features")
    backbone = teach.Backbone(base_net, None, resize)
    augment = tuple(request.augment)
    if stream_resize is not None and stream_resize != resize:
        augment += (f"resize-{stream_resize}",)
    features = teach.extract_features(backbone, request.dataset, augment, cache,
                                      progress=lambda done, total: report("features", done, total, None),
                                      cancel=cancel)
    return teach.train_head(features, request.folds, None, request.seed,
                            progress=lambda done, total: report("training", done, total, None), cancel=cancel)


def run_export(request: ExportRequest) -> teach.ExportPaths:
    return teach.export(request.model, request.out_dir, request.name)


def run_classify_folder(request: ClassifyFolderRequest, classifier, names, classes: int, use_labels: bool,
                        report: Report, cancel: threading.Event) -> Validation:
    if classifier is None:
        raise engine.EngineError("no model is loaded")
    wnids = None
    if use_labels and request.labels:
        try:
            wnids = engine.load_names(request.labels, classes)
        except engine.NamesError:
            wnids = None       # a list for another network: label by class folders only
    return validate(classifier, Path(request.folder), Labeler(wnids, names),
                    progress=lambda so_far, total: report("classifying", so_far.images, total,
                                                          (so_far.top1, so_far.top5)),
                    cancel=cancel.is_set)


def feature_cache() -> teach.FeatureCache:
    """The same on-disk cache `tdn teach` uses: features computed once serve both."""
    return teach.FeatureCache(registry.cache_dir() / "features")
