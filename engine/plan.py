"""Planning: the steps that run a network on inputs of one shape, and every choice made on the way.

The choices, each made here and nowhere else:

- what runs together. A layer declares what it can join (Maxpool.fuses_into: a conv does the
  pool in its epilogue; Avgpool.commutes_with: the pool runs first and a linear 1x1 conv then
  works on one pixel). The plan joins them unless another layer reads the output in between
  ([route], [shortcut]: Layer.reads) or the caller asked for that output (features);
- which step runs a conv (conv_step_type), by the named thresholds below, each with the
  measurement behind it;
- how steps split their work: rows and filters per direct convolution task (direct_split)
  and how its tiles store their sums (direct_store), the row bands of im2col + GEMM
  (row_band), the tiles per Winograd block (winograd_block);
- which plans are kept: buffers and the split depend on the input size, the last layer, the
  outputs kept and the kernel threads, so that is a plan's key (PlanCache). A plan built for
  one thread would run at half speed on two, and the other way round.
"""

from __future__ import annotations

from collections import OrderedDict

from . import memory
from .activations import ACTIVATIONS
from .errors import ShapeError
from .kernels import tuning, winograd_transforms
from .kernels.layout import TILE_PIXELS_FOR
from .kernels.store_modes import STORE_FINISHED, STORE_POOLED_PAIRS, STORE_RAW
from .layers.base import Pool, Step
from .spec import NetworkSpec

# --- which step runs a conv -------------------------------------------------------------
# Direct convolution by register tiles (DirectStep) runs every conv of one group, except where
# Winograd F(4x4, 3x3) does fewer multiplications enough to win: many input channels on large
# maps. The thresholds keep each shipped model's 3x3 layers on whichever measured faster
# (`tdn bench MODEL` per layer; the A/B figures are in docs/performance.md, "Winograd or direct").
# By blocks of tiles:
WINOGRAD_BY_TILES_MIN_CHANNELS = 64
WINOGRAD_MIN_TILES = 128
# ... by chunks of filters (all tiles at once; blocks of tiles would make its GEMMs tiny), where
# direct convolution would stream a large input through the cache once per block of filters:
WINOGRAD_BY_FILTERS_MIN_CHANNELS = 256
BY_FILTERS_MIN_TILES = 32
BY_FILTERS_MAX_TILES = 64
# ... when there are filters enough for a chunk of 32 per thread on 2 cores
BY_FILTERS_MIN_FILTERS = 64
# The one pool Winograd's output transform does itself: its 4x4 tiles hold whole 2x2 windows
WINOGRAD_POOL = Pool(2, 2, 0)

# --- how steps split their work -----------------------------------------------------------
# Tiles per Winograd block: its V and M scratch (36 x block x channels) should fit in L2
WINOGRAD_BLOCK_TILES = 32
WINOGRAD_MIN_BLOCK_TILES = 8
# Per-thread scratch (im2col rows + GEMM result) aimed at the 512 KB-1 MB L2 of current cores
BAND_BYTES = 384 << 10

MAX_PLANS = 4  # plans kept per network (e.g. webcam + a dropped photo, at two thread counts)


def conv_step_type(layer, in_shape, out_shape, batch: int, pool: Pool | None):
    """The step class that runs `layer` (a Convolutional) on `batch` inputs of in_shape."""
    from .layers.convolutional import ConvStep, DirectStep, WinogradByFiltersStep, WinogradStep

    tiles_y, tiles_x = winograd_transforms.tiles(out_shape[0], out_shape[1])
    tiles = batch * tiles_y * tiles_x
    winograd = layer.winograd_ok and (pool is None or pool == WINOGRAD_POOL)
    if winograd:
        if (
            BY_FILTERS_MIN_TILES <= tiles <= BY_FILTERS_MAX_TILES
            and layer.filters >= BY_FILTERS_MIN_FILTERS
            and in_shape[2] >= WINOGRAD_BY_FILTERS_MIN_CHANNELS
        ):
            return WinogradByFiltersStep
        if tiles >= WINOGRAD_MIN_TILES and in_shape[2] >= WINOGRAD_BY_TILES_MIN_CHANNELS:
            return WinogradStep
    return DirectStep if layer.groups == 1 else ConvStep


