"""A loaded Network as an ONNX model (`tdn export --onnx`), giving Network.predict's answers.

    from engine.onnx_export import export_onnx
    export_onnx(net, "tiny.onnx")            # at the cfg's input size, or size=(width, height)

The model, opset 17:
- input `image`: (batch, channels, height, width) float32, NCHW: the input Network.predict takes
  (RGB in 0..1, already resized) with its channels first, as deployers feed ONNX models. The
  layers run NCHW throughout, so no Transpose is needed. The batch is symbolic; height and width
  are the cfg's (or the size asked for: any size for networks without [connected]).
- output `probabilities`: (batch, classes), Network.predict's values, float rounding apart: ONNX
  Runtime's stay within 1e-5 and give the same top-5 (tests/test_onnx_export.py checks it on
  Tiny Darknet's published weights and on every shipped cfg).

Each layer becomes plain ONNX nodes named after it (`layer7.conv`, so a profiler's per-node
times add up per layer). Batch norm is folded into the conv weights by the engine's own
fold_batchnorm; every activation the engine knows is written exactly, most as one operator, the
piecewise ones as elementwise graphs. darknet's semantics that ONNX's operators lack are spelled
out: a max pool's padding (the window starts padding/2 cells before the map; cells outside never
win) as a Pad with -inf then MaxPool; a [shortcut] of maps of different sizes or channels as the
Slice, zero-interleave and Pad that place the smaller map where darknet adds it. Refused, with
one line: a size a fixed-size network cannot take, and models past the 2 GiB one file can hold.

Errors are ExportError (an EngineError: one line). The file is written by engine.files: whole,
or not at all. Needs the `onnx` package (`pip install 'tdn[onnx]'`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import EngineError, one_line
from .files import write_atomic
from .layers.batchnorm import fold_batchnorm
from .memory import format_bytes
from .version import version

INSTALL = "pip install 'tdn[onnx]'"
OPSET = 17
IR_VERSION = 8  # ONNX 1.12's, the release that brought opset 17: older runtimes load the file
MAX_BYTES = 2 << 30  # protobuf cannot serialise a message (one .onnx file) of 2 GiB or more
INPUT, OUTPUT = "image", "probabilities"


class ExportError(EngineError):
    """A network the exporter does not write, no `onnx` package, or a file it cannot write."""


def require():
    """The onnx module, or ExportError (one line: how to install it)."""
    try:
        import onnx
    except ImportError:
        raise ExportError(f"exporting to ONNX needs the onnx package: {INSTALL}") from None
    return onnx


def export_onnx(net, path: str | Path, size: tuple[int, int] | None = None) -> None:
    """Write `net` as an ONNX model to `path` (whole, or nothing), taking (width, height) inputs
    (default: the cfg's size)."""
    onnx = require()
    model = onnx_model(net, size)
    try:
        onnx.checker.check_model(model, full_check=True)  # types and every shape, inferred
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{net.spec.path}: the ONNX graph fails onnx's checker: {one_line(exc)}") from None
    try:
        write_atomic(path, model.SerializeToString())
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None


def onnx_model(net, size: tuple[int, int] | None = None):
    """The onnx.ModelProto of `net` for (width, height) inputs (default: the cfg's size)."""
    require()
    from onnx import TensorProto, helper

    spec = net.spec
    width, height = size or (spec.width, spec.height)
    if (width, height) != (spec.width, spec.height):
        for layer in spec.layers:
            if layer.needs_fixed_size:
                raise ExportError(
                    f"{layer.describe()} fixes the input to {spec.width}x{spec.height}: "
                    f"cannot export it at {width}x{height}"
                )
    shapes = spec.shapes_for(height, width)
    g = _Graph(shapes)
    x = INPUT
    for layer, params, in_shape in zip(spec.layers, net.params, spec.input_shapes(shapes)):
        write = LAYER_WRITERS.get(layer.kind)
        if write is None:
            raise ExportError(f"{layer.describe()}: the exporter has no ONNX form for [{layer.kind}]")
        g.layer, g.prefix = layer, f"layer{layer.index}"
        x = write(g, layer, params, x, in_shape)
        g.outputs.append(x)
    g.prefix = "output"
    g.node("Flatten", [x], "flatten", output=OUTPUT, axis=1)  # NCHW flattens channel-major, as darknet does
    h, w, c = shapes[-1]
    graph = helper.make_graph(
        g.nodes,
        spec.name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", spec.channels, height, width])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", h * w * c])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="tdn",
        producer_version=version(),
        ir_version=IR_VERSION,
        doc_string=f"{Path(spec.path).name} at {width}x{height}, exported by tdn: "
        f"{INPUT} is NCHW float32 RGB in 0..1, {OUTPUT} is (batch, classes)",
    )
    return model


