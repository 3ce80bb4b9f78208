"""The sizes the kernels and the planner agree on: plain constants, read without loading Numba."""

from ..memory import CACHE_LINE_BYTES

PANEL_FILTERS = 16  # filters in a direct_conv weight panel: one register tile's width
FLOAT_BYTES = 4  # a float32
CACHE_LINE_FLOATS = CACHE_LINE_BYTES // FLOAT_BYTES
