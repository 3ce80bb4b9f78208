"""[convolutional]: parsing, shape, FLOPs, weight layout, and four forward steps, all with batch
norm folded into the weights and the bias, activation and an optional following max pool fused
into the same pass (which step runs a conv is engine/plan.py's choice):

- DirectStep: direct convolution by register tiles of 4 pixels x 16 filters (groups=1);
- ConvStep: im2col + GEMM in bands of output rows (any conv; the one for several groups);
- WinogradStep: 3x3 stride-1 convs on maps with many 4x4 tiles, in blocks of tiles;
- WinogradByFiltersStep: the same on maps with few tiles (14x14, 28x28), by chunks of filters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import kernels, memory
from ..activations import LINEAR, activation_code
from ..kernels import winograd_transforms as winograd
from ..kernels.layout import CACHE_LINE_FLOATS, FLOAT_BYTES, PANEL_FILTERS
from ..kernels.tuning import DIRECT_KERNEL
from ..kernels.store_modes import STORE_POOLED_PAIRS, STORE_RAW
from .base import NO_POOL, Layer, Pool, Shape, TrainStep
from .batchnorm import BN_PARAMS, NormalizeStep, fold_batchnorm, learned_arrays


class ConvWeights(NamedTuple):
    mats: list  # per group: (size*size*c/groups, filters/groups) GEMM matrix, BN folded
    bias: np.ndarray  # (filters,), BN folded
    layouts: dict  # the same weights laid out for a step, made on first need (shared_layout)


def shared_layout(packed: ConvWeights, name: str, shape, fill) -> np.ndarray:
    """packed.layouts[name], an array of `shape` that fill(array) writes: made when a plan first
    needs it, then shared by every plan of the network (a plan per input size and thread count
    would otherwise copy the weights again). In a plan's dry run (engine/memory.py) it is only
    counted, until it is made."""
    made = packed.layouts.get(name)
    if made is not None:
        return made
    out = memory.empty(shape, np.float32)
    if out.flags.writeable:  # not a dry run's stand-in
        fill(out)
        packed.layouts[name] = out
    return out


def winograd_filters(packed: ConvWeights, size: int, channels: int) -> np.ndarray:
    """Winograd's transformed filters U (36, channels, filters) of a 3x3 one-group conv."""
    mat = packed.mats[0]

    def fill(out):
        out[...] = winograd.transform_weights(mat.reshape(size, size, channels, -1).transpose(3, 2, 0, 1))

    return shared_layout(packed, "winograd", (36, channels, mat.shape[1]), fill)


