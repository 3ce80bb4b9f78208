"""The webcam view's frame rates with a real model: camera FPS, inference FPS and latency.

A 640x480, 30 fps video (written here, panning over a photo) stands in for a camera; the real
window runs (offscreen unless DISPLAY is set) for --seconds, then the view's own read-outs are
printed, with the worst gap between 10 ms GUI timer ticks (event-loop stall).

    python bench/bench_gui_fps.py [--seconds 20] [--fps 30] [--resize letterbox] [--classifier opencv]
                                  [--kernels portable]

--resize is the webcam view's mode (the app's --webcam-resize; letterbox is its default).

--classifier opencv runs the same view with OpenCV's DNN module (its darknet importer, same
files, same preprocessing) in place of the engine: the peer figure for this machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def write_video(path: Path, fps: float, seconds: float) -> None:
    photo = cv2.imread(str(SHARED / "darknet" / "data" / "dog.jpg"))
    if photo is None:
        photo = np.random.default_rng(0).integers(0, 255, (576, 768, 3), np.uint8)
    photo = cv2.resize(photo, (800, 600))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    frames = int(fps * seconds)
    for i in range(frames):
        x = int(160 * (0.5 - 0.5 * np.cos(2 * np.pi * i / frames)))
        writer.write(np.ascontiguousarray(photo[60:540, x : x + 640]))
    writer.release()


def use_opencv(weights: str) -> None:
    """Make the app's worker classify with OpenCV's DNN module (each lane its own cv2 Net)."""
    from engine.classify import Classifier, Prediction
    from tdn_gui.worker.scheduler import models

    class OpenCVClassifier(Classifier):
        def __init__(self, net, names, resize):
            super().__init__(net, names, resize)
            self.cv = cv2.dnn.readNetFromDarknet(str(net.spec.path), weights)

        def classify(self, image, keep_going=None):  # one cv2 call: can only give up before it
            if keep_going is not None and not keep_going():
                return None
            start = time.perf_counter()
            x = self.preprocess(image)
            self.cv.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
            probs = self.cv.forward().reshape(-1)
            return Prediction(probs, self.names, time.perf_counter() - start, x.shape[:2])

    models.engine_classifier = OpenCVClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--resize", default="letterbox", choices=("min", "letterbox", "stretch"))
    parser.add_argument("--weights", default=str(SHARED / "weights" / "tiny.weights"))
    parser.add_argument("--classifier", choices=("tdn", "opencv"), default="tdn")
    parser.add_argument(
        "--kernels",
        choices=("compiled", "portable"),
        default="compiled",
        help="tdn's compiled kernels (compiled first, in their own processes, if this "
        "install has not yet) or its portable ones (a fresh install's first minute)",
    )
    args = parser.parse_args()
    if args.kernels == "compiled":
        subprocess.run([sys.executable, "-m", "engine.compile"], cwd=ROOT, check=True)
    os.environ["TDN_KERNELS"] = args.kernels
    if "DISPLAY" not in os.environ:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="tdn-fps-"))
    os.environ["TDN_CACHE_DIR"] = str(tmp / "cache")
    video = tmp / "pan.avi"
    write_video(video, args.fps, 10)

    from PySide6.QtCore import QCoreApplication, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    import engine
    from tdn_gui.app import build_window

    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp / "settings"))
    weights = args.weights
    if not Path(weights).exists():
        weights = str(tmp / "tiny.weights")
        engine.write_random_weights(ROOT / "cfg" / "tiny.cfg", weights, seed=1)
    app = QApplication.instance() or QApplication([])
    if args.classifier == "opencv":
        use_opencv(weights)
    window = build_window(
        [
            "--model",
            str(ROOT / "cfg" / "tiny.cfg"),
            "--weights",
            weights,
            "--camera",
            str(video),
            "--webcam-resize",
            args.resize,
        ]
    )
    started = time.perf_counter()
    gaps, last = [], [started]
    collections = {0: [], 1: [], 2: []}  # Python's garbage collector: it holds the GIL
    gc_started = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            collections[info["generation"]].append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)

    def tick():
        now = time.perf_counter()
        gaps.append((now, now - last[0]))
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    samples = []

    def sample():
        view = window.webcam_view
        samples.append((view.camera_fps, view.inference_fps, view.latency_ms))

    sampler = QTimer()
    sampler.timeout.connect(sample)
    sampler.start(1000)
    QTimer.singleShot(int(args.seconds * 1000), app.quit)
    app.exec()
    window.close()
    QCoreApplication.processEvents()
    box_w, box_h, _ = window.webcam_view.canvas.pixel_box()
    stalls = [g for t, g in gaps if t > started + args.seconds / 3]  # the samples' window
    steady = samples[len(samples) // 3 :] or samples
    camera, inference, latency = (float(np.median([s[i] for s in steady])) for i in range(3))
    print(
        f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Tiny Darknet, 640x480 video at "
        f"{args.fps:g} fps shown in a {box_w}x{box_h} view, resize {args.resize}, {engine.threads()} threads, "
        f"classifier {args.classifier} ({args.kernels} kernels) on {window.worker.lanes} lane(s)"
    )
    print(
        f"camera {camera:.1f} fps, inference {inference:.1f} fps, latency {latency:.1f} ms, "
        f"worst GUI stall {1e3 * (max(stalls) - 0.010):.0f} ms over {len(stalls)} ticks "
        f"(steady state; model loading included: {1e3 * (max(g for _, g in gaps[20:]) - 0.010):.0f} ms)"
    )
    view = window.webcam_view
    gc.callbacks.remove(on_gc)
    print(
        "garbage collections: "
        + ", ".join(
            f"generation {g} {len(t)}x, {1e3 * sum(t):.0f} ms in all, worst {1e3 * max(t, default=0):.1f} ms"
            for g, t in collections.items()
        )
    )
    worker = window.worker
    counts = worker.counts()
    print(
        f"frames shown {view.frames_shown}, classified {counts.processed} (results shown "
        f"{view.results_shown}: the rest came after a newer frame's), abandoned mid-pass {counts.abandoned}"
    )


if __name__ == "__main__":
    main()
