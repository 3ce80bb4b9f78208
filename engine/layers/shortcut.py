"""[shortcut]: residual add of an earlier layer's output into the previous layer's.

darknet's version also adds layers of different size: the larger is sampled with a stride,
and only the channels both have are added (resnet18's downsampling blocks rely on it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels, memory
from ..activations import activation_code
from .base import Layer, Shape, relative_index


@dataclass(frozen=True)
class Shortcut(Layer):
    source: int = 0                 # absolute index of the `from` layer
    alpha: float = 1.0              # weight of the previous layer's output
    beta: float = 1.0               # weight of the `from` layer's output
    activation: int = 0
    activation_name: str = "linear"

    kind = "shortcut"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Shortcut":
        source = relative_index(s, "from", s.get_int("from"), index)
        name = s.get_str("activation", "linear")
        return cls(index, where, source, s.get_float("alpha", 1.0), s.get_float("beta", 1.0),
                   activation_code(name, s), name.lower())

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        src_h, src_w, src_c = shapes[self.source]
        h, w, c = in_shape
        # darknet asserts the same whole-number size ratio along both axes
        if src_w // w != src_h // h or w // src_w != h // src_h:
            raise self.shape_error(f"cannot add layer {self.source}'s {src_w}x{src_h}x{src_c} output "
                                   f"to a {w}x{h}x{c} one")
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
            kernels.shortcut_add(outputs[self.source], np.float32(self.alpha), np.float32(self.beta),
                                 self.activation, out[:n])
            return out[:n]
        return shortcut
