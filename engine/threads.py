"""How many threads the engine computes with (Numba kernels and the BLAS GEMMs)."""
from __future__ import annotations

import numba


def threads() -> int:
    return numba.get_num_threads()


def threading_layer() -> str:
    """Numba's threading layer in use ('tbb', 'omp' or 'workqueue'); 'none' before any kernel ran."""
    try:
        return numba.threading_layer()
    except ValueError:
        return "none"
