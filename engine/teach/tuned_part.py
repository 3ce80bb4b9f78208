"""The part of a taught model that fine-tuning trains, as a darknet network of its own.

Fine-tuning trains the base network's last layers together with the taught head. Everything up
to a *cut* layer stays frozen, so its output is computed once per photo and view, and the trained
part is a small network whose input is that output:

    [net] (the cut layer's output shape)  →  [maxpool] size=1 stride=1 (it stands for the cut layer)
    →  the base's layers cut+1 .. the head's last (their [route]/[shortcut] references renumbered)
    →  the head: [route] (when it reads several layers), 1x1 conv linear, [avgpool], [softmax]

Batch norm is folded into the trained convolutions (scale / (sqrt(variance) + eps) into the
weights, the mean into the bias): with a few dozen photos a batch's statistics are noise, so the
base's running statistics stay as they are. unfold() writes the trained weights back in darknet's
batch-norm form, so the exported network is the base cfg, verbatim, with new weights.

A cut is possible when nothing after it reads a layer before it; the depth of a cut is how many
layers with weights after it belong to the base network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cfg import read_sections
from ..layers.batchnorm import BN_EPSILON, fold_batchnorm
from ..spec import NetworkSpec, parse_network
from .heads import Head

WEIGHTED = ("convolutional", "connected")
FOLDED = ("batch_normalize",)
DROPPED = ("stopbackward", "learning_rate", "dontload", "dontloadscales")  # training options of the base's own run


@dataclass(frozen=True)
class Cut:
    layer: int  # the last frozen layer: its output is the trained part's input
    trained: tuple[int, ...]  # the base's layers with weights after it, trained

    @property
    def depth(self) -> int:
        return len(self.trained)

    def describe(self) -> str:
        return layer_span(self.trained)


def layer_span(layers) -> str:
    """'layer 18' or 'layers 16-19': consecutive layers, for sentences."""
    first, last = layers[0], layers[-1]
    return f"layer {first}" if first == last else f"layers {first}-{last}"


def cuts(spec: NetworkSpec, head: Head, depths) -> tuple[Cut, ...]:
    """The cut for each depth (layers with weights trained, counted back from the head's last
    layer) the network allows: each trained layer a [convolutional], and nothing after the cut
    reading a layer before it."""
    found = []
    weighted = [layer.index for layer in spec.layers[: head.last + 1] if layer.kind in WEIGHTED]
    for depth in sorted(set(depths)):
        if not 0 < depth <= len(weighted):
            continue
        trained = tuple(weighted[-depth:])
        cut = trained[0] - 1
        if cut < 0 or any(spec.layers[i].kind != "convolutional" for i in trained):
            continue
        after = spec.layers[cut + 1 : head.last + 1]
        if any(source < cut for layer in after for source in layer.reads()) or min(head.layers) < cut:
            continue
        found.append(Cut(cut, trained))
    return tuple(found)


def part_flops(spec: NetworkSpec, head: Head, cut: Cut) -> int:
    """The base layers' share of one forward pass of the trained part, per image, at the base's
    input size (the head's 1x1 conv adds little)."""
    inputs = spec.input_shapes()
    return sum(spec.layers[i].flops(inputs[i], spec.shapes[i]) for i in range(cut.layer + 1, head.last + 1))


def part_cfg(spec: NetworkSpec, cfg_text: str, head: Head, cut: Cut, classes: int) -> str:
    """The trained part's cfg (see the module docstring)."""
    h, w, c = spec.shapes[cut.layer]
    sections = read_sections(spec.path, cfg_text)  # section 0 is [net]
    lines = ["[net]", f"height={h}", f"width={w}", f"channels={c}", "", "[maxpool]", "size=1", "stride=1", ""]

    def renumber(index: int) -> int:
        return index - cut.layer

    for i in range(cut.layer + 1, head.last + 1):
        section, layer = sections[i + 1], spec.layers[i]
        lines.append(f"[{section.kind}]")
        for key, (value, _) in section.options.items():
            if key in DROPPED or key in FOLDED:
                continue
            if key == "layers" and layer.kind == "route":
                value = ",".join(str(renumber(j)) for j in layer.reads())
            elif key == "from" and layer.kind == "shortcut":
                value = str(renumber(layer.reads()[0]))
            lines.append(f"{key}={value}")
        lines.append("")
    if len(head.layers) > 1:
        lines += ["[route]", "layers=" + ",".join(str(renumber(j)) for j in head.layers), ""]
    lines += ["[convolutional]", f"filters={classes}", "size=1", "stride=1", "activation=linear", ""]
    lines += ["[avgpool]", "", "[softmax]", "groups=1", ""]
    return "\n".join(lines)


def part_spec(spec: NetworkSpec, cfg_text: str, head: Head, cut: Cut, classes: int) -> NetworkSpec:
    return parse_network(f"{spec.name}-tuned-part.cfg", part_cfg(spec, cfg_text, head, cut, classes))


def part_params(spec: NetworkSpec, params, head: Head, cut: Cut, weights: np.ndarray, bias: np.ndarray) -> list:
    """Fresh float32 arrays for the trained part: the stand-in (none), the base's layers with
    their batch norm folded, the head's route (none), conv (weights (k, c), bias (k,)), pool
    and softmax (none)."""
    out: list[dict] = [{}]
    for i in range(cut.layer + 1, head.last + 1):
        layer, arrays = spec.layers[i], params[i]
        if layer.kind == "convolutional":
            folded, folded_bias = fold_batchnorm(
                arrays["weights"].reshape(layer.filters, -1), arrays, layer.batch_normalize
            )
            out.append({"biases": folded_bias.copy(), "weights": folded.reshape(-1).copy()})
        else:
            out.append({name: np.array(value, np.float32) for name, value in arrays.items()})
    if len(head.layers) > 1:
        out.append({})
    out.append({"biases": np.array(bias, np.float32), "weights": np.array(weights, np.float32).reshape(-1)})
    return out + [{}, {}]


def head_arrays(part: list, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The trained head conv's (weights (k, c), bias (k,)) from the part's params."""
    conv = part[-3]
    return conv["weights"].reshape(classes, -1).copy(), conv["biases"].copy()


def unfold(spec: NetworkSpec, params, head: Head, cut: Cut, part: list) -> list:
    """The base network's params with the trained layers' weights from `part`, in darknet's form:
    where a layer has batch norm its running statistics stay, its scales become
    sqrt(variance) + eps (so that normalising and scaling cancel) and its bias takes the mean
    back, y = w·x + b as trained. Layers after the head's last are left out."""
    out = list(params[: head.last + 1])
    for i in range(cut.layer + 1, head.last + 1):
        layer, trained = spec.layers[i], part[i - cut.layer]
        if layer.kind != "convolutional":
            continue
        arrays = dict(params[i])
        arrays["weights"] = trained["weights"].astype(np.float32).copy()
        if layer.batch_normalize:
            variance = arrays["rolling_variance"].astype(np.float64)
            arrays["scales"] = (np.sqrt(variance) + BN_EPSILON).astype(np.float32)
            arrays["biases"] = (trained["biases"] + arrays["rolling_mean"].astype(np.float64)).astype(np.float32)
        else:
            arrays["biases"] = trained["biases"].astype(np.float32).copy()
        out[i] = arrays
    return out
