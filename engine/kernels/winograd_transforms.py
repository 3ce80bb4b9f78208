"""Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions: 36 multiplies per 4x4 output tile
and channel pair instead of 144, so the 3x3 layers that carry ~85% of Tiny Darknet's
operations become 36 small GEMMs plus two cheap transforms (Lavin & Gray, 2015).

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A     for a 6x6 input tile d and a 3x3 filter g

U = G g Gᵀ is computed once at load (in float64). The compiled kernels (winograd.py) and the
portable ones (portable.py) share these matrices and the tiling.
"""

from __future__ import annotations

import numpy as np

BT = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    np.float32,
)
G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    np.float64,
)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float32)


def transform_weights(weights: np.ndarray) -> np.ndarray:
    """(filters, c, 3, 3) → U: (36, c, filters) float32, U[6i+j] = (G g Gᵀ)[i, j]."""
    u = G @ weights.astype(np.float64) @ G.T  # (f, c, 6, 6), batched matmuls
    return np.ascontiguousarray(
        u.transpose(2, 3, 1, 0).reshape(36, weights.shape[1], weights.shape[0]), dtype=np.float32
    )


def tiles(h: int, w: int) -> tuple[int, int]:
    """4x4 output tiles down and across an h x w map."""
    return (h + 3) // 4, (w + 3) // 4
