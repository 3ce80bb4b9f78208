"""The thread that runs inference.

On Numba's fallback threading layer parallel kernels must never run on two threads at once, so the
network, its Classifier and every call into them (loading and warm-up included) live here, and so do
the long jobs that run kernels too: teaching (feature extraction + training), export, classifying a
folder. One exception, for video: where the layer allows concurrent kernels (TBB, OpenMP), frames
submitted with ``stream=True`` are shared between this thread and a second lane (``_StreamLane``),
each with half the cores and its own buffers (``Network.replica``). On 2 cores two 1-thread lanes
classify ~30% more frames a second than one 2-thread lane: no barrier at every layer waits for a
thread that the GUI or the camera preempted. Each frame takes longer, and a frame still in one lane
when the other answers a newer one is abandoned at its next layer (reported as superseded: its
answer would be stale); results can still, rarely, arrive out of order. The GUI talks
to this thread through a mailbox: ``submit`` overwrites a single pending slot (the newest frame
wins, so a slow model drops frames instead of building a queue), the thread sleeps on a condition
until something is posted, computes, and emits an immutable result. ``start_job`` fills a second
slot (one job at a time: ``busy`` says whether one is queued or running); a job reports through
``job_progress`` and ends with one ``job_finished``; ``Job.cancel()`` stops it at its next check.
``stop`` sets a flag, cancels the job in hand, wakes the thread and waits.

The live classifier is the loaded model, or a taught model (``set_taught``): both answer frames
with the same Result, so the views show the taught classes in the same bars. Stream frames have a
resize mode of their own (``set_resize(mode, stream=True)``; letterbox by default, as darknet's
own webcam demo does): a fixed input size keeps live video as fast as the model allows.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable

import numpy as np
from PySide6.QtCore import QThread, Signal

import engine
from engine import teach
from engine.parallel import concurrent_ok, max_threads, set_threads, threading_layer

from . import jobs
from .jobs import ClassifyFolderRequest, ExportRequest, Job, JobDone, JobProgress, TeachRequest

TOP_K = 5
KERNEL_LOOK_SECONDS = 0.5     # while the compiled kernels arrive: how often an idle worker looks


@dataclass(frozen=True)
class Result:
    """What one classify request produced; `error` is a one-line message, or None on success."""
    tag: Hashable
    top: tuple[tuple[int, str, float], ...] = ()
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """A loaded model, as the status bar and settings need it."""
    name: str
    input_size: tuple[int, int]
    bflops: float
    params: int
    any_size: bool
    classes: int
    threads: int
    cfg: str
    weights: str
    names: str | None
    key: str | None  # registry key when the model came from the Model menu, else None
    load_seconds: float
    taught: bool = False   # a model taught in the Teach view, held in memory (not in any file)


@dataclass(frozen=True)
class _ModelRequest:
    cfg: str
    weights: str
    names: str | None
    key: str | None


def _default_classifier(net, names, resize):
    return engine.Classifier(net, names=names, resize=resize)


_UNCHANGED = object()   # the taught-model slot when no switch is pending
TAUGHT_NAME = "taught"


class InferenceWorker(QThread):
    """Owns the network; see the module docstring for the protocol."""

    result_ready = Signal(object)   # Result
    model_loaded = Signal(object)   # ModelInfo
    model_failed = Signal(str)      # one-line reason
    superseded = Signal(object)     # tag of a request that a newer submit replaced before it ran
    classifier_changed = Signal(object)   # ModelInfo of the live classifier after set_taught
    job_progress = Signal(object)   # JobProgress
    job_finished = Signal(object)   # JobDone, exactly one per job that started
    kernels_changed = Signal(object)   # engine.kernels.KernelStatus, whenever it changes

    def __init__(self, make_classifier: Callable | None = None, resize: str = "min",
                 stream_resize: str = "letterbox", parent=None):
        super().__init__(parent)
        self.setObjectName("tdn-inference")
        self._make_classifier = make_classifier or _default_classifier
        self._cond = threading.Condition()
        # Everything below the condition is guarded by it.
        self._pending: tuple[Hashable, np.ndarray, bool, int] | None = None   # (tag, image, stream, seq)
        self._newest_answered = 0            # seq of the newest stream frame with a result out
        self._model_request: _ModelRequest | None = None
        self._resize = _checked_mode(resize)
        self._stream_resize = _checked_mode(stream_resize)
        self._resize_changed = False
        self._taught_request = _UNCHANGED    # a TaughtModel, None (back to the loaded model) or _UNCHANGED
        self._job: Job | None = None         # queued, not started
        self._running_job: Job | None = None
        self._stopping = False
        self._switching = False              # a model, classifier or job is in hand: the lane waits
        self._lane_classifier = None         # the stream lane's copy of the live classifier
        self._generation = 0                 # bumped at every classifier switch (drops stale lane results)
        self._lane: _StreamLane | None = None
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.abandoned = 0                   # stream frames given up mid-pass (see _deliver)
        self.max_pending = 0
        # Owned by the worker thread only.
        self._net = None                     # the loaded model: what teaching builds on
        self._names: list[str] | None = None
        self._info: ModelInfo | None = None
        self._live = None                    # (net, names) the classifier runs: the loaded or a taught one
        self._classifier = None
        self._stream_classifier = None       # the same model, by the stream frames' resize mode
        self._feature_cache: teach.FeatureCache | None = None
        self._kernels = None                 # the KernelStatus last announced

    # ---- GUI-thread side -------------------------------------------------------------------
    def submit(self, tag: Hashable, image: np.ndarray, stream: bool = False) -> None:
        """Post an (H, W, 3) RGB image (float 0..1 or uint8); replaces any request not yet started.
        stream: a frame of live video, which the stream lane may take (see the module docstring)."""
        with self._cond:
            replaced = self._pending
            self.submitted += 1
            self._pending = (tag, image, stream, self.submitted)
            if replaced is not None:
                self.dropped += 1
            self.max_pending = max(self.max_pending, 0 if self._pending is None else 1)
            self._cond.notify_all()
        if replaced is not None:  # outside the lock: a receiver may well submit again
            self.superseded.emit(replaced[0])

    def load_model(self, cfg, weights, names=None, key: str | None = None) -> None:
        """Ask the worker to load a model; answers with model_loaded or model_failed."""
        request = _ModelRequest(str(cfg), str(weights), str(names) if names else None, key)
        with self._cond:
            self._model_request = request
            self._taught_request = _UNCHANGED    # a new model replaces any taught one
            self._cond.notify_all()

    def set_taught(self, model: teach.TaughtModel | None) -> None:
        """Classify with a taught model from now on, or (None) with the loaded model again;
        answers with classifier_changed."""
        with self._cond:
            self._taught_request = model
            self._cond.notify_all()

    def start_job(self, request: TeachRequest | ExportRequest | ClassifyFolderRequest) -> Job:
        """Queue a long job; one at a time (check `busy`). Frames wait while it runs."""
        job = Job(request)
        with self._cond:
            if self._job is not None or self._running_job is not None:
                raise RuntimeError("the worker already has a job: wait for job_finished")
            self._job = job
            self._cond.notify_all()
        return job

    @property
    def busy(self) -> bool:
        """A job is queued or running."""
        with self._cond:
            return self._job is not None or self._running_job is not None

    def set_resize(self, mode: str, stream: bool = False) -> None:
        """The resize mode from now on for images (and jobs), or with stream=True for stream frames."""
        mode = _checked_mode(mode)
        with self._cond:
            if stream:
                self._stream_resize = mode
            else:
                self._resize = mode
            self._resize_changed = True
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return 0 if self._pending is None else 1

    @property
    def lanes(self) -> int:
        """How many threads classify stream frames: 2 with the stream lane running, else 1."""
        return 2 if self._lane is not None else 1

    def stop(self) -> None:
        """Ask the loop (and the stream lane) to end and wait; the current requests finish first."""
        with self._cond:
            self._stopping = True
            self._pending = None
            for job in (self._job, self._running_job):
                if job is not None:
                    job.cancel()     # a job checks between batches: closing never waits long
            self._cond.notify_all()
        if self.isRunning():
            self.wait()
        if self._lane is not None:
            self._lane.join()

    # ---- worker-thread side ----------------------------------------------------------------
    def run(self) -> None:
        while True:
            self._announce_kernels()
            with self._cond:
                if not self._wait_for_work():
                    continue
                if self._stopping:
                    return
                request, self._model_request = self._model_request, None
                taught, self._taught_request = self._taught_request, _UNCHANGED
                resize_changed, self._resize_changed = self._resize_changed, False
                resize, stream_resize = self._resize, self._stream_resize
                job = frame = None
                switch = request is not None or taught is not _UNCHANGED or resize_changed
                if not switch:      # a switch goes before the work meant for it
                    if self._job is not None:
                        job, self._job = self._job, None
                        self._running_job = job
                    else:
                        frame, self._pending = self._pending, None
                self._switching = switch or job is not None
            set_threads(max_threads())      # loads, jobs and single images use every core
            announce = []                   # sent once both lanes have the new classifier
            if request is not None:
                announce.append(self._load(request, resize))
            if taught is not _UNCHANGED:
                announce.append(self._use_taught(taught, resize))
            elif resize_changed and self._live is not None:
                self._classifier = self._make_classifier(*self._live, resize)
            if switch:
                self._stream_classifier = self._classifier
                if self._live is not None and stream_resize != resize:
                    self._stream_classifier = self._make_classifier(*self._live, stream_resize)
                self._refresh_lane(stream_resize)
            for signal, value in filter(None, announce):
                signal.emit(value)
            if job is not None:
                self._run_job(job, resize, stream_resize)
                with self._cond:
                    self._switching = False
                    self._cond.notify_all()
            if frame is not None:
                stream = frame[2]
                if stream and self._lane is not None:
                    set_threads(max_threads() // 2)     # this lane's share of the cores
                classifier = self._stream_classifier if stream else self._classifier
                self._deliver(frame, _classify(classifier, frame[0], frame[1], self._keep_going(frame)))

    def _wait_for_work(self) -> bool:
        """Called with the condition held: sleep until there is something to do (True), or, while
        the compiled kernels are still arriving, until it is time to look at them again (False)."""
        while not (self._stopping or self._model_request or self._resize_changed
                   or self._taught_request is not _UNCHANGED or self._job is not None
                   or self._pending is not None):
            settling = self._kernels is None or (self._kernels.path != "compiled" and self._kernels.compiling)
            if not self._cond.wait(KERNEL_LOOK_SECONDS if settling else None):
                return False
        return True

    def _announce_kernels(self) -> None:
        """Emit kernels_changed when the kernels' status has changed; once compiled kernels have
        run, give stream frames their second lane (see _refresh_lane)."""
        status = engine.kernels.status()
        if status != self._kernels:
            self._kernels = status
            self.kernels_changed.emit(status)
        # Numba picks its threading layer when the first compiled kernel runs: only then can
        # concurrent_ok say whether the second lane may start (the portable kernels run on one)
        if (status.path == "compiled" and self._lane is None and self._live is not None
                and max_threads() >= 2 and threading_layer() != "none" and concurrent_ok()):
            with self._cond:
                stream_resize = self._stream_resize
            self._refresh_lane(stream_resize)

    def _refresh_lane(self, resize: str) -> None:
        """Give the stream lane a copy of the live classifier with buffers of its own (starting
        the lane the first time), or none when kernels may not run on two threads at once, or
        the portable kernels serve (their GEMMs use every core already)."""
        lane_classifier = None
        if (self._live is not None and max_threads() >= 2 and concurrent_ok()
                and engine.kernels.status().path == "compiled"):
            net, names = self._live
            lane_classifier = self._make_classifier(net.replica(), names, resize)
        with self._cond:
            self._lane_classifier = lane_classifier
            self._generation += 1
            self._switching = False
            if lane_classifier is not None and self._lane is None and not self._stopping:
                self._lane = _StreamLane(self)
                self._lane.start()
            self._cond.notify_all()

    def _lane_may_take(self) -> bool:
        """Called with the condition held: a stream frame waits and nothing else is in hand."""
        return (self._pending is not None and self._pending[2] and self._lane_classifier is not None
                and not self._switching and self._model_request is None and not self._resize_changed
                and self._taught_request is _UNCHANGED and self._job is None)

    def _keep_going(self, frame):
        """For a stream frame: a check, asked between layers, that no newer stream frame has been
        answered meanwhile (by the other lane): once one has, this frame's answer would never be
        shown, and stopping frees the lane for the newest frame. None for other requests."""
        _, _, stream, seq = frame
        return (lambda: self._newest_answered < seq) if stream else None

    def _deliver(self, frame, result: Result | None) -> None:
        """Emit a frame's result; an abandoned pass (None) is reported as superseded."""
        tag, _, stream, seq = frame
        with self._cond:
            if result is None:
                self.abandoned += 1
            else:
                self.processed += 1
                if stream:
                    self._newest_answered = max(self._newest_answered, seq)
        if result is None:
            self.superseded.emit(tag)
        else:
            self.result_ready.emit(result)

    def _load(self, request: _ModelRequest, resize: str):
        """Load and warm up the model; returns the (signal, value) that announces the outcome."""
        start = time.perf_counter()
        try:
            net = engine.Network.load(request.cfg, request.weights)
            net.warm_up()   # the first forward loads the Numba kernels: here, not on the first frame
            # darknet's imagenet.shortnames.list has 21842 lines; a 1000-class net uses the first
            # 1000 (load_names keeps them). Too few names is an error, reported like any other.
            names = engine.load_names(request.names, net.classes) if request.names else None
            classifier = self._make_classifier(net, names, resize)
        except (engine.EngineError, OSError, ValueError) as exc:
            return self.model_failed, _one_line(exc)
        self._net, self._names, self._classifier = net, names, classifier
        self._live = (net, names)
        self._info = _model_info(net, cfg=request.cfg, weights=request.weights, names=request.names,
                                 key=request.key, load_seconds=time.perf_counter() - start)
        return self.model_loaded, self._info

    def _use_taught(self, model: teach.TaughtModel | None, resize: str):
        """Make `model` (None: the loaded model) the live classifier. Should the taught network not
        build, the loaded model stays live, and classifier_changed says so (returned as the
        (signal, value) to emit; None without a loaded model)."""
        if self._net is None:
            return None
        self._live, info = (self._net, self._names), self._info
        if model is not None:
            start = time.perf_counter()
            try:
                net = model.network(TAUGHT_NAME)
            except (engine.EngineError, ValueError):
                net = None
            if net is not None:
                self._live = (net, list(model.classes))
                info = _model_info(net, cfg="", weights="", names=None, key=None,
                                   load_seconds=time.perf_counter() - start, taught=True)
        self._classifier = self._make_classifier(*self._live, resize)
        return self.classifier_changed, info

    def _run_job(self, job: Job, resize: str, stream_resize: str) -> None:
        def report(stage: str, done: int, total: int, detail=None) -> None:
            self.job_progress.emit(JobProgress(job.id, stage, int(done), int(total), detail))

        request = job.request
        try:
            if isinstance(request, TeachRequest):
                if self._feature_cache is None:
                    self._feature_cache = jobs.feature_cache()
                value = jobs.run_teach(request, self._net, resize, self._feature_cache, report,
                                       job.cancel_event, stream_resize)
            elif isinstance(request, ExportRequest):
                value = jobs.run_export(request)
            elif isinstance(request, ClassifyFolderRequest):
                net, names = self._live or (None, None)
                value = jobs.run_classify_folder(request, self._classifier, names,
                                                 net.classes if net is not None else 0,
                                                 use_labels=net is self._net, report=report,
                                                 cancel=job.cancel_event)
            else:
                raise TypeError(f"unknown job {request!r}")
            done = JobDone(job.id, value, cancelled=job.cancelled)
        except teach.Cancelled:
            done = JobDone(job.id, cancelled=True)
        except (engine.EngineError, OSError, ValueError) as exc:
            done = JobDone(job.id, error=_one_line(exc))
        except Exception as exc:  # noqa: BLE001 - the thread must live and the GUI must hear the job end
            done = JobDone(job.id, error=f"unexpected {type(exc).__name__}: {_one_line(exc)}")
        with self._cond:
            self._running_job = None
        self.job_finished.emit(done)


