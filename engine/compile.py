"""Compile the engine's fast kernels into Numba's on-disk cache, in processes of their own.

    python -m engine.compile                 # now, on every core, with a progress bar (`tdn compile`)
    python -m engine.compile --background    # what the engine starts by itself on a fresh install
    python -m engine.compile --job NAME,...  # one job: compile these kernels in this process

The coordinator takes compile.lock (a second one waits, or in the background just leaves),
then runs the jobs below as child processes, the longest first. Each job binds its kernels'
compiled versions (the rest stay portable) and runs small specimen networks through the
engine's real forward steps, so Numba compiles exactly the argument types the steps pass;
then it writes each kernel's stamp (cache.py). The engine starts the coordinator at a low
priority, which its jobs inherit; in the background, while an app or CLI is classifying (live.lock) it keeps to one job at a
time, pausing any other (SIGSTOP) until the app is gone. A killed job or coordinator leaves
the kernels it finished in the cache; the next launch starts a coordinator that compiles
the rest.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

# Jobs, each a list of kernels compiled in one process, and the CPU seconds each took on this
# project's machine (2-core Zen 3, Numba 0.68, 2026-11-30): for the order (longest first,
# so that two cores finish together) and for the progress bar.
JOBS = (
    (("conv_forward",), 17.0),
    (("winograd_conv",), 15.0),
    (("winograd_conv_by_filters",), 15.0),
    (("conv_forward_by_filters",), 12.0),
    (("resize_bilinear", "maxpool", "global_avgpool", "softmax", "bias_activate", "shortcut_add"), 6.0),
)
POLL = 0.2                  # seconds between looks at the jobs and at live.lock

# Specimen networks: together they reach every kernel (a job checks that it did). Their
# sizes choose the conv strategies (see layers/convolutional.py): a 3x3 conv over RGB
# (im2col), 64 tiles of 32 filters (Winograd by blocks of tiles), 16 tiles of 64 filters
# (Winograd by chunks of filters), 64 pixels of 256 filters (filters split across threads).
SPECIMENS = {
    "specimen-conv.cfg": """
[net]
width=32
height=32
channels=3
[convolutional]
filters=16
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky
[convolutional]
filters=32
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=64
size=3
stride=1
pad=1
activation=leaky
[route]
layers=-1,-2
[maxpool]
size=3
stride=2
[convolutional]
filters=256
size=1
stride=1
pad=0
activation=leaky
[convolutional]
filters=96
size=1
stride=1
pad=0
activation=linear
[shortcut]
from=-3
activation=leaky
[convolutional]
filters=10
size=1
stride=1
pad=0
activation=linear
[avgpool]
[softmax]
""",
    "specimen-connected.cfg": """
[net]
width=8
height=8
channels=3
[convolutional]
filters=4
size=3
stride=2
pad=1
activation=relu
[connected]
output=10
activation=leaky
[softmax]
""",
}


class CompileError(Exception):
    """A job that did not compile its kernels."""


def run_job(names: list[str]) -> dict[str, list]:
    """Compile `names` in this process by running the specimens with those kernels compiled
    (the others portable); write their stamps; return {name: signatures}."""
    import numpy as np

    from . import kernels
    from .image import fit_input
    from .kernels import cache
    from .network import Network
    from .spec import parse_network
    from .weights import random_params

    unknown = [n for n in names if n not in kernels.COMPILED]
    if unknown:
        raise CompileError(f"unknown kernels: {', '.join(unknown)} (known: {', '.join(kernels.NAMES)})")
    kernels.use("portable")
    kernels.bind(names, compiled_names=names)
    rng = np.random.default_rng(0)
    for path, text in SPECIMENS.items():
        spec = parse_network(path, text)
        net = Network(spec, random_params(spec))
        h, w = spec.height, spec.width
        net.predict(rng.random((2, h, w, 3), dtype=np.float32))
        net.predict(rng.random((h, w, 3), dtype=np.float32))
    photo = rng.random((37, 53, 3), dtype=np.float32)
    for mode in ("min", "letterbox", "stretch"):
        fit_input(photo, mode, 32, 32, free_size=True)
    key = cache.fingerprint()
    found = {}
    for name in names:
        signatures = list(kernels.COMPILED[name].signatures)
        if not signatures:
            raise CompileError(f"the specimens never called kernel {name}")
        found[name] = signatures
    for name, signatures in found.items():
        cache.write_stamp(name, signatures, key)
    return found


def pending_jobs() -> list[tuple[tuple[str, ...], float]]:
    from .kernels import NAMES, cache

    ready = cache.read_stamps(NAMES)
    return [(names, seconds) for names, seconds in JOBS if any(n not in ready for n in names)]


def _someone_live() -> bool:
    from .kernels import cache

    return cache.is_locked(cache.LIVE_LOCK)


def _start(names) -> subprocess.Popen:
    """A job process; it inherits this process's priority (low in the background)."""
    command = [sys.executable, "-m", "engine.compile", "--job", ",".join(names)]
    env = dict(os.environ, NUMBA_NUM_THREADS="1")      # a job runs its specimens on one core
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)


