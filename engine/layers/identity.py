"""[dropout] and [cost]: training-only layers that pass their input through at inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import memory
from .base import Layer, Shape, TrainStep, passthrough


@dataclass(frozen=True)
class Dropout(Layer):
    probability: float = 0.5

    kind = "dropout"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Dropout":
        probability = s.get_float("probability", 0.5)
        if not 0 <= probability < 1:
            raise s.error(f"probability={probability} must be in [0, 1)", "probability")
        return cls(index, where, probability)

    def summary_row(self, in_shape, out_shape):
        return ("dropout", "", "")

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        return passthrough

    def train_step(self, in_shape, out_shape, batch, params, k) -> "DropoutTrainStep":
        return DropoutTrainStep(self, in_shape, batch)


class DropoutTrainStep(TrainStep):
    """darknet's dropout: in training each value is zeroed with the layer's probability and the
    rest scaled by 1/(1 - probability), and the delta goes back through the same mask. darknet
    does this in place, on the previous layer's own output; here the output is a buffer of its
    own, so the previous layer's activation gradient sees its real output."""

    def __init__(self, layer: Dropout, in_shape, batch):
        self.probability = layer.probability
        self.scale = np.float32(1 / (1 - layer.probability))
        self.out = memory.empty((batch,) + in_shape, np.float32)
        self.keep = memory.empty((batch,) + in_shape, np.float32)  # 0 or scale per value
        self.rng = np.random.default_rng(layer.index)

    def forward(self, x, outputs, train):
        if not train or self.probability == 0:
            return x
        n = x.shape[0]
        keep = self.keep[:n]
        keep[...] = (self.rng.random(x.shape, np.float32) >= self.probability) * self.scale
        np.multiply(x, keep, out=self.out[:n])
        return self.out[:n]

    def backward(self, delta, x, outputs, deltas, dx):
        if dx is not None:
            dx += delta * self.keep[: x.shape[0]] if self.probability else delta


COST_TYPES = ("sse", "smooth", "l1")  # what darknet's cost layer computes for a classifier


@dataclass(frozen=True)
class Cost(Layer):
    cost_type: str = "sse"
    scale: float = 1.0

    kind = "cost"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Cost":
        cost_type = s.get_str("type", "sse")
        if cost_type.lower() not in COST_TYPES + ("seg", "masked", "wgan"):
            raise s.error(f"unknown cost type '{cost_type}' (darknet's: sse, smooth, L1, seg, masked, wgan)", "type")
        scale = s.get_float("scale", 1.0)
        s.ignore("ratio", "noobject_scale", "noobj", "thresh")
        return cls(index, where, cost_type.lower(), scale)

    def summary_row(self, in_shape, out_shape):
        return ("cost", "", "")

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        return passthrough

    def train_step(self, in_shape, out_shape, batch, params, k) -> "CostTrainStep":
        if self.cost_type not in COST_TYPES:
            raise self.shape_error(
                f"type={self.cost_type} cannot train a classifier here (tdn trains {', '.join(COST_TYPES)})"
            )
        return CostTrainStep(self)


class CostTrainStep(TrainStep):
    """darknet's cost layer: its delta is truth - input (sse and, within 1 of the truth, smooth)
    or its sign (L1, and smooth beyond 1: there darknet's smooth_l1_cpu writes the opposite sign,
    which here follows the maths), its cost the summed error, and backward adds scale*delta into
    the input's delta. Its output, like darknet's network output, is its input."""

    scores = True

    def __init__(self, layer: Cost):
        self.layer = layer
        self.delta = None  # this layer's delta buffer, set by the trainer

    def forward(self, x, outputs, train):
        truth = getattr(self, "truth", None)
        if truth is None:
            return x
        n = x.shape[0]
        diff = truth.reshape(x.shape) - x
        magnitude = np.abs(diff)
        if self.layer.cost_type == "sse":
            error, delta = diff * diff, diff
        elif self.layer.cost_type == "l1":
            error, delta = magnitude, np.where(diff > 0, np.float32(1), np.float32(-1))
        else:
            inside = magnitude < 1
            error = np.where(inside, diff * diff, 2 * magnitude - 1)
            delta = np.where(inside, diff, np.sign(diff))
        self.delta[:n] = delta
        self.cost = float(error.sum(dtype=np.float64))
        return x

    def backward(self, delta, x, outputs, deltas, dx):
        if dx is not None:
            dx += np.float32(self.layer.scale) * delta
