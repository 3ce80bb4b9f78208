"""[avgpool]: darknet's global average pool, (h, w, c) → (1, 1, c). After a linear 1x1 conv it
runs first: both are linear maps, so the conv then works on one pixel (see commutes_with)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels, memory
from .base import Layer, Shape, TrainStep


@dataclass(frozen=True)
class Avgpool(Layer):
    kind = "avgpool"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Avgpool":
        return cls(index, where)

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        return (1, 1, in_shape[2])

    def summary_row(self, in_shape, out_shape):
        return ("avg", "", "")

    def commutes_with(self, previous: Layer) -> bool:
        """A linear 1x1 conv over each pixel alone: pooling first gives the same numbers (up to
        float rounding). Tiny Darknet's 1000-filter classifier, 50 MFLOPs at 14x14, becomes 0.26."""
        return previous.kind == "convolutional" and previous.pointwise_linear

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        out = memory.empty((batch, 1, 1, in_shape[2]), np.float32)

        def avgpool(x, outputs):
            n = x.shape[0]
            kernels.global_avgpool(x, out[:n])
            return out[:n]

        return avgpool

    def train_step(self, in_shape, out_shape, batch, params, k) -> "AvgpoolTrainStep":
        return AvgpoolTrainStep(in_shape, batch)


class AvgpoolTrainStep(TrainStep):
    """The global average pool; backward spreads each channel's delta evenly over its cells."""

    def __init__(self, in_shape, batch):
        self.cells = in_shape[0] * in_shape[1]
        self.out = memory.empty((batch, 1, 1, in_shape[2]), np.float32)

    def forward(self, x, outputs, train):
        out = self.out[: x.shape[0]]
        out[...] = x.mean(axis=(1, 2), keepdims=True, dtype=np.float64)
        return out

    def backward(self, delta, x, outputs, deltas, dx):
        if dx is not None:
            dx += delta * np.float32(1 / self.cells)
