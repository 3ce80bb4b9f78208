"""The first start of a fresh install, as a new user meets it, from an empty Numba cache.

Each run gets a new NUMBA_CACHE_DIR (what a fresh install has) and measures:

- CLI, cold: `tdn classify cfg/tiny.cfg tiny.weights dog.jpg`, from the command's start to its
  printed top-5 (it answers on the portable kernels and starts the background compiler);
- compiled after the CLI: from that command's start until every compiled kernel is in the cache
  (the compiler has the machine to itself once the command has exited);
- CLI, warm: the same command again, start to top-5 (for one image it answers on the portable
  kernels still: loading the compiled ones would cost more, see classify_cmd.PORTABLE_WORK);
- CLI, warm, compiled: the same with TDN_KERNELS=compiled, which loads the compiled kernels;
- answers: the cold (portable) and the compiled runs' top-5 and all 1000 probabilities;
- GUI, cold: the real window (offscreen unless DISPLAY is set) with dog.jpg dropped in, from the
  window's construction (just before it shows) to the first bars; then the same for the first
  frame of a webcam (a video file written here stands in for the camera);
- compiled with the GUI live: from the window shown until every compiled kernel is in the
  cache and the window classifies on them (the compiler keeps to one core while the app runs).

    python bench/bench_cold_start.py [--runs 3] [--no-gui]

Prints each run and the medians. Needs ../shared (tiny.weights, dog.jpg).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CFG = ROOT / "cfg" / "tiny.cfg"
WEIGHTS = SHARED / "weights" / "tiny.weights"
IMAGE = SHARED / "darknet" / "data" / "dog.jpg"
COMPILE_TIMEOUT = 900  # seconds: a compile slower than this is a failure to report


def fresh_env(root: Path) -> dict:
    """A fresh install's view: empty Numba cache, own model cache and settings, auto kernels."""
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(root / "numba"),
        TDN_CACHE_DIR=str(root / "tdn-cache"),
        XDG_CONFIG_HOME=str(root / "config"),
        TDN_KERNELS="auto",
    )
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def stamps_ready(env: dict) -> int:
    """How many kernels have a stamp in this environment's Numba cache."""
    return len(list(Path(env["NUMBA_CACHE_DIR"]).glob("tdn-kernels-*/*.ready")))


def kernel_count() -> int:
    sys.path.insert(0, str(ROOT))
    from engine.kernels import NAMES

    return len(NAMES)


