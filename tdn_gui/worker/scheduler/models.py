"""The models the inference thread owns: the loaded model, the live classifier (the loaded model or
a taught one) by the images' and by the stream frames' resize mode, and the stream lane's copy.

Only the inference thread calls a Models (a network has one caller at a time); the stream lane
gets a classifier of its own over a replica of the network. A taught model answers frames with
the same Result as the loaded one, so the views show the taught classes in the same bars.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import engine
from engine import teach

from .mailbox import Request, Result

TOP_K = 5
TAUGHT_NAME = "taught"  # the taught network's name (it has no cfg file)


@dataclass(frozen=True)
class LoadedModel:
    """A model as the status bar and the settings need it: the loaded one, or a taught one."""

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
    taught: bool = False  # a model taught in the Teach view, held in memory (not in any file)


@dataclass(frozen=True)
class ModelRequest:
    cfg: str
    weights: str
    names: str | None
    key: str | None


class LoadFailed(Exception):
    """A model that would not load; str() is the one line to show."""


MakeClassifier = Callable[[engine.Network, "list[str] | None", str], engine.Classifier]


def engine_classifier(net, names, resize) -> engine.Classifier:
    return engine.Classifier(net, names=names, resize=resize)


# What "test-time augmentation on" means in the app: the mirror image and the larger scale where the
# network takes any size, the mirror alone where its size is fixed (engine.classify.TTA_CHOICES)
TTA_ON = ("flip", "scales")
TTA_FIXED_SIZE = ("flip",)


class Models:
    def __init__(self, make_classifier: MakeClassifier | None = None):
        self._make_plain = make_classifier or engine_classifier  # looked up now: a test or benchmark may swap it
        self.tta = False  # test-time augmentation for images (and folder runs)
        self.stream_tta = False  # for stream frames
        self.net = None  # the loaded model: what teaching builds on
        self.names: list[str] | None = None
        self.info: LoadedModel | None = None
        self.live = None  # (net, names) the classifiers run: the loaded or a taught one
        self.classifier = None  # by the images' resize mode (jobs use it too)
        self.stream_classifier = None  # the same model, by the stream frames' resize mode

    @property
    def loaded(self) -> bool:
        return self.live is not None

    def _make(self, net, names, resize: str, stream: bool = False):
        """A classifier of the live kind, with test-time augmentation when it is on for its view."""
        classifier = self._make_plain(net, names, resize)
        if self.stream_tta if stream else self.tta:
            try:
                classifier.use_tta(TTA_ON)
            except engine.EngineError:  # a fixed input size: no second scale
                classifier.use_tta(TTA_FIXED_SIZE)
        return classifier

    def load(self, request: ModelRequest, resize: str) -> LoadedModel:
        """Load and warm up a model and make it live; LoadFailed leaves the previous one live."""
        start = time.perf_counter()
        try:
            net = engine.Network.load(request.cfg, request.weights)
            net.warm_up()  # the first forward loads the Numba kernels: here, not on the first frame
            # a model too big to run at its own size is refused here, in one line, not at every image
            net.check_memory(1, net.spec.height, net.spec.width)
            # darknet's imagenet.shortnames.list has 21842 lines; a 1000-class net uses the first
            # 1000 (load_names keeps them). Too few names is an error, reported like any other.
            names = engine.load_names(request.names, net.classes) if request.names else None
            classifier = self._make(net, names, resize)
        except (engine.EngineError, OSError, ValueError) as exc:
            raise LoadFailed(engine.one_line(exc)) from exc
        self.net, self.names, self.classifier = net, names, classifier
        self.live = (net, names)
        self.info = describe(
            net,
            cfg=request.cfg,
            weights=request.weights,
            names=request.names,
            key=request.key,
            load_seconds=time.perf_counter() - start,
        )
        return self.info

    def use_taught(self, model: teach.TaughtModel | None, resize: str) -> LoadedModel | None:
        """Make `model` (None: the loaded model) the live classifier and return what is live now:
        should the taught network not build, the loaded model stays live. None without a loaded model."""
        if self.net is None:
            return None
        self.live, info = (self.net, self.names), self.info
        if model is not None:
            start = time.perf_counter()
            try:
                net = model.network(TAUGHT_NAME)
            except (engine.EngineError, ValueError):
                net = None
            if net is not None:
                self.live = (net, list(model.classes))
                info = describe(
                    net, cfg="", weights="", names=None, key=None, load_seconds=time.perf_counter() - start, taught=True
                )
        self.classifier = self._make(*self.live, resize)
        return info

    def use_resize(self, resize: str) -> None:
        """The live model again, by a new resize mode for images."""
        if self.live is not None:
            self.classifier = self._make(*self.live, resize)

    def use_stream_resize(self, resize: str, stream_resize: str) -> None:
        """Stream frames by their own mode: the same classifier when the modes agree."""
        self.stream_classifier = self.classifier
        if self.live is not None and (stream_resize != resize or self.stream_tta != self.tta):
            self.stream_classifier = self._make(*self.live, stream_resize, stream=True)

    def lane_classifier(self, stream_resize: str):
        """A classifier for the stream lane: the live model with buffers of its own; None without one."""
        if self.live is None:
            return None
        net, names = self.live
        return self._make(net.replica(), names, stream_resize, stream=True)

    def classifier_for(self, request: Request):
        return self.stream_classifier if request.stream else self.classifier

    def live_names(self) -> list[str] | None:
        return self.live[1] if self.live is not None else None

    def live_classes(self) -> int:
        return self.live[0].classes if self.live is not None else 0

    def live_is_loaded(self) -> bool:
        """The live classifier is the loaded model (not a taught one): its label files apply."""
        return self.live is not None and self.live[0] is self.net


def answer(classifier, request: Request, keep_going=None) -> Result | None:
    """The Result for one request; None when keep_going stopped the pass."""
    if classifier is None:
        return Result(request.tag, error="no model is loaded")
    try:
        note = None
        if request.heatmap:
            try:
                classifier.heatmap_source()
            except engine.NoHeatmap as exc:
                note = engine.one_line(exc)
        if request.heatmap and note is None:
            pred = classifier.classify(request.image, keep_going=keep_going, heatmap=True)
        else:
            pred = classifier.classify(request.image, keep_going=keep_going)
        if pred is None:
            return None
        top = tuple((int(i), str(n), float(p)) for i, n, p in pred.top(TOP_K))
        return Result(
            request.tag,
            top,
            float(pred.seconds),
            probs=pred.probs,
            names=pred.names,
            heatmap=pred.heatmap,
            heatmap_note=note,
        )
    except (engine.EngineError, ValueError) as exc:
        return Result(request.tag, error=engine.one_line(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must show as a message, not end the lane
        return Result(request.tag, error=f"unexpected {type(exc).__name__}: {engine.one_line(exc)}")


def describe(
    net, *, cfg: str, weights: str, names: str | None, key: str | None, load_seconds: float, taught: bool = False
) -> LoadedModel:
    return LoadedModel(
        name=net.name,
        input_size=tuple(net.input_size),
        bflops=float(net.bflops),
        params=int(net.param_count),
        any_size=bool(net.any_size),
        classes=int(net.classes),
        threads=int(engine.threads()),
        cfg=cfg,
        weights=weights,
        names=names,
        key=key,
        load_seconds=load_seconds,
        taught=taught,
    )
