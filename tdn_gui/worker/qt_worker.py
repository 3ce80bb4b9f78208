"""InferenceWorker: the Scheduler as a QObject, its reports as Qt signals.

The scheduler calls its reports on its own threads; each is a signal's emit here, and Qt queues
it to the receivers' (GUI) thread. The views talk to this object only; it adds nothing to the
scheduler but the signals.
"""

from __future__ import annotations

from typing import Hashable

import numpy as np
from PySide6.QtCore import QObject, Signal

from .scheduler import Counts, Job, Reports, Scheduler


class InferenceWorker(QObject):
    result_ready = Signal(object)  # Result
    model_loaded = Signal(object)  # LoadedModel
    model_failed = Signal(str)  # one-line reason
    superseded = Signal(object)  # tag of a request that a newer one replaced, or overtook
    classifier_changed = Signal(object)  # LoadedModel of the live classifier after set_taught
    job_progress = Signal(object)  # JobProgress
    job_finished = Signal(object)  # JobDone, exactly one per job that started
    kernels_changed = Signal(object)  # engine.kernels.KernelStatus, whenever it changes

    def __init__(self, make_classifier=None, resize: str = "min", stream_resize: str = "letterbox", parent=None):
        super().__init__(parent)
        reports = Reports(
            result_ready=self.result_ready.emit,
            model_loaded=self.model_loaded.emit,
            model_failed=self.model_failed.emit,
            superseded=self.superseded.emit,
            classifier_changed=self.classifier_changed.emit,
            job_progress=self.job_progress.emit,
            job_finished=self.job_finished.emit,
            kernels_changed=self.kernels_changed.emit,
        )
        self.scheduler = Scheduler(reports, make_classifier, resize, stream_resize)

    def submit(self, tag: Hashable, image: np.ndarray, stream: bool = False, heatmap: bool = False) -> None:
        self.scheduler.submit(tag, image, stream, heatmap)

    def load_model(self, cfg, weights, names=None, key: str | None = None) -> None:
        self.scheduler.load_model(cfg, weights, names, key)

    def set_taught(self, model) -> None:
        self.scheduler.set_taught(model)

    def set_resize(self, mode: str, stream: bool = False) -> None:
        self.scheduler.set_resize(mode, stream)

    def set_tta(self, on: bool, stream: bool = False) -> None:
        self.scheduler.set_tta(on, stream)

    def start_job(self, request) -> Job:
        return self.scheduler.start_job(request)

    @property
    def busy(self) -> bool:
        return self.scheduler.busy

    @property
    def pending(self) -> int:
        return self.scheduler.pending

    @property
    def lanes(self) -> int:
        return self.scheduler.lanes

    def counts(self) -> Counts:
        return self.scheduler.counts()

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()

    def is_running(self) -> bool:
        return self.scheduler.is_running()
