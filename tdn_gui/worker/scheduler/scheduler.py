"""The Scheduler: the inference thread, the stream lane, and the state they share.

Everything that runs kernels runs on the inference thread: loading and warming up a model,
switching to a taught model or another resize mode, jobs, and classify requests. Stream frames
may also go to the second lane (see threads.py for when). The two threads sleep on one condition;
callers on any thread post work under it and wake them:

- `submit` overwrites the mailbox's single pending request (mailbox.py): the newest wins, and the
  one it replaced is reported as superseded;
- `load_model`, `set_taught` and `set_resize` post a switch: a switch goes before the work meant
  for it, and the stream lane waits while one is in hand;
- `start_job` queues one job at a time (`busy` says whether one is queued or running); while it
  runs, stream frames go on in the stream lane (a teach job's fine-tuning takes tens of seconds,
  and the live panel stays live), other requests wait for it;
- `stop` sets a flag, cancels the job in hand, wakes both threads and joins them.

Whenever the kernels' status changes (a fresh install's compile finishing), it is reported; while
it may still change, an idle inference thread looks every KERNEL_LOOK_SECONDS. Reports go through
plain callbacks (Reports), called on the thread that has the news and never with the lock held.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
from engine import check_resize_mode, kernels, memory, teach

from . import jobs, threads
from .jobs import Job, JobContext
from .mailbox import Counts, Mailbox, Request
from .models import LoadFailed, MakeClassifier, ModelRequest, Models, answer

KERNEL_LOOK_SECONDS = 0.5  # while the compiled kernels arrive: how often an idle thread looks
TRIM_SECONDS = 30.0  # while classifying: how often freed memory goes back to the system
# (memory.trim: ~3 ms the first time, then ~0.2; the soak crept +7 to
# +14 MB per 2.5 minutes at 60 fps without it)
UNCHANGED = object()  # the taught-model slot when no switch to or from one is pending


def _ignore(_value) -> None:
    pass


@dataclass(frozen=True)
class Reports:
    """Where the scheduler's news goes; each callback takes one value."""

    result_ready: Callable = _ignore  # Result
    model_loaded: Callable = _ignore  # LoadedModel
    model_failed: Callable = _ignore  # one-line reason
    superseded: Callable = _ignore  # the tag of a request that will get no Result
    classifier_changed: Callable = _ignore  # LoadedModel of the live classifier after set_taught
    job_progress: Callable = _ignore  # JobProgress
    job_finished: Callable = _ignore  # JobDone, exactly one per job that started
    kernels_changed: Callable = _ignore  # engine.kernels.KernelStatus


@dataclass(frozen=True)
class _Turn:
    """What one turn of the inference thread does: a switch, else a job, else a request."""

    resize: str  # the modes as they stand at the turn
    stream_resize: str
    tta: tuple[bool, bool] = (False, False)  # test-time augmentation: images, stream frames
    model: ModelRequest | None = None
    taught: object = UNCHANGED  # a TaughtModel, None (back to the loaded model) or UNCHANGED
    resize_changed: bool = False
    job: Job | None = None
    request: Request | None = None

    @property
    def switches(self) -> bool:
        return self.model is not None or self.taught is not UNCHANGED or self.resize_changed