class _Graph:
    """The nodes and initializers made so far, every name unique; outputs[i] names layer i's
    output (NCHW), shapes[i] is its (h, w, c); layer is the one being written, prefix its name."""

    def __init__(self, shapes):
        from onnx import helper, numpy_helper

        self._helper, self._numpy = helper, numpy_helper
        self.shapes = shapes
        self.layer = None
        self.outputs: list[str] = []
        self.nodes: list = []
        self.initializers: list = []
        self.prefix = "input"
        self._bytes = 0
        self._names: set[str] = {INPUT, OUTPUT}
        self._scalars: dict[float, str] = {}

    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def constant(self, name: str, array: np.ndarray) -> str:
        """An initializer of this layer's; ExportError once the model would pass MAX_BYTES."""
        self._bytes += array.nbytes
        if self._bytes >= MAX_BYTES:
            raise ExportError(
                f"{self.layer.describe()}: its weights bring the model to "
                f"{format_bytes(self._bytes)}, past the {format_bytes(MAX_BYTES)} one .onnx "
                f"file can hold"
            )
        name = self._unique(f"{self.prefix}.{name}")
        self.initializers.append(self._numpy.from_array(np.ascontiguousarray(array), name))
        return name

    def scalar(self, value: float) -> str:
        """A float32 scalar, shared by every node that uses it."""
        if value not in self._scalars:
            self._bytes += 4
            name = self._unique(f"const_{value:g}")
            self.initializers.append(self._numpy.from_array(np.array(value, np.float32), name))
            self._scalars[value] = name
        return self._scalars[value]

    def ints(self, name: str, values) -> str:
        return self.constant(name, np.array(values, np.int64))

    def node(self, op: str, inputs: list[str], name: str, output: str | None = None, **attributes) -> str:
        """One node of the current layer; returns its output's name."""
        name = self._unique(f"{self.prefix}.{name}")
        output = output or name
        self.nodes.append(self._helper.make_node(op, inputs, [output], name=name, **attributes))
        return output


# --- activations: darknet's functions (kernels/portable.py activate_array), as ONNX nodes ------


def _piecewise(g: _Graph, x: str, low: float, high: float, below, middle, above) -> str:
    """x < low: below(x); x > high: above(x); else middle(x). Each part is (slope, offset)."""

    def line(part, name):
        slope, offset = part
        y = x if slope == 1 else g.node("Mul", [x, g.scalar(slope)], name)
        return y if offset == 0 else g.node("Add", [y, g.scalar(offset)], name)

    upper = g.node(
        "Where",
        [g.node("Greater", [x, g.scalar(high)], "above"), line(above, "above_line"), line(middle, "middle_line")],
        "upper",
    )
    return g.node("Where", [g.node("Less", [x, g.scalar(low)], "below"), line(below, "below_line"), upper], "piecewise")


def _stair(g: _Graph, x: str) -> str:
    """n = floor(x); even n: floor(x/2), odd n: (x - n) + floor(x/2)."""
    n = g.node("Floor", [x], "floor")
    half = g.node("Floor", [g.node("Mul", [x, g.scalar(0.5)], "half")], "floor_half")
    even = g.node("Equal", [g.node("Mod", [n, g.scalar(2.0)], "parity", fmod=1), g.scalar(0.0)], "even")
    odd = g.node("Add", [g.node("Sub", [x, n], "fraction"), half], "odd")
    return g.node("Where", [even, half, odd], "stair")


