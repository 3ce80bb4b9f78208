"""The compiled Winograd F(4x4, 3x3) kernels (the method: winograd_transforms.py). Per call,
for each block of tiles: V = Bᵀ d B, M[ξ] = V[ξ] @ U[ξ] for the 36 positions ξ, then Aᵀ M A,
bias, activation and an optional 2x2 max pool (`winograd_conv`); Bᵀ and Aᵀ are written out
as sums in _bt and _at.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .compiled import _activate_span

_JIT = dict(cache=True, nogil=True, parallel=True)


@njit(cache=True, nogil=True, inline="always")
def _bt(src, rows_in, dst, rows_out, dst2, c):
    """dst rows rows_out (6) = Bᵀ · (src rows rows_in (6)), each row a vector of c channels."""
    s0, s1, s2, s3, s4, s5 = rows_in
    o0, o1, o2, o3, o4, o5 = rows_out
    for k in range(c):
        d0, d1, d2, d3, d4, d5 = src[s0, k], src[s1, k], src[s2, k], src[s3, k], src[s4, k], src[s5, k]
        dst[o0, dst2, k] = 4 * d0 - 5 * d2 + d4
        dst[o1, dst2, k] = -4 * (d1 + d2) + d3 + d4
        dst[o2, dst2, k] = 4 * (d1 - d2) - d3 + d4
        dst[o3, dst2, k] = 2 * (d3 - d1) - d2 + d4
        dst[o4, dst2, k] = 2 * (d1 - d3) - d2 + d4
        dst[o5, dst2, k] = 4 * d1 - 5 * d3 + d5


@njit(cache=True, nogil=True, inline="always")
def _at(src, mid, rows_in, dst, rows_out, c):
    """dst rows rows_out (4) = Aᵀ · (src[rows_in (6), mid]), each row a vector of c filters."""
    s0, s1, s2, s3, s4, s5 = rows_in
    o0, o1, o2, o3 = rows_out
    for k in range(c):
        m0, m1, m2, m3, m4, m5 = (
            src[s0, mid, k],
            src[s1, mid, k],
            src[s2, mid, k],
            src[s3, mid, k],
            src[s4, mid, k],
            src[s5, mid, k],
        )
        a, b = m1 + m2, m1 - m2
        p, q = m3 + m4, m3 - m4
        dst[o0, k] = m0 + a + p
        dst[o1, k] = b + 2 * q
        dst[o2, k] = a + 4 * p
        dst[o3, k] = b + 8 * q + m5


@njit(cache=True, nogil=True, inline="always")
def _tile_place(tile, tiles):
    """(image, tile row, tile column) of a tile numbered image by image, row by row;
    tiles = (tiles down, tiles across) an image."""
    tiles_y, tiles_x = tiles
    return tile // (tiles_y * tiles_x), (tile // tiles_x) % tiles_y, tile % tiles_x


@njit(cache=True, nogil=True, inline="always")
def _input_tile(x, tile, tiles, d, tmp_in, vt, p):
    """vt[:, p, :] = Bᵀ d B for the 6x6 input tile d of `tile` (zeros outside the image).
    d (36, c) and tmp_in (36, 1, c) are scratch."""
    _, h, w, c = x.shape
    n, ty, tx = _tile_place(tile, tiles)
    for i in range(6):
        yy = 4 * ty - 1 + i
        for j in range(6):
            xx = 4 * tx - 1 + j
            if 0 <= yy < h and 0 <= xx < w:
                for k in range(c):
                    d[6 * i + j, k] = x[n, yy, xx, k]
            else:
                for k in range(c):
                    d[6 * i + j, k] = 0.0
    for j in range(6):
        column = (j, 6 + j, 12 + j, 18 + j, 24 + j, 30 + j)
        _bt(d, column, tmp_in, column, 0, c)
    for i in range(6):
        row = (6 * i, 6 * i + 1, 6 * i + 2, 6 * i + 3, 6 * i + 4, 6 * i + 5)
        _bt(tmp_in[:, 0, :], row, vt, row, p, c)


@njit(cache=True, nogil=True, inline="always")
def _output_tile(mt, p, tmp_out, y, width):
    """y (16, width) = Aᵀ M A for the tile at row p of the 36 GEMM results mt (36, rows, ≥width).
    tmp_out (24, 1, ≥width) is scratch."""
    for j in range(6):
        _at(mt, p, (j, 6 + j, 12 + j, 18 + j, 24 + j, 30 + j), tmp_out[:, 0, :], (j, 6 + j, 12 + j, 18 + j), width)
    for a in range(4):
        _at(
            tmp_out,
            0,
            (6 * a, 6 * a + 1, 6 * a + 2, 6 * a + 3, 6 * a + 4, 6 * a + 5),
            y,
            (4 * a, 4 * a + 1, 4 * a + 2, 4 * a + 3),
            width,
        )


@njit(**_JIT)
def winograd_conv(x, u, tiles, conv, bias, act, pool, block, v, m, out):
    """The whole Winograd conv in one parallel pass, block of tiles by block of tiles:
    input transform → 36 GEMMs (block × c) @ (c × f) → output transform, bias, activation,
    pool. Each thread's block stays in its cache and there is one kernel launch per layer.

    u: (36, c, f); tiles = (tiles down, across) an image; conv = (conv_h, conv_w), the map
    before the pool; pool: whether a 2x2/2 max pool follows; v: (threads, 36*block*c) and
    m: (threads, 36*block*f) scratch.
    """
    n_img, h, w, c = x.shape
    filters = u.shape[2]
    count = n_img * tiles[0] * tiles[1]
    blocks = (count + block - 1) // block
    threads = v.shape[0]
    _, out_h, out_w, _ = out.shape
    of = out.reshape(-1)
    for t in prange(threads):
        d = np.empty((36, c), np.float32)
        tmp_in = np.empty((36, 1, c), np.float32)
        tmp_out = np.empty((24, 1, filters), np.float32)
        y = np.empty((16, filters), np.float32)
        vt = v[t][: 36 * block * c].reshape(36, block, c)  # (a smaller batch's block: a part)
        mt = m[t][: 36 * block * filters].reshape(36, block, filters)
        vf, mf = v[t], m[t]
        for blk in range(t, blocks, threads):
            t0 = blk * block
            t1 = min(t0 + block, count)
            for tile in range(t0, t1):
                _input_tile(x, tile, tiles, d, tmp_in, vt, tile - t0)
            rows = t1 - t0
            for xi in range(36):
                np.dot(
                    vf[xi * block * c : xi * block * c + rows * c].reshape(rows, c),
                    u[xi],
                    mf[xi * block * filters : xi * block * filters + rows * filters].reshape(rows, filters),
                )
            for tile in range(t0, t1):
                _output_tile(mt, tile - t0, tmp_out, y, filters)
                _store_tile(y, tile, tiles, conv, bias, act, pool, of, (out_h, out_w, filters, 0), filters)


@njit(**_JIT)
def winograd_conv_by_filters(x, u_chunks, tiles, conv, bias, act, pool, v, m, out):
    """winograd_conv for maps with few tiles (14x14 and 28x28 at batch 1) and many filters:
    blocks of tiles would make the 36 GEMMs tiny (13 rows: ~20 GFLOP/s); instead V is built
    for all tiles at once, then each task takes a chunk of the filters: 36 GEMMs
    (all tiles × c) @ (c × chunk) and the output transform of those filters.

    u_chunks: (chunks, 36, c, chunk), the last chunk zero-padded; v: (≥ 36 * tiles * c,);
    m: (chunks, ≥ 36 * tiles * chunk).
    """
    n_img, h, w, c = x.shape
    chunks, _, _, chunk = u_chunks.shape
    filters = out.shape[3]
    count = n_img * tiles[0] * tiles[1]
    _, out_h, out_w, _ = out.shape
    of = out.reshape(-1)
    vt = v[: 36 * count * c].reshape(36, count, c)
    d = np.empty((36, c), np.float32)
    tmp_in = np.empty((36, 1, c), np.float32)
    # The input transform on one thread: 16-64 tiles are little work next to the GEMMs, and a
    # parallel loop here compiles ~2.7 s longer for no measurable gain (`tdn bench darknet19`)
    for tile in range(count):
        _input_tile(x, tile, tiles, d, tmp_in, vt, tile)
    for ci in prange(chunks):
        f0 = ci * chunk
        fc = min(chunk, filters - f0)
        mt = m[ci][: 36 * count * chunk].reshape(36, count, chunk)
        for xi in range(36):
            np.dot(vt[xi], u_chunks[ci, xi], mt[xi])
        tmp_out = np.empty((24, 1, chunk), np.float32)
        y = np.empty((16, chunk), np.float32)
        for tile in range(count):
            _output_tile(mt, tile, tmp_out, y, chunk)
            _store_tile(y, tile, tiles, conv, bias, act, pool, of, (out_h, out_w, filters, f0), fc)


@njit(cache=True, nogil=True)
def _store_tile(y, tile, tiles, conv, bias, act, pool, of, dest, fc):
    """A finished 4x4 tile y (16, ≥fc) of filters f0..f0+fc → out, + bias and activation, or
    its 2x2/2 max pool. dest = (out_h, out_w, filters, f0) of the output array."""
    conv_h, conv_w = conv
    out_h, out_w, filters, f0 = dest
    n, ty, tx = _tile_place(tile, tiles)
    if not pool:
        for a in range(4):
            oy = 4 * ty + a
            if oy >= out_h:
                break
            for b in range(4):
                ox = 4 * tx + b
                if ox >= out_w:
                    break
                dst = ((n * out_h + oy) * out_w + ox) * filters + f0
                for f in range(fc):
                    of[dst + f] = y[4 * a + b, f] + bias[f0 + f]
                _activate_span(of, dst, dst + fc, act)
        return
    for pa in range(2):
        py = 2 * ty + pa
        if py >= out_h:
            break
        for pb in range(2):
            px = 2 * tx + pb
            if px >= out_w:
                break
            dst = ((n * out_h + py) * out_w + px) * filters + f0
            for f in range(fc):
                of[dst + f] = -np.inf
            for a in range(2 * pa, 2 * pa + 2):
                if 4 * ty + a >= conv_h:
                    continue
                for b in range(2 * pb, 2 * pb + 2):
                    if 4 * tx + b >= conv_w:
                        continue
                    for f in range(fc):
                        of[dst + f] = max(of[dst + f], y[4 * a + b, f])
            for f in range(fc):
                of[dst + f] += bias[f0 + f]
            _activate_span(of, dst, dst + fc, act)
