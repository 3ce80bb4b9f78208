"""Batch norm at inference, folded into the preceding weights once at load time."""
from __future__ import annotations

import numpy as np

BN_PARAMS = ("scales", "rolling_mean", "rolling_variance")
# darknet normalises with (x - mean) / (sqrt(var) + eps), eps added to the std, not the variance
BN_EPSILON = 1e-6


def fold_batchnorm(weights: np.ndarray, params: dict, batch_normalize: bool):
    """Return (weights, bias) with y = w·x + bias equal to darknet's conv → BN → + bias.

    weights: (filters, ...) in any layout whose first axis is the output.
    """
    bias = params["biases"].astype(np.float64)
    if not batch_normalize:
        return weights.astype(np.float32), bias.astype(np.float32)
    scale = params["scales"].astype(np.float64) / (np.sqrt(params["rolling_variance"].astype(np.float64)) + BN_EPSILON)
    folded = weights.astype(np.float64) * scale.reshape((-1,) + (1,) * (weights.ndim - 1))
    bias = bias - params["rolling_mean"].astype(np.float64) * scale
    return folded.astype(np.float32), bias.astype(np.float32)
