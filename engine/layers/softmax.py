"""[softmax]: darknet's softmax over the flattened input, in `groups` equal slices, with a
temperature. darknet flattens channel-major, so a spatial input is reordered first."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels, memory
from .base import Layer, Shape


@dataclass(frozen=True)
class Softmax(Layer):
    groups: int = 1
    temperature: float = 1.0

    kind = "softmax"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Softmax":
        groups = s.get_int("groups", 1)
        temperature = s.get_float("temperature", 1.0)
        s.ignore("noloss", "spatial")
        inputs = in_shape[0] * in_shape[1] * in_shape[2]
        if groups < 1 or inputs % groups:
            raise s.error(f"groups={groups} does not divide its {inputs} inputs", "groups")
        if temperature <= 0:
            raise s.error(f"temperature={temperature} must be positive", "temperature")
        return cls(index, where, groups, temperature)

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
            flat = x.transpose(0, 3, 1, 2) if h * w > 1 else x      # darknet's (c, h, w) order
            z = np.ascontiguousarray(flat).reshape(n * groups, -1)
            kernels.softmax(z, temperature, out[:n].reshape(n * groups, -1))
            return out[:n]
        return softmax