class Scheduler:
    def __init__(
        self,
        reports: Reports = Reports(),
        make_classifier: MakeClassifier | None = None,
        resize: str = "min",
        stream_resize: str = "letterbox",
    ):
        self._reports = reports
        self._cond = threading.Condition()
        # Guarded by the condition:
        self._mailbox = Mailbox()
        self._model_request: ModelRequest | None = None
        self._taught_request = UNCHANGED
        self._resize = check_resize_mode(resize)
        self._stream_resize = check_resize_mode(stream_resize)
        self._tta = False  # test-time augmentation, images / stream frames
        self._stream_tta = False
        self._resize_changed = False
        self._job: Job | None = None  # queued, not started
        self._running_job: Job | None = None
        self._lane_paused = False  # a switch is in hand: the lane waits
        self._lane_classifier = None  # the stream lane's copy of the live classifier
        self._generation = 0  # bumped at every lane refresh: stale lane results are dropped
        self._lane_processed = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lane: threading.Thread | None = None
        # The inference thread's own:
        self._models = Models(make_classifier)
        self._kernels = None  # the KernelStatus last reported
        self._trimmed = time.monotonic()  # when freed memory last went back (memory.trim)
        self._features: teach.FeatureCache | None = None

    # ---- any thread ------------------------------------------------------------------------------
    def submit(self, tag: Hashable, image: np.ndarray, stream: bool = False, heatmap: bool = False) -> None:
        """Post an (H, W, 3) RGB image (float 0..1 or uint8); replaces any request not yet taken.
        stream: a frame of live video, which the stream lane may take. heatmap: the Result also
        carries every class's map (or, for a network without maps, the one line saying why)."""
        with self._cond:
            replaced = self._mailbox.post(tag, image, stream, heatmap)
            self._cond.notify_all()
        if replaced is not None:
            self._reports.superseded(replaced.tag)

    def load_model(self, cfg, weights, names=None, key: str | None = None) -> None:
        """Load a model (it replaces any taught one); answers with model_loaded or model_failed."""
        request = ModelRequest(str(cfg), str(weights), str(names) if names else None, key)
        with self._cond:
            self._model_request = request
            self._taught_request = UNCHANGED
            self._cond.notify_all()

    def set_taught(self, model: teach.TaughtModel | None) -> None:
        """Classify with a taught model from now on, or (None) with the loaded model again;
        answers with classifier_changed."""
        with self._cond:
            self._taught_request = model
            self._cond.notify_all()

    def set_resize(self, mode: str, stream: bool = False) -> None:
        """The resize mode from now on for images (and jobs), or with stream=True for stream frames."""
        mode = check_resize_mode(mode)
        with self._cond:
            if stream:
                self._stream_resize = mode
            else:
                self._resize = mode
            self._resize_changed = True
            self._cond.notify_all()

    def set_tta(self, on: bool, stream: bool = False) -> None:
        """Test-time augmentation on or off from now on for images (and folder runs), or with
        stream=True for stream frames (models.TTA_ON)."""
        with self._cond:
            if stream:
                self._stream_tta = on
            else:
                self._tta = on
            self._resize_changed = True
            self._cond.notify_all()

    def start_job(self, request) -> Job:
        """Queue a long job (jobs.py); one at a time: RuntimeError while one is queued or running."""
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

    @property
    def pending(self) -> int:
        """Requests posted and not yet taken: 0 or 1."""
        with self._cond:
            return 0 if self._mailbox.pending is None else 1

    @property
    def lanes(self) -> int:
        """How many threads classify stream frames: 2 with the stream lane running, else 1."""
        return 2 if self._lane is not None else 1

    def counts(self) -> Counts:
        with self._cond:
            m = self._mailbox
            return Counts(m.submitted, m.processed, m.dropped, m.abandoned, self._lane_processed)

    def start(self) -> None:
        """Start the inference thread (once; the stream lane starts when it may)."""
        with self._cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run_inference, name="tdn-inference", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End both threads and wait for them; requests already in a lane finish first."""
        with self._cond:
            self._stopping = True
            self._mailbox.take()
            for job in (self._job, self._running_job):
                if job is not None:
                    job.cancel()  # a job checks between batches: stopping never waits long
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._lane is not None:  # only the inference thread starts it, and it has ended
            self._lane.join()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def threads(self) -> list[threading.Thread]:
        """The threads started so far (the inference thread, then the stream lane)."""
        return [t for t in (self._thread, self._lane) if t is not None]

    # ---- the inference thread --------------------------------------------------------------------
    def _run_inference(self) -> None:
        while True:
            self._look_at_kernels()
            with self._cond:
                if not self._wait_for_work():
                    continue
                if self._stopping:
                    return
                turn = self._take_turn()
            threads.use_every_core()
            if turn.switches:
                self._switch(turn)
            if turn.job is not None:
                self._run_job(turn)
            if turn.request is not None:
                self._classify_here(turn.request)
                if time.monotonic() - self._trimmed > TRIM_SECONDS:
                    memory.trim()  # for both lanes and the capture: one process
                    self._trimmed = time.monotonic()

    def _has_switch(self) -> bool:
        return self._model_request is not None or self._resize_changed or self._taught_request is not UNCHANGED

    def _wait_for_work(self) -> bool:
        """Called with the condition held: sleep until there is something to do (True), or, while
        the compiled kernels may still arrive, until it is time to look at them again (False)."""
        while not (self._stopping or self._has_switch() or self._job is not None or self._mailbox.pending is not None):
            settling = self._kernels is None or (self._kernels.path != "compiled" and self._kernels.compiling)
            if not self._cond.wait(KERNEL_LOOK_SECONDS if settling else None):
                return False
        return True

    def _take_turn(self) -> _Turn:
        """Called with the condition held."""
        modes = (self._resize, self._stream_resize)
        if self._has_switch():  # a switch goes before the work meant for it
            turn = _Turn(
                *modes,
                tta=(self._tta, self._stream_tta),
                model=self._model_request,
                taught=self._taught_request,
                resize_changed=self._resize_changed,
            )
            self._model_request, self._taught_request, self._resize_changed = None, UNCHANGED, False
        elif self._job is not None:
            self._running_job, self._job = self._job, None
            turn = _Turn(*modes, job=self._running_job)
        else:
            turn = _Turn(*modes, request=self._mailbox.take())
        # a switch changes what the lane classifies with: it waits for it. A job runs on networks
        # of its own (a teach job's backbone, a folder run's batches), so the lane goes on.
        self._lane_paused = turn.switches
        return turn

    def _switch(self, turn: _Turn) -> None:
        news = []  # reported once both lanes have the new classifier
        self._models.tta, self._models.stream_tta = turn.tta
        if turn.model is not None:
            try:
                news.append((self._reports.model_loaded, self._models.load(turn.model, turn.resize)))
            except LoadFailed as exc:
                news.append((self._reports.model_failed, str(exc)))
        if turn.taught is not UNCHANGED:
            live = self._models.use_taught(turn.taught, turn.resize)
            if live is not None:
                news.append((self._reports.classifier_changed, live))
        elif turn.resize_changed:
            self._models.use_resize(turn.resize)
        self._models.use_stream_resize(turn.resize, turn.stream_resize)
        self._refresh_lane(turn.stream_resize)
        if turn.model is not None or turn.taught is not UNCHANGED:
            memory.give_back()  # the model replaced: its weights and plans go back to the system
        for report, value in news:
            report(value)

    def _run_job(self, turn: _Turn) -> None:
        context = JobContext(self._models, turn.resize, turn.stream_resize, self._feature_cache)
        done = jobs.run_job(turn.job, context, self._reports.job_progress)
        memory.give_back()  # a teach job's feature passes, a folder run's batches
        with self._cond:
            self._running_job = None
            self._cond.notify_all()
        self._reports.job_finished(done)

    def _feature_cache(self) -> teach.FeatureCache:
        """One cache for every teach job: it keeps the features in memory too."""
        if self._features is None:
            self._features = teach.user_feature_cache()
        return self._features

    def _classify_here(self, request: Request) -> None:
        if request.stream and self._lane is not None:
            threads.use_lane_share()
        keep_going = self._mailbox.keep_going(request)
        self._deliver(request, answer(self._models.classifier_for(request), request, keep_going))

    def _look_at_kernels(self) -> None:
        """Report the kernels' status when it has changed; once compiled kernels have run, give
        stream frames their second lane where the thread policy allows it."""
        status = kernels.status()
        if status != self._kernels:
            self._kernels = status
            self._reports.kernels_changed(status)
        if self._lane is None and self._models.loaded and threads.second_lane_allowed(status):
            with self._cond:
                stream_resize = self._stream_resize
            self._refresh_lane(stream_resize)

    def _refresh_lane(self, stream_resize: str) -> None:
        """Give the stream lane a copy of the live classifier (starting the lane the first time),
        or none where the thread policy allows no second lane."""
        lane_classifier = None
        if threads.second_lane_allowed(kernels.status()):
            lane_classifier = self._models.lane_classifier(stream_resize)
        with self._cond:
            self._lane_classifier = lane_classifier
            self._generation += 1
            self._lane_paused = False
            if lane_classifier is not None and self._lane is None and not self._stopping:
                self._lane = threading.Thread(target=self._run_lane, name="tdn-stream-lane", daemon=True)
                self._lane.start()
            self._cond.notify_all()

    # ---- both lanes ------------------------------------------------------------------------------
    def _deliver(self, request: Request, result) -> None:
        """Report a request's Result; an abandoned pass (None) is reported as superseded."""
        with self._cond:
            self._mailbox.answered(request, result)
        if result is None:
            self._reports.superseded(request.tag)
        else:
            self._reports.result_ready(result)

    # ---- the stream lane -------------------------------------------------------------------------
    def _lane_may_take(self) -> bool:
        """Called with the condition held: a stream frame waits and nothing else is in hand."""
        pending = self._mailbox.pending
        return (
            pending is not None
            and pending.stream
            and self._lane_classifier is not None
            and not self._lane_paused
            and not self._has_switch()
            and self._job is None
        )

    def _run_lane(self) -> None:
        threads.use_lane_share()
        while True:
            with self._cond:
                while not (self._stopping or self._lane_may_take()):
                    self._cond.wait()
                if self._stopping:
                    return
                request = self._mailbox.take()
                classifier, generation = self._lane_classifier, self._generation
            result = answer(classifier, request, self._mailbox.keep_going(request))
            with self._cond:
                stale = generation != self._generation  # the model changed meanwhile: drop it
                if not stale and result is not None:
                    self._lane_processed += 1
            if not stale:
                self._deliver(request, result)
