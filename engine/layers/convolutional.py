"""[convolutional]: parsing, shape, FLOPs, weight layout, and three forward strategies,
all with batch norm folded into the weights and the bias, activation and an optional
following max pool fused into the same pass:

- WinogradStep: 3x3 stride-1 convs on maps with many 4x4 tiles, in blocks of tiles;
- WinogradByFiltersStep: the same on maps with few tiles (14x14, 28x28), by chunks of filters;
- FilterSplitStep: small maps (late layers), one GEMM per thread over a slice of filters;
- ConvStep: everything else, im2col + GEMM in bands of output rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..kernels import winograd_transforms as winograd
from ..activations import activation_code
from ..parallel import threads as engine_threads
from .base import Layer, Shape
from .batchnorm import BN_PARAMS, fold_batchnorm


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
    def parse(cls, s, index: int, where: str) -> "Convolutional":
        filters = s.get_int("filters", 1)
        size = s.get_int("size", 1)
        stride = s.get_int("stride", 1)
        pad = s.get_int("pad", 0)
        padding = size // 2 if pad else s.get_int("padding", 0)
        s.ignore("padding")
        groups = s.get_int("groups", 1)
        name = s.get_str("activation", "logistic")
        bn = s.get_int("batch_normalize", 0)
        for key, value in (("filters", filters), ("size", size), ("stride", stride), ("groups", groups)):
            if value < 1:
                raise s.error(f"{key}={value} must be at least 1", key)
        if padding < 0:
            raise s.error(f"padding={padding} must not be negative", "padding")
        if filters % groups:
            raise s.error(f"filters={filters} is not divisible by groups={groups}", "filters")
        return cls(index, where, filters, size, stride, padding, groups, bool(bn),
                   activation_code(name, s), name.lower())

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

    def prepare(self, params, in_shape):
        """Weights as one (size*size*c/groups, filters/groups) GEMM matrix per group, BN folded;
        for Winograd-shaped layers also the transformed filters U (36, c, filters)."""
        cg = in_shape[2] // self.groups
        weights = params["weights"].reshape(self.filters, cg, self.size, self.size)
        weights, bias = fold_batchnorm(weights, params, self.batch_normalize)
        fg = self.filters // self.groups
        mats = [np.ascontiguousarray(weights[g * fg:(g + 1) * fg].transpose(2, 3, 1, 0).reshape(-1, fg))
                for g in range(self.groups)]
        u = winograd.transform_weights(weights) if self.winograd_ok and cg >= WINOGRAD_MIN_CHANNELS else None
        return mats, bias, u

    def make_step(self, in_shape, out_shape, batch, prepared, pool=None):
        u = prepared[2]
        tiles_y, tiles_x = winograd.tiles(out_shape[0], out_shape[1])
        count = batch * tiles_y * tiles_x
        if u is not None and (pool is None or pool[:3] == (2, 2, 0)):
            if BY_FILTERS_MIN_TILES <= count <= BY_FILTERS_MAX_TILES and self.filters >= 64:
                return WinogradByFiltersStep(self, out_shape, batch, prepared, pool)
            if count >= WINOGRAD_MIN_TILES:
                return WinogradStep(self, out_shape, batch, prepared, pool)
        if (self.groups == 1 and batch * out_shape[0] * out_shape[1] <= BY_FILTERS_MAX_ROWS
                and self.filters >= 16 * engine_threads()):
            return FilterSplitStep(self, in_shape, out_shape, batch, prepared, pool)
        return ConvStep(self, in_shape, out_shape, batch, prepared, pool)


class ConvStep:
    """Forward of one conv for a fixed input shape and batch, scratch allocated once.

    pool: None or (size, stride, offset, pooled_shape) of a [maxpool] fused into the epilogue.
    """

    def __init__(self, layer: Convolutional, in_shape, out_shape, batch, prepared, pool):
        self.layer = layer
        self.mats, self.bias, _ = prepared
        conv_h, conv_w, filters = out_shape
        k, fg = self.mats[0].shape
        if pool is None:
            self.pool = (0, 1, 0)
            final_shape = out_shape
        else:
            self.pool = pool[:3]
            final_shape = pool[3]
        pool_size, pool_stride, _ = self.pool
        self.out = np.empty((batch,) + final_shape, np.float32)
        self.band = choose_band(final_shape[0], conv_w, k + fg, max(pool_stride, 1), batch)
        conv_rows = (self.band - 1) * max(pool_stride, 1) + max(pool_size, 1)
        threads = engine_threads()
        self.cols = np.empty((threads, conv_rows * conv_w * k), np.float32)
        self.acc = np.empty((threads, conv_rows * conv_w * fg), np.float32)
        self.cg = in_shape[2] // layer.groups

    def __call__(self, x, outputs):
        layer = self.layer
        n = x.shape[0]
        out = self.out[:n]
        fg = self.mats[0].shape[1]
        for g, mat in enumerate(self.mats):
            kernels.conv_forward(x, mat, self.bias[g * fg:(g + 1) * fg], layer.activation, layer.size,
                                 layer.stride, layer.padding, g * self.cg, g * fg, *self.pool,
                                 out, self.cols, self.acc, self.band)
        return out


class FilterSplitStep:
    """The same conv for small maps: one GEMM over all pixels per thread, each thread with
    its own block of filters (so the weights are read once, not once per row band)."""

    def __init__(self, layer: Convolutional, in_shape, out_shape, batch, prepared, pool):
        mat, self.bias = prepared[0][0], prepared[1]
        self.layer = layer
        k = mat.shape[0]
        self.wblocks = split_filters(mat, engine_threads())
        blocks, _, width = self.wblocks.shape
        pixels = batch * out_shape[0] * out_shape[1]
        self.cols = np.empty(pixels * k, np.float32)
        self.acc = np.empty((blocks, pixels * width), np.float32)
        self.pool = (0, 1, 0) if pool is None else pool[:3]
        self.out = np.empty((batch,) + (out_shape if pool is None else pool[3]), np.float32)

    def __call__(self, x, outputs):
        layer = self.layer
        out = self.out[:x.shape[0]]
        kernels.conv_forward_by_filters(x, self.wblocks, self.bias, layer.activation, layer.size, layer.stride,
                                        layer.padding, *self.pool, out, self.cols, self.acc)
        return out


class WinogradStep:
    """The same conv by Winograd F(4x4, 3x3), in blocks of tiles per thread (input transform,
    36 GEMMs, output transform with bias, activation and an optional 2x2/2 max pool)."""

    def __init__(self, layer: Convolutional, out_shape, batch, prepared, pool):
        _, self.bias, self.u = prepared
        self.layer = layer
        self.conv_h, self.conv_w, filters = out_shape
        self.tiles = winograd.tiles(self.conv_h, self.conv_w)
        threads = engine_threads()
        count = batch * self.tiles[0] * self.tiles[1]
        # enough blocks to share between the threads, each small enough to stay in cache
        self.block = max(8, min(WINOGRAD_BLOCK_TILES, -(-count // (2 * threads))))
        self.v = np.empty((threads, 36 * self.block * self.u.shape[1]), np.float32)
        self.m = np.empty((threads, 36 * self.block * filters), np.float32)
        self.pool = pool is not None
        self.out = np.empty((batch,) + (pool[3] if pool else out_shape), np.float32)

    def __call__(self, x, outputs):
        out = self.out[:x.shape[0]]
        kernels.winograd_conv(x, self.u, *self.tiles, self.conv_h, self.conv_w, self.bias,
                               self.layer.activation, self.pool, self.block, self.v, self.m, out)
        return out


class WinogradByFiltersStep:
    """The same conv by Winograd for maps with few tiles: V for all tiles at once, then
    chunks of filters per task (see kernels.winograd.winograd_conv_by_filters)."""

    def __init__(self, layer: Convolutional, out_shape, batch, prepared, pool):
        _, self.bias, u = prepared
        self.layer = layer
        self.conv_h, self.conv_w, _ = out_shape
        self.tiles = winograd.tiles(self.conv_h, self.conv_w)
        count = batch * self.tiles[0] * self.tiles[1]
        # One chunk per thread: the GEMMs' cost is mostly BLAS packing U, whatever the split
        # (A/B on Tiny's layer 10: chunks of 32, 64, 128 filters 1.4-1.7, 1.3, 1.2 ms)
        self.u = split_filters(u, engine_threads())
        chunk = self.u.shape[3]
        self.v = np.empty(36 * count * u.shape[1], np.float32)
        self.m = np.empty((self.u.shape[0], 36 * count * chunk), np.float32)
        self.pool = pool is not None
        self.out = np.empty((batch,) + (pool[3] if pool else out_shape), np.float32)

    def __call__(self, x, outputs):
        out = self.out[:x.shape[0]]
        kernels.winograd_conv_by_filters(x, self.u, *self.tiles, self.conv_h, self.conv_w, self.bias,
                                          self.layer.activation, self.pool, self.v, self.m, out)
        return out


def split_filters(a: np.ndarray, threads: int) -> np.ndarray:
    """a (..., filters) cut into a block of filters per thread, each a whole number of SIMD
    vectors (8 floats): (blocks, ..., width), contiguous per block, the last one zero-padded."""
    filters = a.shape[-1]
    width = -(-filters // threads)
    width += -width % 8
    blocks = -(-filters // width)
    out = np.zeros((blocks,) + a.shape[:-1] + (width,), np.float32)
    for b in range(blocks):
        part = a[..., b * width:(b + 1) * width]
        out[b, ..., :part.shape[-1]] = part
    return out


# Winograd's transforms cost per channel; below this many input channels plain GEMM wins
WINOGRAD_MIN_CHANNELS = 8
# With few 4x4 tiles its 36 GEMMs are tiny and its filters 4x larger than im2col's: measured
# 2-7 GFLOP/s at 4 tiles (8x8 maps) vs ~55 at 49+; below this many tiles im2col wins
WINOGRAD_MIN_TILES = 32
# From 16 to 64 tiles (14x14 to 28x28 maps at batch 1) blocks of tiles would make its GEMMs
# tiny (13 x 32 @ 32 x 256: 20 GFLOP/s); all tiles against chunks of filters run at ~47
BY_FILTERS_MIN_TILES = 16
BY_FILTERS_MAX_TILES = 64
# Tiles per Winograd block: its V and M scratch (36 x block x channels) should fit in L2
WINOGRAD_BLOCK_TILES = 32
# Up to this many output pixels (batch included) a conv splits its filters across threads
BY_FILTERS_MAX_ROWS = 256

# Per-thread scratch (im2col rows + GEMM result) aimed at the 512 KB-1 MB L2 of current cores
BAND_BYTES = 384 << 10


def choose_band(final_h: int, conv_w: int, floats_per_pixel: int, pool_stride: int, batch: int) -> int:
    """Output rows per task: as many as fit the cache budget, but enough tasks for all threads."""
    per_row = conv_w * floats_per_pixel * 4 * pool_stride
    band = max(1, BAND_BYTES // per_row)
    if batch == 1:
        band = min(band, -(-final_h // (2 * engine_threads())))
    return max(1, min(band, final_h))
