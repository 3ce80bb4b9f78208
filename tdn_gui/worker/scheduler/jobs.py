"""The long requests the inference thread runs besides frames: teach, export, classify a folder,
and writing a folder's results as CSV.

Each is a frozen request the GUI builds; `run_job` runs it on the inference thread with what that
thread owns (the loaded network, the live classifier): they run kernels, or follow work that did,
which is why they run there and nowhere else. A job reports progress through `report(stage, done,
total, detail)` and ends with exactly one JobDone. `Job.cancel()` (the GUI's Cancel, or the window
closing) sets an event: teaching then raises teach.Cancelled, and a folder run stops after the
batch in hand and returns what it has.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import engine
from engine import teach
from engine.validate import Labeler, Validation, validate, write_csv

from .models import Models

_job_ids = itertools.count(1)


@dataclass(frozen=True)
class TeachRequest:
    """Read a teach project (one subfolder of images per class), extract its features on the
    loaded (base) model, cross-validate the candidate heads and fit the chosen one on every image;
    then, with fine_tune, fine-tune the base's last layers with it (kept when it does better)."""

    project: str
    augment: tuple[str, ...] = ("flip",)
    folds: int = teach.DEFAULT_FOLDS
    seed: int = 0  # of the folds
    fine_tune: bool = False


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
    labels: str | None = None  # a file of WordNet ids, one per class (used for the base model)


@dataclass(frozen=True)
class WriteCsvRequest:
    """A folder run's rows as `tdn valid --csv` writes them (whole, or not at all)."""

    validation: Validation
    path: str


@dataclass(frozen=True)
class JobProgress:
    job: int
    stage: str  # "features", "training" or "classifying"
    done: int  # training: folds cross-validated (done == total: the final fit is done)
    total: int
    detail: object = None  # classifying: (top1, top5) so far; None for the other stages


@dataclass(frozen=True)
class JobDone:
    job: int
    value: object = None  # TeachResult, ExportPaths, Validation (partial when cancelled), or the CSV's Path
    error: str | None = None  # one line
    cancelled: bool = False


class Job:
    """A long request handed to the scheduler; the GUI keeps it to match reports and to cancel it."""

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


@dataclass(frozen=True)
class JobContext:
    """What a job may use of the inference thread's state."""

    models: Models
    resize: str  # the images' mode
    stream_resize: str  # the stream frames' mode
    feature_cache: Callable[[], teach.FeatureCache]


def run_job(job: Job, context: JobContext, report: Callable[[JobProgress], None]) -> JobDone:
    """Run a job to its one JobDone: its value, cancelled, or its error in one line."""

    def progress(stage: str, done: int, total: int, detail=None) -> None:
        report(JobProgress(job.id, stage, int(done), int(total), detail))

    request = job.request
    try:
        if isinstance(request, TeachRequest):
            value = run_teach(request, context, progress, job.cancel_event)
        elif isinstance(request, ExportRequest):
            value = teach.export(request.model, request.out_dir, request.name)
        elif isinstance(request, ClassifyFolderRequest):
            value = run_classify_folder(request, context.models, progress, job.cancel_event)
        elif isinstance(request, WriteCsvRequest):
            value = run_write_csv(request)
        else:
            raise TypeError(f"unknown job {request!r}")
        return JobDone(job.id, value, cancelled=job.cancelled)
    except teach.Cancelled:
        return JobDone(job.id, cancelled=True)
    except (engine.EngineError, OSError, ValueError) as exc:
        return JobDone(job.id, error=engine.one_line(exc))
    except Exception as exc:  # noqa: BLE001 - the thread must live and the GUI must hear the job end
        return JobDone(job.id, error=f"unexpected {type(exc).__name__}: {engine.one_line(exc)}")


def run_teach(request: TeachRequest, context: JobContext, report: Report, cancel: threading.Event) -> teach.TeachResult:
    """Features by the images' resize mode, and also by the stream frames' when it differs: the
    taught classes are then recognised in both views."""
    base_net = context.models.net
    if base_net is None:
        raise teach.TeachError("no model is loaded: teaching builds on the loaded model's features")
    dataset = teach.scan_dataset(request.project)
    backbone = teach.Backbone(base_net, None, context.resize)
    augment = tuple(request.augment)
    if context.stream_resize != context.resize:
        augment += (f"resize-{context.stream_resize}",)
    try:
        features = teach.extract_features(
            backbone,
            dataset,
            augment,
            context.feature_cache(),
            progress=lambda done, total: report("features", done, total, None),
            cancel=cancel,
        )
    finally:
        # the backbone's plans for the photos' last shapes (up to MAX_PLANS, hundreds of MB on
        # Tiny: bench/bench_soak.py), else kept for as long as the Teach view keeps the result:
        # the backbone runs again only for a later teach
        backbone.forget_plans()
    result = teach.train_head(
        features,
        request.folds,
        None,
        request.seed,
        progress=lambda done, total: report("training", done, total, None),
        cancel=cancel,
    )
    if not request.fine_tune:
        return result
    return teach.fine_tune(
        result,
        seed=request.seed,
        progress=lambda done, total: report("fine-tuning", done, total, None),
        cancel=cancel,
    )


def run_classify_folder(
    request: ClassifyFolderRequest, models: Models, report: Report, cancel: threading.Event
) -> Validation:
    if models.classifier is None:
        raise engine.EngineError("no model is loaded")
    names = models.live_names()
    wnids = None
    if models.live_is_loaded() and request.labels:
        try:
            wnids = engine.load_names(request.labels, models.live_classes())
        except engine.NamesError:
            wnids = None  # a list for another network: label by class folders only
    return validate(
        models.classifier,
        Path(request.folder),
        Labeler(wnids, names),
        progress=lambda so_far, total: report("classifying", so_far.images, total, (so_far.top1, so_far.top5)),
        cancel=cancel.is_set,
    )


def run_write_csv(request: WriteCsvRequest) -> Path:
    path = Path(request.path)
    try:
        write_csv(request.validation, path)
    except OSError as exc:  # the reason alone: the dialog names the file
        raise engine.EngineError(exc.strerror or engine.one_line(exc)) from exc
    return path
