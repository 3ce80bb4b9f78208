"""darknet .weights files: a header, then each layer's float32 arrays in darknet's order.

Header: int32 major, minor, revision, then `seen` (images trained on) as uint64 when
major*10+minor >= 2 (and both < 1000), else as int32. Every byte must be accounted for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import WeightsError
from .files import write_atomic
from .spec import NetworkSpec, parse_network

Params = list[dict[str, np.ndarray]]  # one {name: float32 array} per layer
CURRENT_VERSION = (0, 2, 0)  # what darknet writes today (64-bit seen)


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int

    @property
    def wide_seen(self) -> bool:
        return (self.major * 10 + self.minor) >= 2 and self.major < 1000 and self.minor < 1000

    @property
    def size(self) -> int:
        return 12 + (8 if self.wide_seen else 4)

    @property
    def transposed(self) -> bool:
        # darknet's marker for [connected] matrices stored (inputs, outputs)
        return self.major > 1000 or self.minor > 1000


def count_params(spec: NetworkSpec) -> int:
    return sum(n for layer, shape in zip(spec.layers, spec.input_shapes()) for _, n in layer.param_layout(shape))


def expected_weights_bytes(cfg: str | Path | NetworkSpec, version: tuple[int, int] = (0, 1)) -> int:
    """Exact size of a weights file for this cfg: darknet's published files use version 0.1."""
    spec = cfg if isinstance(cfg, NetworkSpec) else parse_network(cfg)
    header = WeightsHeader(version[0], version[1], 0, 0)
    return header.size + 4 * count_params(spec)


def read_weights(path: str | Path, spec: NetworkSpec, prefix: bool = False) -> tuple[WeightsHeader, Params]:
    """The header and every layer's arrays. prefix=True reads a base as darknet's load_weights
    does when fine-tuning: the file may stop after any whole layer (`tdn partial` writes such
    files), and the params list then holds only the layers up to the first one with weights
    that the file does not cover."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read weights: {exc.strerror or exc}") from None
    if len(data) < 16:
        raise WeightsError(f"{path}: {len(data)} bytes is too short for a darknet weights header")
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    header = WeightsHeader(major, minor, revision, 0)
    if min(major, minor, revision) < 0:
        raise WeightsError(f"{path}: not a darknet weights file (its header says version {major}.{minor}.{revision})")
    if len(data) < header.size:
        raise WeightsError(
            f"{path}: {len(data)} bytes is too short for a darknet weights header "
            f"(version {major}.{minor} has {header.size} bytes)"
        )
    seen = np.frombuffer(data, "<u8" if header.wide_seen else "<i4", 1, 12)[0]
    header = WeightsHeader(major, minor, revision, int(seen))
    total = header.size + 4 * count_params(spec)
    offset = header.size
    params: Params = []
    for layer, in_shape in zip(spec.layers, spec.input_shapes()):
        layout = layer.param_layout(in_shape)
        if prefix and offset == len(data) and layout:
            break
        arrays = {}
        for name, count in layout:
            end = offset + 4 * count
            if end > len(data):
                raise WeightsError(
                    f"{path}: ends inside {layer.describe()} ({name}): the cfg {spec.path} needs "
                    f"{total} bytes, the file has {len(data)}"
                )
            arrays[name] = np.frombuffer(data, "<f4", count, offset).astype(np.float32)
            offset = end
        if header.transposed and "weights" in arrays and layer.kind == "connected":
            w = arrays["weights"].reshape(layer.inputs, layer.outputs)
            arrays["weights"] = np.ascontiguousarray(w.T).reshape(-1)
        params.append(arrays)
    if offset != len(data):
        raise WeightsError(
            f"{path}: {len(data) - offset} bytes left over after the last layer: the cfg "
            f"{spec.path} needs {total} bytes, the file has {len(data)} (wrong cfg?)"
        )
    return header, params


def weights_bytes(
    spec: NetworkSpec, params: Params, seen: int = 0, version: tuple[int, int, int] = CURRENT_VERSION
) -> bytes:
    """A .weights file's bytes: darknet's header, then every layer's arrays in darknet's order."""
    header = WeightsHeader(*version, seen)
    chunks = [np.array(version, "<i4").tobytes(), np.array([seen], "<u8" if header.wide_seen else "<i4").tobytes()]
    for layer, in_shape, arrays in zip(spec.layers, spec.input_shapes(), params):
        for name, count in layer.param_layout(in_shape):
            array = np.asarray(arrays[name], "<f4").reshape(-1)
            if array.size != count:
                raise WeightsError(f"{layer.describe()}: {name} has {array.size} values, the cfg needs {count}")
            chunks.append(array.tobytes())
    return b"".join(chunks)


def write_weights(
    path: str | Path, spec: NetworkSpec, params: Params, seen: int = 0, version: tuple[int, int, int] = CURRENT_VERSION
) -> None:
    """Write darknet's format whole (engine.files), or not at all."""
    write_atomic(Path(path), weights_bytes(spec, params, seen, version))


def random_params(spec: NetworkSpec, seed: int = 0) -> Params:
    """Seeded random weights with sane statistics (He-scaled convs, plausible batch norm),
    so activations neither vanish nor explode and the softmax is not degenerate."""
    rng = np.random.default_rng(seed)
    params: Params = []
    for layer, in_shape in zip(spec.layers, spec.input_shapes()):
        layout = dict(layer.param_layout(in_shape))
        arrays = {}
        for name, count in layout.items():
            if name == "weights":
                fan_in = count // max(layout["biases"], 1)
                values = rng.normal(0.0, np.sqrt(2.0 / fan_in), count)
            elif name == "scales":
                values = rng.uniform(0.5, 1.5, count)
            elif name == "rolling_variance":
                values = rng.uniform(0.5, 2.0, count)
            else:  # biases, rolling_mean
                values = rng.normal(0.0, 0.1, count)
            arrays[name] = values.astype(np.float32)
        params.append(arrays)
    return params


def write_random_weights(cfg_path: str | Path, weights_path: str | Path, seed: int = 0) -> None:
    spec = parse_network(cfg_path)
    write_weights(weights_path, spec, random_params(spec, seed))
