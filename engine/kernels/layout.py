"""The sizes the kernels and the planner agree on: plain constants, read without loading Numba."""

from ..memory import CACHE_LINE_BYTES

PANEL_FILTERS = 16  # filters in a direct_conv weight panel: one register tile's width
FLOAT_BYTES = 4  # a float32
CACHE_LINE_FLOATS = CACHE_LINE_BYTES // FLOAT_BYTES
# output pixels in a direct_conv register tile (in order, across row ends), by the floats in a
# vector: 4 pixels x two 8-float vectors (AVX2's 16 registers) or 8 pixels x one 16-float vector
# (AVX-512's 32; 8 independent sums keep two FMA units of 4 cycles' latency busy)
TILE_PIXELS_FOR = {8: 4, 16: 8}