def coordinate(background: bool, jobs: int | None = None, progress=None) -> int:
    """Run every pending job (see the module docstring); returns an exit status.
    progress(seconds_done, seconds_total) is called as jobs finish."""
    from .kernels import cache

    lock = cache.try_lock(cache.COMPILE_LOCK)
    if lock is None:
        if background:
            return 0                         # another process is compiling
        while lock is None:                  # wait for it, showing its progress
            _report(progress)
            time.sleep(POLL)
            lock = cache.try_lock(cache.COMPILE_LOCK)
    with lock:
        todo = pending_jobs()
        total = sum(seconds for _, seconds in JOBS)
        done = total - sum(seconds for _, seconds in todo)
        if progress:
            progress(done, total)
        running: list[tuple[subprocess.Popen, tuple[str, ...], float]] = []
        paused: set[int] = set()
        failed = []
        try:
            while todo or running:
                allowed = jobs or os.cpu_count() or 1
                if background and _someone_live():
                    allowed = 1
                for i, (process, _, _) in enumerate(running):    # pause all but `allowed` of them
                    should_pause = i >= allowed
                    if should_pause != (process.pid in paused):
                        process.send_signal(signal.SIGSTOP if should_pause else signal.SIGCONT)
                        (paused.add if should_pause else paused.discard)(process.pid)
                while todo and len(running) < allowed:
                    names, seconds = todo.pop(0)
                    running.append((_start(names), names, seconds))
                time.sleep(POLL)
                for entry in list(running):
                    process, names, seconds = entry
                    if process.poll() is None:
                        continue
                    running.remove(entry)
                    if process.returncode != 0:
                        failed.append(names)
                    done += seconds
                    if progress:
                        progress(done, total)
        finally:
            for process, _, _ in running:        # interrupted: leave no job behind
                process.send_signal(signal.SIGCONT)
                process.terminate()
    if failed:
        print("engine.compile: failed to compile " + "; ".join(", ".join(n) for n in failed), file=sys.stderr)
        return 1
    return 0


def _report(progress) -> None:
    if progress is None:
        return
    from .kernels import NAMES, cache

    ready = cache.read_stamps(NAMES)
    total = sum(seconds for _, seconds in JOBS)
    done = sum(seconds for names, seconds in JOBS if all(n in ready for n in names))
    progress(done, total)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.compile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--background", action="store_true", help="one core while an app runs (the engine "
                        "starts it so, at a low priority)")
    parser.add_argument("--jobs", type=int, help="processes at once (default: one per core)")
    parser.add_argument("--job", metavar="NAMES", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        try:
            run_job(args.job.split(","))
        except CompileError as exc:
            print(f"engine.compile: {exc}", file=sys.stderr)
            return 1
        return 0
    return coordinate(args.background, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
