"""The portable kernels: every kernel of compiled.py, direct.py and winograd.py in vectorised numpy, with
the same names, arguments and results, so that a forward plan runs on either set unchanged.

Nothing here needs compiling, so a fresh install answers at once while Numba compiles the
fast set in another process (see engine/compile.py). The arithmetic is the same as the
compiled kernels' (im2col + GEMM, Winograd F(4x4, 3x3) with the same transforms, darknet's
pooling and activations); only the order of additions differs, which moves probabilities by
~1e-7. The GEMMs go to numpy's own BLAS (`@`), which uses all cores. Scratch buffers that
the compiled kernels take (cols, acc, v, m, band, block) are accepted and not needed.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..activations import ACTIVATIONS
from .winograd_transforms import AT, BT

_A = ACTIVATIONS
# im2col rows per GEMM: bounds the copy of a big layer (e.g. a 1024x1024 input) to ~64 MB
_IM2COL_FLOATS = 16 << 20


# --------------------------------------------------------------------------- activations


def activate_array(a: np.ndarray, code: int) -> np.ndarray:
    """darknet's activation `code` applied to the float32 array `a` in place (and returned).
    Linear, leaky and relu in float32 as the compiled epilogues do; the others in float64,
    rounded once, as the compiled scalar `activate` does."""
    if code == _A["linear"]:
        return a
    if code == _A["leaky"]:
        return np.maximum(a, a * np.float32(0.1), out=a)
    if code == _A["relu"]:
        return np.maximum(a, np.float32(0), out=a)
    x = a.astype(np.float64)
    with np.errstate(over="ignore"):
        if code == _A["logistic"]:
            y = 1 / (1 + np.exp(-x))
        elif code == _A["tanh"]:
            y = np.tanh(x)
        elif code == _A["elu"]:
            y = np.where(x >= 0, x, (np.exp(np.minimum(x, 0)) - 1))
        elif code == _A["relie"]:
            y = np.where(x > 0, x, 0.01 * x)
        elif code == _A["ramp"]:
            y = np.where(x > 0, x, 0) + 0.1 * x
        elif code == _A["hardtan"]:
            y = np.clip(x, -1, 1)
        elif code == _A["lhtan"]:
            y = np.where(x < 0, 0.001 * x, np.where(x > 1, 0.001 * (x - 1) + 1, x))
        elif code == _A["loggy"]:
            y = 2 / (1 + np.exp(-x)) - 1
        elif code == _A["selu"]:
            y = np.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * (np.exp(np.minimum(x, 0)) - 1))
        elif code == _A["plse"]:
            y = np.where(x < -4, 0.01 * (x + 4), np.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))
        elif code == _A["stair"]:
            n = np.floor(x)
            y = np.where(n % 2 == 0, np.floor(x / 2), (x - n) + np.floor(x / 2))
        else:
            raise ValueError(f"unknown activation code {code}")
    a[...] = y
    return a


# --------------------------------------------------------------------------- convolution


def _convolve(x, wmat, size, stride, pad, c0, cg):
    """The convolution of x's channels c0..c0+cg with the GEMM matrix wmat (size*size*cg, f),
    rows ordered (ky, kx, channel): (n, conv_h, conv_w, f), by im2col and numpy's GEMM."""
    n, h, w, c = x.shape
    filters = wmat.shape[1]
    conv_h = (h + 2 * pad - size) // stride + 1
    conv_w = (w + 2 * pad - size) // stride + 1
    part = x if (c0, cg) == (0, c) else x[..., c0 : c0 + cg]
    if size == 1 and stride == 1 and pad == 0:
        return (part.reshape(-1, cg) @ wmat).reshape(n, conv_h, conv_w, filters)
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, cg), np.float32)
    padded[:, pad : pad + h, pad : pad + w] = part
    windows = sliding_window_view(padded, (size, size), axis=(1, 2))  # (n, H, W, cg, ky, kx)
    windows = windows[:, : (conv_h - 1) * stride + 1 : stride, : (conv_w - 1) * stride + 1 : stride]
    windows = windows.transpose(0, 1, 2, 4, 5, 3)  # (n, h', w', ky, kx, cg)
    out = np.empty((n, conv_h, conv_w, filters), np.float32)
    k = size * size * cg
    rows = max(1, _IM2COL_FLOATS // max(1, conv_w * k))  # output rows per GEMM
    for i in range(n):
        for r0 in range(0, conv_h, rows):
            r1 = min(r0 + rows, conv_h)
            cols = windows[i, r0:r1].reshape(-1, k)  # the im2col copy
            np.matmul(cols, wmat, out=out[i, r0:r1].reshape(-1, filters))
    return out


def _max_pool(y, size, stride, offset, out_h, out_w):
    """darknet's max pool of y (n, h, w, c): windows start at `offset` (≤ 0) and cells
    outside the map never win. Returns (n, out_h, out_w, c)."""
    n, h, w, c = y.shape
    if (size, stride, offset) == (2, 2, 0) and (2 * out_h, 2 * out_w) == (h, w):
        # rows in pairs, then columns in pairs: 0.4 ms for Tiny's first layer, where
        # .max(axis=(2, 4)) over the same view took 2.8 ms
        pairs = y.reshape(n, out_h, 2, out_w, 2, c)
        rows = np.maximum(pairs[:, :, 0], pairs[:, :, 1])
        return np.maximum(rows[:, :, :, 0], rows[:, :, :, 1])
    top = -offset
    rows = max(top + h, (out_h - 1) * stride + size)
    cols = max(top + w, (out_w - 1) * stride + size)
    padded = np.full((n, rows, cols, c), -np.inf, np.float32)
    padded[:, top : top + h, top : top + w] = y
    result = None
    for ky in range(size):
        for kx in range(size):
            cells = padded[:, ky : ky + (out_h - 1) * stride + 1 : stride, kx : kx + (out_w - 1) * stride + 1 : stride]
            result = cells.copy() if result is None else np.maximum(result, cells, out=result)
    return result


def _finish(y, bias, act, pool, out, f0):
    """The compiled epilogue: y (n, conv_h, conv_w, f) → max pool (when pool = (size, stride,
    offset) has size > 0), + bias, activation, into out[..., f0:f0+f]."""
    if pool[0] > 0:
        y = _max_pool(y, *pool, out.shape[1], out.shape[2])
    y += bias
    activate_array(y, act)
    out[..., f0 : f0 + y.shape[3]] = y


def conv_forward(x, wmat, bias, act, conv, group, pool, out, cols, acc, band):
    """compiled.conv_forward: one group of a [convolutional], fused with bias, activation and
    an optional following [maxpool]. conv = (size, stride, pad), group = (c0, f0), pool =
    (size, stride, offset)."""
    size, stride, pad = conv
    c0, f0 = group
    cg = wmat.shape[0] // (size * size)
    y = _convolve(x, wmat, size, stride, pad, c0, cg)
    _finish(y, bias, act, pool, out, f0)


def direct_conv(xp, panels, bias, act, conv, pool, out, border, acc, split, store):
    """direct.direct_conv: a conv over an input already inside its zero border, with the
    weights in panels of 16 filters, into the part of out inside a border of `border`."""
    blocks, size, run, width = panels.shape
    wmat = panels.transpose(1, 2, 0, 3).reshape(size * run, blocks * width)[:, : out.shape[3]]
    y = _convolve(xp, np.ascontiguousarray(wmat), size, conv[1], 0, 0, xp.shape[3])
    inside = out[:, border : out.shape[1] - border, border : out.shape[2] - border] if border else out
    _finish(y, bias[: out.shape[3]], act, pool, inside, 0)


direct_conv_wide = direct_conv  # direct.direct_conv_wide: the same sums by 16-float tiles


def _winograd(x, u, tiles_y, tiles_x, conv_h, conv_w):
    """A 3x3 stride-1 'same' conv by Winograd F(4x4, 3x3): u (36, c, f) holds G g Gᵀ.
    Returns (n, conv_h, conv_w, f)."""
    n, h, w, c = x.shape
    filters = u.shape[2]
    padded = np.zeros((n, 4 * tiles_y + 2, 4 * tiles_x + 2, c), np.float32)
    padded[:, 1 : h + 1, 1 : w + 1] = x
    d = sliding_window_view(padded, (6, 6), axis=(1, 2))[:, ::4, ::4]  # (n, ty, tx, c, 6, 6)
    d = np.ascontiguousarray(d.transpose(4, 5, 0, 1, 2, 3))  # (6, 6, n, ty, tx, c)
    rest = d[0, 0].size
    v = np.matmul(BT, (BT @ d.reshape(6, 6 * rest)).reshape(6, 6, rest))  # Bᵀ d B: (6, 6, tiles*c)
    m = np.matmul(v.reshape(36, -1, c), u)  # (36, tiles, f)
    q = m.shape[1] * filters
    y = np.matmul(AT, (AT @ m.reshape(6, 6 * q)).reshape(4, 6, q))  # Aᵀ M A: (4, 4, tiles*f)
    y = y.reshape(4, 4, n, tiles_y, tiles_x, filters).transpose(2, 3, 0, 4, 1, 5)
    return y.reshape(n, 4 * tiles_y, 4 * tiles_x, filters)[:, :conv_h, :conv_w]


def winograd_conv(x, u, tiles, conv, bias, act, pool, block, v, m, out):
    """winograd.winograd_conv: bias, activation and an optional 2x2/2 max pool fused."""
    y = _winograd(x, u, *tiles, *conv)
    _finish(np.ascontiguousarray(y), bias, act, (2, 2, 0) if pool else (0, 1, 0), out, 0)


def winograd_conv_by_filters(x, u_chunks, tiles, conv, bias, act, pool, v, m, out):
    """winograd.winograd_conv_by_filters: the same, with U cut into chunks of filters."""
    chunks, _, c, chunk = u_chunks.shape
    u = u_chunks.transpose(1, 2, 0, 3).reshape(36, c, chunks * chunk)[:, :, : out.shape[3]]
    y = _winograd(x, np.ascontiguousarray(u), *tiles, *conv)
    _finish(np.ascontiguousarray(y), bias, act, (2, 2, 0) if pool else (0, 1, 0), out, 0)


# --------------------------------------------------------------------------- other layers


def bias_activate(acc, bias, act):
    """acc[r, f] = act(acc[r, f] + bias[f]) in place."""
    acc += bias
    activate_array(acc, act)


def maxpool(x, pool, out):
    """darknet's [maxpool]; pool = (size, stride, offset)."""
    out[...] = _max_pool(x, *pool, out.shape[1], out.shape[2])


def global_avgpool(x, out):
    """darknet's [avgpool]: the mean over all pixels, summed in float64."""
    out[:, 0, 0, :] = x.sum(axis=(1, 2), dtype=np.float64) / (x.shape[1] * x.shape[2])


def softmax(z, temperature, out):
    """darknet's softmax over each row of z (rows, size), with a temperature."""
    t = (z / temperature).astype(np.float64)
    e = np.exp(t - t.max(axis=1, keepdims=True))
    out[...] = e / e.sum(axis=1, keepdims=True)


def shortcut_add(src, alpha, beta, act, out):
    """darknet's [shortcut]: out = act(alpha*out + beta*src) over the channels both have, the
    larger of the two sampled with a stride (see compiled.shortcut_add)."""
    _, h1, w1, c1 = src.shape
    _, h2, w2, c2 = out.shape
    stride = max(w1 // w2, 1)
    sample = max(w2 // w1, 1)
    mh, mw, mc = min(h1, h2), min(w1, w2), min(c1, c2)
    dst = out[:, 0 : mh * sample : sample, 0 : mw * sample : sample, :mc]
    dst[...] = alpha * dst + beta * src[:, 0 : mh * stride : stride, 0 : mw * stride : stride, :mc]
    activate_array(out, act)


def resize_bilinear(img, ix0, ix1, dx, iy0, iy1, dy, out):
    """compiled.resize_bilinear (darknet's resize_image), vectorised with the same float32
    operations in the same order, so the result is bit for bit the same."""
    im_h, im_w, _ = img.shape
    h, w, _ = out.shape
    one = np.float32(1)
    e = dx[None, :, None]
    keep = one - e

    def columns(rows):  # the column pass over the chosen input rows
        picked = img[rows]  # (h, im_w, c)
        p = picked[:, ix0] * keep + picked[:, ix1] * e
        last = slice(0, w) if im_w == 1 else slice(w - 1, w)
        p[:, last] = picked[:, im_w - 1 : im_w]
        return p

    p0 = columns(iy0)
    v = p0 * (one - dy)[:, None, None]
    if im_h != 1 and h > 1:  # every row but the last also takes dy * the next row
        p1 = columns(iy1[: h - 1])
        v[: h - 1] = v[: h - 1] + p1 * dy[: h - 1, None, None]
    out[...] = v
