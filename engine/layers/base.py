"""What every layer type provides. Each type lives in its own module with its parsing,
shape rule, FLOPs, weight layout and forward step, so one layer = one obvious place.
What runs with what (fusion) each type declares here; engine/plan.py decides with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..errors import ShapeError

Shape = tuple[int, int, int]  # (h, w, c) of one image, NHWC
Step = Callable[[np.ndarray, list], np.ndarray]  # (input, outputs of earlier layers) → output


class Pool(NamedTuple):
    """A max pool's window, as a conv's epilogue does it: size, stride, and the offset of the
    first window (≤ 0: darknet starts it padding/2 cells before the image)."""

    size: int
    stride: int
    offset: int


NO_POOL = Pool(0, 1, 0)  # what a conv's kernels are told when no pool is fused


@dataclass(frozen=True)
class Layer:
    index: int
    where: str  # "file.cfg:12", for messages

    kind = "layer"  # darknet's section name
    needs_fixed_size = False

    def describe(self) -> str:
        return f"layer {self.index} [{self.kind}] ({self.where})"

    def shape_error(self, message: str) -> ShapeError:
        return ShapeError(f"{self.where}: layer {self.index} [{self.kind}]: {message}")

    # --- parsing and architecture -----------------------------------------------------------
    @classmethod
    def parse(cls, section, index: int, where: str, in_shape: Shape) -> "Layer":
        """The layer of a cfg section; in_shape is what the previous layer gives it."""
        raise NotImplementedError

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

    def reads(self) -> tuple[int, ...]:
        """Earlier layers whose outputs this one reads, besides the layer just before it."""
        return ()

    # --- what it runs with (see engine/plan.py) ---------------------------------------------
    def fuses_into(self, previous: "Layer") -> bool:
        """Whether `previous`'s step can do this layer's work in its epilogue."""
        return False

    def commutes_with(self, previous: "Layer") -> bool:
        """Whether this layer may run before `previous` with the same result (then `previous`
        runs on this layer's smaller output)."""
        return False

    # --- inference ----------------------------------------------------------------------
    def pack_weights(self, params: dict[str, np.ndarray], in_shape: Shape):
        """Turn darknet's stored arrays into what the forward step wants (done once at load)."""
        return None

    def make_step(self, in_shape: Shape, out_shape: Shape, batch: int, packed, threads: int) -> Step:
        """The forward step for `batch` images of in_shape, its buffers allocated once; `threads`
        is the kernel threads it will run with (it sizes per-thread scratch by it)."""
        raise NotImplementedError

    # --- training -----------------------------------------------------------------------
    def train_step(self, in_shape: Shape, out_shape: Shape, batch: int, params: dict, k) -> "TrainStep":
        """The training step for `batch` images (see TrainStep): params are this layer's darknet
        arrays, which it learns in place; k is the training kernel set (engine.kernels.training)."""
        raise NotImplementedError


class TrainStep:
    """One layer's part of a training pass, its buffers allocated once (through engine.memory).

    forward(x, outputs, train) -> the layer's output; in training mode it keeps what backward
    needs (batch statistics, the max pool's winners). backward(delta, x, outputs, deltas, dx)
    takes this layer's delta (darknet's: minus the gradient of the loss), which it may change in
    place, and adds the input's delta into dx (None for the first layer, whose input has none)
    and into deltas[j] for each earlier layer j it read.

    learned: {name: array} the darknet arrays the update rule changes (views of the network's
    parameters); updates: {name: array} darknet's *_updates for them, which backward adds to.
    workspace_floats: the scratch it wants from the trainer's shared workspace (`workspace`).
    """

    learned: dict = {}
    updates: dict = {}
    workspace_floats = 0
    workspace: np.ndarray | None = None
    cost = None  # layers that score the truth: the last call's summed cost

    def forward(self, x: np.ndarray, outputs: list, train: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, delta: np.ndarray, x: np.ndarray, outputs: list, deltas: list, dx) -> None:
        raise NotImplementedError


def passthrough(x: np.ndarray, outputs: list) -> np.ndarray:
    return x


def relative_index(section, key: str, value: int, index: int) -> int:
    """darknet's layer references: negative counts back from this layer, else absolute."""
    target = index + value if value < 0 else value
    if not 0 <= target < index:
        raise section.error(f"{key}={value} refers to layer {target}, which is not an earlier layer", key)
    return target
