"""Which features a taught head reads: one layer, or a [route] of layers of the same size.

Every head is a plain darknet model: the base network up to its last layer, a [route] when it
reads more than one, then [convolutional] 1×1 linear → [avgpool] → [softmax]. A linear 1×1
convolution commutes with the average pool, so the head trains on each image's spatially
averaged features and is exactly the exported network.

The candidates, most preferred first (teaching picks among them by cross-validation):
- a [route] of the conv before the default layer and the base classifier's logits (Tiny
  Darknet: layers 17 and 19, 512 + 1000 channels): mid-level features and what the base
  network already knows about its 1000 classes;
- the default layer (the last conv before the classifier: Tiny's layer 18, 128 channels);
- the base classifier's logits alone (Tiny's layer 19, before its average pool).
A network whose classifier is a [connected] layer has the default layer only.
"""

from __future__ import annotations

from dataclasses import dataclass

from collections.abc import Sequence

from ..spec import NetworkSpec
from .errors import TeachError

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
        raise TeachError(
            f"{spec.path}: there is no layer {layer}: the network has layers 0-{count - 1} "
            f"(feature layers: {_ranges(usable)})"
        )
    kind = spec.layers[layer].kind
    if kind not in FEATURE_KINDS:
        raise TeachError(
            f"{spec.layers[layer].where}: layer {layer} is a [{kind}], which gives no "
            f"features: choose a [convolutional] layer (feature layers: {_ranges(usable)})"
        )
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


@dataclass(frozen=True)
class Head:
    layers: tuple[int, ...]  # the layers it reads, in route order

    @property
    def label(self) -> str:
        """'17+19', '18': short, for tables."""
        return "+".join(map(str, self.layers))

    @property
    def last(self) -> int:
        return max(self.layers)

    def describe(self, spec: NetworkSpec) -> str:
        parts = []
        for layer in self.layers:
            channels = spec.shapes[layer][2]
            logits = " (the base classifier's logits)" if layer == classifier_layer(spec) else ""
            parts.append(f"layer {layer}{logits}, {channels} channels")
        if len(parts) == 1:
            return parts[0]
        return "[route] of " + " and ".join(parts)


def classifier_layer(spec: NetworkSpec) -> int | None:
    """The base network's classifier, when it is a [convolutional] (whose output a head can
    read at any input size): the last layer with weights."""
    weighted = [layer for layer in spec.layers if layer.kind in ("convolutional", "connected")]
    if weighted and weighted[-1].kind == "convolutional":
        return weighted[-1].index
    return None


def candidate_heads(spec: NetworkSpec) -> tuple[Head, ...]:
    """The heads teaching chooses among, most preferred first (see the module docstring)."""
    default = default_layer(spec)
    logits = classifier_layer(spec)
    heads = []
    if logits is not None and logits != default:
        size = spec.shapes[logits][:2]
        before = [
            layer.index
            for layer in spec.layers[:default]
            if layer.kind == "convolutional" and spec.shapes[layer.index][:2] == size
        ]
        if before:
            heads.append(Head((before[-1], logits)))
    heads.append(Head((default,)))
    if logits is not None and logits != default:
        heads.append(Head((logits,)))
    return tuple(heads)


def check_head(spec: NetworkSpec, layers) -> Head:
    """A head of the layers asked for (`--layer 17,19`): each must give features, and a route's
    layers must have the same width and height."""
    layers = tuple(int(layer) for layer in layers)
    if not layers:
        raise TeachError("no feature layer given")
    for layer in layers:
        check_layer(spec, layer)
    if len(set(layers)) != len(layers):
        raise TeachError(f"{spec.path}: layer {_repeated(layers)} is given twice")
    sizes = {spec.shapes[layer][:2] for layer in layers}
    if len(sizes) > 1:
        shown = ", ".join(f"layer {layer} is {spec.shapes[layer][1]}x{spec.shapes[layer][0]}" for layer in layers)
        raise TeachError(f"{spec.path}: a [route] needs layers of one size: {shown}")
    return Head(layers)


def _repeated(layers) -> int:
    return next(layer for layer in layers if layers.count(layer) > 1)
