"""A slow, obviously-correct darknet forward in plain numpy, for checking the engine.

It shares only the cfg parser with the engine (layer hyperparameters and references); it
reads the .weights bytes itself, keeps darknet's (c, h, w) layout and batch norm unfolded,
and does every layer the straightforward way. Also darknet's image resize (reference_resize).
"""

from __future__ import annotations

import numpy as np

from engine.layers import Avgpool, Connected, Convolutional, Cost, Dropout, Maxpool, Route, Shortcut, Softmax


def _linear_inside(x, low, high, slope, outside):
    """slope * x on [low, high], continued beyond both ends with slope `outside` (lhtan and
    plse are this shape)."""
    inside = np.clip(x, low, high)
    return slope * inside + outside * (x - inside)


def _stair(x):
    """darknet's stair, read as a staircase: flat at k on [2k, 2k+1), then rising with slope 1
    to k+1 on [2k+1, 2k+2)."""
    k = np.floor(x / 2)
    return k + np.maximum(x - 2 * k - 1, 0)


# darknet's activations.h, each written from its formula (selu with darknet's rounded constants)
ACT = {
    "linear": lambda x: x,
    "leaky": lambda x: np.where(x > 0, x, 0.1 * x),
    "relu": lambda x: np.maximum(x, 0),
    "logistic": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x >= 0, x, np.exp(x) - 1),
    "relie": lambda x: np.where(x > 0, x, 0.01 * x),
    "ramp": lambda x: np.maximum(x, 0) + 0.1 * x,
    "hardtan": lambda x: np.clip(x, -1, 1),
    "lhtan": lambda x: _linear_inside(x, 0, 1, 1, 0.001),  # x on [0, 1]
    "loggy": lambda x: np.tanh(x / 2),  # = 2 logistic(x) - 1
    "selu": lambda x: 1.0507 * np.where(x >= 0, x, 1.6732 * np.expm1(np.minimum(x, 0))),
    "plse": lambda x: _linear_inside(x, -4, 4, 0.125, 0.01) + 0.5,  # 0.125 x + 0.5 on [-4, 4]
    "stair": _stair,
}


class WeightsCursor:
    def __init__(self, path):
        data = open(path, "rb").read()
        major, minor = np.frombuffer(data[:8], "<i4")
        self.offset = 20 if major * 10 + minor >= 2 else 16
        self.data = data

    def take(self, count):
        out = np.frombuffer(self.data, "<f4", count, self.offset).astype(np.float64)
        self.offset += 4 * count
        return out


def reference_forward(spec, weights_path, image, partial=False, stop=None):
    """image: (h, w, c) float → darknet's final output, flattened (c, h, w) order.
    partial: spec holds only the first layers, so the weights file is not used up.
    stop: the output of layer `stop` instead (the weights file is then not used up either)."""
    cursor = WeightsCursor(weights_path)
    x = np.asarray(image, np.float64).transpose(2, 0, 1)  # (c, h, w)
    outputs = []
    last = len(spec.layers) - 1 if stop is None else stop
    partial = partial or last < len(spec.layers) - 1
    for layer in spec.layers[: last + 1]:
        if isinstance(layer, Convolutional):
            x = conv(layer, x, cursor)
        elif isinstance(layer, Connected):
            x = connected(layer, x, cursor)
        elif isinstance(layer, Maxpool):
            x = maxpool(layer, x)
        elif isinstance(layer, Avgpool):
            x = x.mean(axis=(1, 2), keepdims=True)
        elif isinstance(layer, Softmax):
            x = softmax(layer, x)
        elif isinstance(layer, (Dropout, Cost)):
            pass
        elif isinstance(layer, Shortcut):
            x = shortcut(layer, x, outputs[layer.source])
        elif isinstance(layer, Route):
            x = np.concatenate([outputs[i] for i in layer.sources], axis=0)
        else:
            raise AssertionError(f"reference has no {layer.kind}")
        outputs.append(x)
    assert partial or cursor.offset == len(cursor.data), "reference did not consume the whole weights file"
    return x.reshape(-1)


def batchnorm(cursor, n):
    scales, mean, var = cursor.take(n), cursor.take(n), cursor.take(n)
    return lambda y: (y - mean[:, None, None]) / (np.sqrt(var)[:, None, None] + 1e-6) * scales[:, None, None]


