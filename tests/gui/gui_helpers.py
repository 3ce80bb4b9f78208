"""Helpers the GUI tests import by name (conftest.py itself is not importable by a unique name)."""
from __future__ import annotations

import numpy as np


def pattern(seed: int, w: int = 48, h: int = 40) -> np.ndarray:
    """A distinct, deterministic RGB uint8 picture per seed (noise plus a coloured gradient)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, np.full_like(xx, seed * 37 % 256)], axis=-1)
    return np.clip(base * rng.uniform(0.2, 1.0, 3) + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
