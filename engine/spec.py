"""A cfg file → NetworkSpec: the [net] input and one frozen layer object per section, with
every layer's output shape inferred as we go (darknet's parser does the same)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .cfg import Section, read_sections
from .errors import CfgError, EngineError
from .layers import LAYER_TYPES, Layer, Shape

# [net] options that only matter when training: accepted and ignored
NET_TRAINING_OPTIONS = (
    "batch",
    "subdivisions",
    "momentum",
    "decay",
    "angle",
    "saturation",
    "exposure",
    "hue",
    "aspect",
    "learning_rate",
    "policy",
    "power",
    "max_batches",
    "max_crop",
    "min_crop",
    "burn_in",
    "steps",
    "scales",
    "step",
    "gamma",
    "rate",
    "time_steps",
    "notruth",
    "random",
    "adam",
    "b1",
    "b2",
    "eps",
    "center",
    "flip",
    "jitter",
    "crop_width",
    "crop_height",
    "inputs",
    "max_chart_loss",
    "mosaic",
    "cutmix",
    "mixup",
    "blur",
    "letter_box",
    "label_smooth_eps",
    "max_ratio",
    "min_ratio",
    "B1",
    "B2",
    "clip",
    "scale",
)
# options darknet reads in every layer section that only matter when training (engine/training)
LAYER_TRAINING_OPTIONS = (
    "learning_rate",
    "stopbackward",
    "dontsave",
    "dontload",
    "dontloadscales",
    "numload",
    "onlyforward",
    "truth",
    "smooth",
)


@dataclass(frozen=True)
class NetworkSpec:
    path: str
    width: int
    height: int
    channels: int
    layers: tuple[Layer, ...]
    shapes: tuple[Shape, ...]  # output shape of each layer at the cfg's input size

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @property
    def input_shape(self) -> Shape:
        return (self.height, self.width, self.channels)

    @property
    def any_size(self) -> bool:
        """True when nothing binds the input size (no [connected]): any w×h can be fed."""
        return not any(layer.needs_fixed_size for layer in self.layers)

    @property
    def size_multiple(self) -> int:
        """What every input side must be a multiple of: 1, except where [shortcut]s add maps that
        must halve evenly together (ResNet; darknet asserts it too), where it is the network's
        whole downsampling (32 for ResNet 18: 256 -> 8)."""
        if not any(layer.kind == "shortcut" for layer in self.layers):
            return 1
        smallest = min(w for h, w, c in self.shapes if h > 1 or w > 1)
        return max(1, self.width // smallest)

    def input_shapes(self, shapes=None, size: tuple[int, int] | None = None) -> list[Shape]:
        """Each layer's input shape: for the cfg's input size, or for `shapes` = shapes_for(*size)."""
        shapes = self.shapes if shapes is None else shapes
        first = self.input_shape if size is None else (size[0], size[1], self.channels)
        return [first] + list(shapes[:-1])

    def shapes_for(self, height: int, width: int) -> tuple[Shape, ...]:
        """Every layer's output shape for another input size (ShapeError if impossible)."""
        return infer_shapes(self.layers, (height, width, self.channels))


def infer_shapes(layers, input_shape: Shape) -> tuple[Shape, ...]:
    shapes: list[Shape] = []
    current = input_shape
    for layer in layers:
        current = layer.output_shape(current, shapes)
        shapes.append(current)
    return tuple(shapes)


def _parse_net(section: Section) -> Shape:
    if section.kind not in ("net", "network"):
        raise section.error("the first section must be [net]")
    width = section.get_int("width", 0)
    height = section.get_int("height", 0)
    channels = section.get_int("channels", 0)
    section.ignore(*NET_TRAINING_OPTIONS)
    for key, value in (("width", width), ("height", height), ("channels", channels)):
        if value < 1:
            raise section.error(f"needs a positive '{key}' (got {value})", key if key in section.options else None)
    section.check_all_used()
    return (height, width, channels)


def parse_network(path: str | Path, text: str | None = None) -> NetworkSpec:
    """Parse a darknet classifier cfg. Errors are CfgError naming file and line."""
    sections = read_sections(path, text)
    input_shape = _parse_net(sections[0])
    layers: list[Layer] = []
    shapes: list[Shape] = []
    current = input_shape
    for index, section in enumerate(sections[1:]):
        layer_type = LAYER_TYPES.get(section.kind)
        if layer_type is None:
            if section.kind in ("net", "network"):
                raise section.error("only the first section may be [net]")
            known = ", ".join(sorted({t.kind for t in LAYER_TYPES.values()}))
            raise section.error(f"unknown or unsupported section (supported: {known})")
        where = f"{section.path}:{section.line}"
        layer = layer_type.parse(section, index, where, current)
        section.ignore(*LAYER_TRAINING_OPTIONS)
        section.check_all_used()
        try:
            current = layer.output_shape(current, shapes)
        except EngineError as exc:
            raise CfgError(str(exc)) from None
        layers.append(layer)
        shapes.append(current)
    if not layers:
        raise CfgError(f"{path}: the cfg has a [net] but no layers")
    return NetworkSpec(str(path), input_shape[1], input_shape[0], input_shape[2], tuple(layers), tuple(shapes))