def row_band(final_h: int, conv_w: int, floats_per_pixel: int, pool_stride: int, batch: int, threads: int) -> int:
    """Output rows per im2col + GEMM task: as many as fit the cache budget, but enough tasks
    for all threads."""
    per_row = conv_w * floats_per_pixel * 4 * pool_stride
    band = max(1, BAND_BYTES // per_row)
    if batch == 1:
        band = min(band, -(-final_h // (2 * threads)))
    return max(1, min(band, final_h))


# The activations a tile applies itself (as max(x, slope*x): one multiply and one max per vector)
TILE_ACTIVATIONS = frozenset(ACTIVATIONS[name] for name in ("linear", "leaky", "relu"))


def direct_tile(layer, in_shape, pool: Pool | None) -> tuple[str, int]:
    """(the conv's shape as the tuning record names it, the vector width of its tiles in floats):
    TDN_SIMD's width, or the one the compile step measured fastest for this shape on this
    machine (kernels/tuning.py)."""
    key = tuning.layer_key(in_shape, layer.filters, layer.size, layer.stride, pool is not None)
    return key, tuning.lanes_for(key)


def direct_store(activation: int, pool: Pool | None, conv_h: int, conv_w: int, lanes: int = 8) -> int:
    """How direct_conv's tiles store their sums: finished where they can (no pool, or a 2x2/2
    pool over rows of whole tiles and row pairs), else raw for the general epilogue."""
    if activation not in TILE_ACTIVATIONS:
        return STORE_RAW
    if pool is None:
        return STORE_FINISHED
    if pool == WINOGRAD_POOL and conv_w % TILE_PIXELS_FOR[lanes] == 0 and conv_h % 2 == 0:
        return STORE_POOLED_PAIRS
    return STORE_RAW


def direct_split(
    final_h: int, weight_bytes: int, input_bytes: int, blocks: int, batch: int, threads: int, raw_row_bytes: int = 0
) -> tuple[int, int]:
    """(output rows, blocks of 16 filters) per direct_conv task. Where the weights outweigh the
    input (late layers: few pixels, many filters) the filters are split, so each weight is
    read once per image and the small input once per chunk; elsewhere a task takes all the
    filters for a band of rows, so each input row is read once. Tasks are shared out in turn
    and are of one size, so there are a multiple of `threads` of them where the rows allow:
    Tiny's layer 5 in 5 bands (3 for one thread, 2 for the other) took 1.33 ms, in 4 bands
    ~1.1. raw_row_bytes: the scratch an output row of a chunk takes where the tiles store raw
    sums (STORE_RAW); bands then stay within BAND_BYTES of it."""
    chunk = -(-blocks // (2 * threads)) if weight_bytes > input_bytes else blocks
    chunks = -(-blocks // chunk)
    bands = max(1, -(-2 * threads // (batch * chunks)))
    if raw_row_bytes:
        rows = max(1, BAND_BYTES // (raw_row_bytes * chunk))
        bands = max(bands, -(-final_h // rows))
        bands = -(-bands // threads) * threads if bands > 1 else bands
    return max(1, -(-final_h // bands)), chunk


def border_handovers(
    spec: NetworkSpec,
    batch: int,
    shapes,
    in_shapes,
    last: int,
    keep: frozenset,
    fused: set[int],
    pooled_first: set[int],
) -> dict[int, int]:
    """{conv i: border}: conv i's direct step writes its output inside a border of zeros as
    wide as the next conv's padding, in the buffer that conv reads as its padded input, which
    then copies nothing in. Copying each input into its border took ~0.3 ms of Tiny's 7-8 ms
    and ~0.45 of Darknet Reference's (same process, in turn, the copies skipped).

    Both convs are direct steps, and the first one's tiles store finished sums (so its
    epilogue, which writes rows without a border, is not involved) whose tiles keep to a row
    (pooled pairs, or rows a whole number of tiles wide); and no other layer reads the output,
    nor is it kept (a [route] or a feature must not see the border), including a pool joined
    to it."""
    from .layers.convolutional import DirectStep

    read = read_elsewhere(spec)
    handovers = {}
    for i, layer in enumerate(spec.layers[: last + 1]):
        after = i + 2 if i in fused else i + 1  # the layer that reads conv i's step's output
        if layer.kind != "convolutional" or i in pooled_first or after > last or {i, after - 1} & (read | keep):
            continue
        consumer = spec.layers[after]
        if consumer.kind != "convolutional" or consumer.padding == 0 or after in pooled_first:
            continue
        pool = spec.layers[i + 1].window if i in fused else None
        consumer_pool = spec.layers[after + 1].window if after in fused else None
        if (
            conv_step_type(layer, in_shapes[i], shapes[i], batch, pool) is not DirectStep
            or conv_step_type(consumer, in_shapes[after], shapes[after], batch, consumer_pool) is not DirectStep
        ):
            continue
        conv_h, conv_w = shapes[i][:2]
        _, lanes = direct_tile(layer, in_shapes[i], pool)
        store = direct_store(layer.activation, pool, conv_h, conv_w, lanes)
        if store == STORE_POOLED_PAIRS or (store == STORE_FINISHED and conv_w % TILE_PIXELS_FOR[lanes] == 0):
            handovers[i] = consumer.padding
    return handovers


def winograd_block(tiles: int, threads: int) -> int:
    """Tiles per Winograd block: enough blocks to share between the threads, each small enough
    to stay in cache."""
    return max(WINOGRAD_MIN_BLOCK_TILES, min(WINOGRAD_BLOCK_TILES, -(-tiles // (2 * threads))))


class ConvChoices:
    """The planner's decisions a conv step asks for as it builds itself, handed to it by the
    plan (the layers sit below the planner and do not import it)."""

    step_type = staticmethod(conv_step_type)
    row_band = staticmethod(row_band)
    winograd_block = staticmethod(winograd_block)
    direct_split = staticmethod(direct_split)
    direct_store = staticmethod(direct_store)
    direct_tile = staticmethod(direct_tile)


CONV_CHOICES = ConvChoices()


def read_elsewhere(spec: NetworkSpec) -> set[int]:
    """The layers whose outputs another layer reads besides the one after them (Layer.reads:
    [route], [shortcut])."""
    return {source for layer in spec.layers for source in layer.reads()}


def joins(spec: NetworkSpec) -> tuple[set[int], set[int]]:
    """(layers whose step also does the [maxpool] after them, layers whose following [avgpool]
    runs first): as the layers declare, where no other layer reads the output in between."""
    layers = spec.layers
    read = read_elsewhere(spec)
    fused = {i for i in range(len(layers) - 1) if i not in read and layers[i + 1].fuses_into(layers[i])}
    pooled_first = {i for i in range(len(layers) - 1) if i not in read and layers[i + 1].commutes_with(layers[i])}
    return fused, pooled_first


def build(
    spec: NetworkSpec, packed: list, batch: int, height: int, width: int, last: int, keep: frozenset, threads: int
) -> list[Step]:
    """The steps for layers 0..last on up to `batch` inputs of height x width; the outputs of the
    layers in `keep` are their own (nothing joined after them). Their buffers are added up first
    (a dry run of the same constructors, see engine/memory.py): over the memory budget, nothing
    is allocated and MemoryBudgetError says which layer weighs most."""
    if (height, width) != (spec.height, spec.width):
        for layer in spec.layers:
            if layer.needs_fixed_size:
                raise ShapeError(
                    f"{layer.where}: {layer.describe()} fixes the input to "
                    f"{spec.width}x{spec.height}; got {width}x{height}"
                )
    check_budget(spec, packed, batch, height, width, last, keep, threads)
    return _steps(spec, packed, batch, (height, width), last, keep, threads)


def check_budget(
    spec: NetworkSpec, packed: list, batch: int, height: int, width: int, last: int, keep: frozenset, threads: int
) -> None:
    """MemoryBudgetError when build's plan would not fit the memory budget; allocates nothing."""
    shapes = spec.shapes_for(height, width)
    sizes: list[int] = []
    with memory.counting() as count:
        _steps(spec, packed, batch, (height, width), last, keep, threads, lambda: sizes.append(count[0]))
    needed = count[0] + input_bytes(spec, batch, height, width) + scratch_bytes(spec, batch, shapes, last)
    per_layer = [b - a for a, b in zip([0] + sizes, sizes)]
    heaviest = max(range(len(per_layer)), key=per_layer.__getitem__)
    h, w, c = shapes[heaviest]
    memory.check(
        needed,
        f"{spec.path}: a {width}x{height} input (batch {batch}; the most, "
        f"{memory.format_bytes(per_layer[heaviest])}, for {spec.layers[heaviest].describe()} "
        f"at {w}x{h}x{c})",
    )


def input_bytes(spec: NetworkSpec, batch: int, height: int, width: int) -> int:
    """The input batch, and as much again for preparing it (decoding and resizing an image)."""
    return 2 * batch * height * width * spec.channels * 4


def scratch_bytes(spec: NetworkSpec, batch: int, shapes, last: int) -> int:
    """The largest temporary a step makes while it runs: the portable kernels' im2col matrix
    (batch x output pixels x size^2 x channels per group), freed when the step ends."""
    in_shapes = spec.input_shapes(shapes)
    largest = 0
    for i, layer in enumerate(spec.layers[: last + 1]):
        if layer.kind == "convolutional":
            h, w, _ = shapes[i]
            largest = max(largest, batch * h * w * layer.size**2 * (in_shapes[i][2] // layer.groups) * 4)
    return largest


def _steps(
    spec: NetworkSpec,
    packed: list,
    batch: int,
    size: tuple[int, int],
    last: int,
    keep: frozenset,
    threads: int,
    after_layer=None,
) -> list[Step]:
    shapes = spec.shapes_for(*size)
    in_shapes = spec.input_shapes(shapes, size)
    fused, pooled_first = joins(spec)
    fused -= keep
    pooled_first -= keep
    handovers = border_handovers(spec, batch, shapes, in_shapes, last, keep, fused, pooled_first)
    handed = {}  # conv -> the buffer the step before writes its input into, inside the border
    steps: list[Step] = []
    for i, layer in enumerate(spec.layers[: last + 1]):
        handover = {"choices": CONV_CHOICES} if layer.kind == "convolutional" else {}
        if i in handovers:
            handover["border"] = handovers[i]
        if i in handed:
            handover["padded"] = handed[i]
        if i in pooled_first:
            channels = in_shapes[i][2]
            pool = spec.layers[i + 1].make_step(in_shapes[i], (1, 1, channels), batch, None, threads)
            conv = layer.make_step((1, 1, channels), shapes[i + 1], batch, packed[i], threads, choices=CONV_CHOICES)
            steps.append(_pool_then(pool, conv))
        elif i in fused:
            steps.append(
                layer.make_step(
                    in_shapes[i],
                    shapes[i],
                    batch,
                    packed[i],
                    threads,
                    pool=spec.layers[i + 1].window,
                    pooled_shape=shapes[i + 1],
                    **handover,
                )
            )
        elif i - 1 in fused or i - 1 in pooled_first:
            steps.append(_already_done)
        else:
            steps.append(layer.make_step(in_shapes[i], shapes[i], batch, packed[i], threads, **handover))
        if i in handovers:
            handed[i + 2 if i in fused else i + 1] = steps[-1].out
        if after_layer is not None:
            after_layer()
    return steps


class PlanCache:
    """The last MAX_PLANS plans of one network, by what their buffers and split depend on. A new
    tuning record (the compile step's, kernels/tuning.py) drops them all: the next pass plans
    its convs' tile widths afresh, so a running app takes up what the background compile
    measured."""

    def __init__(self):
        self._plans: OrderedDict[tuple, tuple[int, list[Step]]] = OrderedDict()
        self._record = tuning.record_stamp()

    def get(
        self,
        spec: NetworkSpec,
        packed: list,
        batch: int,
        height: int,
        width: int,
        last: int,
        keep: frozenset,
        threads: int,
    ) -> list[Step]:
        """A plan for at least `batch` inputs, made when there is none."""
        record = tuning.record_stamp()
        if record != self._record:
            self._plans.clear()
            self._record = record
        key = (height, width, last, keep, threads)
        cached = self._plans.get(key)
        if cached is not None and cached[0] >= batch:
            self._plans.move_to_end(key)
            return cached[1]
        steps = build(spec, packed, batch, height, width, last, keep, threads)
        self._plans[key] = (batch, steps)
        while len(self._plans) > MAX_PLANS:
            self._plans.popitem(last=False)
        return steps

    def __len__(self) -> int:
        return len(self._plans)


def _already_done(x, outputs):
    """The pool whose work the step before already did."""
    return x


def _pool_then(pool: Step, conv: Step) -> Step:
    """The step for a linear 1x1 conv followed by [avgpool]: the pool first (see
    Avgpool.commutes_with)."""

    def step(x, outputs):
        return conv(pool(x, outputs), outputs)

    return step
