"""Compile the engine's fast kernels into Numba's on-disk cache, in processes of their own.

    python -m engine.compile                 # now, on every core, with a progress bar (`tdn compile`)
    python -m engine.compile --background    # what the engine starts by itself on a fresh install
    python -m engine.compile --job NAME,...  # a worker: compile these kernels, in this order

The coordinator takes compile.lock (a second one waits, or in the background just leaves),
then shares the kernels still to compile between worker processes, one per core, and last
times the direct convolution's tile widths (engine/tile_tuning.py) unless this machine's record
of them is fresh. A worker compiles its kernels one at a time, most used first: it binds the
kernel's compiled version (the rest stay portable) and runs small specimen networks through
the engine's real forward steps, so Numba compiles exactly the argument types the steps pass;
then it writes the kernel's stamp (cache.py), and a running app switches to that kernel. The
engine starts the coordinator at a low priority, which its workers inherit; in the background,
while an app or CLI holds live.lock and keeps the machine busy, only one worker runs and any
other is paused (SIGSTOP) until the app is idle or gone. A killed worker or coordinator leaves
the kernels it finished in the cache; the app, or the next launch, starts a coordinator for the
rest.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from .kernels.compile_costs import KERNEL_SECONDS, progress_done

POLL = 0.2  # seconds between looks at the workers and at live.lock
METER_SECONDS = 1.0  # the window over which the machine's load is measured
# An app that holds live.lock but uses less CPU than this (in cores: an open window with
# nothing to classify) leaves a core idle, which a second worker may use. The portable
# kernels on a webcam use well over one.
IDLE_BELOW = 0.5

# Specimen networks: together they reach every kernel (a worker checks that they did; so does
# tests/test_kernel_sets.py). Their sizes choose the conv strategies (engine/plan.py), at batch
# 1 and 2: direct convolution for most (the RGB layer, a fused 2x2 pool), 64 and 256 channels on
# 32x32 at batch 2 (Winograd by blocks of 128 tiles), 256 channels on 32x32 at batch 1 (Winograd
# by chunks of filters, 64 tiles), two groups (im2col).
SPECIMENS = {
    "specimen-conv.cfg": """
[net]
width=64
height=64
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
[convolutional]
filters=64
size=3
stride=1
pad=1
activation=leaky
[convolutional]
filters=256
size=1
stride=1
pad=0
activation=leaky
[convolutional]
filters=64
size=3
stride=1
pad=1
activation=leaky
[route]
layers=-1,-5
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
filters=16
size=3
stride=1
pad=1
groups=2
activation=logistic
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
    """A worker that could not compile its kernels."""


def run_worker(names: list[str]) -> None:
    """Compile `names` in this process, in this order, writing each one's stamp as soon as it
    is in Numba's cache."""
    from . import kernels
    from .kernels import cache

    unknown = [n for n in names if n not in kernels.NAMES]
    if unknown:
        raise CompileError(f"unknown kernels: {', '.join(unknown)} (known: {', '.join(kernels.NAMES)})")
    kernels.use("portable")
    key = cache.fingerprint()
    for name in names:
        compile_one(name)
        dispatcher = kernels.compiled_kernels()[name]
        if not dispatcher.signatures:
            raise CompileError(f"the specimens never called kernel {name}")
        cache.write_stamp(name, dispatcher.signatures, key, _index_files(dispatcher))


def compile_one(name: str) -> None:
    """Bind kernel `name` to its compiled version (the others stay as they are) and run the
    specimens through it, which compiles it. The direct convolution is one kernel per vector
    width: the specimens reach each with its width forced."""
    from . import kernels
    from .kernels import tuning

    kernels.bind((name,), compiled_names=(name,))
    with tuning.forced(tuning.WIDTH_OF_KERNEL.get(name, tuning.DEFAULT_LANES)):
        run_specimens()


def _index_files(dispatcher) -> list[str]:
    """The index file Numba keeps for a kernel in its cache (a stamp whose index is gone is
    stale); none when this Numba keeps it elsewhere."""
    index = getattr(getattr(getattr(dispatcher, "_cache", None), "_cache_file", None), "_index_path", None)
    return [index] if index and os.path.exists(index) else []


