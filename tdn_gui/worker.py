"""The one thread that runs inference.

Numba's parallel kernels must never run on two threads at once, so the network, its Classifier and
every call into them (loading and warm-up included) live here. The GUI talks to this thread through
a mailbox: ``submit`` overwrites a single pending slot (the newest frame wins, so a slow model
drops frames instead of building a queue), the thread sleeps on a condition until something is
posted, computes, and emits an immutable result. ``stop`` sets a flag, wakes the thread and waits.
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

TOP_K = 5


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


@dataclass(frozen=True)
class _ModelRequest:
    cfg: str
    weights: str
    names: str | None
    key: str | None


def _default_classifier(net, names, resize):
    return engine.Classifier(net, names=names, resize=resize)


class InferenceWorker(QThread):
    """Owns the network; see the module docstring for the protocol."""

    result_ready = Signal(object)   # Result
    model_loaded = Signal(object)   # ModelInfo
    model_failed = Signal(str)      # one-line reason
    superseded = Signal(object)     # tag of a request that a newer submit replaced before it ran

    def __init__(self, make_classifier: Callable | None = None, resize: str = "min", parent=None):
        super().__init__(parent)
        self.setObjectName("tdn-inference")
        self._make_classifier = make_classifier or _default_classifier
        self._cond = threading.Condition()
        # Everything below the condition is guarded by it.
        self._pending: tuple[Hashable, np.ndarray] | None = None
        self._model_request: _ModelRequest | None = None
        self._resize = resize
        self._resize_changed = False
        self._stopping = False
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.max_pending = 0
        # Owned by the worker thread only.
        self._net = None
        self._names: list[str] | None = None
        self._classifier = None

    # ---- GUI-thread side -------------------------------------------------------------------
    def submit(self, tag: Hashable, image: np.ndarray) -> None:
        """Post an (H, W, 3) RGB image (float 0..1 or uint8); replaces any request not yet started."""
        with self._cond:
            replaced = self._pending
            self._pending = (tag, image)
            self.submitted += 1
            if replaced is not None:
                self.dropped += 1
            self.max_pending = max(self.max_pending, 0 if self._pending is None else 1)
            self._cond.notify()
        if replaced is not None:  # outside the lock: a receiver may well submit again
            self.superseded.emit(replaced[0])

    def load_model(self, cfg, weights, names=None, key: str | None = None) -> None:
        """Ask the worker to load a model; answers with model_loaded or model_failed."""
        request = _ModelRequest(str(cfg), str(weights), str(names) if names else None, key)
        with self._cond:
            self._model_request = request
            self._cond.notify()

    def set_resize(self, mode: str) -> None:
        if mode not in engine.RESIZE_MODES:
            raise ValueError(f"unknown resize mode {mode!r}; choose one of {engine.RESIZE_MODES}")
        with self._cond:
            self._resize = mode
            self._resize_changed = True
            self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return 0 if self._pending is None else 1

    def stop(self) -> None:
        """Ask the loop to end and wait for it; the current request finishes first."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify()
        if self.isRunning():
            self.wait()

    # ---- worker-thread side ----------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._model_request or self._resize_changed
                           or self._pending is not None):
                    self._cond.wait()
                if self._stopping:
                    return
                request, self._model_request = self._model_request, None
                resize_changed, self._resize_changed = self._resize_changed, False
                resize = self._resize
                job = None
                if request is None:  # a model switch goes before the frames meant for it
                    job, self._pending = self._pending, None
            if request is not None:
                self._load(request, resize)
            elif resize_changed and self._net is not None:
                self._classifier = self._make_classifier(self._net, self._names, resize)
            if job is not None:
                self._classify(*job)

    def _load(self, request: _ModelRequest, resize: str) -> None:
        start = time.perf_counter()
        try:
            net = engine.Network.load(request.cfg, request.weights)
            # The first forward compiles the Numba kernels: do it here, not on the first frame.
            w, h = net.input_size
            warm = self._make_classifier(net, None, resize).classify(np.zeros((h, w, 3), np.float32))
            classes = int(warm.probs.size)
            # darknet's imagenet.shortnames.list has 21842 lines; a 1000-class net uses the first
            # 1000 (load_names keeps them). Too few names is an error, reported like any other.
            names = engine.load_names(request.names, classes) if request.names else None
            classifier = self._make_classifier(net, names, resize)
        except (engine.EngineError, OSError, ValueError) as exc:
            self.model_failed.emit(_one_line(exc))
            return
        self._net, self._names, self._classifier = net, names, classifier
        self.model_loaded.emit(ModelInfo(
            name=net.name, input_size=tuple(net.input_size), bflops=float(net.bflops),
            params=_param_count(net), any_size=bool(net.any_size), classes=classes,
            threads=int(engine.threads()), cfg=request.cfg, weights=request.weights,
            names=request.names, key=request.key, load_seconds=time.perf_counter() - start))

    def _classify(self, tag: Hashable, image: np.ndarray) -> None:
        if self._classifier is None:
            result = Result(tag, error="no model is loaded")
        else:
            try:
                pred = self._classifier.classify(image)
                top = tuple((int(i), str(n), float(p)) for i, n, p in pred.top(TOP_K))
                result = Result(tag, top, float(pred.seconds))
            except (engine.EngineError, ValueError) as exc:
                result = Result(tag, error=_one_line(exc))
        with self._cond:
            self.processed += 1
        self.result_ready.emit(result)


def _param_count(net) -> int:
    # The contract names it `params`; the engine's Network also has `param_count` (an int) and may
    # keep `params` for the weight arrays themselves. Take whichever is the number.
    count = getattr(net, "param_count", None)
    return int(count if isinstance(count, int) else net.params)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def model_summary(info: ModelInfo) -> str:
    """The status-bar line for a loaded model."""
    w, h = info.input_size
    size = f"{w}×{h}" + (" (any size)" if info.any_size else "")
    names = Path(info.names).name if info.names else "no names"
    return (f"{info.name} · {size} · {info.bflops:.2f} BFLOPs · {info.params:,} params · "
            f"{info.classes} classes ({names}) · {info.threads} threads")
