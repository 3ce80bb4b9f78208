"""How direct_conv's register tiles store their sums: the kernel's modes, which the planner
chooses among (engine/plan.py: direct_store). Plain constants, so the planner reads them without
loading Numba."""

STORE_RAW = 0  # as they are, into per-thread scratch; compiled._epilogue finishes them
STORE_FINISHED = 1  # + bias and activation, straight into the output
STORE_POOLED_PAIRS = 2  # the same after a 2x2/2 max pool over two rows of tiles
STORE_POOLED_SECOND = 3  # (within the kernel) the second row of a pooled pair
