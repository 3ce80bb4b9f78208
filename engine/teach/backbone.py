"""The frozen part: the base network cut after feature layer L, pooled over space."""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..classify import Classifier
from ..network import Network
from ..spec import NetworkSpec, parse_network
from .errors import TeachError

FEATURE_FORMAT = 1          # bump when preprocessing or pooling changes: old cache entries then miss
FEATURE_KINDS = ("convolutional", "connected", "maxpool", "avgpool", "route", "shortcut")


def default_layer(spec: NetworkSpec) -> int:
    """The last [convolutional] before the final layer with weights (the base's classifier):
    tiny's 128-channel 1×1 conv (18), darknet's 1024-channel 3×3 conv before its avgpool."""
    weighted = [layer.index for layer in spec.layers if layer.kind in ("convolutional", "connected")]
    end = weighted[-1] if weighted else len(spec.layers)
    convs = [layer.index for layer in spec.layers[:end] if layer.kind == "convolutional"]
    if not convs:
        raise TeachError(f"{spec.path}: no [convolutional] layer before the classifier: choose a layer")
    return convs[-1]


def check_layer(spec: NetworkSpec, layer: int) -> int:
    count = len(spec.layers)
    usable = [item.index for item in spec.layers if item.kind in FEATURE_KINDS]
    if not 0 <= layer < count:
        raise TeachError(f"{spec.path}: there is no layer {layer}: the network has layers 0-{count - 1} "
                         f"(feature layers: {_ranges(usable)})")
    kind = spec.layers[layer].kind
    if kind not in FEATURE_KINDS:
        raise TeachError(f"{spec.layers[layer].where}: layer {layer} is a [{kind}], which gives no "
                         f"features: choose a [convolutional] layer (feature layers: {_ranges(usable)})")
    return layer


def _ranges(indices: Sequence[int]) -> str:
    """[0, 2, 4, 5, 6] → '0, 2, 4-6'."""
    parts, start = [], None
    for i, value in enumerate(indices):
        if start is None:
            start = value
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts) or "none"


class Backbone:
    """The base network cut after layer L: preprocessing + layers 0..L + spatial mean."""

    def __init__(self, base: Network, layer: int | None = None, resize: str = "min"):
        spec = base.spec
        self.layer = default_layer(spec) if layer is None else check_layer(spec, layer)
        self.cfg_path = Path(spec.path)
        try:
            self.cfg_text = self.cfg_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise TeachError(f"{spec.path}: cannot read the base cfg: {exc.strerror or exc}") from None
        if parse_network(spec.path, self.cfg_text).layers != spec.layers:
            raise TeachError(f"{spec.path} changed on disk since the network was loaded: load it again")
        cut = dataclasses.replace(spec, layers=spec.layers[:self.layer + 1],
                                  shapes=spec.shapes[:self.layer + 1])
        self.params = base.params[:self.layer + 1]
        self.header = base.header
        self.net = Network(cut, self.params, base.header)
        self.channels = spec.shapes[self.layer][2]
        self.resize = resize
        self._classifier = Classifier(self.net, None, resize)
        self.identity = self._identity()

    @classmethod
    def load(cls, cfg: str | Path, weights: str | Path, layer: int | None = None,
             resize: str = "min") -> "Backbone":
        return cls(Network.load(cfg, weights), layer, resize)

    def describe(self) -> str:
        h, w, c = self.net.spec.shapes[-1]
        item = self.net.spec.layers[-1]
        return (f"{self.cfg_path.name} layer {self.layer} [{item.kind}]: {c} channels "
                f"({w}x{h} at {self.net.input_size[0]}x{self.net.input_size[1]})")

    def prepare(self, image: np.ndarray, resize: str | None = None) -> np.ndarray:
        """The network input for an image: the base Classifier's preprocessing, by this
        backbone's resize mode or `resize`."""
        return self._classifier.prepare(image, resize)

    def pooled(self, inputs: np.ndarray) -> np.ndarray:
        """Prepared inputs (n, h, w, 3) of one shape → layer L's output averaged over space (n, c)."""
        out = self.net.features(inputs, self.layer)                         # (n, h', w', c)
        return out.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)

    def _identity(self) -> str:
        """What the features depend on: layers 0..L, their weights, input size, preprocessing."""
        digest = hashlib.sha256()
        spec = self.net.spec
        digest.update(repr((FEATURE_FORMAT, self.resize, spec.input_shape)).encode())
        for item in spec.layers:
            digest.update(repr(dataclasses.replace(item, where="")).encode())
        for arrays in self.params:
            for name in sorted(arrays):
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(arrays[name], "<f4").tobytes())
        return digest.hexdigest()
