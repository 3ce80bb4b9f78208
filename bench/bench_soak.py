"""A long run of the real window: memory, threads and frame counts over half an hour of webcam.

The app's window (offscreen unless DISPLAY is set) plays a 640x480, 60 fps video written here
(panning over darknet's sample photos, looping, as `tdn-gui --camera FILE` does) and classifies it
for --minutes. Every --switch-every minutes it switches model and resize modes with the window's
own methods (Model menu: Tiny Darknet with its real weights, Darknet Reference with seeded random
ones; Resize menu: the images' and the webcam's modes, so the three photos in the image view are
classified again), and once, in a Tiny phase near the middle, it teaches teach-dev's five classes
(copied to a temporary folder) in the Teach view. Every
--sample-every seconds it records RSS and the thread count (/proc/self/status), the webcam view's
counters and the worker's counts().

    python bench/bench_soak.py [--minutes 30] [--switch-every 5] [--csv samples.csv]
    python bench/bench_soak.py --minutes 2 --switch-every 0.5          # a quick check

At the end: RSS first/last/max and its slope (least squares over the samples after the warm-up),
threads at the start and the end, frames shown / classified / dropped, the rates, the switches
and the teach result, then PASS or FAIL against the goals: RSS growth < 5 MB/h and no thread
growth (end thread count <= start thread count, both after the warm-up). The plain slope over a
run that switches models is printed but cannot be the verdict: Darknet Reference's phases stand
~170 MB above Tiny's, so the line through them tilts with where the phases fall. Growth is
measured instead where the same configuration comes round again (see repeat_drift: a run of
more than six phases, e.g. --minutes 14 --switch-every 1), else by the "settled" slope, which
leaves out what loading a model or teaching adds at once (see settled_slope); RSS by phase
shows those steps.

    python bench/bench_soak.py --minutes 14 --switch-every 1 --teach-at 2.3    # two cycles
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

PHOTOS = ("dog", "eagle", "giraffe", "horses", "person")  # darknet/data/*.jpg, one second each
VIDEO_FPS = 60
VIDEO_SIZE = (640, 480)
SLOPE_GOAL_MB_PER_HOUR = 5.0
THREAD_WINDOW_MINUTES = 2.0  # start and end thread counts: this long after the warm-up / before the end
SETTLE_SECONDS = 60  # the settled slope leaves out each stretch's first minute (loading, plans),
# or its first third in a run that switches more often than every 3 minutes


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    threads: int
    frames_shown: int
    results_shown: int
    submitted: int
    processed: int
    dropped: int
    abandoned: int
    camera_fps: float
    inference_fps: float
    latency_ms: float
    phase: int  # which switch phase the schedule was in
    model: str  # what classified: the loaded model's name, or "taught"
    busy: bool  # a job (the teach) was queued or running


def proc_status() -> tuple[float, int]:
    """This process's resident memory (MB) and thread count, as the kernel counts them."""
    rss_kb, threads = 0, 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss_kb / 1024, threads


def thread_names() -> list[str]:
    """Every thread of this process by its kernel name (Qt's, Numba's and TBB's included)."""
    names = []
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            names.append(comm.read_text().strip())
        except OSError:  # a thread that ended meanwhile
            pass
    return sorted(names)


def write_video(path: Path, seconds_per_photo: float = 1.0) -> int:
    """A looping MJPG clip: each photo panned from left to right; returns its frame count."""
    photos = []
    for name in PHOTOS:
        image = cv2.imread(str(SHARED / "darknet" / "data" / f"{name}.jpg"))
        if image is None:
            image = np.random.default_rng(len(photos)).integers(0, 255, (480, 800, 3), np.uint8)
        h, w = image.shape[:2]
        scale = VIDEO_SIZE[1] / h
        width = max(VIDEO_SIZE[0] + 160, round(w * scale))
        photos.append(cv2.resize(image, (width, VIDEO_SIZE[1])))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, VIDEO_SIZE)
    per_photo = round(VIDEO_FPS * seconds_per_photo)
    for photo in photos:
        travel = photo.shape[1] - VIDEO_SIZE[0]
        for i in range(per_photo):
            x = travel * i // max(1, per_photo - 1)
            writer.write(np.ascontiguousarray(photo[:, x : x + VIDEO_SIZE[0]]))
    writer.release()
    return per_photo * len(photos)


