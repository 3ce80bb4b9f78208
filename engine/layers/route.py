"""[route]: the channel concatenation of earlier layers' outputs (all the same h, w)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import memory
from .base import Layer, Shape, TrainStep, relative_index


@dataclass(frozen=True)
class Route(Layer):
    sources: tuple[int, ...] = ()

    kind = "route"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Route":
        values = s.get_int_list("layers")
        if not values:
            raise s.error("layers= lists no layer", "layers")
        return cls(index, where, tuple(relative_index(s, "layers", v, index) for v in values))

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        first = shapes[self.sources[0]]
        for source in self.sources[1:]:
            other = shapes[source]
            if other[:2] != first[:2]:
                raise self.shape_error(
                    f"layer {source} is {other[1]}x{other[0]} but layer "
                    f"{self.sources[0]} is {first[1]}x{first[0]}; route needs equal sizes"
                )
        return (first[0], first[1], sum(shapes[source][2] for source in self.sources))

    def summary_row(self, in_shape, out_shape):
        return ("route", " ".join(map(str, self.sources)), "")

    def reads(self) -> tuple[int, ...]:
        return self.sources

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        if len(self.sources) == 1:
            return lambda x, outputs: outputs[self.sources[0]]
        out = memory.empty((batch,) + out_shape, np.float32)

        def route(x, outputs):
            n = x.shape[0]
            start = 0
            for source in self.sources:
                part = outputs[source]
                out[:n, :, :, start : start + part.shape[3]] = part
                start += part.shape[3]
            return out[:n]

        return route

    def train_step(self, in_shape, out_shape, batch, params, k) -> "RouteTrainStep":
        return RouteTrainStep(self, out_shape, batch)


class RouteTrainStep(TrainStep):
    """The concatenation, and backward hands each source its channels of the delta."""

    def __init__(self, layer: Route, out_shape, batch):
        self.sources = layer.sources
        self.out = memory.empty((batch,) + out_shape, np.float32)

    def forward(self, x, outputs, train):
        n = x.shape[0]
        start = 0
        for source in self.sources:
            part = outputs[source]
            self.out[:n, :, :, start : start + part.shape[3]] = part
            start += part.shape[3]
        return self.out[:n]

    def backward(self, delta, x, outputs, deltas, dx):
        n, start = x.shape[0], 0
        for source in self.sources:
            channels = outputs[source].shape[3]
            if deltas[source] is not None:
                deltas[source][:n] += delta[..., start : start + channels]
            start += channels
