"""This machine's float32 FMA throughput, as a Numba kernel reaches it: the ceiling against which
`tdn bench` states each layer's GFLOP/s.

A loop of independent fused multiply-adds on vectors (vectors.py) held in registers, enough of
them to cover the FMA latency on every CPU we know (ACCUMULATORS), no memory traffic inside the
loop. One figure per vector width the CPU has: 8 floats (AVX2), and 16 (AVX-512) where LLVM
reports avx512f. Per core (one thread) and all threads at once (one loop per thread, started
together: the kernel lets go of the GIL).

The loops are compiled on first use (about a second each), not cached: only `tdn bench` runs them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

ACCUMULATORS = 12  # independent sums: FMA latency (4-5 cycles) x 2 pipes, and room to spare
SECONDS = 0.15  # each timing's length


@dataclass(frozen=True)
class Peak:
    lanes: int  # floats a vector
    per_core: float  # GFLOP/s on one thread
    all_threads: float  # GFLOP/s on `threads` threads at once
    threads: int


def widths() -> tuple[int, ...]:
    """The vector widths this CPU runs: 8 always (x86-64 with AVX2, or what LLVM makes of 8-float
    vectors elsewhere), 16 where LLVM reports avx512f."""
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    return (8, 16) if features.get("avx512f") else (8,)


def _loop_source(lanes: int) -> str:
    """fma_loop(buffer, n): ACCUMULATORS sums of `lanes` floats, each s = s*m + m, n times;
    the sums are stored back so that nothing is optimised away."""
    lines = ["def fma_loop(buffer, n):", "    m = vload(buffer, np.uint64(0))"]
    lines += [f"    s{i} = vload(buffer, np.uint64({i * lanes}))" for i in range(ACCUMULATORS)]
    lines.append("    for _ in range(n):")
    lines += [f"        s{i} = vfma(s{i}, m, m)" for i in range(ACCUMULATORS)]
    lines += [f"    vstore(buffer, np.uint64({i * lanes}), s{i})" for i in range(ACCUMULATORS)]
    return "\n".join(lines)


_loops: dict = {}


def fma_loop(lanes: int):
    """The compiled loop for `lanes`-float vectors (made once)."""
    if lanes not in _loops:
        from numba import njit

        from .vectors import ops

        namespace = {"np": np, **ops(lanes)}
        exec(compile(_loop_source(lanes), f"<fma loop {lanes}>", "exec"), namespace)
        _loops[lanes] = njit(nogil=True)(namespace["fma_loop"])
    return _loops[lanes]


def flops(lanes: int, n: int) -> int:
    return 2 * ACCUMULATORS * lanes * n


def _rate(loop, lanes: int, threads: int) -> float:
    """GFLOP/s of `threads` loops at once, timed over about SECONDS."""
    buffers = [np.full(ACCUMULATORS * lanes, 1e-3, np.float32) for _ in range(threads)]
    n = 1 << 16
    while True:
        start = time.perf_counter()
        _run_together(loop, buffers, n)
        spent = time.perf_counter() - start
        if spent >= SECONDS:
            return threads * flops(lanes, n) / spent / 1e9
        n = max(2 * n, int(1.2 * n * SECONDS / max(spent, 1e-6)))


def _run_together(loop, buffers, n) -> None:
    if len(buffers) == 1:
        loop(buffers[0], n)
        return
    workers = [threading.Thread(target=loop, args=(b, n)) for b in buffers]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def measure(threads: int) -> list[Peak]:
    """The FMA throughput of each vector width, per core and on `threads` threads."""
    found = []
    for lanes in widths():
        loop = fma_loop(lanes)
        loop(np.zeros(ACCUMULATORS * lanes, np.float32), 1)  # compiled before the clock starts
        found.append(Peak(lanes, _rate(loop, lanes, 1), _rate(loop, lanes, threads), threads))
    return found


def best(peaks: list[Peak]) -> Peak:
    return max(peaks, key=lambda p: p.all_threads)