def least_squares_slope(t_hours: np.ndarray, values: np.ndarray) -> float:
    """d(values)/dt of the straight line fitted by least squares (NaN with fewer than 3 points)."""
    if len(t_hours) < 3:
        return float("nan")
    return float(np.polyfit(t_hours, values, 1)[0])


def settled_slope(samples: list[Sample], after_seconds: float, settle_seconds: float) -> tuple[float, int]:
    """RSS drift while nothing changes, and the samples it rests on: the run cut into stretches of
    one phase and one classifier (a switch, a model load or a taught head starts a new one), each
    stretch with a level of its own and one slope shared by all, fitted over the samples at least
    `settle_seconds` into their stretch, after `after_seconds`, and not while a job runs. The steps
    that loading a model or teaching make are left out; a leak while running is not."""
    stretches, started, previous = [], 0.0, None
    for s in samples:
        if (s.phase, s.model) != previous:
            previous, started = (s.phase, s.model), s.seconds
        stretches.append(started)
    kept = [
        (s, start)
        for s, start in zip(samples, stretches)
        if s.seconds >= after_seconds and s.seconds - start >= settle_seconds and not s.busy
    ]
    labels = sorted({start for _, start in kept})
    if len(kept) < len(labels) + 2:
        return float("nan"), len(kept)
    t_hours = np.array([s.seconds / 3600 for s, _ in kept])
    columns = [t_hours] + [np.array([start == label for _, start in kept], float) for label in labels]
    coefficients, *_ = np.linalg.lstsq(np.stack(columns, axis=1), np.array([s.rss_mb for s, _ in kept]), rcond=None)
    return float(coefficients[0]), len(kept)


def samples_by_phase(samples: list[Sample]) -> dict[int, list[Sample]]:
    """The samples of each switch phase, in the order taken."""
    by_phase: dict[int, list[Sample]] = {}
    for s in samples:
        by_phase.setdefault(s.phase, []).append(s)
    return by_phase


