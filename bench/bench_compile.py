"""What compiling the kernels costs, from an empty Numba cache.

- per kernel: the CPU seconds each takes in one worker process, in the order a worker compiles
  them (the first also pays for Numba's own start, as a real worker does);
- the whole set: `python -m engine.compile` wall time with one worker and with one per core.

    python bench/bench_compile.py [--runs 1]

Each measurement gets a new NUMBA_CACHE_DIR. engine/kernels/compile_costs.py's KERNEL_SECONDS should follow
the per-kernel figures (they order the work and weigh the progress bar).
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

PER_KERNEL = """
import json, sys, time
from engine import compile as engine_compile, kernels
kernels.use("portable")
seconds = {}
for name in engine_compile.KERNEL_SECONDS:
    start = time.process_time()
    engine_compile.compile_one(name)
    seconds[name] = time.process_time() - start
print(json.dumps(seconds))
"""


def per_kernel() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tdn-compile-") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp, NUMBA_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, "-c", PER_KERNEL], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout.splitlines()[-1])


def whole(jobs: int) -> float:
    with tempfile.TemporaryDirectory(prefix="tdn-compile-") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "engine.compile", "--jobs", str(jobs)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    kernels = [per_kernel() for _ in range(args.runs)]
    print(
        f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, CPU seconds per kernel "
        f"(median of {args.runs}), in compile order:"
    )
    total = 0.0
    for name in kernels[0]:
        seconds = statistics.median(k[name] for k in kernels)
        total += seconds
        print(f"  {name:26s} {seconds:6.1f} s")
    print(f"  {'all':26s} {total:6.1f} s")
    cores = os.cpu_count() or 1
    for jobs in sorted({1, cores}):
        walls = [whole(jobs) for _ in range(args.runs)]
        print(
            f"python -m engine.compile --jobs {jobs}: {statistics.median(walls):.1f} s wall "
            f"(runs: {', '.join(f'{w:.1f}' for w in walls)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
