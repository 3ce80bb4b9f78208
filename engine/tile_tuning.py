"""Measure, on this machine, which vector width each direct convolution runs fastest at, and
record the winners for the plans (kernels/tuning.py has the record and how plans read it).

    python -m engine.tile_tuning [--verbose]   # measure and record (engine.compile runs it last)

The shapes measured are the convolutions of the models tdn ships (cfg/*.cfg), at batch 1 and
their own input size, with seeded random weights (the time does not depend on the values).
Each network is planned once per width and run in turn, layer by layer (Network.forward's
observer), so both widths meet the same machine load; a layer's figure is its fastest run.
A CPU with one width (no AVX-512) has nothing to choose: its record says so without measuring.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from . import paths
from .kernels import tuning
from .network import Network
from .spec import parse_network
from .weights import random_params

ROUNDS = 5  # passes per width, in turn: a layer's figure is its fastest of these
WIN_MARGIN = 0.02  # the wider tile must be this much faster to be chosen for a shape
HEAD_KINDS = ("connected", "dropout", "softmax", "cost")  # a classifier's tail, not measured


def host_widths() -> tuple[int, ...]:
    from .kernels.peak import widths

    return widths()


def shipped_cfgs() -> list[Path]:
    return sorted(paths.cfg_dir().glob("*.cfg"))


def measure(cfgs=None, widths=None, rounds: int = ROUNDS, say=None) -> dict[str, dict[int, float]]:
    """{layer_key: {lanes: fastest seconds}} for every direct conv of `cfgs` (default: the
    shipped models), each width in `widths` (default: the CPU's)."""
    from .layers.convolutional import DirectStep

    widths = tuple(widths or host_widths())
    found: dict[str, dict[int, float]] = {}
    for cfg in cfgs if cfgs is not None else shipped_cfgs():
        start = time.perf_counter()
        spec = _without_the_head(parse_network(cfg))
        params = random_params(spec)
        h, w = spec.height, spec.width
        runs = {}
        for lanes in widths:
            with tuning.forced(lanes):
                net = Network(spec, params)
                steps = net.plan(1, h, w)
            runs[lanes] = (net, steps, {})
        x = np.random.default_rng(0).random((1, h, w, spec.channels), np.float32)
        for _ in range(rounds):
            for lanes, (net, _, best) in runs.items():

                def keep_fastest(i, seconds, best=best):
                    best[i] = min(seconds, best.get(i, seconds))

                net.forward(x, observer=keep_fastest)
        shapes = 0
        for i, step in enumerate(runs[widths[0]][1]):
            if not isinstance(step, DirectStep):
                continue
            shapes += 1
            times = found.setdefault(step.tile_key, {})
            for lanes, (_, _, best) in runs.items():
                times[lanes] = min(times.get(lanes, np.inf), best[i])
        if say:
            say(f"  {Path(cfg).name}: {shapes} direct convs, {time.perf_counter() - start:.1f} s")
    return found


def _without_the_head(spec):
    """The network without the [connected], [dropout], [softmax] and [cost] layers at its end:
    AlexNet's [connected] layers alone hold 59 M weights, seconds of making up and packing for
    nothing measured (a pool after the last conv stays: it changes how that conv runs)."""
    keep = len(spec.layers)
    while keep > 1 and spec.layers[keep - 1].kind in HEAD_KINDS:
        keep -= 1
    return dataclasses.replace(spec, layers=spec.layers[:keep], shapes=spec.shapes[:keep])


def choose(found: dict[str, dict[int, float]]) -> tuple[dict[str, int], int]:
    """({layer_key: lanes}, the width for other shapes): a shape's winner (a wider tile only
    where it wins by WIN_MARGIN: below that the difference is the machine's noise), and for
    other shapes the width that won more of the measured ones (a count, not a sum of times:
    the largest layers of one model would decide for every other network's)."""
    layers = {}
    for key, times in found.items():
        narrow = min(times)
        best = min(times, key=times.get)
        layers[key] = best if times[best] < times[narrow] * (1 - WIN_MARGIN) else narrow
    wins = {lanes: sum(1 for won in layers.values() if won == lanes) for lanes in sorted(set(layers.values()))}
    if not wins:
        return layers, tuning.DEFAULT_LANES
    return layers, max(wins, key=lambda lanes: (wins[lanes], -lanes))


def tune(say=None) -> Path:
    """Measure (where the CPU has more than one width) and write this machine's record."""
    widths = host_widths()
    if len(widths) == 1:
        return tuning.write_record({}, widths[0], {})
    found = measure(widths=widths, say=say)
    layers, default = choose(found)
    seconds = {key: {str(lanes): t for lanes, t in times.items()} for key, times in found.items()}
    return tuning.write_record(layers, default, seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.tile_tuning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="a line per model measured")
    args = parser.parse_args(argv)
    from . import kernels

    kernels.use("compiled")
    start = time.perf_counter()
    tune(say=print if args.verbose else None)
    record = tuning.read_record() or {}
    layers = record.get("layers", {})
    wide = sum(1 for lanes in layers.values() if lanes > tuning.DEFAULT_LANES)
    if not layers:
        print(f"tile widths: {record.get('default')}-float vectors (this CPU has no other width to measure)")
    else:
        print(
            f"tile widths measured in {time.perf_counter() - start:.1f} s: 16-float vectors on {wide} of "
            f"{len(layers)} layer shapes, {record.get('default')}-float on any other ({tuning.record_path()})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
