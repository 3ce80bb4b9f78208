"""Numba kernels of the forward pass. Arrays and ints in, arrays out; no Python objects.

Layout: activations are NHWC float32, C-contiguous, so a pixel's channels are adjacent and
a convolution is a GEMM (rows = output pixels, columns = filters): np.dot inside the kernels,
which Numba hands to SciPy's BLAS (single-threaded: the parallelism is Numba's). Around the
GEMMs: im2col, the fused epilogue (bias, activation, max pool), pooling and shortcuts. The
convs here are those of several groups: direct convolution, which runs the others, is in
direct.py, and Winograd's kernels are in winograd.py. All run with nogil so the GUI thread
keeps running, and cache=True so the JIT cost is paid once per install.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from ..activations import ACTIVATIONS

# LLVM's SLP vectorizer, which Numba leaves off by default, for every kernel of the engine (all
# import this module first): every kernel passes its reference tests with it and compiles no
# slower (bench/bench_compile.py; docs/performance.md); the vector tile does not need it
numba.config.SLP_VECTORIZE = 1

_JIT = dict(cache=True, nogil=True, parallel=True, fastmath=False)

# Activation codes, from the registry: Numba freezes module globals into the compiled code
LINEAR, LEAKY, RELU = ACTIVATIONS["linear"], ACTIVATIONS["leaky"], ACTIVATIONS["relu"]
LOGISTIC, TANH, ELU, RELIE = ACTIVATIONS["logistic"], ACTIVATIONS["tanh"], ACTIVATIONS["elu"], ACTIVATIONS["relie"]
RAMP, HARDTAN, LHTAN = ACTIVATIONS["ramp"], ACTIVATIONS["hardtan"], ACTIVATIONS["lhtan"]
LOGGY, SELU, PLSE = ACTIVATIONS["loggy"], ACTIVATIONS["selu"], ACTIVATIONS["plse"]

# Argument groups of the conv kernels (tuples of ints):
#   conv  = (size, stride, pad)         the kernel window
#   group = (c0, f0)                    first input and output channel of the group computed
#   pool  = (size, stride, offset)      a fused max pool (size 0: none); a Pool namedtuple
#   rows  = (r0, r1, b0, b1)            conv rows r0..r1 in the GEMM result, output rows b0..b1
#   dest  = (out_h, out_w, filters, f0) the output array's rows, columns, channels; first channel


@njit(cache=True, nogil=True, inline="always")
def activate(x, code):
    """darknet's activation `code` (see activations.py) of one value; LLVM hoists the branch
    out of the loops that call it, so a fused epilogue costs what a specialised one would."""
    if code == LINEAR:
        return x
    if code == LEAKY:
        return x if x > 0 else x * 0.1
    if code == RELU:
        return x if x > 0 else x * 0
    if code == LOGISTIC:
        return 1 / (1 + math.exp(-x))
    if code == TANH:
        return math.tanh(x)
    if code == ELU:
        return x if x >= 0 else math.exp(x) - 1
    if code == RELIE:
        return x if x > 0 else x * 0.01
    if code == RAMP:
        return (x if x > 0 else x * 0) + 0.1 * x
    if code == HARDTAN:
        return -1.0 if x < -1 else (1.0 if x > 1 else x)
    if code == LHTAN:
        return 0.001 * x if x < 0 else (0.001 * (x - 1) + 1 if x > 1 else x)
    if code == LOGGY:
        return 2 / (1 + math.exp(-x)) - 1
    if code == SELU:
        return 1.0507 * x if x >= 0 else 1.0507 * 1.6732 * (math.exp(x) - 1)
    if code == PLSE:
        if x < -4:
            return 0.01 * (x + 4)
        if x > 4:
            return 0.01 * (x - 4) + 1
        return 0.125 * x + 0.5
    # stair
    n = math.floor(x)
    if n % 2 == 0:
        return math.floor(x / 2)
    return (x - n) + math.floor(x / 2)


@njit(cache=True, nogil=True)
def _activate_span(a, start, stop, act):
    """Activate a[start:stop] in place; the common codes get branch-free inner loops."""
    if act == LINEAR:
        return
    if act == LEAKY:  # darknet's slope 0.1: max(v, 0.1 v)
        for i in range(start, stop):
            a[i] = max(a[i], a[i] * np.float32(0.1))
    elif act == RELU:
        for i in range(start, stop):
            a[i] = max(a[i], np.float32(0))
    else:
        for i in range(start, stop):
            a[i] = activate(a[i], act)


@njit(cache=True, nogil=True)
def _im2col_rows(xf, n, h, w, c, c0, cg, size, stride, pad, r0, r1, out_w, cols):
    """cols[(oy-r0)*out_w+ox, (ky*size+kx)*cg + j] = x[n, iy, ix, c0+j] for conv rows r0..r1 of
    image n; x is (n, h, w, c), flattened in xf.

    With all channels, one kernel row's size*cg values are one contiguous run of x.
    """
    k = size * size * cg
    run = size * cg
    for oy in range(r0, r1):
        for ox in range(out_w):
            dst = ((oy - r0) * out_w + ox) * k
            ix0 = ox * stride - pad
            for ky in range(size):
                iy = oy * stride - pad + ky
                d = dst + ky * run
                if iy < 0 or iy >= h:
                    for j in range(run):
                        cols[d + j] = 0.0
                elif cg == c and ix0 >= 0 and ix0 + size <= w:
                    src = ((n * h + iy) * w + ix0) * c
                    for j in range(run):
                        cols[d + j] = xf[src + j]
                else:
                    for kx in range(size):
                        ix = ix0 + kx
                        if 0 <= ix < w:
                            src = ((n * h + iy) * w + ix) * c + c0
                            for j in range(cg):
                                cols[d + kx * cg + j] = xf[src + j]
                        else:
                            for j in range(cg):
                                cols[d + kx * cg + j] = 0.0


@njit(**_JIT)
def conv_forward(x, wmat, bias, act, conv, group, pool, out, cols, acc, band):
    """One [convolutional] (one group of it), fused: im2col → GEMM → bias, activation and
    optionally the following [maxpool], in bands of output rows so each thread's
    working set stays in its cache. Convs of several groups come here (direct.py runs the rest).

    x: (n, h, w, c) input; wmat: (size*size*cg, fg) with batch norm folded in; conv, group,
    pool: see the argument groups above; out: (n, out_rows, out_cols, filters), pooled when
    pool.size > 0, written at channels f0..f0+fg; cols/acc: per-thread scratch
    (threads, band_rows*conv_w*k) and (threads, ...*fg); band: output rows per task. BLAS runs
    single-threaded inside each Numba thread.
    """
    n_img, h, w, c = x.shape
    k, fg = wmat.shape
    size, stride, pad = conv
    cg = k // (size * size)
    conv_h = (h + 2 * pad - size) // stride + 1
    conv_w = (w + 2 * pad - size) // stride + 1
    final_h, out_w, filters = out.shape[1], out.shape[2], out.shape[3]
    direct_gemm = size == 1 and stride == 1 and pad == 0 and cg == c
    xf = x.reshape(-1)
    of = out.reshape(-1)
    bands = (final_h + band - 1) // band
    tasks = n_img * bands
    threads = cols.shape[0]
    for t in prange(threads):
        ct = cols[t]
        at = acc[t]
        for task in range(t, tasks, threads):
            n = task // bands
            b0 = (task % bands) * band
            b1 = min(b0 + band, final_h)
            r0, r1 = conv_rows(b0, b1, pool, conv_h)
            rows = (r1 - r0) * conv_w
            a2 = at[: rows * fg].reshape(rows, fg)
            if direct_gemm:
                start = (n * h + r0) * w * c
                np.dot(xf[start : start + rows * c].reshape(rows, c), wmat, a2)
            else:
                _im2col_rows(xf, n, h, w, c, group[0], cg, size, stride, pad, r0, r1, conv_w, ct)
                np.dot(ct[: rows * k].reshape(rows, k), wmat, a2)
            _epilogue(
                at,
                fg,
                fg,
                n,
                (r0, r1, b0, b1),
                (conv_h, conv_w),
                bias,
                act,
                pool,
                of,
                (final_h, out_w, filters, group[1]),
            )


@njit(cache=True, nogil=True, inline="always")
def conv_rows(b0, b1, pool, conv_h):
    """The conv rows r0..r1 that output rows b0..b1 need: the same rows, or with a fused max
    pool (size, stride, offset), the rows its windows cover (clipped to the map)."""
    pool_size, pool_stride, pool_offset = pool
    if pool_size == 0:
        return b0, b1
    return (max(b0 * pool_stride + pool_offset, 0), min((b1 - 1) * pool_stride + pool_offset + pool_size, conv_h))


@njit(cache=True, nogil=True)
def _epilogue(at, fg, fcount, n, rows, conv, bias, act, pool, of, dest):
    """GEMM rows (row stride fg) of conv rows r0..r1 of image n → output channels f0..f0+fcount:
    + bias, activation, and when pool.size > 0 the fused max pool, whose output rows b0..b1
    these conv rows cover. rows = (r0, r1, b0, b1); conv = (conv_h, conv_w); dest: see above."""
    r0, r1, b0, b1 = rows
    conv_h, conv_w = conv
    pool_size, pool_stride, pool_offset = pool
    final_h, out_w, filters, f0 = dest
    if pool_size == 0:
        for r in range((r1 - r0) * conv_w):
            dst = ((n * conv_h + r0) * conv_w + r) * filters + f0
            for f in range(fcount):
                of[dst + f] = at[r * fg + f] + bias[f]
            _activate_span(of, dst, dst + fcount, act)
        return
    if pool_size == 2 and pool_stride == 2 and pool_offset == 0:
        _pool2_epilogue(at, fg, fcount, n, rows, conv_w, bias, act, of, dest)
        return
    for oy in range(b0, b1):
        for ox in range(out_w):
            dst = ((n * final_h + oy) * out_w + ox) * filters + f0
            for f in range(fcount):
                of[dst + f] = -np.inf
            for ky in range(pool_size):
                iy = oy * pool_stride + pool_offset + ky
                if iy < r0 or iy >= r1:
                    continue
                for kx in range(pool_size):
                    ix = ox * pool_stride + pool_offset + kx
                    if ix < 0 or ix >= conv_w:
                        continue
                    src = ((iy - r0) * conv_w + ix) * fg
                    for f in range(fcount):
                        of[dst + f] = max(of[dst + f], at[src + f])
            for f in range(fcount):
                of[dst + f] += bias[f]
            _activate_span(of, dst, dst + fcount, act)


@njit(cache=True, nogil=True)
def _pool2_epilogue(at, fg, fcount, n, rows, conv_w, bias, act, of, dest):
    """The 2x2/2 max pool of _epilogue (Tiny Darknet's and Darknet Reference's) as two long
    passes: the max of the two conv rows over whole rows (in place in the scratch `at`),
    then of neighbouring pixels. Cells past the image never win, as in darknet."""
    r0, r1, b0, b1 = rows
    final_h, out_w, filters, f0 = dest
    row = conv_w * fg
    for oy in range(b0, b1):
        top = (2 * oy - r0) * row
        if 2 * oy + 1 < r1:
            bottom = top + row
            for i in range(row):
                at[top + i] = max(at[top + i], at[bottom + i])
        for ox in range(out_w):
            dst = ((n * final_h + oy) * out_w + ox) * filters + f0
            left = top + 2 * ox * fg
            if 2 * ox + 1 < conv_w:
                for f in range(fcount):
                    of[dst + f] = max(at[left + f], at[left + fg + f]) + bias[f]
            else:
                for f in range(fcount):
                    of[dst + f] = at[left + f] + bias[f]
            _activate_span(of, dst, dst + fcount, act)


# The kernels below are small next to a convolution and run on one thread: a parallel kernel
# costs ~2 s more to compile (Numba builds a second function for the loop body), for no
# measurable gain on these (ResNet 18's shortcuts took 0.3-0.9 ms each on two threads as
# strided loops; as the flat loop below, ~0.1 ms on one).


@njit(cache=True, nogil=True)
def bias_activate(acc, bias, act):
    """acc[r, f] = act(acc[r, f] + bias[f]) in place. acc: (rows, filters)."""
    rows, filters = acc.shape
    flat = acc.reshape(-1)
    for r in range(rows):
        base = r * filters
        for f in range(filters):
            flat[base + f] += bias[f]
        _activate_span(flat, base, base + filters, act)


@njit(cache=True, nogil=True)
def maxpool(x, pool, out):
    """darknet's [maxpool]: out[n, oy, ox, c] = max over the window, skipping outside cells.
    pool = (size, stride, offset). (Only a max pool that no conv can fuse comes here: none in
    the networks we ship.)"""
    size, stride, offset = pool
    n_img, h, w, channels = x.shape
    _, out_h, out_w, _ = out.shape
    for row in range(n_img * out_h):
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


@njit(cache=True, nogil=True)
def global_avgpool(x, out):
    """darknet's [avgpool]: mean over all pixels. x: (n, h, w, c); out: (n, 1, 1, c)."""
    n_img, h, w, channels = x.shape
    for n in range(n_img):
        for c in range(channels):
            out[n, 0, 0, c] = 0.0
        for iy in range(h):
            for ix in range(w):
                for c in range(channels):
                    out[n, 0, 0, c] += x[n, iy, ix, c]
        for c in range(channels):
            out[n, 0, 0, c] /= h * w


