"""What every layer type provides. Each type lives in its own module with its parsing,
shape rule, FLOPs, weight layout and forward step, so one layer = one obvious place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ShapeError

Shape = tuple[int, int, int]                   # (h, w, c) of one image, NHWC
Step = Callable[[np.ndarray, list], np.ndarray]  # (input, outputs of earlier layers) → output


@dataclass(frozen=True)
class Layer:
    index: int
    where: str          # "file.cfg:12", for messages

    kind = "layer"      # darknet's section name
    needs_fixed_size = False

    def describe(self) -> str:
        return f"layer {self.index} [{self.kind}] ({self.where})"

    def shape_error(self, message: str) -> ShapeError:
        return ShapeError(f"{self.where}: layer {self.index} [{self.kind}]: {message}")

    # --- architecture -------------------------------------------------------------------
    def output_shape(self, in_shape: Shape, shapes: list[Shape]) -> Shape:
        """Shape this layer produces from in_shape; shapes[i] is layer i's output."""
        return in_shape

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        return 0

    def param_layout(self, in_shape: Shape) -> list[tuple[str, int]]:
        """Named float32 arrays in the order darknet stores them in .weights files."""
        return []

    def summary_row(self, in_shape: Shape, out_shape: Shape) -> tuple[str, str, str]:
        """(type, filters, size) columns of the layer table."""
        return (self.kind, "", "")

    # --- inference ----------------------------------------------------------------------
    def prepare(self, params: dict[str, np.ndarray], in_shape: Shape):
        """Turn darknet's stored arrays into what the forward step wants (done once at load)."""
        return None

    def make_step(self, in_shape: Shape, out_shape: Shape, batch: int, prepared) -> Step:
        raise NotImplementedError


def passthrough(x: np.ndarray, outputs: list) -> np.ndarray:
    return x


def relative_index(section, key: str, value: int, index: int) -> int:
    """darknet's layer references: negative counts back from this layer, else absolute."""
    target = index + value if value < 0 else value
    if not 0 <= target < index:
        raise section.error(f"{key}={value} refers to layer {target}, which is not an earlier layer", key)
    return target
