"""[maxpool]: darknet's max pool. padding defaults to size-1 and the window starts
padding/2 cells before the image; cells outside the image never win. After a conv whose
activation keeps order (max of activations = activation of the max), the conv's step does it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels, memory
from ..activations import is_monotonic
from .base import Layer, Pool, Shape, TrainStep


@dataclass(frozen=True)
class Maxpool(Layer):
    size: int = 1
    stride: int = 1
    padding: int = 0

    kind = "maxpool"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Maxpool":
        stride = s.get_int("stride", 1)
        size = s.get_int("size", stride)
        padding = s.get_int("padding", size - 1)
        for key, value in (("size", size), ("stride", stride)):
            if value < 1:
                raise s.error(f"{key}={value} must be at least 1", key)
        if padding < 0:
            raise s.error(f"padding={padding} must not be negative", "padding")
        return cls(index, where, size, stride, padding)

    @property
    def offset(self) -> int:
        return -(self.padding // 2)  # C's -pad/2 truncates toward zero

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        h, w, c = in_shape
        out_h = (h + self.padding - self.size) // self.stride + 1
        out_w = (w + self.padding - self.size) // self.stride + 1
        if out_h < 1 or out_w < 1:
            raise self.shape_error(f"a {self.size}x{self.size} window does not fit a {w}x{h} input")
        # A window wholly in the padding has no cell to take: its max would be -inf (darknet: -FLT_MAX)
        last_h, last_w = self.offset + (out_h - 1) * self.stride, self.offset + (out_w - 1) * self.stride
        if self.offset + self.size <= 0 or last_h >= h or last_w >= w:
            raise self.shape_error(
                f"padding={self.padding} puts whole {self.size}x{self.size} windows "
                f"outside a {w}x{h} input (darknet's default is size-1 = {self.size - 1})"
            )
        return (out_h, out_w, c)

    def summary_row(self, in_shape, out_shape):
        return ("max", "", f"{self.size} x {self.size} / {self.stride}")

    @property
    def window(self) -> Pool:
        return Pool(self.size, self.stride, self.offset)

    def fuses_into(self, previous: Layer) -> bool:
        """A conv pools in its epilogue, before its activation: right when the activation keeps
        the order of values (every one but stair)."""
        return previous.kind == "convolutional" and is_monotonic(previous.activation)

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        out = memory.empty((batch,) + out_shape, np.float32)

        def maxpool(x, outputs):
            n = x.shape[0]
            kernels.maxpool(x, self.window, out[:n])
            return out[:n]

        return maxpool

    def train_step(self, in_shape, out_shape, batch, params, k) -> "MaxpoolTrainStep":
        return MaxpoolTrainStep(self, out_shape, batch, k)


class MaxpoolTrainStep(TrainStep):
    """darknet's max pool in training: each window's winner remembered (its flat index into
    the input), and backward adds the window's delta to that cell."""

    def __init__(self, layer: Maxpool, out_shape, batch, k):
        self.layer, self.k = layer, k
        self.out = memory.empty((batch,) + out_shape, np.float32)
        self.argmax = memory.empty((batch,) + out_shape, np.int64)

    def forward(self, x, outputs, train):
        n, layer = x.shape[0], self.layer
        self.k.maxpool_forward(x, layer.size, layer.stride, layer.offset, self.out[:n], self.argmax[:n])
        return self.out[:n]

    def backward(self, delta, x, outputs, deltas, dx):
        if dx is not None:
            self.k.maxpool_backward(delta, self.argmax[: x.shape[0]], self.layer.size, self.layer.stride, dx)
