"""How many threads the engine computes with, on which pool, and keeping BLAS out of their way.

Threading layer: TBB when it loads. With OpenMP, every parallel kernel ends at a barrier
that waits for every thread, so one thread preempted by another process (a browser, the
GUI thread) stalls each layer by a scheduler tick: on 2 busy cores Tiny Darknet went from
~9 ms to 136 ms. TBB's master thread finishes work its helpers never picked up (measured
under the same load: 56 ms, level with OpenCV). pip's `tbb` wheel puts libtbb.so.12 where
Numba's loader does not look, so we load it by path first.

Every kernel runs on Numba's thread pool; the GEMMs inside them call BLAS (SciPy's, which
is what np.dot inside @njit uses) from those threads. So that BLAS must run single-threaded:
otherwise its own threads and Numba's fight over the cores (measured: ~8 ms lost per layer
on 2 cores). numpy's BLAS (a library of its own) serves the portable kernels and [connected]
layers; it keeps its threads, except while a compile runs beside it (share_numpy_blas).

Numba itself is imported at its first use: the portable kernels never need it.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import sys

_blas_limited = False
_numpy_blas_threads: int | None = None  # numpy's own BLAS threads before we changed them


def _numba():
    """Numba, imported at its first use: the portable kernels never need it, and importing it
    is ~0.3-0.5 s of a start-up (measured with -X importtime)."""
    import numba

    return numba


def preload_tbb() -> bool:
    """Load pip's libtbb.so.12 globally so Numba's TBB threading layer can start."""
    try:
        files = importlib.metadata.files("tbb") or []
    except importlib.metadata.PackageNotFoundError:
        return False
    for f in files:
        if f.name == "libtbb.so.12":
            try:
                ctypes.CDLL(str(f.locate()), mode=ctypes.RTLD_GLOBAL)
                return True
            except OSError:
                return False
    return False


def threads() -> int:
    """Threads for the calling thread's kernels (before Numba is loaded: its default)."""
    return _numba().get_num_threads() if "numba" in sys.modules else max_threads()


def set_threads(n: int) -> None:
    """Threads for the kernels that the calling thread runs (Numba's setting is per thread).
    Before Numba is loaded there is nothing to set: only compiled kernels use its threads."""
    if "numba" in sys.modules:
        _numba().set_num_threads(max(1, min(n, max_threads())))


def max_threads() -> int:
    """The size of Numba's pool: what set_threads can go back up to (NUMBA_NUM_THREADS, else
    the cores this process may run on, as Numba reckons it)."""
    if "numba" in sys.modules:
        return _numba().config.NUMBA_NUM_THREADS
    try:
        return int(os.environ["NUMBA_NUM_THREADS"])
    except (KeyError, ValueError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def concurrent_ok() -> bool:
    """Whether two threads may run parallel kernels at the same time: TBB and OpenMP allow it;
    Numba's fallback 'workqueue' layer aborts the process."""
    return threading_layer() in ("tbb", "omp")


def threading_layer() -> str:
    """Numba's threading layer in use ('tbb', 'omp' or 'workqueue'); 'none' before any kernel ran."""
    if "numba" not in sys.modules:
        return "none"
    try:
        return _numba().threading_layer()
    except ValueError:
        return "none"


def limit_kernel_blas() -> None:
    """Make the BLAS that Numba's np.dot calls single-threaded (once per process)."""
    global _blas_limited
    if _blas_limited:
        return
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library np.dot in @njit binds to)
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    scipy_libs = [lib for lib in controller.lib_controllers if lib.user_api == "blas" and "numpy" not in lib.filepath]
    # If SciPy shares numpy's BLAS (a distribution build), limit that one: correctness of
    # the timing matters more than numpy's own BLAS threads elsewhere in the process.
    for lib in scipy_libs or [lib for lib in controller.lib_controllers if lib.user_api == "blas"]:
        lib.set_num_threads(1)
    _blas_limited = True


def share_numpy_blas(busy: bool) -> None:
    """While another process compiles on this machine (busy), numpy's own BLAS, which the
    portable kernels' GEMMs use, runs on one thread; afterwards it gets its threads back.
    Its threads wait for each other at the end of every GEMM, and on 2 cores one of them is
    always behind the compiler: Tiny Darknet on dog.jpg took 0.2-3.5 s with 2 threads there,
    73 ms with one (unloaded: 26 ms with 2 threads, 35 with one)."""
    global _numpy_blas_threads
    if busy == (_numpy_blas_threads is not None):
        return
    from threadpoolctl import ThreadpoolController

    numpy_libs = [
        lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas" and "numpy" in lib.filepath
    ]
    if busy:
        _numpy_blas_threads = max((lib.num_threads for lib in numpy_libs), default=1)
        for lib in numpy_libs:
            lib.set_num_threads(1)
    else:
        for lib in numpy_libs:
            lib.set_num_threads(_numpy_blas_threads)
        _numpy_blas_threads = None