def compiler_running(env: dict) -> bool:
    locks = list(Path(env["NUMBA_CACHE_DIR"]).glob("tdn-kernels-*/compile.lock"))
    if not locks:
        return False
    import fcntl

    with open(locks[0], "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
    return False


def classify(env: dict) -> tuple[float, dict]:
    """`tdn classify` with all 1000 probabilities as JSON: (seconds to the answer, the answer)."""
    command = [
        sys.executable,
        "-m",
        "tdn_cli.main",
        "classify",
        str(CFG),
        str(WEIGHTS),
        str(IMAGE),
        "--json",
        "--top",
        "1000",
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    seconds = time.perf_counter() - start
    _, err = process.communicate()
    if process.returncode != 0 or not line:
        raise SystemExit(f"tdn classify failed: {err.strip()}")
    return seconds, json.loads(line)


def wait_compiled(env: dict, start: float, total: int) -> float:
    while stamps_ready(env) < total:
        if time.perf_counter() - start > COMPILE_TIMEOUT:
            raise SystemExit(f"the kernels did not compile within {COMPILE_TIMEOUT} s")
        time.sleep(0.1)
    return time.perf_counter() - start


def cli_run(total: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tdn-cold-") as tmp:
        env = fresh_env(Path(tmp))
        start = time.perf_counter()
        cold, portable = classify(env)
        compiled_after = wait_compiled(env, start, total)
        while compiler_running(env):  # let the coordinator exit before the warm run
            time.sleep(0.05)
        warm, _ = classify(env)
        warm_compiled, compiled = classify(dict(env, TDN_KERNELS="compiled"))
    p = {d["index"]: d["prob"] for d in portable["top"]}
    c = {d["index"]: d["prob"] for d in compiled["top"]}
    return {
        "cli_cold": cold,
        "compiled_after_cli": compiled_after,
        "cli_warm": warm,
        "cli_warm_compiled": warm_compiled,
        "same_top5": [d["index"] for d in portable["top"][:5]] == [d["index"] for d in compiled["top"][:5]],
        "max_prob_diff": max(abs(p[i] - c[i]) for i in p),
    }


def gui_run(total: int, source: str) -> dict:
    """The window in a process of its own (see gui_driver), fresh cache; its printed timings."""
    with tempfile.TemporaryDirectory(prefix="tdn-cold-gui-") as tmp:
        env = fresh_env(Path(tmp))
        if source == "camera":
            env["BENCH_VIDEO"] = str(Path(tmp) / "clip.avi")
        done = subprocess.run(
            [sys.executable, __file__, "--gui-driver", source, "--kernels", str(total)],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT + 120,
        )
        if done.returncode != 0:
            raise SystemExit(f"GUI driver failed: {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def gui_driver(source: str, total: int) -> None:
    """Runs inside the fresh environment: the real window, timed from the moment it is shown."""
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from tdn_gui.app import build_window

    args = ["--model", str(CFG), "--weights", str(WEIGHTS)]
    if source == "camera":
        sys.path.insert(0, str(ROOT / "bench"))
        from bench_gui_fps import write_video

        write_video(Path(os.environ["BENCH_VIDEO"]), 30, 4)
        args += ["--camera", os.environ["BENCH_VIDEO"]]
    else:
        args.append(str(IMAGE))
    shown = time.perf_counter()  # counted from before the window is built: conservative
    window = build_window(args)  # builds it, shows it, loads the model, adds the image

    def answered() -> bool:
        if source == "camera":
            return window.webcam_view.results_shown > 0
        return any(e.result is not None for e in window.image_view.entries)

    env = dict(os.environ)
    first = compiled = None
    while compiled is None:
        app.processEvents()
        now = time.perf_counter() - shown
        if first is None and answered():
            first = now
        status = window.kernel_label.status
        if first is not None and stamps_ready(env) >= total and status is not None and status.path == "compiled":
            compiled = now
        if now > COMPILE_TIMEOUT:
            raise SystemExit("the kernels did not compile in time")
        time.sleep(0.005)
    label = window.kernel_label.text()
    window.close()
    print(json.dumps({f"gui_first_{source}": first, f"compiled_with_gui_{source}": compiled, "label": label}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-gui", action="store_true", help="only the command-line figures")
    parser.add_argument("--gui-driver", choices=("image", "camera"), help=argparse.SUPPRESS)
    parser.add_argument("--kernels", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gui_driver:
        gui_driver(args.gui_driver, args.kernels)
        return 0
    for needed in (WEIGHTS, IMAGE):
        if not needed.exists():
            raise SystemExit(f"needs {needed} (../shared beside the project)")
    total = kernel_count()
    runs = []
    for i in range(args.runs):
        figures = cli_run(total)
        if not args.no_gui:
            figures.update(gui_run(total, "image"))
            figures.update(gui_run(total, "camera"))
        figures.pop("label", None)
        runs.append(figures)
        print(
            f"run {i + 1}: "
            + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()),
            flush=True,
        )
    print(f"\nmedians of {len(runs)} runs ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores):")
    for key in runs[0]:
        values = [r[key] for r in runs]
        if isinstance(values[0], bool):
            print(f"  {key}: {all(values)}")
        else:
            unit = "" if key == "max_prob_diff" else " s"
            print(f"  {key}: {statistics.median(values):.3g}{unit} (runs: {', '.join(f'{v:.3g}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