ACTIVATION_WRITERS = {
    "linear": lambda g, x: x,
    "leaky": lambda g, x: g.node("LeakyRelu", [x], "leaky", alpha=0.1),
    "relu": lambda g, x: g.node("Relu", [x], "relu"),
    "logistic": lambda g, x: g.node("Sigmoid", [x], "logistic"),
    "tanh": lambda g, x: g.node("Tanh", [x], "tanh"),
    "elu": lambda g, x: g.node("Elu", [x], "elu", alpha=1.0),
    "relie": lambda g, x: g.node("LeakyRelu", [x], "relie", alpha=0.01),
    "ramp": lambda g, x: g.node(
        "Add", [g.node("Relu", [x], "ramp_relu"), g.node("Mul", [x, g.scalar(0.1)], "ramp_slope")], "ramp"
    ),
    "hardtan": lambda g, x: g.node("Clip", [x, g.scalar(-1.0), g.scalar(1.0)], "hardtan"),
    "lhtan": lambda g, x: _piecewise(g, x, 0, 1, (0.001, 0), (1, 0), (0.001, 1 - 0.001)),
    "loggy": lambda g, x: g.node(
        "Sub",
        [g.node("Mul", [g.node("Sigmoid", [x], "loggy_sigmoid"), g.scalar(2.0)], "loggy_double"), g.scalar(1.0)],
        "loggy",
    ),
    "selu": lambda g, x: g.node("Selu", [x], "selu", alpha=1.6732, gamma=1.0507),
    "plse": lambda g, x: _piecewise(g, x, -4, 4, (0.01, 0.04), (0.125, 0.5), (0.01, 1 - 0.04)),
    "stair": _stair,
}


def _activate(g: _Graph, layer, x: str) -> str:
    write = ACTIVATION_WRITERS.get(layer.activation_name)
    if write is None:
        raise ExportError(f"{layer.describe()}: the exporter has no ONNX form for activation={layer.activation_name}")
    return write(g, x)


# --- layers: each writer takes (graph, layer, its darknet arrays, input name, input (h, w, c)) ----


