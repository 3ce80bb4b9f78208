"""[shortcut]: residual add of an earlier layer's output into the previous layer's.

darknet's version also adds layers of different size: the larger is sampled with a stride,
and only the channels both have are added (resnet18's downsampling blocks rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels, memory
from ..activations import activation_code
from .base import Layer, Shape, TrainStep, relative_index


@dataclass(frozen=True)
class Shortcut(Layer):
    source: int = 0  # absolute index of the `from` layer
    alpha: float = 1.0  # weight of the previous layer's output
    beta: float = 1.0  # weight of the `from` layer's output
    activation: int = 0
    activation_name: str = "linear"

    kind = "shortcut"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Shortcut":
        source = relative_index(s, "from", s.get_int("from"), index)
        name = s.get_str("activation", "linear")
        return cls(
            index,
            where,
            source,
            s.get_float("alpha", 1.0),
            s.get_float("beta", 1.0),
            activation_code(name, s),
            name.lower(),
        )

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        src_h, src_w, src_c = shapes[self.source]
        h, w, c = in_shape
        # darknet asserts the same whole-number size ratio along both axes
        if src_w // w != src_h // h or w // src_w != h // src_h:
            raise self.shape_error(
                f"cannot add layer {self.source}'s {src_w}x{src_h}x{src_c} output to a {w}x{h}x{c} one"
            )
        return in_shape

    def summary_row(self, in_shape, out_shape):
        return ("shortcut", f"from {self.source}", "")

    def reads(self) -> tuple[int, ...]:
        return (self.source,)

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        out = memory.empty((batch,) + out_shape, np.float32)

        def shortcut(x, outputs):
            n = x.shape[0]
            np.copyto(out[:n], x)
            kernels.shortcut_add(
                outputs[self.source], np.float32(self.alpha), np.float32(self.beta), self.activation, out[:n]
            )
            return out[:n]

        return shortcut

    def train_step(self, in_shape, out_shape, batch, params, k) -> "ShortcutTrainStep":
        return ShortcutTrainStep(self, out_shape, batch, k)


def shortcut_regions(src_shape: Shape, out_shape: Shape) -> tuple:
    """The index pairs darknet's shortcut_cpu adds: (slices of the output, slices of the
    source), the larger map sampled with a stride, over the channels both have."""
    h1, w1, c1 = src_shape
    h2, w2, c2 = out_shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    mh, mw, mc = min(h1, h2), min(w1, w2), min(c1, c2)
    return (
        (slice(None), slice(0, mh * sample, sample), slice(0, mw * sample, sample), slice(0, mc)),
        (slice(None), slice(0, mh * stride, stride), slice(0, mw * stride, stride), slice(0, mc)),
    )


class ShortcutTrainStep(TrainStep):
    """darknet's shortcut in training: out = act(alpha*x + beta*source) where the two meet (x
    elsewhere); backward sends alpha*delta (delta where only x reached) to x and beta*delta to
    the source, at the cells it came from. darknet's backward scales all of x's delta by alpha,
    which differs only where alpha != 1 and the shapes differ."""

    def __init__(self, layer: Shortcut, out_shape, batch, k):
        self.layer, self.k = layer, k
        self.out = memory.empty((batch,) + out_shape, np.float32)

    def forward(self, x, outputs, train):
        layer, n = self.layer, x.shape[0]
        out = self.out[:n]
        np.copyto(out, x)
        at_out, at_src = shortcut_regions(outputs[layer.source].shape[1:], x.shape[1:])
        alpha, beta = np.float32(layer.alpha), np.float32(layer.beta)
        out[at_out] = alpha * out[at_out] + beta * outputs[layer.source][at_src]
        self.k.activate(out, layer.activation)
        return out

    def backward(self, delta, x, outputs, deltas, dx):
        layer, n = self.layer, x.shape[0]
        self.k.activation_gradient(self.out[:n], layer.activation, delta)
        at_out, at_src = shortcut_regions(outputs[layer.source].shape[1:], x.shape[1:])
        if dx is not None:
            dx += delta
            if layer.alpha != 1:
                dx[at_out] += np.float32(layer.alpha - 1) * delta[at_out]
        if deltas[layer.source] is not None:
            deltas[layer.source][:n][at_src] += np.float32(layer.beta) * delta[at_out]