def repeat_drift(samples: list[Sample], cycle: int, after_seconds: float) -> tuple[float, int]:
    """RSS growth between visits of the same configuration (model, images' mode, webcam's mode):
    each phase's level, the mean of its second half, against the level `cycle` phases earlier,
    in MB per hour between the two. The caches a configuration fills (plans per input shape,
    bounded) come back to the same size on each visit, so only growth is left. Pairs count
    when both phases start after the warm-up and after the teach job ended (a taught result the
    app keeps is one step, not growth). Returns the mean over the pairs and their count."""
    by_phase = samples_by_phase(samples)
    job_end = max((s.seconds for s in samples if s.busy), default=0.0)
    levels = {}
    for phase, rows in by_phase.items():
        if rows[0].seconds >= max(after_seconds, job_end) and len(rows) >= 2:
            half = rows[len(rows) // 2 :]
            levels[phase] = (float(np.mean([s.seconds for s in half])), float(np.mean([s.rss_mb for s in half])))
    rates = [
        (levels[p][1] - levels[p - cycle][1]) / ((levels[p][0] - levels[p - cycle][0]) / 3600)
        for p in levels
        if p - cycle in levels
    ]
    return (float(np.mean(rates)) if rates else float("nan")), len(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="how long to run (default 30)")
    parser.add_argument(
        "--switch-every",
        type=float,
        default=5,
        metavar="MINUTES",
        help="switch model and resize modes this often (default 5)",
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=10,
        metavar="SECONDS",
        help="record RSS, threads and counters this often (default 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2,
        metavar="MINUTES",
        help="samples left out of the slope and of the start thread count (default 2; at most a quarter of the run)",
    )
    parser.add_argument(
        "--teach-at",
        type=float,
        metavar="MINUTES",
        help="when to teach (default: a fifth into the Tiny phase nearest the run's middle)",
    )
    parser.add_argument("--csv", metavar="FILE", help="write the samples as CSV")
    parser.add_argument(
        "--kernels",
        choices=("compiled", "portable"),
        default="compiled",
        help="the compiled kernels (compiled first if this install has not yet) or the portable ones",
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.switch_every <= 0 or args.sample_every <= 0:
        parser.error("--minutes, --switch-every and --sample-every must be positive")
    tiny_weights = SHARED / "weights" / "tiny.weights"
    names = SHARED / "darknet" / "data" / "imagenet.shortnames.list"
    teach_dev = SHARED / "teach-dev"
    for needed in (tiny_weights, names, teach_dev):
        if not needed.exists():
            print(f"bench_soak: {needed} is missing (../shared beside the project)", file=sys.stderr)
            return 2

    if args.kernels == "compiled":
        subprocess.run([sys.executable, "-m", "engine.compile"], cwd=ROOT, check=True)
    os.environ["TDN_KERNELS"] = args.kernels
    if "DISPLAY" not in os.environ:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="tdn-soak-"))
    os.environ["TDN_CACHE_DIR"] = str(tmp / "cache")  # downloads and the teach feature cache
    video = tmp / "soak.avi"
    frames_in_clip = write_video(video)
    project = tmp / "teach-project"  # the Teach view may write into its project
    shutil.copytree(teach_dev, project)

    from PySide6.QtCore import QCoreApplication, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    import engine
    from tdn_gui.app import build_window
    from tdn_gui.settings import ModelChoice

    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp / "settings"))
    reference_weights = tmp / "darknet.weights"
    engine.write_random_weights(ROOT / "cfg" / "darknet.cfg", reference_weights, seed=1)
    models = [
        ("Tiny Darknet", ModelChoice(cfg=str(ROOT / "cfg" / "tiny.cfg"), weights=str(tiny_weights), names=str(names))),
        (
            "Darknet Reference (random weights)",
            ModelChoice(cfg=str(ROOT / "cfg" / "darknet.cfg"), weights=str(reference_weights), names=str(names)),
        ),
    ]
    modes = engine.RESIZE_MODES

    cycle = len(models) * len(modes)  # phases until a configuration comes round again

    def phase_config(phase: int) -> tuple[int, str, str]:
        """(model index, images' mode, webcam's mode): phase 0 is the app's defaults with Tiny;
        models alternate and both modes go round, so six phases see every pairing once."""
        return phase % len(models), modes[phase % len(modes)], modes[(phase + 1) % len(modes)]

    run_seconds = 60 * args.minutes
    switch_seconds = 60 * args.switch_every
    phases = max(1, int(np.ceil(run_seconds / switch_seconds)))
    warmup_seconds = min(60 * args.warmup, run_seconds / 4)
    if args.teach_at is not None:
        teach_seconds = 60 * args.teach_at
    else:
        # a fifth into a Tiny phase (the model settled, most of the phase left for the job), the
        # one nearest the run's middle
        tiny_phases = [p for p in range(phases) if phase_config(p)[0] == 0]
        starts = [(p + 0.2) * switch_seconds for p in tiny_phases]
        teach_seconds = min(starts, key=lambda m: abs(m - run_seconds / 2))

    errors: list[str] = []
    previous_hook = sys.excepthook

    def count_exception(kind, value, tb):  # an exception in a Qt slot lands here: count it
        errors.append(f"{kind.__name__}: {value}")
        previous_hook(kind, value, tb)

    sys.excepthook = count_exception

    _, first_images, first_webcam = phase_config(0)
    app = QApplication.instance() or QApplication([])
    sample_photos = [str(SHARED / "darknet" / "data" / f"{name}.jpg") for name in PHOTOS[:3]]
    window = build_window(
        [
            *sample_photos,
            "--model",
            models[0][1].cfg,
            "--weights",
            models[0][1].weights,
            "--names",
            models[0][1].names,
            "--camera",
            str(video),
            "--resize",
            first_images,
            "--webcam-resize",
            first_webcam,
        ]
    )
    worker, view = window.worker, window.webcam_view
    started = time.monotonic()
    state = {
        "phase": 0,
        "switches": 0,
        "loads": 0,
        "load_seconds": [],
        "model": "loading",
        "teach": None,
        "teach_started": None,
        "deferred": 0,
    }
    samples: list[Sample] = []

    def now() -> float:
        return time.monotonic() - started

    def log(text: str) -> None:
        print(f"[{now() / 60:6.2f} min] {text}", flush=True)

    def on_loaded(info) -> None:
        state["loads"] += 1
        state["load_seconds"].append(info.load_seconds)
        state["model"] = info.name
        log(f"loaded {info.name} in {info.load_seconds:.1f} s")

    def on_failed(message: str) -> None:
        errors.append(f"model failed: {message}")
        log(f"MODEL FAILED: {message}")

    def on_classifier(info) -> None:
        state["model"] = "taught" if info.taught else info.name

    worker.model_loaded.connect(on_loaded)
    worker.model_failed.connect(on_failed)
    worker.classifier_changed.connect(on_classifier)

    def take_sample(last: bool = False) -> None:
        if last and samples and now() - samples[-1].seconds < 1:
            samples.pop()  # the timer's sample of a moment ago: this one replaces it
        rss, threads = proc_status()
        if not state.get("names_start") and now() >= warmup_seconds:
            state["names_start"] = thread_names()
        counts = worker.counts()
        samples.append(
            Sample(
                round(now(), 1),
                round(rss, 1),
                threads,
                view.frames_shown,
                view.results_shown,
                counts.submitted,
                counts.processed,
                counts.dropped,
                counts.abandoned,
                round(view.camera_fps, 1),
                round(view.inference_fps, 1),
                round(view.latency_ms, 1),
                state["phase"],
                state["model"],
                worker.busy,
            )
        )
        s = samples[-1]
        log(
            f"RSS {s.rss_mb:7.1f} MB, {s.threads:3d} threads, shown {s.frames_shown}, results {s.results_shown}, "
            f"processed {s.processed}, dropped {s.dropped}, abandoned {s.abandoned}; camera {s.camera_fps:.1f} fps, "
            f"inference {s.inference_fps:.1f} fps, {s.latency_ms:.0f} ms ({s.model})"
        )

    def switch(deferred: bool = False) -> None:
        if state["phase"] + 1 >= phases or now() > run_seconds - 5:
            switcher.stop()  # no switch in the run's last seconds: its figures would be a load
            return
        if worker.busy:  # a teach job in hand: switch when it is done, as a user would
            state["deferred"] += 1
            switcher.stop()
            QTimer.singleShot(5000, lambda: switch(deferred=True))
            return
        if deferred:
            switcher.start()  # the next phase lasts the full --switch-every
        state["phase"] += 1
        model_index, image_mode, webcam_mode = phase_config(state["phase"])
        title, choice = models[model_index]
        log(f"phase {state['phase']}: {title}, images {image_mode}, webcam {webcam_mode}")
        window.set_resize(image_mode)
        window.set_webcam_resize(webcam_mode)
        window.choose_model(choice)
        state["switches"] += 1

    def on_trained(result) -> None:
        seconds = now() - state["teach_started"]
        evaluation = result.cv if result.cv is not None else result.train
        state["teach"] = (
            f"{100 * evaluation.accuracy:.1f} % "
            f"({'cross-validated' if result.cv is not None else 'on its training rows'}, "
            f"{result.images} images, {len(result.classes)} classes, head {result.head.label}, "
            f"l2 {result.l2:g}) in {seconds:.1f} s"
        )
        log(f"taught: {state['teach']}")

    def on_job_finished(done) -> None:
        if done.cancelled and state.get("names_end") is not None:
            state["teach"] = "still running at the end of the run (cancelled when the window closed)"
        elif done.error or done.cancelled:
            state["teach"] = f"failed: {done.error or 'cancelled'}"
            errors.append(f"job: {state['teach']}")
            log(f"JOB {state['teach']}")

    window.teach_view.training.trained.connect(on_trained)
    worker.job_finished.connect(on_job_finished)

    def teach() -> None:
        if worker.busy or not window.teach_view.classes.open_project(str(project)):
            state["teach"] = f"not started: {window.teach_view.message_text() or 'the worker was busy'}"
            log(state["teach"])
            return
        state["teach_started"] = now()
        log(f"teaching {project} on {state['model']}")
        if not window.teach_view.train():
            state["teach"] = f"not started: {window.teach_view.message_text()}"
            log(state["teach"])

    def finish() -> None:
        """The last sample while everything still runs: leaving the event loop stops the camera."""
        sampler.stop()
        switcher.stop()
        take_sample(last=True)
        state["names_end"] = thread_names()
        app.quit()

    sampler = QTimer()
    sampler.timeout.connect(take_sample)
    sampler.start(int(1000 * args.sample_every))
    switcher = QTimer()
    switcher.timeout.connect(lambda: switch())
    switcher.start(int(1000 * switch_seconds))
    QTimer.singleShot(int(1000 * teach_seconds), teach)
    QTimer.singleShot(int(1000 * run_seconds), finish)
    log(
        f"{args.minutes:g} minutes, switching every {args.switch_every:g}, teaching at {teach_seconds / 60:.2f}, "
        f"warm-up {warmup_seconds / 60:.2f}; video {video} ({frames_in_clip} frames at {VIDEO_FPS} fps)"
    )
    take_sample()
    app.exec()
    names_end = state["names_end"]
    lanes = worker.lanes
    window.close()
    QCoreApplication.processEvents()
    rss_closed, threads_closed = proc_status()
    sys.excepthook = previous_hook

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=list(asdict(samples[0])))
            out.writeheader()
            out.writerows(asdict(s) for s in samples)

    duration = samples[-1].seconds
    steady = [s for s in samples if s.seconds >= warmup_seconds]
    t_hours = np.array([s.seconds / 3600 for s in steady])
    rss = np.array([s.rss_mb for s in steady])
    slope = least_squares_slope(t_hours, rss)
    settle_seconds = min(SETTLE_SECONDS, switch_seconds / 3)
    slope_settled, settled_count = settled_slope(samples, warmup_seconds, settle_seconds)
    drift, drift_pairs = repeat_drift(samples, cycle, warmup_seconds)
    window_seconds = min(60 * THREAD_WINDOW_MINUTES, (duration - warmup_seconds) / 3)
    start_threads = [s.threads for s in steady if s.seconds <= warmup_seconds + window_seconds]
    end_threads = [s.threads for s in steady if s.seconds >= duration - window_seconds]
    first, last = samples[0], samples[-1]
    running = [s for s in samples if s.camera_fps > 0]
    camera_mean = float(np.mean([s.camera_fps for s in running])) if running else 0.0
    inference_mean = float(np.mean([s.inference_fps for s in running])) if running else 0.0

    print()
    print(
        f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {engine.threads()} engine threads, "
        f"{lanes} lane(s), {args.kernels} kernels; {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} MJPG video at {VIDEO_FPS} fps"
    )
    print(f"duration {duration / 60:.1f} min, {len(samples)} samples every {args.sample_every:g} s")
    print(
        f"RSS first {first.rss_mb:.1f} MB, last {last.rss_mb:.1f} MB, max {max(s.rss_mb for s in samples):.1f} MB; "
        f"after warm-up (the first {warmup_seconds / 60:.1f} min left out): min {rss.min():.1f}, "
        f"max {rss.max():.1f} MB"
    )
    print(
        f"RSS slope {slope:+.2f} MB/h (least squares over {len(steady)} samples after the warm-up); "
        f"settled {slope_settled:+.2f} MB/h (one level per stretch of one model and phase, each stretch's "
        f"first {settle_seconds:.0f} s and the teach job left out: {settled_count} samples)"
    )
    print(
        f"RSS at the same configuration one cycle ({cycle} phases) later: {drift:+.2f} MB/h "
        f"(mean of {drift_pairs} pair(s) of phases, both after the warm-up and the teach; "
        f"needs a run of more than {cycle} phases)"
    )
    print(
        f"threads: start (first {window_seconds / 60:.1f} min after warm-up) "
        f"{min(start_threads)}-{max(start_threads)}, "
        f"end (last {window_seconds / 60:.1f} min) {min(end_threads)}-{max(end_threads)}; "
        f"all run {min(s.threads for s in samples)}-{max(s.threads for s in samples)}; "
        f"after closing the window {threads_closed} (RSS {rss_closed:.1f} MB)"
    )
    by_phase = samples_by_phase(samples)
    print(
        "RSS by phase (mean of its samples, what classified last): "
        + ", ".join(f"{p} {rows[-1].model} {np.mean([s.rss_mb for s in rows]):.0f} MB" for p, rows in by_phase.items())
    )
    start_names = state.get("names_start", [])
    if names_end != start_names:
        print(
            f"thread names at the end vs the first sample after warm-up ({len(names_end)} vs {len(start_names)}): "
            + ", ".join(
                f"{name} {names_end.count(name)} vs {start_names.count(name)}"
                for name in sorted(set(names_end) | set(start_names))
                if names_end.count(name) != start_names.count(name)
            )
        )
    print(
        f"frames shown {last.frames_shown}, classified {last.processed} (results shown {last.results_shown}), "
        f"dropped {last.dropped}, abandoned mid-pass {last.abandoned}, submitted {last.submitted}"
    )
    print(
        f"camera {last.frames_shown / duration:.1f} fps, inference {last.processed / duration:.1f} fps "
        f"over the whole run (model loads and teaching included); the view's read-outs averaged: camera "
        f"{camera_mean:.1f} fps, inference {inference_mean:.1f} fps"
    )
    loads = state["load_seconds"]
    print(
        f"switches {state['switches']} (model + image resize + webcam resize each; {state['deferred']} "
        f"deferred 5 s for the teach job), models loaded {state['loads']}"
        + (f", load {min(loads):.1f}-{max(loads):.1f} s" if loads else "")
    )
    print(f"teach: {state['teach'] or 'did not finish'}")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:20]))
    growth, measure = (drift, "one cycle later") if drift_pairs else (slope_settled, "settled")
    slope_ok = growth < SLOPE_GOAL_MB_PER_HOUR
    threads_ok = max(end_threads) <= max(start_threads)
    verdict = "PASS" if slope_ok and threads_ok and not errors else "FAIL"
    print(
        f"{verdict}: RSS growth {growth:+.2f} MB/h ({measure}) {'<' if slope_ok else '>='} "
        f"{SLOPE_GOAL_MB_PER_HOUR:g} MB/h (plain slope {slope:+.2f}, settled {slope_settled:+.2f}); "
        f"threads at the end {max(end_threads)} {'<=' if threads_ok else '>'} {max(start_threads)} at the start"
        + (f"; {len(errors)} error(s)" if errors else "")
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(3)
