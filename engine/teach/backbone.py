"""The frozen part: the base network up to the layers the heads read, pooled over space."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..classify import Classifier
from ..network import Network
from ..spec import parse_network
from .errors import TeachError
from .heads import Head, candidate_heads, check_head

FEATURE_FORMAT = 2  # bump when preprocessing or pooling changes: old cache entries then miss


class Backbone:
    """The base network up to the layers its candidate heads read: preprocessing, one forward
    pass, each of those layers' outputs averaged over space, side by side in one vector."""

    def __init__(self, base: Network, layers: int | Sequence[int] | None = None, resize: str = "min"):
        """layers: None for the candidate heads (teaching picks one); a layer, or layers for a
        [route], to force that head."""
        spec = base.spec
        if layers is None:
            self.heads = candidate_heads(spec)
        elif isinstance(layers, (int, np.integer)):
            self.heads = (check_head(spec, (int(layers),)),)
        else:
            self.heads = (check_head(spec, layers),)
        self.layers = tuple(sorted({layer for head in self.heads for layer in head.layers}))
        self.cfg_path = Path(spec.path)
        try:
            self.cfg_text = self.cfg_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise TeachError(f"{spec.path}: cannot read the base cfg: {exc.strerror or exc}") from None
        if parse_network(spec.path, self.cfg_text).layers != spec.layers:
            raise TeachError(f"{spec.path} changed on disk since the network was loaded: load it again")
        last = self.layers[-1]
        cut = dataclasses.replace(spec, layers=spec.layers[: last + 1], shapes=spec.shapes[: last + 1])
        self.spec = spec
        self.params = base.params[: last + 1]
        self.header = base.header
        self.net = Network(cut, self.params, base.header)
        widths = [spec.shapes[layer][2] for layer in self.layers]
        starts = np.cumsum([0] + widths)
        self.slices = {layer: slice(int(a), int(b)) for layer, a, b in zip(self.layers, starts, starts[1:])}
        self.channels = int(starts[-1])  # the width of a pooled feature vector
        self.resize = resize
        self._classifier = Classifier(self.net, None, resize)
        self.identity = self._identity()

    @classmethod
    def load(
        cls, cfg: str | Path, weights: str | Path, layers: int | Sequence[int] | None = None, resize: str = "min"
    ) -> "Backbone":
        return cls(Network.load(cfg, weights), layers, resize)

    def columns(self, head: Head) -> np.ndarray:
        """The columns of a pooled feature vector that `head` reads, in its route order."""
        return np.concatenate([np.arange(self.slices[layer].start, self.slices[layer].stop) for layer in head.layers])

    def describe(self) -> str:
        w, h = self.net.input_size
        heads = "; ".join(head.describe(self.spec) for head in self.heads)
        many = "candidate heads" if len(self.heads) > 1 else "head"
        return f"{self.cfg_path.name} at {w}x{h}, {many}: {heads}"

    def preprocess(self, image: np.ndarray, resize: str | None = None) -> np.ndarray:
        """The network input for an image: the base Classifier's preprocessing, by this
        backbone's resize mode or `resize`."""
        return self._classifier.preprocess(image, resize)

    def pooled(self, inputs: np.ndarray) -> np.ndarray:
        """Prepared inputs (n, h, w, 3) of one shape → each layer's output averaged over space,
        side by side: (n, channels) float32."""
        outputs = self.net.features_of(inputs, self.layers)  # [(n, h', w', c)]
        return np.concatenate([out.mean(axis=(1, 2), dtype=np.float64) for out in outputs], axis=1).astype(np.float32)

    def forget_plans(self) -> None:
        """Drop the buffers of the input shapes seen so far: teaching passes photos of many
        shapes, and a taught model keeps its backbone for as long as the app keeps the result."""
        self.net.forget_plans()

    def _identity(self) -> str:
        """What the features depend on: the layers read, layers 0..last, their weights, input
        size, preprocessing."""
        digest = hashlib.sha256()
        spec = self.net.spec
        digest.update(repr((FEATURE_FORMAT, self.resize, spec.input_shape, self.layers)).encode())
        for item in spec.layers:
            digest.update(repr(dataclasses.replace(item, where="")).encode())
        for arrays in self.params:
            for name in sorted(arrays):
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(arrays[name], "<f4").tobytes())
        return digest.hexdigest()
