"""Images in, ranked classes out: preprocessing, forward pass and class names together.
This is what the CLI and the GUI's worker call."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EngineError
from .image import check_resize_mode, fit_input, image_from_array
from .network import Network


class NamesError(EngineError):
    """A class-names file that cannot be used with the network."""


def load_names(path: str | Path, classes: int | None = None) -> list[str]:
    """One class name per line. darknet's ImageNet list has 21,842 lines, of which the
    first 1000 are the 1000 classes in weight order: so keep the first `classes` lines."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise NamesError(f"{path}: cannot read class names: {exc.strerror or exc}") from None
    names = [line.strip() for line in lines]
    if classes is not None:
        if len(names) < classes:
            raise NamesError(f"{path}: has {len(names)} names but the network has {classes} classes")
        names = names[:classes]
    return names


def class_name(names: list[str] | None, index: int) -> str:
    return names[index] if names and index < len(names) else f"class {index}"


@dataclass(frozen=True)
class Prediction:
    probs: np.ndarray            # (classes,) float32
    names: tuple[str, ...] | None
    seconds: float               # preprocessing + forward
    input_shape: tuple[int, int]  # (h, w) the network actually saw

    def top(self, k: int = 5) -> list[tuple[int, str, float]]:
        """(index, name, probability), best first; ties keep the lower index first."""
        k = min(k, self.probs.size)
        order = np.argsort(-self.probs, kind="stable")[:k]
        return [(int(i), class_name(self.names, int(i)), float(self.probs[i])) for i in order]


class Classifier:
    def __init__(self, net: Network, names: list[str] | None = None, resize: str = "min"):
        check_resize_mode(resize)
        if names is not None and len(names) < net.classes:
            raise NamesError(f"{len(names)} class names for a network with {net.classes} classes")
        self.net = net
        self.names = tuple(names[:net.classes]) if names is not None else None
        self.resize = resize

    def preprocess(self, image: np.ndarray, resize: str | None = None) -> np.ndarray:
        """The network's input for an image, by this classifier's resize mode or `resize`."""
        w, h = self.net.input_size
        return fit_input(image_from_array(image), resize or self.resize, w, h, free_size=self.net.any_size)

    def classify(self, image: np.ndarray, keep_going=None) -> Prediction | None:
        """image: (h, w, 3) RGB, float32 in 0..1 or uint8. None when keep_going (asked between
        layers, see Network.forward) said to stop."""
        start = time.perf_counter()
        x = self.preprocess(image)
        probs = self.net.predict(x, keep_going)
        if probs is None:
            return None
        return Prediction(probs, self.names, time.perf_counter() - start, x.shape[:2])

    def classify_batch(self, inputs: np.ndarray) -> list[Prediction]:
        """Already-prepared inputs of one shape, (n, h, w, 3): one forward pass for all."""
        start = time.perf_counter()
        probs = self.net.predict(inputs)
        each = (time.perf_counter() - start) / max(len(inputs), 1)
        return [Prediction(p, self.names, each, inputs.shape[1:3]) for p in probs]
