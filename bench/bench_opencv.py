"""tdn's engine against OpenCV's DNN module (its darknet importer) on the same cfg + weights.

Both run alternately in one process, same inputs, medians after warm-up; ratios are ours /
OpenCV's for latency (lower is better) and ours / OpenCV's for images/s (higher is better).
Also: `tdn classify` start-to-first-prediction with a warm JIT cache, and its peak RSS (the
command as a user runs it: for one image it answers on the portable kernels, see classify_cmd).

    python bench/bench_opencv.py [--runs 50] [--tiny-weights PATH]

Tiny Darknet uses the real weights from ../shared/weights/tiny.weights when present; Darknet
Reference gets seeded random weights written by the engine's writer (same work, same files
for both engines).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The compiled kernels are what this compares: compile them first (in their own processes, once
# per install), so that nothing compiles in this one and nothing runs on the portable kernels
subprocess.run([sys.executable, "-m", "engine.compile"], cwd=ROOT, check=True)
os.environ["TDN_KERNELS"] = "compiled"
import engine  # noqa: E402
from engine.parallel import threading_layer  # noqa: E402

SHARED = ROOT.parent / "shared"


def median_ms(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def side_by_side(cfg, weights, batch, runs):
    """(our ms, OpenCV ms) per forward pass of `batch` images, interleaved run by run."""
    net = engine.Network.load(cfg, weights)
    cv = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    w, h = net.input_size
    x = np.random.default_rng(0).random((batch, h, w, 3), dtype=np.float32)
    blob = np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def ours():
        net.predict(x)

    def theirs():
        cv.setInput(blob)
        cv.forward()

    for _ in range(5):
        ours()
        theirs()
    ours_t, theirs_t = [], []
    for _ in range(runs):
        ours_t.append(median_ms(ours, 1))
        theirs_t.append(median_ms(theirs, 1))
    return float(np.median(ours_t)), float(np.median(theirs_t))


# Runs `tdn` and prints the process's peak RSS (VmHWM) on exit. ru_maxrss would not do: a
# child forked from this big process counts the parent's pages until it execs.
_RSS_WRAPPER = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: sys.stderr.write(next(l for l in open('/proc/self/status')"
    " if l.startswith('VmHWM'))))\n"
    "sys.argv = ['tdn'] + sys.argv[1:]\n"
    "runpy.run_module('tdn_cli.main', run_name='__main__')\n"
)


def cli_start(cfg, weights, image):
    """Wall time of a whole `tdn classify` process and its peak RSS (JIT cache warm)."""
    cmd = [sys.executable, "-c", _RSS_WRAPPER, "classify", str(cfg), str(weights), str(image)]
    env = {k: v for k, v in os.environ.items() if k != "TDN_KERNELS"}  # as a user runs it
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)  # warm the cache
    walls, peaks = [], []
    for _ in range(5):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - start)
        peaks.append(int(done.stderr.split()[-2]) / 1024)  # "VmHWM:  123456 kB"
    return float(np.median(walls)), float(max(peaks))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tiny-weights", default=str(SHARED / "weights" / "tiny.weights"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tdn-bench-"))
    tiny_cfg, ref_cfg = ROOT / "cfg" / "tiny.cfg", ROOT / "cfg" / "darknet.cfg"
    tiny_w = Path(args.tiny_weights)
    if not tiny_w.exists():
        tiny_w = tmp / "tiny.weights"
        engine.write_random_weights(tiny_cfg, tiny_w, seed=1)
    ref_w = tmp / "darknet.weights"
    engine.write_random_weights(ref_cfg, ref_w, seed=1)

    print(
        f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), "
        f"tdn: {engine.threads()} Numba threads"
    )
    rows = []
    for label, cfg, weights, batch in [
        ("Tiny Darknet 224x224, batch 1", tiny_cfg, tiny_w, 1),
        ("Darknet Reference 256x256, batch 1", ref_cfg, ref_w, 1),
        ("Tiny Darknet 224x224, batch 16", tiny_cfg, tiny_w, 16),
    ]:
        ours, theirs = side_by_side(cfg, weights, batch, args.runs if batch == 1 else max(10, args.runs // 5))
        if batch == 1:
            rows.append((label + " latency", f"{ours / theirs:.2f}x", f"{ours:.2f} ms", f"{theirs:.2f} ms"))
        else:
            rows.append(
                (
                    label + " images/s",
                    f"{theirs / ours:.2f}x",
                    f"{batch * 1e3 / ours:.0f}/s",
                    f"{batch * 1e3 / theirs:.0f}/s",
                )
            )
    image = SHARED / "darknet" / "data" / "dog.jpg"
    if not image.exists():
        image = tmp / "dog.png"
        cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8))
    wall, rss = cli_start(tiny_cfg, tiny_w, image)
    rows.append(("`tdn classify` start to first prediction (warm cache)", "", f"{wall:.2f} s", ""))
    rows.append(("`tdn classify` peak RSS", "", f"{rss:.0f} MB", ""))
    print(f"numba threading layer: {threading_layer()}")
    print("| figure | ratio | tdn | OpenCV DNN |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
