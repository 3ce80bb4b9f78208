"""Direct convolution with a register tile: the compiled kernels behind DirectStep.

A conv's output is a GEMM (pixels x filters) whose left-hand matrix is never built: the
values an output pixel needs at kernel row ky are one contiguous run of the padded input,
size*channels long. So a tile of P pixels x 16 filters reads its inputs straight from the
input (each pixel's run at an offset of its own, so a tile may run on from one row into the
next) and its weights from a panel (size, size*channels, 16) packed when a plan first needs
it, and keeps its sums in registers from the first product to the last.

The tile comes in two widths, one source (the generators below, and one template of the
kernel's loops, _direct_conv, compiled once per width with its own tile functions):
- direct_conv: 8-float vectors (AVX2's 16 registers): 4 pixels x two vectors, per step two
  vector loads of weights, a broadcast of each pixel's input value and eight FMAs;
- direct_conv_wide: 16-float vectors (AVX-512's 32): 8 pixels x one vector, per step one load
  of weights, 8 broadcasts and 8 FMAs. On a CPU without AVX-512 LLVM runs each 16-float
  operation as two 8-float halves: the same sums, so TDN_SIMD can force either anywhere.
Which one a layer runs is the plan's choice (kernels/tuning.py: measured per machine).

The sums are explicit vectors (vectors.py: Numba has no vector type of its own, so the few
operations the tile needs are written as LLVM instructions), which keep them in registers where
scalar sums leave it to LLVM's SLP vectorizer, slower and longer to compile. Each output is the
same chain of FMAs at either width (a lane is a filter), so the two give identical answers.
Indices are unsigned so that Numba adds no negative-index check to each load (signed ones halve
the kernel's speed). Larger 8-float tiles (6x16, 4x24, 3x32) measure no faster than 4x16. The
tile is written into the kernel's two main loops (see _tile_inlined). The figures behind each
choice: docs/performance.md ("The direct convolution"), bench/bench_onnxruntime.py --per-layer
and `tdn bench` measure them.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

from .layout import PANEL_FILTERS, TILE_PIXELS_FOR
from .store_modes import STORE_FINISHED, STORE_POOLED_PAIRS, STORE_POOLED_SECOND, STORE_RAW
from .compiled import LEAKY, LINEAR, RELU, _epilogue, conv_rows
from .vectors import ops as vector_ops

TILE_FILTERS = PANEL_FILTERS  # filters per tile: two 8-float vectors per pixel, or one of 16
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


def _tile_source(pixels: int, lanes: int) -> str:
    """The source of a tile function for `pixels` pixels x TILE_FILTERS filters in vectors of
    `lanes` floats:

        tile(xf, xs, row_step, size, run, wf, w0, at, a0, at_row, out, o0, o_row, bias, fcount, slope, mode)

    sums, for ky < size and q < run, xf[x_r + ky*row_step + q] * wf[w0 + (ky*run + q)*16 + f]
    for pixel r (xs: the pixels' input offsets, a tuple) and filter f, in 16/lanes vectors per
    pixel (s{r}_{v}: filters v*lanes to (v+1)*lanes - 1), then stores them as `mode` says
    (bias: the tile's 16 filters' biases, zero-padded; fcount of the filters are real). Each
    pixel's input has an offset of its own, so a tile's pixels may run on from one row into the
    next."""
    per = TILE_FILTERS // lanes
    r_range, v_range, pairs = range(pixels), range(per), range(pixels // 2)

    def at(base, v):
        return base if v == 0 else f"{base} + np.uint64({v * lanes})"

    lines = [
        "def tile(xf, xs, row_step, size, run, wf, w0, at, a0, at_row, out, o0, o_row, bias, fcount, slope, mode):",
        "    " + "".join(f"x{r}, " for r in r_range) + "= xs",
    ]
    lines += [f"    s{r}_{v} = vzero()" for r in r_range for v in v_range]
    lines += [f"    p{r} = np.uint64(x{r})" for r in r_range]
    lines += [
        "    for ky in range(size):",
        "        xk = np.uint64(ky * row_step)",
        f"        wk = np.uint64(w0 + ky * run * {TILE_FILTERS})",
        "        for q in range(run):",
        "            uq = np.uint64(q)",
        f"            wq = wk + uq * np.uint64({TILE_FILTERS})",
    ]
    lines += [f"            wv{v} = vload(wf, {at('wq', v)})" for v in v_range]
    for r in r_range:
        lines.append(f"            value = vsplat(xf, xk + p{r} + uq)")
        lines += [f"            s{r}_{v} = vfma(value, wv{v}, s{r}_{v})" for v in v_range]
    lines += [f"    ab{r} = np.uint64(a0 + {r} * at_row)\n    ob{r} = np.uint64(o0 + {r} * o_row)" for r in r_range]
    lines += [f"    b{v} = vload(bias, {v * lanes})" for v in v_range]
    lines.append("    slopes = vfill(slope)")

    def finish(where, sums):
        """+ bias, the activation as max(x, slope*x), and the store (whole, or fcount lanes)."""
        out = [f"        f{v} = vadd({s}, b{v})" for v, s in zip(v_range, sums)]
        finished = ", ".join(f"vmax(f{v}, vmul(f{v}, slopes))" for v in v_range)
        return out + [f"        store_block(out, {where}, fcount, {finished})"]

    lines.append(f"    if mode == {RAW}:")
    lines += [f"        vstore(at, {at(f'ab{r}', v)}, s{r}_{v})" for r in r_range for v in v_range]
    lines.append(f"    elif mode == {FINISH}:")
    for r in r_range:
        lines += finish(f"ob{r}", [f"s{r}_{v}" for v in v_range])
    lines += [f"    elif mode == {PAIR_FIRST}:", "        pass"]
    lines += [
        f"        vstore(at, {at(f'ab{k}', v)}, vmax(s{2 * k}_{v}, s{2 * k + 1}_{v}))" for k in pairs for v in v_range
    ]
    lines += ["    else:", "        pass"]
    # every load of the upper row before the first store (at and out might alias, as far as LLVM knows)
    lines += [f"        u{k}_{v} = vload(at, {at(f'ab{k}', v)})" for k in pairs for v in v_range]
    for k in pairs:
        lines += finish(f"ob{k}", [f"vmax(vmax(u{k}_{v}, s{2 * k}_{v}), s{2 * k + 1}_{v})" for v in v_range])
    lines.append("    return")
    return "\n".join(lines)


def _store_block_source(lanes: int) -> str:
    """store_block(out, where, fcount, v0, ..): out[where:where+16] = the tile's vectors of one
    pixel, or only their first fcount floats (a partial block)."""
    v_range = range(TILE_FILTERS // lanes)
    names = ", ".join(f"v{v}" for v in v_range)
    lines = [f"def store_block(out, where, fcount, {names}):", f"    if fcount == {TILE_FILTERS}:"]
    lines += [f"        vstore(out, where + np.uint64({v * lanes}), v{v})" for v in v_range]
    lines.append("        return")
    for v in v_range:
        lines.append(f"    for f in range({v * lanes}, min(fcount, {(v + 1) * lanes})):")
        lines.append(f"        out[where + np.uint64(f)] = vget(v{v}, f - {v * lanes})")
    return "\n".join(lines)


def _offsets_source(pixels: int) -> str:
    """run_offsets(x0, step): the input offsets of `pixels` pixels in a row, one stride apart;
    band_offsets(i, conv_w, x_band, stride, wp, c): those of a band's pixels i, i+1, .. (which
    may run on into the next row)."""
    run = ", ".join(f"x0 + {r} * step" for r in range(pixels))
    band = ", ".join(f"_pixel(i + {r}, conv_w, x_band, stride, wp, c)" for r in range(pixels))
    return (
        f"def run_offsets(x0, step):\n    return ({run},)\n\n"
        f"def band_offsets(i, conv_w, x_band, stride, wp, c):\n    return ({band},)\n"
    )


def _generated(source: str, what: str, names: dict, inline: bool = True) -> dict:
    """The functions `source` defines, compiled by Numba (inlined into their callers or not)."""
    namespace = {"np": np, "__name__": __name__, **names}  # __name__: a cached kernel's environment names this module
    exec(compile(source, f"<direct conv {what}>", "exec"), namespace)
    defined = {k: v for k, v in namespace.items() if callable(v) and k not in names and k != "np"}
    return {k: njit(nogil=True, inline="always" if inline else "never")(f) for k, f in defined.items()}


@njit(cache=True, nogil=True)
def _pixel(i, conv_w, x_band, stride, wp, c):
    """Where in the padded input (flat) the window of a band's pixel i starts."""
    oy, ox = divmod(i, conv_w)
    return x_band + (oy * stride * wp + ox * stride) * c