def _convolutional(g: _Graph, layer, params, x: str, in_shape) -> str:
    # darknet stores (filters, channels/groups, ky, kx): ONNX's OIHW
    weights = params["weights"].reshape(layer.filters, in_shape[2] // layer.groups, layer.size, layer.size)
    weights, bias = fold_batchnorm(weights, params, layer.batch_normalize)
    p = layer.padding
    y = g.node(
        "Conv",
        [x, g.constant("weights", weights), g.constant("bias", bias)],
        "conv",
        kernel_shape=[layer.size, layer.size],
        strides=[layer.stride, layer.stride],
        pads=[p, p, p, p],
        group=layer.groups,
    )
    return _activate(g, layer, y)


def _connected(g: _Graph, layer, params, x: str, in_shape) -> str:
    h, w, c = in_shape
    weights = params["weights"].reshape(layer.outputs, c, h, w)  # darknet's channel-major inputs
    weights, bias = fold_batchnorm(weights, params, layer.batch_normalize)
    flat = g.node("Flatten", [x], "flatten", axis=1)  # NCHW: the same order
    y = g.node(
        "Gemm",
        [flat, g.constant("weights", weights.reshape(layer.outputs, -1)), g.constant("bias", bias)],
        "gemm",
        transB=1,
    )
    return g.node("Unsqueeze", [_activate(g, layer, y), g.ints("axes", [2, 3])], "to_map")


def _maxpool(g: _Graph, layer, params, x: str, in_shape) -> str:
    """darknet's windows start padding/2 cells before the map and its output size counts the
    whole padding once; cells outside never win: -inf where the windows need them, then a
    MaxPool without padding of its own."""
    h, w, _ = in_shape
    out_h, out_w, _ = g.shapes[layer.index]
    first = layer.padding // 2
    bottom = max(0, (out_h - 1) * layer.stride + layer.size - h - first)
    right = max(0, (out_w - 1) * layer.stride + layer.size - w - first)
    if first or bottom or right:
        pads = g.ints("pads", [0, 0, first, first, 0, 0, bottom, right])
        x = g.node("Pad", [x, pads, g.scalar(-np.inf)], "pad", mode="constant")
    return g.node(
        "MaxPool", [x], "maxpool", kernel_shape=[layer.size, layer.size], strides=[layer.stride, layer.stride]
    )


def _avgpool(g: _Graph, layer, params, x: str, in_shape) -> str:
    return g.node("GlobalAveragePool", [x], "avgpool")


def _softmax(g: _Graph, layer, params, x: str, in_shape) -> str:
    """Over the input flattened channel-major, in `groups` equal slices, at a temperature."""
    inputs = in_shape[0] * in_shape[1] * in_shape[2]
    z = g.node("Flatten", [x], "flatten", axis=1)
    if layer.temperature != 1:
        z = g.node("Div", [z, g.scalar(layer.temperature)], "temperature")
    if layer.groups > 1:
        z = g.node("Reshape", [z, g.ints("groups", [0, layer.groups, inputs // layer.groups])], "groups")
    y = g.node("Softmax", [z], "softmax", axis=-1)
    return g.node("Reshape", [y, g.ints("shape", [0, inputs, 1, 1])], "to_map")


def _route(g: _Graph, layer, params, x: str, in_shape) -> str:
    sources = [g.outputs[source] for source in layer.sources]
    return sources[0] if len(sources) == 1 else g.node("Concat", sources, "route", axis=1)


def _shortcut(g: _Graph, layer, params, x: str, in_shape) -> str:
    """act(alpha * x + beta * from) where darknet adds: over the channels both have, the larger
    map sampled every `stride` cells, or the smaller added to every `sample`-th cell (see
    kernels.portable.shortcut_add). Cells it does not add to keep x (and are activated)."""
    h1, w1, c1 = g.shapes[layer.source]
    h2, w2, c2 = in_shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    mh, mw, mc = min(h1, h2), min(w1, w2), min(c1, c2)
    src = g.outputs[layer.source]
    if stride > 1 or (mh, mw, mc) != (h1, w1, c1):
        src = g.node(
            "Slice",
            [
                src,
                g.ints("starts", [0, 0, 0]),
                g.ints("ends", [mc, mh * stride, mw * stride]),
                g.ints("axes", [1, 2, 3]),
                g.ints("steps", [1, stride, stride]),
            ],
            "sample",
        )
    if sample > 1:  # each cell followed by sample-1 zeros, across and down
        src = g.node("Unsqueeze", [src, g.ints("axes", [3, 5])], "cells")
        src = g.node("Pad", [src, g.ints("pads", [0] * 9 + [sample - 1, 0, sample - 1])], "spread")
        src = g.node("Reshape", [src, g.ints("shape", [0, mc, mh * sample, mw * sample])], "interleave")
    covered = (mc, mh * sample, mw * sample) == (c2, h2, w2)
    if not covered:
        src = g.node(
            "Pad", [src, g.ints("pads", [0, 0, 0, 0, 0, c2 - mc, h2 - mh * sample, w2 - mw * sample])], "place"
        )
    added = src if layer.beta == 1 else g.node("Mul", [src, g.scalar(layer.beta)], "beta")
    scaled = x if layer.alpha == 1 else g.node("Mul", [x, g.scalar(layer.alpha)], "alpha")
    y = g.node("Add", [scaled, added], "add")
    if not covered and layer.alpha != 1:  # cells darknet leaves alone are not scaled either
        mask = np.zeros((1, c2, h2, w2), bool)
        mask[:, :mc, : mh * sample : sample, : mw * sample : sample] = True
        y = g.node("Where", [g.constant("added_cells", mask), y, x], "keep")
    return _activate(g, layer, y)


def _passthrough(g: _Graph, layer, params, x: str, in_shape) -> str:
    return x  # [dropout], [cost]: nothing at inference


LAYER_WRITERS = {
    "convolutional": _convolutional,
    "connected": _connected,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "softmax": _softmax,
    "route": _route,
    "shortcut": _shortcut,
    "dropout": _passthrough,
    "cost": _passthrough,
}