def conv(layer, x, cursor):
    c, h, w = x.shape
    n, k, s, p, g = layer.filters, layer.size, layer.stride, layer.padding, layer.groups
    biases = cursor.take(n)
    bn = batchnorm(cursor, n) if layer.batch_normalize else (lambda y: y)
    weights = cursor.take(n * (c // g) * k * k).reshape(n, c // g, k, k)
    padded = np.zeros((c, h + 2 * p, w + 2 * p))
    padded[:, p : p + h, p : p + w] = x
    out_h, out_w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, out_h, out_w))
    for gi in range(g):
        fs = slice(gi * n // g, (gi + 1) * n // g)
        cs = slice(gi * c // g, (gi + 1) * c // g)
        for ky in range(k):
            for kx in range(k):
                patch = padded[cs, ky : ky + s * out_h : s, kx : kx + s * out_w : s]  # (c/g, out_h, out_w)
                out[fs] += np.tensordot(weights[fs, :, ky, kx], patch, axes=(1, 0))
    out = bn(out) + biases[:, None, None]
    return ACT[layer.activation_name](out)


def connected(layer, x, cursor):
    flat = x.reshape(-1)
    biases = cursor.take(layer.outputs)
    weights = cursor.take(layer.outputs * flat.size).reshape(layer.outputs, flat.size)
    y = (weights @ flat)[:, None, None]
    if layer.batch_normalize:
        y = batchnorm(cursor, layer.outputs)(y)
    return ACT[layer.activation_name](y + biases[:, None, None])


def maxpool(layer, x):
    c, h, w = x.shape
    k, s, pad = layer.size, layer.stride, layer.padding
    out_h, out_w = (h + pad - k) // s + 1, (w + pad - k) // s + 1
    start = -(pad // 2)
    out = np.full((c, out_h, out_w), -np.inf)
    for oy in range(out_h):
        for ox in range(out_w):
            y0, x0 = oy * s + start, ox * s + start
            window = x[:, max(y0, 0) : max(y0 + k, 0), max(x0, 0) : max(x0 + k, 0)]
            if window.size:
                out[:, oy, ox] = window.max(axis=(1, 2))
    return out


def softmax(layer, x):
    flat = x.reshape(layer.groups, -1) / layer.temperature
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(-1, 1, 1)


def shortcut(layer, x, source):
    """darknet's shortcut_cpu, written out: sample or stride over the larger of the two."""
    out = x.copy()
    c2, h2, w2 = out.shape
    c1, h1, w1 = source.shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    mc, mh, mw = min(c1, c2), min(h1, h2), min(w1, w2)
    dst = (slice(0, mc), slice(0, mh * sample, sample), slice(0, mw * sample, sample))
    src = (slice(0, mc), slice(0, mh * stride, stride), slice(0, mw * stride, stride))
    out[dst] = layer.alpha * out[dst] + layer.beta * source[src]
    return ACT[layer.activation_name](out)


def reference_resize(im, w, h):
    """darknet's resize_image written out pixel by pixel with float32 scalars (slow, obvious)."""
    f32 = np.float32
    im_h, im_w, ch = im.shape
    # Output size 1: darknet divides by zero; engine.image uses scale 0 (see resize()).
    w_scale = f32(0) if w == 1 else f32(im_w - 1) / f32(w - 1)
    h_scale = f32(0) if h == 1 else f32(im_h - 1) / f32(h - 1)
    part = np.zeros((im_h, w, ch), np.float32)
    for k in range(ch):
        for r in range(im_h):
            for c in range(w):
                if c == w - 1 or im_w == 1:
                    val = im[r, im_w - 1, k]
                else:
                    sx = f32(c) * w_scale
                    ix = int(sx)
                    dx = sx - f32(ix)
                    val = (f32(1) - dx) * im[r, ix, k] + dx * im[r, ix + 1, k]
                part[r, c, k] = val
    out = np.zeros((h, w, ch), np.float32)
    for k in range(ch):
        for r in range(h):
            sy = f32(r) * h_scale
            iy = int(sy)
            dy = sy - f32(iy)
            for c in range(w):
                out[r, c, k] = (f32(1) - dy) * part[iy, c, k]
            if r == h - 1 or im_h == 1:
                continue
            for c in range(w):
                out[r, c, k] = out[r, c, k] + dy * part[iy + 1, c, k]
    return out
