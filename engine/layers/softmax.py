"""[softmax]: darknet's softmax over the flattened input, in `groups` equal slices, with a
temperature. darknet flattens channel-major, so a spatial input is reordered first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels, memory
from .base import Layer, Shape, TrainStep


@dataclass(frozen=True)
class Softmax(Layer):
    groups: int = 1
    temperature: float = 1.0
    noloss: bool = False

    kind = "softmax"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Softmax":
        groups = s.get_int("groups", 1)
        temperature = s.get_float("temperature", 1.0)
        noloss = s.get_flag("noloss")
        s.ignore("spatial")
        inputs = in_shape[0] * in_shape[1] * in_shape[2]
        if groups < 1 or inputs % groups:
            raise s.error(f"groups={groups} does not divide its {inputs} inputs", "groups")
        if temperature <= 0:
            raise s.error(f"temperature={temperature} must be positive", "temperature")
        return cls(index, where, groups, temperature, noloss)

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        inputs = in_shape[0] * in_shape[1] * in_shape[2]
        if inputs % self.groups:
            raise self.shape_error(f"groups={self.groups} does not divide its {inputs} inputs")
        return (1, 1, inputs)

    def summary_row(self, in_shape, out_shape):
        return ("softmax", "", "")

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        h, w, c = in_shape
        groups, temperature = self.groups, np.float32(self.temperature)
        out = memory.empty((batch,) + out_shape, np.float32)

        def softmax(x, outputs):
            n = x.shape[0]
            flat = x.transpose(0, 3, 1, 2) if h * w > 1 else x  # darknet's (c, h, w) order
            z = np.ascontiguousarray(flat).reshape(n * groups, -1)
            kernels.softmax(z, temperature, out[:n].reshape(n * groups, -1))
            return out[:n]

        return softmax

    def train_step(self, in_shape, out_shape, batch, params, k) -> "SoftmaxTrainStep":
        return SoftmaxTrainStep(self, in_shape, out_shape, batch)


class SoftmaxTrainStep(TrainStep):
    """darknet's softmax in training: given the truth, its delta is truth - p (softmax_x_ent_cpu)
    and its cost the summed -log p of the true classes; backward passes its delta straight to the
    input, as darknet does (so a temperature T scales the delta by T relative to the gradient)."""

    def __init__(self, layer: Softmax, in_shape, out_shape, batch):
        self.layer, self.in_shape = layer, in_shape
        self.scores = not layer.noloss
        self.out = memory.empty((batch,) + out_shape, np.float32)
        self.delta = None  # this layer's delta buffer, set by the trainer

    def forward(self, x, outputs, train):
        n, (h, w, _) = x.shape[0], self.in_shape
        groups = self.layer.groups
        flat = np.ascontiguousarray(x.transpose(0, 3, 1, 2) if h * w > 1 else x).reshape(n * groups, -1)
        scaled = flat / np.float32(self.layer.temperature)
        e = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        p = self.out[:n].reshape(n * groups, -1)
        np.divide(e, e.sum(axis=1, keepdims=True), out=p)
        truth = getattr(self, "truth", None)
        if truth is not None and self.scores:
            t = truth.reshape(p.shape)
            self.delta[:n].reshape(p.shape)[...] = t - p
            with np.errstate(divide="ignore"):
                self.cost = float(-np.log(p[t != 0], dtype=np.float64).sum())
        return self.out[:n]

    def backward(self, delta, x, outputs, deltas, dx):
        if dx is not None:
            n, (h, w, c) = x.shape[0], self.in_shape
            dx += delta.reshape(n, c, h, w).transpose(0, 2, 3, 1) if h * w > 1 else delta.reshape(dx.shape)