@njit(cache=True, nogil=True)
def softmax(z, temperature, out):
    """darknet's softmax over each row of z (rows, size): exp(z/t - max(z/t)) / sum. Rows are
    (image, group) pairs: a kernel, because for Tiny's 1000 classes numpy's eight calls cost
    ~0.15 ms, a tenth of a layer."""
    rows, size = z.shape
    for r in range(rows):
        largest = -np.inf
        for i in range(size):
            largest = max(largest, z[r, i] / temperature)
        total = np.float32(0)
        for i in range(size):
            e = np.exp(z[r, i] / temperature - largest)
            out[r, i] = e
            total += e
        for i in range(size):
            out[r, i] /= total


@njit(cache=True, nogil=True)
def shortcut_add(src, alpha, beta, act, out):
    """darknet's [shortcut]: out = act(alpha*out + beta*src) over the common channels.

    src may be larger (it is sampled with a stride) or smaller (it is added to every
    sample-th pixel) than out, as darknet's shortcut_cpu does; channels beyond the smaller
    count keep out's value (then activated).
    """
    n_img, h1, w1, c1 = src.shape
    _, h2, w2, c2 = out.shape
    of = out.reshape(-1)
    if h1 == h2 and w1 == w2 and c1 == c2:  # the usual residual: one flat pass
        sf = src.reshape(-1)
        for i in range(of.size):
            of[i] = alpha * of[i] + beta * sf[i]
    else:
        stride = max(w1 // w2, 1)
        sample = max(w2 // w1, 1)
        for n in range(n_img):
            for j in range(min(h1, h2)):
                for i in range(min(w1, w2)):
                    for k in range(min(c1, c2)):
                        oy, ox = j * sample, i * sample
                        out[n, oy, ox, k] = alpha * out[n, oy, ox, k] + beta * src[n, j * stride, i * stride, k]
    _activate_span(of, 0, of.size, act)


@njit(cache=True, nogil=True)  # not parallel: images are prepared on decoder threads
def resize_bilinear(img, ix0, ix1, dx, iy0, iy1, dy, out):
    """Both passes of darknet's resize_image per output pixel, each product and sum rounded
    to float32 in the C's order: columns (1-dx)*a + dx*b, then rows (1-dy)*p0 (+ dy*p1,
    except on the last row). The last column (every column of a 1-wide input) copies the
    last input column."""
    im_h, im_w, channels = img.shape
    h, w, _ = out.shape
    one = np.float32(1)
    for r in range(h):
        y0, y1, d = iy0[r], iy1[r], dy[r]
        both_rows = r != h - 1 and im_h != 1
        for c in range(w):
            copy_column = c == w - 1 or im_w == 1
            x0, x1, e = ix0[c], ix1[c], dx[c]
            for ch in range(channels):
                if copy_column:
                    p0 = img[y0, im_w - 1, ch]
                    p1 = img[y1, im_w - 1, ch]
                else:
                    p0 = img[y0, x0, ch] * (one - e) + img[y0, x1, ch] * e
                    p1 = img[y1, x0, ch] * (one - e) + img[y1, x1, ch] * e
                v = p0 * (one - d)
                if both_rows:
                    v = v + p1 * d
                out[r, c, ch] = v
