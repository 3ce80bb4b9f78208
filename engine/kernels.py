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


@njit(cache=True, nogil=True, inline="always")
def _activate_span(a, start, stop, act):
    """Activate a[start:stop] in place; the common codes get branch-free inner loops."""
    if act == 0:                                    # linear
        return
    if act == 1:                                    # leaky, darknet's slope 0.1
        for i in range(start, stop):
            v = a[i]
            a[i] = v if v > 0 else v * np.float32(0.1)
    elif act == 2:                                  # relu
        for i in range(start, stop):
            v = a[i]
            a[i] = v if v > 0 else np.float32(0)
    else:
        for i in range(start, stop):
            a[i] = activate(a[i], act)


@njit(**_JIT)
def im2col(x, size, stride, pad, c0, cg, out_h, out_w, cols):
    """cols[(n*out_h+oy)*out_w+ox, (ky*size+kx)*cg + c] = x[n, iy, ix, c0+c], 0 outside.

    x: (n, h, w, c); cols: (n*out_h*out_w, size*size*cg). One row per output pixel, so
    the conv is cols @ W with W laid out (ky, kx, c) × filters. With stride 1 and all
    channels, the size*cg values of one kernel row are one contiguous run of x.
    """
    n_img, h, w, c = x.shape
    k = size * size * cg
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    contiguous_run = cg == c
    for row in prange(n_img * out_h):
        n = row // out_h
        oy = row % out_h
        for ox in range(out_w):
            dst = (row * out_w + ox) * k
            ix0 = ox * stride - pad
            for ky in range(size):
                iy = oy * stride - pad + ky
                d = dst + ky * size * cg
                if iy < 0 or iy >= h:
                    for j in range(size * cg):
                        cf[d + j] = 0.0
                elif contiguous_run and ix0 >= 0 and ix0 + size <= w:
                    src = ((n * h + iy) * w + ix0) * c
                    for j in range(size * cg):
                        cf[d + j] = xf[src + j]
                else:
                    for kx in range(size):
                        ix = ix0 + kx
                        if 0 <= ix < w:
                            src = ((n * h + iy) * w + ix) * c + c0
                            for j in range(cg):
                                cf[d + kx * cg + j] = xf[src + j]
                        else:
                            for j in range(cg):
                                cf[d + kx * cg + j] = 0.0


@njit(**_JIT)
def bias_activate(acc, bias, act):
    """acc[r, f] = act(acc[r, f] + bias[f]) in place. acc: (rows, filters)."""
    rows, filters = acc.shape
    flat = acc.reshape(-1)
    for r in prange(rows):
        base = r * filters
        for f in range(filters):
            flat[base + f] += bias[f]
        _activate_span(flat, base, base + filters, act)


@njit(**_JIT)
def bias_activate_maxpool(acc, bias, act, size, stride, offset, out):
    """Conv epilogue fused with the max pool that follows it (the hottest memory pass).

    acc: (n, h, w, f) raw GEMM output; out: (n, out_h, out_w, f). Window cells outside the
    image are skipped, as darknet does (its max starts at -inf). The activation is applied
    after the max, which is exact for the monotonic activations the caller allows here.
    """
    n_img, h, w, filters = acc.shape
    _, out_h, out_w, _ = out.shape
    af = acc.reshape(-1)
    of = out.reshape(-1)
    for row in prange(n_img * out_h):
        n = row // out_h
        oy = row % out_h
        for ox in range(out_w):
            dst = ((n * out_h + oy) * out_w + ox) * filters
            for f in range(filters):
                of[dst + f] = -np.inf
            for ky in range(size):
                iy = oy * stride + offset + ky
                if iy < 0 or iy >= h:
                    continue
                for kx in range(size):
                    ix = ox * stride + offset + kx
                    if ix < 0 or ix >= w:
                        continue
                    src = ((n * h + iy) * w + ix) * filters
                    for f in range(filters):
                        of[dst + f] = max(of[dst + f], af[src + f])
            for f in range(filters):
                of[dst + f] += bias[f]
            _activate_span(of, dst, dst + filters, act)


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
