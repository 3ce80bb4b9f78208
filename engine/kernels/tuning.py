"""Which vector width each direct convolution runs at on this machine: plain data and a file,
read without loading Numba.

direct.py compiles its register tile twice, for 8-float vectors (AVX2: 4 pixels x 16 filters)
and for 16-float vectors (AVX-512: 8 pixels x 16 filters). Which is faster depends on the CPU
(a Zen 4 runs a 512-bit FMA as two 256-bit halves; Zen 5 and Intel's AVX-512 cores run it
whole) and on the layer, so the compile step measures both on the layer shapes of the models
tdn ships (engine/tile_tuning.py) and writes the winners here, beside Numba's cache, under the
fingerprint of the CPU and the kernel sources. Plans read them (plan.direct_tile):

- TDN_SIMD=avx2 or avx512 forces one width everywhere (tests and benches compare them; a
  16-float kernel on a CPU without AVX-512 runs as two 8-float halves and gives the same sums);
- otherwise a layer shape the record has gets its winner, any other shape the width that won
  more of the measured shapes, and with no record yet (a fresh install, or another CPU) 8 floats,
  the width every x86-64 CPU tdn runs on has.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from ..files import write_atomic
from . import cache

ENV = "TDN_SIMD"
CHOICES = {"auto": None, "avx2": 8, "avx512": 16}
DEFAULT_LANES = 8
DIRECT_KERNEL = {8: "direct_conv", 16: "direct_conv_wide"}  # the kernel for each width (kernels.NAMES)
WIDTH_OF_KERNEL = {name: lanes for lanes, name in DIRECT_KERNEL.items()}
RECORD = "tiles.json"
RECORD_VERSION = 1

_forced: list[int] = []  # lanes forced in this process (forced(), innermost last)


def layer_key(in_shape, filters: int, size: int, stride: int, pooled: bool) -> str:
    """A conv's shape as the record names it: input h x w x c, filters, size/stride, + a pool."""
    h, w, c = in_shape
    return f"{h}x{w}x{c}-{filters}-{size}/{stride}" + ("-pool" if pooled else "")


def requested() -> int | None:
    """The lanes TDN_SIMD (or forced()) asks for, or None for the machine's own choice."""
    if _forced:
        return _forced[-1]
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV}={value!r}: choose one of {', '.join(CHOICES)}")
    return CHOICES[value]


class forced:
    """with forced(16): plans made inside use 16-float tiles (the compiler's specimens, the tuner)."""

    def __init__(self, lanes: int):
        self.lanes = lanes

    def __enter__(self):
        _forced.append(self.lanes)

    def __exit__(self, *exc):
        _forced.pop()


def lanes_for(key: str) -> int:
    """The vector width a conv of shape `key` (layer_key) runs at."""
    wanted = requested()
    if wanted is not None:
        return wanted
    record = read_record()
    if record is None:
        return DEFAULT_LANES
    return record["layers"].get(key, record["default"])


@lru_cache(maxsize=1)
def record_path() -> Path:
    return cache.stamp_dir() / RECORD  # (stamp_dir is decided once per process too)


def record_stamp() -> int | None:
    """When the record was last written (ns), or None without one: a cheap test for a new record,
    made before every forward pass (one stat, ~2 us)."""
    try:
        return os.stat(record_path()).st_mtime_ns
    except OSError:
        return None


def read_record() -> dict | None:
    """The tuning record for this CPU and these kernel sources, or None (none yet, damaged, or
    another machine's)."""
    path = record_path()
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read(str(path), stat.st_mtime_ns, cache.fingerprint())


@lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, fingerprint: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        return None
    layers = record.get("layers")
    if record.get("fingerprint") != fingerprint or not isinstance(layers, dict):
        return None
    if record.get("default") not in DIRECT_KERNEL or any(lanes not in DIRECT_KERNEL for lanes in layers.values()):
        return None  # a width there is no kernel for (a hand-edited file)
    return record


def write_record(layers: dict[str, int], default: int, timings: dict[str, dict[str, float]]) -> Path:
    """Record the winners: {layer_key: lanes}, the width for other shapes, and the times behind
    them ({layer_key: {lanes: seconds}}), atomically."""
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "version": RECORD_VERSION,
        "fingerprint": cache.fingerprint(),
        "default": default,
        "layers": layers,
        "seconds": timings,
    }
    write_atomic(path, json.dumps(record, indent=1).encode())
    return path
