"""tdn's engine against ONNX Runtime (running `tdn export --onnx`'s model) and OpenCV's DNN module
(its darknet importer), on the same cfg + weights.

The three run in turn in one process, one pass each per round, same inputs, medians after
warm-up; tdn twice: with the tiles this machine's tuning record chooses (TDN_SIMD=auto, or as
TDN_SIMD forces) and with 8-float tiles throughout (the AVX2 path); ratios are tdn's over the
other's, for latency (lower is better for tdn) and for images/s (higher is better). The machine
is shared and noisy: only ratios from one run mean much.
ONNX Runtime runs as a deployment would on this 2-core machine: 2 intra-op threads, 1 inter-op,
every graph optimisation, sequential execution, and its threads not spinning between passes
(--ort-spinning to let them): spinning threads take the cores from whatever runs next. Measured
2026-11-30, Tiny Darknet, batch 1, medians of 40 (ms):

    spinning   ONNX Runtime alone   tdn, ONNX Runtime, OpenCV in turn
    on         30.3                 41.9, 26.2, 43.1
    off        12.9                 15.5,  9.9, 14.5

    python bench/bench_onnxruntime.py [--runs 50] [--tiny-weights PATH] [--per-layer] [--ort-spinning]

--per-layer adds, per network, the time each layer takes in tdn (Network.forward's observer) and
in ONNX Runtime (its profiler's per-node times, added up by the layer each node was written for).

Tiny Darknet uses the real weights from ../shared/weights/tiny.weights when present; Darknet
Reference gets seeded random weights written by the engine's writer (same work, same files for
all three).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The compiled kernels are what this compares: compile them first (in their own processes, once
# per install), so that nothing compiles in this one and nothing runs on the portable kernels
subprocess.run([sys.executable, "-m", "engine.compile"], cwd=ROOT, check=True)
os.environ["TDN_KERNELS"] = "compiled"
import engine  # noqa: E402
from engine.onnx_export import INPUT, OUTPUT, export_onnx  # noqa: E402
from engine.parallel import threading_layer  # noqa: E402
from engine.kernels import tuning  # noqa: E402
from engine.summary import summarize  # noqa: E402
from tdn_cli.info_cmd import tiles, tiles_line  # noqa: E402

SHARED = ROOT.parent / "shared"
ORT_THREADS = 2
ENGINES = ("tdn", "ONNX Runtime", "OpenCV DNN")
NODE_LAYER = re.compile(r"^layer(\d+)\.")  # engine/onnx_export.py names each node after its layer


def ort_session(model: Path, spinning: bool, profile_prefix: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = ORT_THREADS
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class Contenders:
    """One network in the three engines, each a function that runs one forward pass on x."""

    def __init__(self, cfg: Path, weights: Path, model: Path, x: np.ndarray, spinning: bool):
        self.net = engine.Network.load(cfg, weights)
        # the same network planned with 8-float tiles throughout: the AVX2 path, forced
        self.narrow = engine.Network.load(cfg, weights)
        with tuning.forced(8):
            self.narrow.plan(*x.shape[:3])
        self.model, self.spinning = model, spinning
        self.session = ort_session(model, spinning)
        self.cv = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        self.x = x
        self.blob = np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def tdn(self):
        return self.net.predict(self.x)

    def tdn_narrow(self):
        return self.narrow.predict(self.x)

    def onnxruntime(self):
        return self.session.run([OUTPUT], {INPUT: self.blob})[0]

    def opencv(self):
        self.cv.setInput(self.blob)
        return self.cv.forward()

    def passes(self):
        return (self.tdn, self.tdn_narrow, self.onnxruntime, self.opencv)


def interleaved_ms(passes, runs: int, warm_up: int = 5) -> list[float]:
    """Median milliseconds per pass of each function, run in turn, `runs` rounds after warm-up."""
    for _ in range(warm_up):
        for run in passes:
            run()
    times = [[] for _ in passes]
    for _ in range(runs):
        for spent, run in zip(times, passes):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [float(np.median(spent) * 1e3) for spent in times]


def tdn_layer_ms(net, x, runs: int) -> np.ndarray:
    """Median ms per layer over `runs` passes (a pool the conv before it does shows ~0)."""
    times = np.zeros((runs, len(net.spec.layers)))
    for r in range(runs):
        net.forward(x, observer=lambda i, s: times.__setitem__((r, i), s))
    return np.median(times, axis=0) * 1e3


def ort_layer_ms(contenders: Contenders, runs: int, tmp: Path) -> tuple[np.ndarray, float]:
    """ONNX Runtime's profiler: median ms per layer over `runs` passes (each node's kernel time
    added to the layer it was written for), and the median ms per pass of nodes of no layer
    (layout reorders ONNX Runtime inserts, the final flatten)."""
    model, layers = contenders.model, len(contenders.net.spec.layers)
    session = ort_session(model, contenders.spinning, str(tmp / f"ort-{model.stem}"))
    for _ in range(runs + 3):
        session.run([OUTPUT], {INPUT: contenders.blob})
    events = json.loads(Path(session.end_profiling()).read_text())
    passes = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[-runs:]
    starts = [start for start, _ in passes]
    per_layer = np.zeros((runs, layers + 1))  # the last column: nodes of no layer
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        r = bisect.bisect_right(starts, event["ts"]) - 1
        if r < 0 or event["ts"] > passes[r][1]:
            continue  # a warm-up pass
        match = NODE_LAYER.match(event["name"])
        per_layer[r, int(match.group(1)) if match else layers] += event["dur"] / 1e3
    medians = np.median(per_layer, axis=0)
    return medians[:layers], float(medians[layers])


def layer_table(title: str, contenders: Contenders, runs: int, tmp: Path) -> str:
    net = contenders.net
    ours = tdn_layer_ms(net, contenders.x, runs)
    theirs, other = ort_layer_ms(contenders, runs, tmp)
    lines = [
        f"{title}: time per layer, median of {runs} passes",
        f"{'layer':>5} {'type':<10}{'filters':>8}  {'size':<12}{'output':>18}{'tdn ms':>9}{'ORT ms':>9}",
    ]
    for row, a, b in zip(summarize(net.spec).rows, ours, theirs):
        h, w, c = row.output
        lines.append(
            f"{row.index:>5} {row.kind:<10}{row.filters:>8}  {row.size:<12}{w:>6} x{h:>4} x{c:>5}{a:9.3f}{b:9.3f}"
        )
    lines.append(f"{'':>5} {'ONNX Runtime nodes of no layer (layout reorders, final flatten)':<56}{'':>9}{other:9.3f}")
    lines.append(f"{'':>5} {'total':<56}{ours.sum():9.3f}{theirs.sum() + other:9.3f}")
    lines.append(
        "(tdn does a [maxpool] in the conv before it, and an [avgpool] before a linear 1x1 conv: the pool\n"
        " shows ~0 ms there; ONNX Runtime fuses each conv with its activation and runs pools apart.\n"
        " ONNX Runtime's figures are its kernels' times under its profiler, without the run's overhead)"
    )
    return "\n".join(lines)


def weights_for(cfg: Path, tmp: Path, real: Path | None = None) -> Path:
    """`real` when it exists, else seeded random weights for `cfg`, written into tmp."""
    if real is not None and real.exists():
        return real
    path = tmp / f"{cfg.stem}.weights"
    engine.write_random_weights(cfg, path, seed=1)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tiny-weights", default=str(SHARED / "weights" / "tiny.weights"))
    parser.add_argument(
        "--per-layer", action="store_true", help="also print each network's time per layer in tdn and in ONNX Runtime"
    )
    parser.add_argument(
        "--ort-spinning", action="store_true", help="let ONNX Runtime's threads spin between passes (its default)"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tdn-bench-ort-"))
    tiny_cfg, ref_cfg = ROOT / "cfg" / "tiny.cfg", ROOT / "cfg" / "darknet.cfg"
    tiny_w, ref_w = weights_for(tiny_cfg, tmp, Path(args.tiny_weights)), weights_for(ref_cfg, tmp)
    models = {}
    for cfg, weights in ((tiny_cfg, tiny_w), (ref_cfg, ref_w)):
        models[cfg] = tmp / f"{cfg.stem}.onnx"
        export_onnx(engine.Network.load(cfg, weights), models[cfg])

    print(
        f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"tdn: {engine.threads()} Numba threads; ONNX Runtime {ort.__version__} "
        f"({ORT_THREADS} intra-op threads, 1 inter-op, ORT_ENABLE_ALL, sequential, "
        f"spinning {'on' if args.ort_spinning else 'off'}); OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads)"
    )
    rows, tables = [], []
    rng = np.random.default_rng(0)
    for label, cfg, weights, batch in [
        ("Tiny Darknet 224x224, batch 1", tiny_cfg, tiny_w, 1),
        ("Darknet Reference 256x256, batch 1", ref_cfg, ref_w, 1),
        ("Tiny Darknet 224x224, batch 16", tiny_cfg, tiny_w, 16),
    ]:
        size = (256, 256) if cfg == ref_cfg else (224, 224)
        x = rng.random((batch,) + size + (3,), dtype=np.float32)
        contenders = Contenders(cfg, weights, models[cfg], x, args.ort_spinning)
        differ = float(np.abs(contenders.tdn() - contenders.onnxruntime()).max())
        ms = interleaved_ms(contenders.passes(), args.runs if batch == 1 else max(10, args.runs // 5))
        tdn_ms, narrow_ms, ort_ms, cv_ms = ms
        pairs = ((tdn_ms, ort_ms), (narrow_ms, ort_ms), (tdn_ms, cv_ms), (tdn_ms, narrow_ms))
        if batch == 1:
            figures = [f"{m:.2f} ms" for m in ms] + [f"{a / b:.2f}x" for a, b in pairs]
            rows.append((label + " latency", *figures, f"{differ:.1e}"))
        else:
            figures = [f"{batch * 1e3 / m:.0f}/s" for m in ms] + [f"{b / a:.2f}x" for a, b in pairs]
            rows.append((label + " images/s", *figures, f"{differ:.1e}"))
        if args.per_layer and batch == 1:
            tables.append(layer_table(label, contenders, args.runs, tmp))
    print(f"numba threading layer: {threading_layer()}; tdn's tiles: {tiles_line(tiles())}")
    print(
        "| figure | tdn | tdn, 8-float tiles | ONNX Runtime | OpenCV DNN | tdn / ORT | 8-float / ORT "
        "| tdn / OpenCV | tdn / 8-float | max abs diff tdn vs ORT |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        "(latency rows: tdn's time over the other's, below 1 is tdn faster; images/s rows: tdn's rate over "
        "the other's, above 1 is tdn faster)"
    )
    for table in tables:
        print()
        print(table)


if __name__ == "__main__":
    main()
