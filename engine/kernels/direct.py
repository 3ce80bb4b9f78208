"""Direct convolution with a register tile: the compiled kernel behind DirectStep.

A conv's output is a GEMM (pixels x filters) whose left-hand matrix is never built: the
values an output pixel needs at kernel row ky are one contiguous run of the padded input,
size*channels long. So a tile of 4 pixels x 16 filters reads its inputs straight from the
input (each pixel's run at an offset of its own, so a tile may run on from one row into the
next) and its weights from a panel (size, size*channels, 16) packed when a plan first needs
it, and keeps its 64 sums in registers (8 AVX2 vectors) from the first product to the last.

The tile's sums are eight-float vectors (vectors.py: Numba has no vector type of its own, so
the few operations the tile needs are written as LLVM instructions): per step, two vector loads
of weights, a broadcast of each pixel's input value and eight FMAs. Explicit vectors keep the
sums in registers where scalar sums leave it to LLVM's SLP vectorizer, which is slower and
compiles longer. Indices are unsigned so that Numba adds no negative-index check to each load
(signed ones halve the kernel's speed). Larger tiles (6x16, 4x24, 3x32) measure no faster than
4x16. The tile is written into direct_conv's two main loops (see _tile_inlined). The figures
behind each choice: docs/performance.md ("The direct convolution"), bench/bench_onnxruntime.py
--per-layer and `tdn bench` measure them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .layout import PANEL_FILTERS
from .store_modes import STORE_FINISHED, STORE_POOLED_PAIRS, STORE_POOLED_SECOND, STORE_RAW
from .compiled import LEAKY, LINEAR, RELU, _epilogue, conv_rows
from .vectors import vadd, vfill, vfma, vget, vload, vmax, vmul, vsplat, vstore, vzero

TILE_PIXELS = 4  # output pixels per register tile (in order, across row ends)
TILE_FILTERS = PANEL_FILTERS  # filters per tile: two AVX2 vectors per pixel
_JIT = dict(cache=True, nogil=True, parallel=True)


# What a tile does with its sums (the tile's last argument; store_modes.py, plan.direct_store chooses):
RAW = STORE_RAW  # at[a0 + r*at_row + f] = sum: compiled._epilogue finishes them
FINISH = STORE_FINISHED  # out[o0 + r*o_row + f] = act(sum + bias), f < fcount (act: _slope)
PAIR_FIRST = STORE_POOLED_PAIRS  # at[a0 + k*at_row + f] = max of pixels 2k, 2k+1 (a 2x2/2 pool's upper row)
PAIR_SECOND = STORE_POOLED_SECOND  # out[...] = act(max(at[...], pixels 2k, 2k+1) + bias) (its lower row)


@njit(cache=True, nogil=True)
def _slope(act):
    """The activations a tile applies itself, as max(x, slope*x): linear (slope 1), leaky (0.1,
    darknet's) and relu (0: x*0 is darknet's -0.0 for negative x). -1 for the others, which
    plan.direct_store sends through compiled._epilogue. One multiply and one max per vector:
    with `activate` inlined 64 times the (scalar) tile was 30,000 instructions long and spilled
    its sums (Tiny's layer 0: 2.3 ms instead of 1.5)."""
    if act == LINEAR:
        return np.float32(1)
    if act == LEAKY:
        return np.float32(0.1)
    if act == RELU:
        return np.float32(0)
    return np.float32(-1)


def _tile_source(pixels: int) -> str:
    """The source of a tile function for `pixels` pixels x TILE_FILTERS filters:

        tile(xf, x0, .., x{pixels-1}, row_step, size, run, wf, w0,
             at, a0, at_row, out, o0, o_row, bias, fcount, slope, mode)

    sums, for ky < size and q < run, xf[x_r + ky*row_step + q] * wf[w0 + (ky*run + q)*16 + f]
    for pixel r and filter f, in two 8-float vectors per pixel (lo{r}: filters 0-7, hi{r}: 8-15),
    then stores them as `mode` says (bias: the tile's 16 filters' biases, zero-padded; fcount of
    the filters are real). Each pixel's input has an offset of its own, so the 4 pixels may run
    on from one row into the next."""
    r_range, pairs = range(pixels), range(pixels // 2)
    offsets = "".join(f"x{r}, " for r in r_range)
    lines = [
        f"def tile(xf, {offsets}row_step, size, run, wf, w0,",
        "         at, a0, at_row, out, o0, o_row, bias, fcount, slope, mode):",
    ]
    lines += [f"    lo{r} = vzero()\n    hi{r} = vzero()\n    p{r} = np.uint64(x{r})" for r in r_range]
    lines += [
        "    for ky in range(size):",
        "        xk = np.uint64(ky * row_step)",
        f"        wk = np.uint64(w0 + ky * run * {TILE_FILTERS})",
        "        for q in range(run):",
        "            uq = np.uint64(q)",
        f"            wq = wk + uq * np.uint64({TILE_FILTERS})",
        "            wlo = vload(wf, wq)",
        "            whi = vload(wf, wq + np.uint64(8))",
    ]
    for r in r_range:
        lines += [
            f"            value = vsplat(xf, xk + p{r} + uq)",
            f"            lo{r} = vfma(value, wlo, lo{r})",
            f"            hi{r} = vfma(value, whi, hi{r})",
        ]
    lines += [f"    ab{r} = np.uint64(a0 + {r} * at_row)\n    ob{r} = np.uint64(o0 + {r} * o_row)" for r in r_range]
    lines += ["    blo = vload(bias, 0)", "    bhi = vload(bias, 8)", "    slopes = vfill(slope)"]

    def finish(indent, where, lo, hi):
        """+ bias, the activation as max(x, slope*x), and the store (whole, or fcount lanes)."""
        return [
            f"{indent}flo = vadd({lo}, blo)",
            f"{indent}fhi = vadd({hi}, bhi)",
            f"{indent}_store16(out, {where}, vmax(flo, vmul(flo, slopes)), vmax(fhi, vmul(fhi, slopes)), fcount)",
        ]

    lines.append(f"    if mode == {RAW}:")
    lines += [f"        vstore(at, ab{r}, lo{r})\n        vstore(at, ab{r} + np.uint64(8), hi{r})" for r in r_range]
    lines.append(f"    elif mode == {FINISH}:")
    for r in r_range:
        lines += finish("        ", f"ob{r}", f"lo{r}", f"hi{r}")
    lines += [f"    elif mode == {PAIR_FIRST}:", "        pass"]
    lines += [
        f"        vstore(at, ab{k}, vmax(lo{2 * k}, lo{2 * k + 1}))\n"
        f"        vstore(at, ab{k} + np.uint64(8), vmax(hi{2 * k}, hi{2 * k + 1}))"
        for k in pairs
    ]
    lines += ["    else:", "        pass"]
    # every load of the upper row before the first store (at and out might alias, as far as LLVM knows)
    lines += [f"        ulo{k} = vload(at, ab{k})\n        uhi{k} = vload(at, ab{k} + np.uint64(8))" for k in pairs]
    for k in pairs:
        lines += finish(
            "        ",
            f"ob{k}",
            f"vmax(vmax(ulo{k}, lo{2 * k}), lo{2 * k + 1})",
            f"vmax(vmax(uhi{k}, hi{2 * k}), hi{2 * k + 1})",
        )
    lines.append("    return")
    return "\n".join(lines)


@njit(nogil=True, inline="always")
def _store16(out, where, lo, hi, fcount):
    """out[where:where+16] = lo, hi, or only its first fcount floats (a partial block)."""
    if fcount == TILE_FILTERS:
        vstore(out, where, lo)
        vstore(out, where + np.uint64(8), hi)
        return
    for f in range(min(fcount, 8)):
        out[where + np.uint64(f)] = vget(lo, f)
    for f in range(8, fcount):
        out[where + np.uint64(f)] = vget(hi, f - 8)


def _make_tile(pixels: int, inline: bool = False):
    namespace = {
        "np": np,
        "__name__": __name__,
        "_store16": _store16,  # __name__: so a cached kernel's
        "vzero": vzero,
        "vload": vload,
        "vsplat": vsplat,
        "vfill": vfill,  # environment names this module
        "vfma": vfma,
        "vadd": vadd,
        "vmul": vmul,
        "vmax": vmax,
        "vstore": vstore,
    }
    exec(compile(_tile_source(pixels), f"<direct conv tile {pixels}x{TILE_FILTERS}>", "exec"), namespace)
    return njit(nogil=True, inline="always" if inline else "never")(namespace["tile"])


# The tile as a call, and written into the caller: direct_conv's two loops over whole tiles take
# the second. A call passes 52 arguments (an array is 7), most on the stack, and the tile's
# set-up cannot be hoisted out of the loop; written in, the layers run faster for about 16 s
# more compiling (docs/performance.md; `tdn bench`, bench/bench_compile.py)
_tile, _tile_inlined = _make_tile(TILE_PIXELS), _make_tile(TILE_PIXELS, inline=True)
_tile1 = _make_tile(1)  # a band of fewer than 4 pixels, one by one


@njit(cache=True, nogil=True)
def _pixel(i, conv_w, x_band, stride, wp, c):
    """Where in the padded input (flat) the window of a band's pixel i starts."""
    oy, ox = divmod(i, conv_w)
    return x_band + (oy * stride * wp + ox * stride) * c


@njit(**_JIT)
def direct_conv(xp, panels, bias, act, conv, pool, out, border, acc, split, store):
    """One [convolutional] (groups=1) by register tiles, fused with bias, activation and an
    optional following [maxpool] (compiled._epilogue, as conv_forward).

    xp: (n, h + 2 pad, w + 2 pad, c) the input inside a border of pad zeros; panels:
    (blocks, size, size*c, 16) the weights with batch norm folded, 16 filters per block (the
    last zero-padded); bias: (blocks*16,), zero-padded too; conv = (size, stride, pad); pool =
    (size, stride, offset), size 0 for none; out: (n, rows, cols, filters), pooled when there
    is a pool, inside a border of `border` zeros that the kernel leaves alone (the next conv's
    padding: plan.border_handovers; only where tiles store finished sums, which never run on
    from one row into the next there); split = (band, chunk): a task computes `band` output
    rows of `chunk` blocks of filters; store: plan.direct_store's choice; acc: per-thread scratch (threads, ...): raw
    sums of a band's conv rows x conv_w x chunk*16 (RAW), a row of pair maxima conv_w*8
    (PAIR_FIRST), unused (FINISH).
    """
    n_img, hp, wp, c = xp.shape
    blocks, size, run, _ = panels.shape
    stride = conv[1]
    conv_h = (hp - size) // stride + 1
    conv_w = (wp - size) // stride + 1
    out_h, out_row, filters = out.shape[1], out.shape[2], out.shape[3]  # with the border
    final_h, out_w = out_h - 2 * border, out_row - 2 * border
    band, chunk = split
    bands = (final_h + band - 1) // band
    chunks = (blocks + chunk - 1) // chunk
    tasks = n_img * bands * chunks
    threads = acc.shape[0]
    xf = xp.reshape(-1)
    pf = panels.reshape(-1)
    of = out.reshape(-1)
    mode = store  # RAW, FINISH or PAIR_FIRST (then PAIR_SECOND on odd rows)
    slope = _slope(act)
    step = stride * c
    for t in prange(threads):
        at = acc[t]
        for task in range(t, tasks, threads):
            n = task // (bands * chunks)
            b0 = (task // chunks) % bands * band
            b1 = min(b0 + band, final_h)
            j0 = task % chunks * chunk
            j1 = min(j0 + chunk, blocks)
            r0, r1 = conv_rows(b0, b1, pool, conv_h)
            width = (j1 - j0) * 16
            # a block's panel stays in cache while the band's rows pass under it (the other
            # order, rows outer, measured the same on Tiny's layers and 1.3x slower on Darknet
            # Reference's 4x4 layer). Tasks go to threads in turn: handing them out as threads
            # come free (prange over the tasks, twice as many) measured the same, quiet or with
            # a busy loop on one core (Tiny's layers within 2 %)
            for j in range(j0, j1):
                w0 = j * size * run * 16
                f0 = j * 16
                fcount = min(16, filters - f0)
                bj = bias[f0 : f0 + 16]
                if mode == PAIR_FIRST:
                    # whole rows of tiles (conv_w % 4 == 0), two rows to a pooled row
                    for oy in range(r0, r1):
                        x_row = (n * hp + oy * stride) * wp * c
                        row_mode = PAIR_FIRST if oy % 2 == 0 else PAIR_SECOND
                        o_row = ((n * out_h + oy // 2 + border) * out_row + border) * filters + f0
                        for ox in range(0, conv_w, 4):
                            x0 = x_row + ox * step
                            _tile_inlined(
                                xf,
                                x0,
                                x0 + step,
                                x0 + 2 * step,
                                x0 + 3 * step,
                                wp * c,
                                size,
                                run,
                                pf,
                                w0,
                                at,
                                ox // 2 * 16,
                                np.int64(16),
                                of,
                                o_row + ox // 2 * filters,
                                filters,
                                bj,
                                fcount,
                                slope,
                                row_mode,
                            )
                            # (np.int64(16): a literal 16 would compile a second tile, +10 s)
                    continue
                # RAW or FINISH: the band's pixels in order, 4 to a tile, a tile running on from
                # the end of one row into the next. Tiles within rows did rows 14 wide in 4 tiles,
                # 16 pixels' work: Tiny's 14x14 layers took 0.88-0.93x as long this way (the
                # others 1.00-1.02x, in one process). Each pixel's input offset is worked out (the
                # input's border breaks the run); a tile stores its 4 pixels' sums in a run, which
                # holds across a row's end only where the output has no border (plan.py sees to it)
                pixels = (r1 - r0) * conv_w
                a_base, at_pixel = ((j - j0) * 16, width) if mode == RAW else (0, 16)
                x_band = (n * hp + r0 * stride) * wp * c
                o_band = ((n * out_h + r0 + border) * out_row + border) * filters + f0  # (FINISH)
                oy, ox = 0, 0  # pixel i's row (in the band) and column
                for i in range(0, pixels - 3, 4):
                    x0 = x_band + (oy * stride * wp + ox * stride) * c
                    o0 = o_band + (oy * out_row + ox) * filters
                    if ox + 4 <= conv_w:  # the tile within the row: no division
                        x1, x2, x3 = x0 + step, x0 + 2 * step, x0 + 3 * step
                    else:
                        x1, x2, x3 = (
                            _pixel(i + 1, conv_w, x_band, stride, wp, c),
                            _pixel(i + 2, conv_w, x_band, stride, wp, c),
                            _pixel(i + 3, conv_w, x_band, stride, wp, c),
                        )
                    ox += 4
                    if ox >= conv_w:
                        oy, ox = divmod(i + 4, conv_w)
                    _tile_inlined(
                        xf,
                        x0,
                        x1,
                        x2,
                        x3,
                        wp * c,
                        size,
                        run,
                        pf,
                        w0,
                        at,
                        a_base + i * at_pixel,
                        at_pixel,
                        of,
                        o0,
                        filters,
                        bj,
                        fcount,
                        slope,
                        mode,
                    )
                rest = pixels % 4
                if rest and pixels >= 4:
                    # the last 1-3 pixels by a whole tile moved back over pixels already done
                    # (stored again, the same values): one-pixel tiles each stream the weights
                    # for 1 pixel, which bounded 7x7 maps (Extraction's late layers)
                    i = pixels - 4
                    _tile(
                        xf,
                        _pixel(i, conv_w, x_band, stride, wp, c),
                        _pixel(i + 1, conv_w, x_band, stride, wp, c),
                        _pixel(i + 2, conv_w, x_band, stride, wp, c),
                        _pixel(i + 3, conv_w, x_band, stride, wp, c),
                        wp * c,
                        size,
                        run,
                        pf,
                        w0,
                        at,
                        a_base + i * at_pixel,
                        at_pixel,
                        of,
                        o_band + i * filters,
                        filters,
                        bj,
                        fcount,
                        slope,
                        mode,
                    )
                elif rest:
                    for i in range(pixels):
                        _tile1(
                            xf,
                            _pixel(i, conv_w, x_band, stride, wp, c),
                            wp * c,
                            size,
                            run,
                            pf,
                            w0,
                            at,
                            a_base + i * at_pixel,
                            at_pixel,
                            of,
                            o_band + i * filters,
                            filters,
                            bj,
                            fcount,
                            slope,
                            mode,
                        )
            if mode == RAW:
                f0 = j0 * 16
                fcount = min(width, filters - f0)
                _epilogue(
                    at,
                    width,
                    fcount,
                    n,
                    (r0, r1, b0, b1),
                    (conv_h, conv_w),
                    bias[f0 : f0 + fcount],
                    act,
                    pool,
                    of,
                    (final_h, out_w, filters, f0),
                )
