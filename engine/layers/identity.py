"""[dropout] and [cost]: training-only layers that pass their input through at inference."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Layer, Shape, passthrough


@dataclass(frozen=True)
class Dropout(Layer):
    kind = "dropout"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Dropout":
        probability = s.get_float("probability", 0.5)
        if not 0 <= probability < 1:
            raise s.error(f"probability={probability} must be in [0, 1)", "probability")
        return cls(index, where)

    def summary_row(self, in_shape, out_shape):
        return ("dropout", "", "")

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        return passthrough


@dataclass(frozen=True)
class Cost(Layer):
    kind = "cost"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Cost":
        s.ignore("type", "scale", "ratio", "noobject_scale", "thresh")
        return cls(index, where)

    def summary_row(self, in_shape, out_shape):
        return ("cost", "", "")

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        return passthrough
