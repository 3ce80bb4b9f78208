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


LEARNED = ("biases", "scales", "weights")  # what the update rule changes (not the rolling statistics)


def learned_arrays(params: dict) -> tuple[dict, dict]:
    """({name: array} the update rule changes, {name: its darknet *_updates, zeroed})."""
    from .. import memory

    learned = {name: params[name] for name in LEARNED if name in params}
    updates = {}
    for name, value in learned.items():
        updates[name] = memory.empty(value.shape, np.float32)
        if updates[name].flags.writeable:
            updates[name][...] = 0
    return learned, updates


class NormalizeStep:
    """What follows a conv's or connected layer's matrix product in training: darknet's batch
    norm with the batch's statistics (batchnorm_layer.c), or its bias, on z (rows, filters)."""

    def __init__(self, rows: int, filters: int, params: dict, updates: dict, batch_normalize: bool):
        from .. import memory

        self.params, self.updates, self.batch_normalize = params, updates, batch_normalize
        if batch_normalize:
            self.x_norm = memory.empty((rows, filters), np.float32)
            self.mean, self.variance = memory.empty(filters, np.float32), memory.empty(filters, np.float32)

    def forward(self, k, z: np.ndarray, train: bool) -> None:
        p = self.params
        if not self.batch_normalize:
            z += p["biases"]
        elif train:
            k.batchnorm_forward(
                z,
                p["scales"],
                p["biases"],
                p["rolling_mean"],
                p["rolling_variance"],
                self.mean,
                self.variance,
                self.x_norm[: z.shape[0]],
            )
        else:
            k.batchnorm_inference(z, p["scales"], p["biases"], p["rolling_mean"], p["rolling_variance"])

    def backward(self, k, d: np.ndarray) -> None:
        if self.batch_normalize:
            k.batchnorm_backward(
                d,
                self.x_norm[: d.shape[0]],
                self.params["scales"],
                self.mean,
                self.variance,
                self.updates["biases"],
                self.updates["scales"],
            )
        else:
            k.bias_backward(d, self.updates["biases"])
