"""[avgpool]: darknet's global average pool, (h, w, c) → (1, 1, c)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from .base import Layer, Shape


@dataclass(frozen=True)
class Avgpool(Layer):
    kind = "avgpool"

    @classmethod
    def parse(cls, s, index: int, where: str) -> "Avgpool":
        return cls(index, where)

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        return (1, 1, in_shape[2])

    def summary_row(self, in_shape, out_shape):
        return ("avg", "", "")

    def make_step(self, in_shape, out_shape, batch, prepared):
        out = np.empty((batch, 1, 1, in_shape[2]), np.float32)

        def avgpool(x, outputs):
            n = x.shape[0]
            kernels.global_avgpool(x, out[:n])
            return out[:n]
        return avgpool