def _direct_conv(xp, panels, bias, act, conv, pool, out, border, acc, split, store):
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
                    # whole rows of tiles (conv_w % TILE_PIXELS == 0), two rows to a pooled row
                    for oy in range(r0, r1):
                        x_row = (n * hp + oy * stride) * wp * c
                        row_mode = PAIR_FIRST if oy % 2 == 0 else PAIR_SECOND
                        o_row = ((n * out_h + oy // 2 + border) * out_row + border) * filters + f0
                        for ox in range(0, conv_w, TILE_PIXELS):
                            _tile_inlined(
                                xf,
                                run_offsets(x_row + ox * step, step),
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
                # RAW or FINISH: the band's pixels in order, TILE_PIXELS to a tile, a tile running on from
                # the end of one row into the next. Tiles within rows did rows 14 wide in 4 tiles,
                # 16 pixels' work: Tiny's 14x14 layers took 0.88-0.93x as long this way (the
                # others 1.00-1.02x, in one process). Each pixel's input offset is worked out (the
                # input's border breaks the run); a tile stores its pixels' sums in a run, which
                # holds across a row's end only where the output has no border (plan.py sees to it)
                pixels = (r1 - r0) * conv_w
                a_base, at_pixel = ((j - j0) * 16, width) if mode == RAW else (0, 16)
                x_band = (n * hp + r0 * stride) * wp * c
                o_band = ((n * out_h + r0 + border) * out_row + border) * filters + f0  # (FINISH)
                oy, ox = 0, 0  # pixel i's row (in the band) and column
                for i in range(0, pixels - (TILE_PIXELS - 1), TILE_PIXELS):
                    o0 = o_band + (oy * out_row + ox) * filters
                    if ox + TILE_PIXELS <= conv_w:  # the tile within the row: no division
                        xs = run_offsets(x_band + (oy * stride * wp + ox * stride) * c, step)
                    else:
                        xs = band_offsets(i, conv_w, x_band, stride, wp, c)
                    ox += TILE_PIXELS
                    if ox >= conv_w:
                        oy, ox = divmod(i + TILE_PIXELS, conv_w)
                    _tile_inlined(
                        xf,
                        xs,
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
                rest = pixels % TILE_PIXELS
                if rest and pixels >= TILE_PIXELS:
                    # the last few pixels by a whole tile moved back over pixels already done
                    # (stored again, the same values): one-pixel tiles each stream the weights
                    # for 1 pixel, which bounded 7x7 maps (Extraction's late layers)
                    i = pixels - TILE_PIXELS
                    _tile(
                        xf,
                        band_offsets(i, conv_w, x_band, stride, wp, c),
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
                            (_pixel(i, conv_w, x_band, stride, wp, c),),
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


TILE_FOR = {}  # each width's tile as a function of its own (its machine code can be read: not cached)
TILE_PIXELS = 0  # (the template's names, which each variant's globals replace)
_tile = _tile_inlined = _tile1 = run_offsets = band_offsets = None


def _variant(lanes: int, pixels: int):
    """direct_conv for tiles of `pixels` pixels x 16 filters in vectors of `lanes` floats: the
    template above compiled with its own tile functions (one source for every width)."""
    ops = vector_ops(lanes)
    store = _generated(_store_block_source(lanes), f"store {lanes}", ops)
    names = {**ops, **store}
    whole = _tile_source(pixels, lanes)
    # The tile as a call, and written into the caller: the loops over whole tiles take the
    # second. A call passes 52 arguments (an array is 7), most on the stack, and the tile's
    # set-up cannot be hoisted out of the loop; written in, the layers run faster for about 16 s
    # more compiling (docs/performance.md; `tdn bench`, bench/bench_compile.py)
    names = {
        "TILE_PIXELS": pixels,
        "_tile_inlined": _generated(whole, f"tile {pixels}x{TILE_FILTERS}", names)["tile"],
        "_tile": _generated(whole, f"tile {pixels}x{TILE_FILTERS}", names, inline=False)["tile"],
        "_tile1": _generated(_tile_source(1, lanes), f"tile 1x{TILE_FILTERS}", names, inline=False)["tile"],
        **_generated(_offsets_source(pixels), f"offsets {pixels}", {"_pixel": _pixel}),
    }
    TILE_FOR[lanes] = names["_tile"]
    name = f"direct_conv_{lanes}x{pixels}"
    function = types.FunctionType(_direct_conv.__code__, {**globals(), **names}, name)
    function.__qualname__ = name  # Numba's cache files are named by it: one per variant
    function.__doc__ = _direct_conv.__doc__
    return njit(**_JIT)(function)


direct_conv = _variant(8, TILE_PIXELS_FOR[8])
direct_conv_wide = _variant(16, TILE_PIXELS_FOR[16])