@dataclass(frozen=True)
class Convolutional(Layer):
    filters: int = 1
    size: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    batch_normalize: bool = False
    activation: int = 0
    activation_name: str = "logistic"

    kind = "convolutional"

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Convolutional":
        filters = s.get_int("filters", 1)
        size = s.get_int("size", 1)
        stride = s.get_int("stride", 1)
        pad = s.get_flag("pad")
        padding = size // 2 if pad else s.get_int("padding", 0)
        s.ignore("padding")
        groups = s.get_int("groups", 1)
        name = s.get_str("activation", "logistic")
        bn = s.get_flag("batch_normalize")
        for key, value in (("filters", filters), ("size", size), ("stride", stride), ("groups", groups)):
            if value < 1:
                raise s.error(f"{key}={value} must be at least 1", key)
        if padding < 0:
            raise s.error(f"padding={padding} must not be negative", "padding")
        if filters % groups:
            raise s.error(f"filters={filters} is not divisible by groups={groups}", "filters")
        return cls(
            index, where, filters, size, stride, padding, groups, bool(bn), activation_code(name, s), name.lower()
        )

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        h, w, c = in_shape
        if c % self.groups:
            raise self.shape_error(f"{c} input channels are not divisible by groups={self.groups}")
        out_h = (h + 2 * self.padding - self.size) // self.stride + 1
        out_w = (w + 2 * self.padding - self.size) // self.stride + 1
        if out_h < 1 or out_w < 1:
            raise self.shape_error(f"a {self.size}x{self.size} kernel does not fit a {w}x{h} input")
        return (out_h, out_w, self.filters)

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        return 2 * self.filters * self.size * self.size * (in_shape[2] // self.groups) * out_shape[0] * out_shape[1]

    def param_layout(self, in_shape: Shape):
        n = self.filters
        layout = [("biases", n)]
        if self.batch_normalize:
            layout += [(name, n) for name in BN_PARAMS]
        layout.append(("weights", n * (in_shape[2] // self.groups) * self.size * self.size))
        return layout

    def summary_row(self, in_shape, out_shape):
        size = f"{self.size} x {self.size} / {self.stride}"
        return ("conv", str(self.filters), size + (f" g{self.groups}" if self.groups > 1 else ""))

    @property
    def winograd_ok(self) -> bool:
        """3x3, stride 1, 'same' padding, one group: the shape Winograd F(4x4, 3x3) handles."""
        return self.size == 3 and self.stride == 1 and self.padding == 1 and self.groups == 1

    @property
    def pointwise_linear(self) -> bool:
        """A linear 1x1 conv over each pixel alone (no stride, no padding): an [avgpool] after it
        may run first (Avgpool.commutes_with)."""
        return (
            self.size == 1 and self.stride == 1 and self.padding == 0 and self.groups == 1 and self.activation == LINEAR
        )

    def pack_weights(self, params, in_shape) -> ConvWeights:
        """Weights as one (size*size*c/groups, filters/groups) GEMM matrix per group, BN folded
        (the layouts the steps run on are made from it when a plan needs them)."""
        cg = in_shape[2] // self.groups
        weights = params["weights"].reshape(self.filters, cg, self.size, self.size)
        weights, bias = fold_batchnorm(weights, params, self.batch_normalize)
        fg = self.filters // self.groups
        mats = [
            np.ascontiguousarray(weights[g * fg : (g + 1) * fg].transpose(2, 3, 1, 0).reshape(-1, fg))
            for g in range(self.groups)
        ]
        return ConvWeights(mats, bias, {})

    @property
    def conv(self) -> tuple[int, int, int]:
        """(size, stride, pad): the kernels' conv argument group."""
        return (self.size, self.stride, self.padding)

    def make_step(
        self,
        in_shape,
        out_shape,
        batch,
        packed,
        threads,
        *,
        choices,
        pool: Pool | None = None,
        pooled_shape: Shape | None = None,
        **handover,
    ):
        """The step the planner chooses for this conv at this shape. choices: the planner's
        decisions (engine/plan.py's CONV_CHOICES: the layers sit below the planner, which hands
        them in); pool: a [maxpool] to do in its epilogue, whose output is pooled_shape;
        handover: DirectStep's border and padded, where the planner has chosen them."""
        step = choices.step_type(self, in_shape, out_shape, batch, pool)
        return step(self, in_shape, out_shape, batch, packed, threads, pool, pooled_shape, choices, **handover)

    def train_step(self, in_shape, out_shape, batch, params, k) -> "ConvTrainStep":
        return ConvTrainStep(self, in_shape, out_shape, batch, params, k)


class ConvTrainStep(TrainStep):
    """darknet's forward/backward_convolutional_layer in training: im2col + GEMM per group (the
    windows written into the shared workspace, again in backward rather than kept), batch norm
    with the batch's statistics, the weight delta cols^T·delta and the input's delta by
    delta·W^T and col2im, added to what other readers of the input have added."""

    def __init__(self, layer: Convolutional, in_shape, out_shape, batch, params, k):
        self.layer, self.k = layer, k
        self.in_shape, self.out_shape = in_shape, out_shape
        size, groups = layer.size, layer.groups
        self.cg, self.fg = in_shape[2] // groups, layer.filters // groups
        self.pointwise = size == 1 and layer.stride == 1 and layer.padding == 0
        rows = batch * out_shape[0] * out_shape[1]
        if not self.pointwise or groups > 1:
            self.workspace_floats = rows * size * size * self.cg
        self.weights = params["weights"].reshape(layer.filters, self.cg, size, size)
        self.learned, self.updates = learned_arrays(params)
        self.out = memory.empty((batch,) + out_shape, np.float32)
        self.normalize = NormalizeStep(rows, layer.filters, params, self.updates, layer.batch_normalize)
        self.mats: list = []

    def _cols(self, x, g):
        """The windows of group g's channels, (rows, size*size*cg): a view of x for a one-group
        pointwise conv, else written into the workspace."""
        layer, n = self.layer, x.shape[0]
        if self.pointwise and layer.groups == 1:
            return x.reshape(-1, self.cg)
        rows = n * self.out_shape[0] * self.out_shape[1]
        cols = self.workspace[: rows * layer.size * layer.size * self.cg].reshape(rows, -1)
        return self.k.im2col(x, layer.size, layer.stride, layer.padding, g * self.cg, self.cg, cols)

    def forward(self, x, outputs, train):
        layer, k, n = self.layer, self.k, x.shape[0]
        fg = self.fg
        out = self.out[:n]
        z = out.reshape(-1, layer.filters)
        size = layer.size
        self.mats = [
            np.ascontiguousarray(
                self.weights[g * fg : (g + 1) * fg].transpose(2, 3, 1, 0).reshape(size * size * self.cg, fg)
            )
            for g in range(layer.groups)
        ]
        for g, mat in enumerate(self.mats):
            if layer.groups == 1:
                np.matmul(self._cols(x, g), mat, out=z)
            else:
                z[:, g * fg : (g + 1) * fg] = self._cols(x, g) @ mat
        self.normalize.forward(k, z, train)
        k.activate(z, layer.activation)
        return out

    def backward(self, delta, x, outputs, deltas, dx):
        layer, k, n = self.layer, self.k, x.shape[0]
        fg, size = self.fg, layer.size
        d = delta.reshape(-1, layer.filters)
        k.activation_gradient(self.out[:n].reshape(-1, layer.filters), layer.activation, d)
        self.normalize.backward(k, d)
        weight_updates = self.updates["weights"].reshape(layer.filters, self.cg, size, size)
        for g, mat in enumerate(self.mats):
            dg = d if layer.groups == 1 else np.ascontiguousarray(d[:, g * fg : (g + 1) * fg])
            cols = self._cols(x, g)
            grad = cols.T @ dg  # (size*size*cg, fg)
            weight_updates[g * fg : (g + 1) * fg] += grad.reshape(size, size, self.cg, fg).transpose(3, 2, 0, 1)
            if dx is None:
                continue
            if self.pointwise:
                dx[..., g * self.cg : (g + 1) * self.cg] += (dg @ mat.T).reshape(dx.shape[:3] + (self.cg,))
            else:
                dcols = np.matmul(dg, mat.T, out=cols)  # the windows are done with
                k.col2im_add(dcols, size, layer.stride, layer.padding, g * self.cg, self.cg, dx)


class ConvStep:
    """Forward of one conv for a fixed input shape, batch and thread count, scratch allocated
    once: im2col + GEMM in bands of output rows, one group after the other."""

    def __init__(self, layer: Convolutional, in_shape, out_shape, batch, packed, threads, pool, pooled_shape, choices):
        self.layer = layer
        self.mats, self.bias = packed.mats, packed.bias
        conv_w = out_shape[1]
        k, fg = self.mats[0].shape
        self.pool = pool or NO_POOL
        final_shape = pooled_shape if pool else out_shape
        self.out = memory.empty((batch,) + final_shape, np.float32)
        stride = max(self.pool.stride, 1)
        # per batch size, as DirectStep's split (no smaller batch has a taller band)
        self.band_for = per_batch(
            functools.partial(choices.row_band, final_shape[0], conv_w, k + fg, stride, threads=threads)
        )
        conv_rows = (self.band_for(batch) - 1) * stride + max(self.pool.size, 1)
        self.cols = memory.empty((threads, conv_rows * conv_w * k), np.float32)
        self.acc = memory.empty((threads, conv_rows * conv_w * fg), np.float32)
        self.cg = in_shape[2] // layer.groups

    def __call__(self, x, outputs):
        layer = self.layer
        n = x.shape[0]
        out = self.out[:n]
        fg = self.mats[0].shape[1]
        band = self.band_for(n)
        for g, mat in enumerate(self.mats):
            kernels.conv_forward(
                x,
                mat,
                self.bias[g * fg : (g + 1) * fg],
                layer.activation,
                layer.conv,
                (g * self.cg, g * fg),
                self.pool,
                out,
                self.cols,
                self.acc,
                band,
            )
        return out


class WinogradStep:
    """The same conv by Winograd F(4x4, 3x3), in blocks of tiles per thread (input transform,
    36 GEMMs, output transform with bias, activation and an optional 2x2/2 max pool)."""

    def __init__(self, layer: Convolutional, in_shape, out_shape, batch, packed, threads, pool, pooled_shape, choices):
        self.layer = layer
        self.bias, self.u = packed.bias, winograd_filters(packed, 3, in_shape[2])
        self.conv = out_shape[:2]
        self.tiles = winograd.tiles(*self.conv)
        # per batch size, as DirectStep's split (no smaller batch has a bigger block)
        per_image = self.tiles[0] * self.tiles[1]
        self.block_for = per_batch(lambda n: choices.winograd_block(n * per_image, threads))
        self.v = memory.empty((threads, 36 * self.block_for(batch) * self.u.shape[1]), np.float32)
        self.m = memory.empty((threads, 36 * self.block_for(batch) * out_shape[2]), np.float32)
        self.pool = pool is not None
        self.out = memory.empty((batch,) + (pooled_shape if pool else out_shape), np.float32)

    def __call__(self, x, outputs):
        n = x.shape[0]
        out = self.out[:n]
        kernels.winograd_conv(
            x,
            self.u,
            self.tiles,
            self.conv,
            self.bias,
            self.layer.activation,
            self.pool,
            self.block_for(n),
            self.v,
            self.m,
            out,
        )
        return out


class WinogradByFiltersStep:
    """The same conv by Winograd for maps with few tiles: V for all tiles at once, then
    chunks of filters per task (see kernels.winograd.winograd_conv_by_filters)."""

    def __init__(self, layer: Convolutional, in_shape, out_shape, batch, packed, threads, pool, pooled_shape, choices):
        self.layer = layer
        self.bias = packed.bias
        self.conv = out_shape[:2]
        self.tiles = winograd.tiles(*self.conv)
        count = batch * self.tiles[0] * self.tiles[1]
        # One chunk per thread: the GEMMs' cost is mostly BLAS packing U, whatever the split
        # (A/B on Tiny's layer 10: chunks of 32, 64, 128 filters 1.4-1.7, 1.3, 1.2 ms)
        self.u = split_filters(winograd_filters(packed, 3, in_shape[2]), threads)
        chunk = self.u.shape[3]
        self.v = memory.empty(36 * count * in_shape[2], np.float32)
        self.m = memory.empty((self.u.shape[0], 36 * count * chunk), np.float32)
        self.pool = pool is not None
        self.out = memory.empty((batch,) + (pooled_shape if pool else out_shape), np.float32)

    def __call__(self, x, outputs):
        out = self.out[: x.shape[0]]
        kernels.winograd_conv_by_filters(
            x, self.u, self.tiles, self.conv, self.bias, self.layer.activation, self.pool, self.v, self.m, out
        )
        return out


class DirectStep:
    """The same conv by direct convolution (kernels/direct.py): the input copied into a zero
    border, the weights in panels of 16 filters (made by the first plan that needs them and
    shared by the network's plans), tasks of (rows, blocks of filters) as the planner's direct_split
    decides, and the tiles' stores as plan.direct_store does.

    Where plan.border_handovers says so, the step before writes this step's input straight
    into its border (padded: that step's output buffer), and there is nothing to copy; and
    this step writes its own output inside a border of `border` zeros for the step after."""

    def __init__(
        self,
        layer: Convolutional,
        in_shape,
        out_shape,
        batch,
        packed,
        threads,
        pool,
        pooled_shape,
        choices,
        border: int = 0,
        padded: np.ndarray | None = None,
    ):

        self.layer = layer
        h, w, c = in_shape
        p = layer.padding
        self.panels = filter_panels(packed, layer.size, c)
        self.bias = np.zeros(self.panels.shape[0] * PANEL_FILTERS, np.float32)  # as the panels: zero-padded
        self.bias[: layer.filters] = packed.bias
        self.pool = pool or NO_POOL
        final_shape = pooled_shape if pool else out_shape
        conv_h, conv_w = out_shape[:2]
        self.tile_key, self.lanes = choices.direct_tile(layer, in_shape, pool)
        self.kernel = DIRECT_KERNEL[self.lanes]
        self.store = choices.direct_store(layer.activation, pool, conv_h, conv_w, self.lanes)
        pool_stride = max(self.pool.stride, 1)
        raw_row = conv_w * PANEL_FILTERS * FLOAT_BYTES * pool_stride if self.store == STORE_RAW else 0
        # a plan for `batch` inputs also runs fewer (PlanCache), and those need a split of their
        # own: batch 16's ran a single image on one thread (Tiny: 13-14 ms instead of 7-8). No
        # smaller batch has a taller band than the plan's, so the scratch below suffices.
        self.split_for = per_batch(
            functools.partial(
                choices.direct_split,
                final_shape[0],
                self.panels.nbytes,
                h * w * c * FLOAT_BYTES,
                self.panels.shape[0],
                threads=threads,
                raw_row_bytes=raw_row,
            )
        )
        band, chunk = self.split_for(batch)
        # scratch: raw sums of a band's conv rows, or one row of pair maxima, or none
        if self.store == STORE_RAW:
            conv_rows = min((band - 1) * pool_stride + max(self.pool.size, 1), conv_h) if pool else band
            scratch = conv_rows * conv_w * chunk * PANEL_FILTERS
        else:
            scratch = conv_w * 8 if self.store == STORE_POOLED_PAIRS else 1
        scratch += -scratch % CACHE_LINE_FLOATS  # each thread's scratch on a cache line of its own
        self.acc = memory.empty((threads, scratch), np.float32)
        # the input inside its border of zeros (the border is written once, here)
        self.padded = padded
        if p and padded is None:
            self.padded = _zeros((batch, h + 2 * p, w + 2 * p, c))
        self.border = border
        if border:
            rows, cols, channels = final_shape
            self.out = _zeros((batch, rows + 2 * border, cols + 2 * border, channels))
            self.inside = self.out[:, border : border + rows, border : border + cols]
        else:
            self.out = self.inside = memory.empty((batch,) + final_shape, np.float32)

    def __call__(self, x, outputs):
        n = x.shape[0]
        p = self.layer.padding
        xp = x
        if p:
            xp = self.padded[:n]
            if x.ctypes.data == xp[:, p:, p:].ctypes.data and x.strides == xp.strides:
                return self._run(xp, n)  # written inside the border by the step before
            # as rows of w*c floats: numpy copies runs, not 3-float pixels (0.3 ms -> 0.05 on Tiny's input)
            _, h, w, c = x.shape
            rows = xp.reshape(n, h + 2 * p, -1)
            rows[:, p : p + h, p * c : (p + w) * c] = x.reshape(n, h, w * c)
        return self._run(xp, n)

    def _run(self, xp, n):
        getattr(kernels, self.kernel)(
            xp,
            self.panels,
            self.bias,
            self.layer.activation,
            self.layer.conv,
            self.pool,
            self.out[:n],
            self.border,
            self.acc,
            self.split_for(n),
            self.store,
        )
        return self.inside[:n]


def per_batch(choose):
    """choose(n), remembered for each number of images n: how a step splits its work, which a
    plan for a batch works out again for fewer images (PlanCache runs them on it)."""
    return functools.lru_cache(maxsize=None)(choose)


def _zeros(shape) -> np.ndarray:
    """memory.empty, zeroed (unless a dry run's stand-in)."""
    a = memory.empty(shape, np.float32)
    if a.flags.writeable:
        a[...] = 0
    return a


def filter_panels(packed: ConvWeights, size: int, channels: int) -> np.ndarray:
    """The GEMM matrix (size*size*channels, filters) as direct_conv's panels (blocks, size,
    size*channels, 16): 16 filters per block, contiguous, the last block zero-padded."""
    mat = packed.mats[0]
    k, filters = mat.shape
    blocks = -(-filters // PANEL_FILTERS)

    def fill(out):
        padded = np.zeros((k, blocks * PANEL_FILTERS), np.float32)
        padded[:, :filters] = mat
        out[...] = padded.reshape(size, size * channels, blocks, PANEL_FILTERS).transpose(2, 0, 1, 3)

    return shared_layout(packed, "panels", (blocks, size, size * channels, PANEL_FILTERS), fill)


def split_filters(a: np.ndarray, threads: int) -> np.ndarray:
    """a (..., filters) cut into a block of filters per thread, each a whole number of SIMD
    vectors (8 floats): (blocks, ..., width), contiguous per block, the last one zero-padded."""
    filters = a.shape[-1]
    width = -(-filters // threads)
    width += -width % 8
    blocks = -(-filters // width)
    out = memory.empty((blocks,) + a.shape[:-1] + (width,), np.float32)  # a plan's own copy: counted
    if not out.flags.writeable:
        return out  # a dry run's stand-in (engine/memory.py): nothing to fill
    for b in range(blocks):
        part = a[..., b * width : (b + 1) * width]
        out[b, ..., : part.shape[-1]] = part
        out[b, ..., part.shape[-1] :] = 0
    return out