def _die_with_parent_hook():
    """Linux: a function for Popen's preexec_fn that makes the worker end when its coordinator
    ends, even by SIGKILL, so that a compiler started again later never finds orphans compiling
    the same kernels. SIGKILL, because a worker the coordinator had paused (SIGSTOP) would hold
    any other signal pending, stopped for ever. It runs between fork and exec (the setting
    survives exec): set inside the worker, a worker paused before its Python had started would
    have none, and outlive a killed coordinator stopped.
    The coordinator has no threads, which preexec_fn needs. None where prctl does not exist."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the child
    except (OSError, AttributeError):
        return None
    coordinator = os.getpid()

    def hook():
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != coordinator:  # it died before prctl took hold
            os._exit(1)

    return hook


def run_specimens() -> None:
    """Every specimen network, batch 1 and then 2 (the other order would run the one image on the
    batch's plan: PlanCache), and an image through each resize mode."""
    import numpy as np

    from .image import fit_input
    from .network import Network
    from .spec import parse_network
    from .weights import random_params

    rng = np.random.default_rng(0)
    for path, text in SPECIMENS.items():
        spec = parse_network(path, text)
        net = Network(spec, random_params(spec))
        h, w = spec.height, spec.width
        net.predict(rng.random((h, w, 3), dtype=np.float32))
        net.predict(rng.random((2, h, w, 3), dtype=np.float32))
    photo = rng.random((37, 53, 3), dtype=np.float32)
    for mode in ("min", "letterbox", "stretch"):
        fit_input(photo, mode, 32, 32, free_size=True)


def pending() -> list[str]:
    """The kernels without a fresh stamp, in compile order."""
    from .kernels import cache

    ready = cache.read_stamps(KERNEL_SECONDS)
    return [name for name in KERNEL_SECONDS if name not in ready]


def share(names: list[str], workers: int) -> list[list[str]]:
    """Kernels dealt to workers by compile time (each to the least loaded), order kept."""
    lists: list[list[str]] = [[] for _ in range(min(max(workers, 1), len(names)))]
    loads = [0.0] * len(lists)
    for name in names:
        i = loads.index(min(loads))
        lists[i].append(name)
        loads[i] += KERNEL_SECONDS[name]
    return lists


def _someone_live() -> bool:
    from .kernels import cache

    return cache.is_locked(cache.LIVE_LOCK)


class CpuMeter:
    """How many cores' worth of CPU the processes other than our workers used lately, from
    Linux's /proc (None elsewhere, or before two looks a second apart)."""

    def __init__(self):
        self._last = None
        self.others: float | None = None

    def look(self, workers) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < METER_SECONDS:
            return
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
            busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
            ours = 0
            for worker in workers:
                try:
                    with open(f"/proc/{worker.pid}/stat") as f:
                        stat = f.read().rsplit(")", 1)[1].split()
                    ours += int(stat[11]) + int(stat[12])  # utime + stime
                except (OSError, IndexError, ValueError):
                    pass  # a worker that just ended
        except (OSError, IndexError, ValueError):
            return
        if self._last is not None:
            then, busy_then, ours_then = self._last
            ticks = os.sysconf("SC_CLK_TCK") * (now - then)
            self.others = max(0.0, (busy - busy_then) - (ours - ours_then)) / ticks
        self._last = (now, busy, ours)


def _start(names) -> subprocess.Popen:
    """A worker process; it inherits this process's priority (low in the background)."""
    command = [sys.executable, "-m", "engine.compile", "--job", ",".join(names)]
    env = dict(os.environ, NUMBA_NUM_THREADS="1")  # its specimens run on one core
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent_hook())


def coordinate(background: bool, jobs: int | None = None, progress=None) -> int:
    """Compile every pending kernel (see the module docstring); returns an exit status.
    progress(done) is called with the share of the work done (0..1) as kernels arrive."""
    from .kernels import cache

    folder = cache.stamp_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if not os.access(folder, os.W_OK):
        print(f"engine.compile: cannot write the kernel cache at {folder}", file=sys.stderr)
        return 1
    lock = cache.try_lock(cache.COMPILE_LOCK)
    while lock is None:
        if background:
            return 0  # another process is compiling
        _report(progress)  # wait for it, showing its progress
        time.sleep(POLL)
        lock = cache.try_lock(cache.COMPILE_LOCK)
    with lock:
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n".encode())  # who holds it, for people and tests
        lock.flush()
        todo = pending()
        workers = [_start(names) for names in share(todo, jobs or os.cpu_count() or 1)]
        paused: set[int] = set()
        meter = CpuMeter()
        try:
            while any(w.poll() is None for w in workers):
                _report(progress)
                running = [w for w in workers if w.poll() is None]
                meter.look(running)
                allowed = len(running)
                if background and _someone_live() and (meter.others is None or meter.others > IDLE_BELOW):
                    allowed = 1  # an app is classifying: keep to one core
                for i, worker in enumerate(running):  # pause all but `allowed` of them
                    should_pause = i >= allowed
                    if should_pause != (worker.pid in paused):
                        worker.send_signal(signal.SIGSTOP if should_pause else signal.SIGCONT)
                        (paused.add if should_pause else paused.discard)(worker.pid)
                time.sleep(POLL)
        finally:
            for worker in workers:  # interrupted: leave none behind
                if worker.poll() is None:
                    worker.send_signal(signal.SIGCONT)
                    worker.terminate()
                    worker.wait()
        _report(progress)
        left = pending()
        if not left:
            tune_tiles()
    if left:
        print(f"engine.compile: did not compile {', '.join(left)}", file=sys.stderr)
        return 1
    return 0


def tune_tiles() -> None:
    """Time the direct convolution's tile widths on this machine (engine/tile_tuning.py), in a
    process of its own with every kernel thread, unless a fresh record is there. A tuner that
    fails leaves the plans on their default width: compiling still succeeded."""
    from .kernels import tuning

    if tuning.read_record() is None:
        subprocess.run([sys.executable, "-m", "engine.tile_tuning"], stdin=subprocess.DEVNULL, check=False)


def _report(progress) -> None:
    if progress is not None:
        from .kernels import cache

        progress(progress_done(cache.read_stamps(KERNEL_SECONDS)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.compile", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--background",
        action="store_true",
        help="one core while an app runs (the engine starts it so, at a low priority)",
    )
    parser.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--job", metavar="NAMES", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job is not None:
        if not args.job:
            parser.error("--job needs kernel names")
        try:
            run_worker(args.job.split(","))
        except CompileError as exc:
            print(f"engine.compile: {exc}", file=sys.stderr)
            return 1
        return 0
    return coordinate(args.background, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
