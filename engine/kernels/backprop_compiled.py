"""The training kernels of backprop.py in Numba: the same arguments, the same results.

What stays numpy here is what numpy already does in one pass or in BLAS (the matrix products
are the layers' own np.matmul calls). Each kernel splits its work over images or over blocks of
rows, so two threads never write the same value; batch-norm sums go through per-block partial
sums in float64, then one small reduction.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..activations import ACTIVATIONS
from . import backprop
from .compiled import activate as _activate

# the update rules and the inference-mode batch norm run once a call on small arrays: numpy's
adam_update = backprop.adam_update
sgd_update = backprop.sgd_update
batchnorm_inference = backprop.batchnorm_inference
conv_out = backprop.conv_out
BN_FORWARD_EPS = backprop.BN_FORWARD_EPS
BN_BACKWARD_EPS = backprop.BN_BACKWARD_EPS

_JIT = dict(cache=True, nogil=True, parallel=True, error_model="numpy")
ROW_BLOCK = 256  # rows of a (rows, channels) matrix one task sums

LINEAR, LEAKY, RELU, LOGISTIC, TANH, ELU, RELIE, RAMP, HARDTAN, LHTAN, LOGGY, SELU, PLSE, STAIR = (
    ACTIVATIONS[name]
    for name in (
        "linear",
        "leaky",
        "relu",
        "logistic",
        "tanh",
        "elu",
        "relie",
        "ramp",
        "hardtan",
        "lhtan",
        "loggy",
        "selu",
        "plse",
        "stair",
    )
)


@njit(cache=True, nogil=True, inline="always")
def _gradient(y, code):
    """darknet's gradient(): f'(x) written in terms of the activated output y."""
    if code == LEAKY:
        return np.float32(1) if y > 0 else np.float32(0.1)
    if code == LINEAR:
        return np.float32(1)
    if code == RELU:
        return np.float32(1) if y > 0 else np.float32(0)
    if code == LOGISTIC:
        return (1 - y) * y
    if code == TANH:
        return 1 - y * y
    if code == ELU:
        return np.float32(1) if y >= 0 else y + 1
    if code == SELU:
        return np.float32(1.0507) if y >= 0 else y + np.float32(1.0507 * 1.6732)
    if code == RELIE:
        return np.float32(1) if y > 0 else np.float32(0.01)
    if code == RAMP:
        return np.float32(1.1) if y > 0 else np.float32(0.1)
    if code == HARDTAN:
        return np.float32(1) if -1 < y < 1 else np.float32(0)
    if code == LHTAN:
        return np.float32(1) if 0 < y < 1 else np.float32(0.001)
    if code == LOGGY:
        half = (y + 1) / 2
        return 2 * (1 - half) * half
    if code == PLSE:
        return np.float32(0.01) if y < 0 or y > 1 else np.float32(0.125)
    return np.float32(0) if math.floor(y) == y else np.float32(1)  # stair


@njit(**_JIT)
def activation_gradient(y, code, delta):
    yf, df = y.reshape(-1), delta.reshape(-1)
    if code == LEAKY:  # the common case as a select, which LLVM vectorises
        for i in prange(df.size):
            df[i] *= np.float32(1) if yf[i] > 0 else np.float32(0.1)
    elif code != LINEAR:
        for i in prange(df.size):
            df[i] *= _gradient(yf[i], code)


@njit(**_JIT)
def activate(y, code):
    yf = y.reshape(-1)
    if code == LEAKY:
        for i in prange(yf.size):
            v = yf[i]
            yf[i] = v if v > 0 else v * np.float32(0.1)
    elif code != LINEAR:
        for i in prange(yf.size):
            yf[i] = _activate(yf[i], code)


@njit(**_JIT)
def im2col(x, size, stride, pad, c0, cg, cols):
    n, h, w, c = x.shape
    out_h = (h + 2 * pad - size) // stride + 1
    out_w = (w + 2 * pad - size) // stride + 1
    for r in prange(n * out_h):
        b, oy = r // out_h, r % out_h
        for ox in range(out_w):
            row = r * out_w + ox
            for ky in range(size):
                iy = oy * stride + ky - pad
                for kx in range(size):
                    ix = ox * stride + kx - pad
                    at = (ky * size + kx) * cg
                    if 0 <= iy < h and 0 <= ix < w:
                        for ch in range(cg):
                            cols[row, at + ch] = x[b, iy, ix, c0 + ch]
                    else:
                        for ch in range(cg):
                            cols[row, at + ch] = 0
    return cols


@njit(**_JIT)
def col2im_add(dcols, size, stride, pad, c0, cg, dx):
    n, h, w, c = dx.shape
    out_h = (h + 2 * pad - size) // stride + 1
    out_w = (w + 2 * pad - size) // stride + 1
    for b in prange(n):  # each image's cells are its own
        for oy in range(out_h):
            for ox in range(out_w):
                row = (b * out_h + oy) * out_w + ox
                for ky in range(size):
                    iy = oy * stride + ky - pad
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(size):
                        ix = ox * stride + kx - pad
                        if ix < 0 or ix >= w:
                            continue
                        at = (ky * size + kx) * cg
                        for ch in range(cg):
                            dx[b, iy, ix, c0 + ch] += dcols[row, at + ch]


@njit(**_JIT)
def _column_sums(a, b):
    """(sum of a over rows, sum of a*b over rows) per column, in float64; b may be a itself."""
    rows, cols = a.shape
    blocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    part1 = np.zeros((blocks, cols))
    part2 = np.zeros((blocks, cols))
    for k in prange(blocks):
        for i in range(k * ROW_BLOCK, min(rows, (k + 1) * ROW_BLOCK)):
            for j in range(cols):
                part1[k, j] += a[i, j]
                part2[k, j] += a[i, j] * b[i, j]
    return part1.sum(axis=0), part2.sum(axis=0)


@njit(**_JIT)
def _centered_squares(z, mean):
    rows, cols = z.shape
    blocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    part = np.zeros((blocks, cols))
    for k in prange(blocks):
        for i in range(k * ROW_BLOCK, min(rows, (k + 1) * ROW_BLOCK)):
            for j in range(cols):
                d = z[i, j] - mean[j]
                part[k, j] += d * d
    return part.sum(axis=0)


@njit(**_JIT)
def _affine_rows(z, x_norm, mul, add, scales, biases):
    """x_norm = z*mul + add (the normalisation), z = x_norm*scales + biases, per column."""
    rows, cols = z.shape
    blocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    for k in prange(blocks):
        for i in range(k * ROW_BLOCK, min(rows, (k + 1) * ROW_BLOCK)):
            for j in range(cols):
                v = z[i, j] * mul[j] + add[j]
                x_norm[i, j] = v
                z[i, j] = v * scales[j] + biases[j]


def batchnorm_forward(z, scales, biases, rolling_mean, rolling_variance, mean, variance, x_norm):
    rows = z.shape[0]
    sums, _ = _column_sums(z, z)
    mean[:] = sums / rows
    variance[:] = _centered_squares(z, mean) / (rows - 1)
    rolling_mean *= backprop.ROLLING_MOMENTUM
    rolling_mean += np.float32(0.01) * mean
    rolling_variance *= backprop.ROLLING_MOMENTUM
    rolling_variance += np.float32(0.01) * variance
    mul = (1 / (np.sqrt(variance) + BN_FORWARD_EPS)).astype(np.float32)
    _affine_rows(z, x_norm, mul, (-mean * mul).astype(np.float32), scales, biases)


@njit(**_JIT)
def _combine_rows(delta, x_norm, a, b, c):
    rows, cols = delta.shape
    blocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    for k in prange(blocks):
        for i in range(k * ROW_BLOCK, min(rows, (k + 1) * ROW_BLOCK)):
            for j in range(cols):
                delta[i, j] = delta[i, j] * a[j] + x_norm[i, j] * b[j] + c[j]


def batchnorm_backward(delta, x_norm, scales, mean, variance, bias_updates, scale_updates):
    """backprop.batchnorm_backward in two passes: the sums of delta and delta*x_norm give every
    per-channel term (the mean and variance deltas are the scale times them), then one pass
    delta = a*delta + b*x_norm + c."""
    rows = delta.shape[0]
    sum_delta, sum_dx = _column_sums(delta, x_norm)
    bias_updates += sum_delta.astype(np.float32)
    scale_updates += sum_dx.astype(np.float32)
    var = variance.astype(np.float64)
    scale = scales.astype(np.float64)
    std_eps = np.sqrt(var + BN_BACKWARD_EPS)
    std_fwd = np.sqrt(variance).astype(np.float64) + BN_FORWARD_EPS
    mean_delta = scale * sum_delta * (-1 / std_eps)
    variance_delta = scale * std_fwd * sum_dx * (-0.5 * (var + BN_BACKWARD_EPS) ** -1.5)
    a = (scale / std_eps).astype(np.float32)
    b = (std_fwd * variance_delta * 2 / rows).astype(np.float32)
    c = (mean_delta / rows).astype(np.float32)
    _combine_rows(delta, x_norm, a, b, c)


def bias_backward(delta, bias_updates):
    sums, _ = _column_sums(delta, delta)
    bias_updates += sums.astype(np.float32)


@njit(**_JIT)
def maxpool_forward(x, size, stride, offset, out, argmax):
    n, h, w, c = x.shape
    _, out_h, out_w, _ = out.shape
    for r in prange(n * out_h):
        b, oy = r // out_h, r % out_h
        for ox in range(out_w):
            best, where = out[b, oy, ox], argmax[b, oy, ox]
            best[:] = -np.inf
            where[:] = -1
            for ky in range(size):  # darknet's window order: the first largest wins
                iy = offset + oy * stride + ky
                if iy < 0 or iy >= h:
                    continue
                for kx in range(size):
                    ix = offset + ox * stride + kx
                    if ix < 0 or ix >= w:
                        continue
                    cell = x[b, iy, ix]
                    base = ((b * h + iy) * w + ix) * c
                    for ch in range(c):
                        if cell[ch] > best[ch]:
                            best[ch] = cell[ch]
                            where[ch] = base + ch


@njit(**_JIT)
def _maxpool_backward(delta, argmax, dx):
    n = delta.shape[0]
    per_image = delta.size // n
    df, af, xf = delta.reshape(-1), argmax.reshape(-1), dx.reshape(-1)
    for b in prange(n):  # a window's winner lies in its own image
        for i in range(b * per_image, (b + 1) * per_image):
            xf[af[i]] += df[i]


def maxpool_backward(delta, argmax, size, stride, dx):
    _maxpool_backward(np.ascontiguousarray(delta), argmax, dx)


def in_cache() -> bool:
    """Whether Numba's on-disk cache already holds these kernels (an index for each), so that
    the first training step loads them rather than compiles them. False when unsure."""
    import os

    dispatchers = [
        v
        for v in globals().values()
        if hasattr(v, "_cache")
        and getattr(v, "py_func", None)
        and v.py_func.__module__ == __name__
        and v.targetoptions.get("inline") != "always"
    ]
    for dispatcher in dispatchers:
        index = getattr(getattr(dispatcher._cache, "_cache_file", None), "_index_path", None)
        if not index or not os.path.exists(index):
            return False
    return bool(dispatchers)