class _StreamLane(threading.Thread):
    """The second thread for stream frames; it sleeps on the worker's condition and takes the
    pending frame when it is a stream frame and no load, switch or job is in hand."""

    def __init__(self, worker: InferenceWorker):
        super().__init__(name="tdn-stream-lane", daemon=True)
        self._worker = worker
        self.processed = 0

    def run(self) -> None:
        w = self._worker
        set_threads(max_threads() // 2)
        while True:
            with w._cond:
                while not (w._stopping or w._lane_may_take()):
                    w._cond.wait()
                if w._stopping:
                    return
                frame, w._pending = w._pending, None
                classifier, generation = w._lane_classifier, w._generation
            result = _classify(classifier, frame[0], frame[1], w._keep_going(frame))
            with w._cond:
                stale = generation != w._generation    # the model changed meanwhile
            if not stale:
                self.processed += result is not None
                w._deliver(frame, result)


def _classify(classifier, tag: Hashable, image: np.ndarray, keep_going=None) -> Result | None:
    """The Result for one image; None when keep_going stopped the pass."""
    if classifier is None:
        return Result(tag, error="no model is loaded")
    try:
        pred = classifier.classify(image, keep_going=keep_going)
        if pred is None:
            return None
        top = tuple((int(i), str(n), float(p)) for i, n, p in pred.top(TOP_K))
        return Result(tag, top, float(pred.seconds))
    except (engine.EngineError, ValueError) as exc:
        return Result(tag, error=_one_line(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must show as a message, not end the lane
        return Result(tag, error=f"unexpected {type(exc).__name__}: {_one_line(exc)}")


def _model_info(net, *, cfg: str, weights: str, names: str | None, key: str | None,
                load_seconds: float, taught: bool = False) -> ModelInfo:
    return ModelInfo(name=net.name, input_size=tuple(net.input_size), bflops=float(net.bflops),
                     params=int(net.param_count), any_size=bool(net.any_size), classes=int(net.classes),
                     threads=int(engine.threads()), cfg=cfg, weights=weights, names=names, key=key,
                     load_seconds=load_seconds, taught=taught)


def _checked_mode(mode: str) -> str:
    if mode not in engine.RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; choose one of {engine.RESIZE_MODES}")
    return mode


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def model_summary(info: ModelInfo) -> str:
    """The status bar's line for a loaded model (model_details has the rest)."""
    w, h = info.input_size
    size = f"{w}×{h}" + (" (any size)" if info.any_size else "")
    return f"{info.name} · {size} · {info.bflops:.2f} BFLOPs"


def model_details(info: ModelInfo) -> str:
    """The same model in full, for the status bar's tooltip."""
    names = "taught" if info.taught else Path(info.names).name if info.names else "no names"
    files = "" if info.taught else f"\n{info.cfg}\n{info.weights}"
    return (f"{model_summary(info)} · {info.params:,} params · {info.classes} classes ({names}) · "
            f"{info.threads} threads{files}")
