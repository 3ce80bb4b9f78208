"""A slow, obviously-correct float64 training-mode forward, for checking the engine's backward
passes by finite differences.

It shares only the cfg parser with the engine. Images are (n, c, h, w) as darknet holds them;
parameters are the darknet-ordered arrays of engine.weights (conv weights (filters, c/groups,
size, size), connected weights (outputs, inputs) over the input flattened channel-major). Batch
norm uses the batch's statistics as darknet's training forward does: the mean, the unbiased
variance, (x - mean) / (sqrt(variance) + 1e-6).

loss() is darknet's cost summed over the batch. What the engine's `*_updates` arrays hold after
one backward is minus its gradient, times a factor that depends on how the network scores
(gradient_factor).
"""

from __future__ import annotations

import numpy as np

from engine.layers import Avgpool, Connected, Convolutional, Cost, Dropout, Maxpool, Route, Shortcut, Softmax
from reference import ACT, maxpool, shortcut


def output_index(spec) -> int:
    return max(i for i, layer in enumerate(spec.layers) if not isinstance(layer, Cost))


def _normalize(z, params, axes):
    """darknet's training batch norm over `axes`, then the scales; the biases follow outside."""
    count = np.prod([z.shape[a] for a in axes])
    mean = z.mean(axis=axes, keepdims=True)
    variance = ((z - mean) ** 2).sum(axis=axes, keepdims=True) / (count - 1)
    shape = [1] * z.ndim
    shape[1] = -1
    return (z - mean) / (np.sqrt(variance) + 1e-6) * params["scales"].reshape(shape)


def conv(layer, x, p):
    n, c, h, w = x.shape
    f, k, s, pad, g = layer.filters, layer.size, layer.stride, layer.padding, layer.groups
    weights = p["weights"].reshape(f, c // g, k, k)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    padded[:, :, pad : pad + h, pad : pad + w] = x
    out_h, out_w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    z = np.zeros((n, f, out_h, out_w))
    for gi in range(g):
        fs = slice(gi * f // g, (gi + 1) * f // g)
        cs = slice(gi * c // g, (gi + 1) * c // g)
        for ky in range(k):
            for kx in range(k):
                patch = padded[:, cs, ky : ky + s * out_h : s, kx : kx + s * out_w : s]  # (n, c/g, oh, ow)
                z[:, fs] += np.einsum("fc,nchw->nfhw", weights[fs, :, ky, kx], patch)
    if layer.batch_normalize:
        z = _normalize(z, p, (0, 2, 3))
    return ACT[layer.activation_name](z + p["biases"].reshape(1, -1, 1, 1))


def connected(layer, x, p):
    flat = x.reshape(x.shape[0], -1)
    z = flat @ p["weights"].reshape(layer.outputs, -1).T
    if layer.batch_normalize:
        z = _normalize(z, p, (0,))
    return ACT[layer.activation_name](z + p["biases"]).reshape(x.shape[0], -1, 1, 1)


def softmax(layer, x):
    flat = x.reshape(x.shape[0], layer.groups, -1) / layer.temperature
    e = np.exp(flat - flat.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).reshape(x.shape[0], -1, 1, 1)


def cost(layer, x, truth):
    diff = truth - x.reshape(x.shape[0], -1)
    magnitude = np.abs(diff)
    if layer.cost_type == "sse":
        return (diff * diff).sum()
    if layer.cost_type == "l1":
        return magnitude.sum()
    return np.where(magnitude < 1, diff * diff, 2 * magnitude - 1).sum()


def loss(spec, params, x, truth, masks=None) -> float:
    """x (n, h, w, c) as the engine takes it; truth (n, outputs) in darknet's channel-major
    order; masks {dropout layer index: (n, h, w, c) array of 0 or 1/(1-p)}, the engine's draw."""
    x = np.asarray(x, np.float64).transpose(0, 3, 1, 2)
    last = output_index(spec)
    outputs, total = [], 0.0
    for i, (layer, p) in enumerate(zip(spec.layers, params)):
        p = {name: np.asarray(v, np.float64) for name, v in p.items()}
        if isinstance(layer, Convolutional):
            x = conv(layer, x, p)
        elif isinstance(layer, Connected):
            x = connected(layer, x, p)
        elif isinstance(layer, Maxpool):
            x = np.stack([maxpool(layer, image) for image in x])
        elif isinstance(layer, Avgpool):
            x = x.mean(axis=(2, 3), keepdims=True)
        elif isinstance(layer, Dropout):
            if masks is not None and i in masks:
                x = x * np.asarray(masks[i], np.float64).transpose(0, 3, 1, 2)
        elif isinstance(layer, Route):
            x = np.concatenate([outputs[j] for j in layer.sources], axis=1)
        elif isinstance(layer, Shortcut):
            x = np.stack([shortcut(layer, a, b) for a, b in zip(x, outputs[layer.source])])
        elif isinstance(layer, Softmax):
            x = softmax(layer, x)
            if i == last and not layer.noloss:
                p_flat = x.reshape(x.shape[0], -1)
                total -= (truth * np.log(np.where(truth != 0, p_flat, 1))).sum()
        elif isinstance(layer, Cost):
            total += cost(layer, x, truth)
        else:
            raise AssertionError(f"no training reference for {layer.kind}")
        outputs.append(x)
    return total


def gradient_factor(spec) -> float:
    """updates = -factor * d(loss)/d(parameter). darknet's softmax delta t - p ignores the
    temperature (factor T); its cost layer's delta is scale * (t - x) for sse and smooth (half
    the gradient of the squared error) and scale * sign(t - x) for L1."""
    last = spec.layers[-1]
    if isinstance(last, Cost):
        return last.scale * (1.0 if last.cost_type == "l1" else 0.5)
    return spec.layers[output_index(spec)].temperature
