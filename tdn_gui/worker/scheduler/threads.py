"""The thread policy: how many threads the kernels get, and whether stream frames get a second
lane. Decided here and nowhere else.

Loads, jobs and single images use every core. Stream frames (live video) are shared between the
inference thread and a second lane where Numba's threading layer allows two threads to run
parallel kernels at once (TBB, OpenMP: `concurrent_ok`; its fallback layer aborts the process),
each lane with half the cores and buffers of its own (Network.replica). On 2 cores two 1-thread
lanes classify ~30% more frames a second than one 2-thread lane: no barrier at every layer waits
for a thread that the GUI or the camera preempted. Each frame takes longer, which is why single
images keep every core.

The portable kernels get no second lane: their GEMMs use every core already. Numba picks its
threading layer when the first compiled kernel runs (`threading_layer` says "none" until then, and
`concurrent_ok` False), so the scheduler asks again after compiled kernels have run.
"""

from __future__ import annotations

from engine.kernels import KernelStatus
from engine.parallel import concurrent_ok, max_threads, set_threads

LANES = 2  # at most: the inference thread and the stream lane


def use_every_core() -> None:
    """For loads, jobs and single images (Numba's setting is per calling thread)."""
    set_threads(max_threads())


def use_lane_share() -> None:
    """For stream frames while two lanes classify them: each lane gets its share of the cores."""
    set_threads(max_threads() // LANES)


def second_lane_allowed(status: KernelStatus) -> bool:
    """Whether stream frames may run on a second lane with the kernels `status` describes."""
    return status.path == "compiled" and max_threads() >= LANES and concurrent_ok()
