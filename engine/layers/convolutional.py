"""[convolutional]: conv (as im2col + BLAS GEMM) with batch norm folded in and the bias,
activation and an optional following 2D max pool fused into one epilogue pass."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..activations import activation_code
from .base import Layer, Shape
from .batchnorm import BN_PARAMS, fold_batchnorm

# im2col buffers of a batch are processed in chunks of images so their size stays bounded
COLS_BUDGET_FLOATS = 4 << 20


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

    def prepare(self, params, in_shape):
        """Weights as one (size*size*c/groups, filters/groups) GEMM matrix per group, BN folded."""
        cg = in_shape[2] // self.groups
        weights = params["weights"].reshape(self.filters, cg, self.size, self.size)
        weights, bias = fold_batchnorm(weights, params, self.batch_normalize)
        fg = self.filters // self.groups
        mats = [np.ascontiguousarray(weights[g * fg:(g + 1) * fg].transpose(2, 3, 1, 0).reshape(-1, fg))
                for g in range(self.groups)]
        return mats, bias

    def make_step(self, in_shape, out_shape, batch, prepared, pool=None):
        return ConvStep(self, in_shape, out_shape, batch, prepared, pool)


class ConvStep:
    """Forward of one conv for a fixed input shape and batch, buffers allocated once.

    pool: None or (size, stride, offset, pooled_shape) of a [maxpool] fused into the epilogue.
    """

    def __init__(self, layer: Convolutional, in_shape, out_shape, batch, prepared, pool):
        self.layer = layer
        self.mats, self.bias = prepared
        h, w, c = in_shape
        self.out_h, self.out_w, f = out_shape
        self.cg = c // layer.groups
        self.direct = layer.size == 1 and layer.stride == 1 and layer.padding == 0 and layer.groups == 1
        pixels = self.out_h * self.out_w
        k = layer.size * layer.size * self.cg
        self.chunk = batch if self.direct else max(1, min(batch, COLS_BUDGET_FLOATS // (pixels * k)))
        self.cols = None if self.direct else np.empty((self.chunk * pixels, k), np.float32)
        self.pool = pool
        if pool is None:
            self.out = np.empty((batch, self.out_h, self.out_w, f), np.float32)
            self.acc = None
        else:
            self.out = np.empty((batch,) + pool[3], np.float32)
            self.acc = np.empty((self.chunk, self.out_h, self.out_w, f), np.float32)
        self.group_acc = (np.empty((self.chunk * pixels, f // layer.groups), np.float32)
                          if layer.groups > 1 else None)

    def __call__(self, x, outputs):
        layer = self.layer
        n_img = x.shape[0]
        pixels = self.out_h * self.out_w
        for start in range(0, n_img, self.chunk):
            stop = min(start + self.chunk, n_img)
            rows = (stop - start) * pixels
            acc = (self.out[start:stop] if self.acc is None else self.acc[:stop - start]).reshape(rows, -1)
            src = x[start:stop]
            for g, mat in enumerate(self.mats):
                if self.direct:
                    a = src.reshape(rows, -1)
                else:
                    kernels.im2col(src, layer.size, layer.stride, layer.padding, g * self.cg, self.cg,
                                   self.out_h, self.out_w, self.cols)
                    a = self.cols[:rows]
                if self.group_acc is None:
                    np.matmul(a, mat, out=acc)
                else:
                    fg = mat.shape[1]
                    np.matmul(a, mat, out=self.group_acc[:rows])
                    acc[:, g * fg:(g + 1) * fg] = self.group_acc[:rows]
            if self.pool is None:
                kernels.bias_activate(acc, self.bias, layer.activation)
            else:
                size, stride, offset, _ = self.pool
                kernels.bias_activate_maxpool(acc.reshape(stop - start, self.out_h, self.out_w, -1), self.bias,
                                              layer.activation, size, stride, offset, self.out[start:stop])
        return self.out[:n_img]
