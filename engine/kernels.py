"""Numba kernels of the forward pass. Arrays and ints in, arrays out; no Python objects.

Layout: activations are NHWC float32, C-contiguous, so a pixel's channels are adjacent and
a convolution is a GEMM (rows = output pixels, columns = filters) done by numpy's BLAS.
These kernels are the memory-bound parts around that GEMM. All run with nogil so the GUI
thread keeps running, and cache=True so the JIT cost is paid once per install.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .activations import activate

_JIT = dict(cache=True, nogil=True, parallel=True, fastmath=False)


@njit(**_JIT)
def im2col(x, size, stride, pad, c0, cg, out_h, out_w, cols):
    """cols[(n*out_h+oy)*out_w+ox, (ky*size+kx)*cg + c] = x[n, iy, ix, c0+c], 0 outside.

    x: (n, h, w, c); cols: (n*out_h*out_w, size*size*cg). One row per output pixel, so
    the conv is cols @ W with W laid out (ky, kx, c) × filters.
    """
    n_img, h, w, _ = x.shape
    for row in prange(n_img * out_h):
        n = row // out_h
        oy = row % out_h
        for ox in range(out_w):
            r = row * out_w + ox
            for ky in range(size):
                iy = oy * stride - pad + ky
                for kx in range(size):
                    ix = ox * stride - pad + kx
                    base = (ky * size + kx) * cg
                    if 0 <= iy < h and 0 <= ix < w:
                        for c in range(cg):
                            cols[r, base + c] = x[n, iy, ix, c0 + c]
                    else:
                        for c in range(cg):
                            cols[r, base + c] = 0.0


@njit(**_JIT)
def bias_activate(acc, bias, act):
    """acc[r, f] = act(acc[r, f] + bias[f]) in place. acc: (rows, filters)."""
    rows, filters = acc.shape
    for r in prange(rows):
        for f in range(filters):
            acc[r, f] = activate(acc[r, f] + bias[f], act)


@njit(**_JIT)
def bias_activate_maxpool(acc, bias, act, size, stride, offset, out):
    """Conv epilogue fused with the max pool that follows it (the hottest memory pass).

    acc: (n, h, w, f) raw GEMM output; out: (n, out_h, out_w, f). Window cells outside the
    image are skipped, as darknet does (its max starts at -inf).
    """
    n_img, h, w, filters = acc.shape
    _, out_h, out_w, _ = out.shape
    for row in prange(n_img * out_h):
        n = row // out_h
        oy = row % out_h
        for ox in range(out_w):
            for f in range(filters):
                best = -np.inf
                for ky in range(size):
                    iy = oy * stride + offset + ky
                    if 0 <= iy < h:
                        for kx in range(size):
                            ix = ox * stride + offset + kx
                            if 0 <= ix < w:
                                v = activate(acc[n, iy, ix, f] + bias[f], act)
                                if v > best:
                                    best = v
                out[n, oy, ox, f] = best


@njit(**_JIT)
def maxpool(x, size, stride, offset, out):
    """darknet's [maxpool]: out[n, oy, ox, c] = max over the window, skipping outside cells."""
    n_img, h, w, channels = x.shape
    _, out_h, out_w, _ = out.shape
    for row in prange(n_img * out_h):
        n = row // out_h
        oy = row % out_h
        for ox in range(out_w):
            for c in range(channels):
                best = -np.inf
                for ky in range(size):
                    iy = oy * stride + offset + ky
                    if 0 <= iy < h:
                        for kx in range(size):
                            ix = ox * stride + offset + kx
                            if 0 <= ix < w and x[n, iy, ix, c] > best:
                                best = x[n, iy, ix, c]
                out[n, oy, ox, c] = best


@njit(**_JIT)
def global_avgpool(x, out):
    """darknet's [avgpool]: mean over all pixels. x: (n, h, w, c); out: (n, 1, 1, c)."""
    n_img, h, w, channels = x.shape
    for n in prange(n_img):
        for c in range(channels):
            out[n, 0, 0, c] = 0.0
        for iy in range(h):
            for ix in range(w):
                for c in range(channels):
                    out[n, 0, 0, c] += x[n, iy, ix, c]
        for c in range(channels):
            out[n, 0, 0, c] /= h * w


@njit(**_JIT)
def shortcut_add(src, alpha, beta, act, out):
    """darknet's [shortcut]: out = act(alpha*out + beta*src) over the common channels.

    src may be larger (it is sampled with a stride) or smaller (it is added to every
    sample-th pixel) than out, as darknet's shortcut_cpu does; channels beyond the smaller
    count keep out's value (then activated).
    """
    n_img, h1, w1, c1 = src.shape
    _, h2, w2, c2 = out.shape
    stride = max(w1 // w2, 1)
    sample = max(w2 // w1, 1)
    min_h = min(h1, h2)
    min_w = min(w1, w2)
    min_c = min(c1, c2)
    for n in prange(n_img):
        for j in range(min_h):
            for i in range(min_w):
                for k in range(min_c):
                    oy, ox = j * sample, i * sample
                    out[n, oy, ox, k] = alpha * out[n, oy, ox, k] + beta * src[n, j * stride, i * stride, k]
        for y in range(h2):
            for x in range(w2):
                for k in range(c2):
                    out[n, y, x, k] = activate(out[n, y, x, k], act)
