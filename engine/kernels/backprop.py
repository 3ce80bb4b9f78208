"""Training kernels in plain numpy: what a layer's training step computes beyond the forward pass.

darknet's conventions throughout: a layer's `delta` is minus the gradient of the loss with respect
to its output (the softmax writes truth - p), and `*_updates` add up minus the gradient over the
images of an update. Activations are (n, h, w, c); a conv's matrices are (rows, channels) with
rows = n*h*w, so batch norm's statistics are column sums.

backprop_compiled.py has the same kernels in Numba, with the same arguments and results; the
layers take whichever set `engine.kernels.training_kernels()` hands them (tests check one against the other
and both against finite differences).
"""

from __future__ import annotations

import numpy as np

from ..activations import ACTIVATIONS as _A
from .portable import activate_array

# darknet's batch norm: forward divides by sqrt(var) + 1e-6, backward by sqrt(var + 1e-5)
BN_FORWARD_EPS = np.float32(1e-6)
BN_BACKWARD_EPS = np.float32(1e-5)
ROLLING_MOMENTUM = np.float32(0.99)  # rolling statistics keep 99 % of themselves each call


def conv_out(size: int, stride: int, pad: int, h: int, w: int) -> tuple[int, int]:
    return (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1


def im2col(x, size, stride, pad, c0, cg, cols):
    """cols (n*out_h*out_w, size*size*cg) = the windows of x's channels c0..c0+cg, each row
    ordered (ky, kx, channel), zeros where a window hangs over the border."""
    n, h, w, c = x.shape
    out_h, out_w = conv_out(size, stride, pad, h, w)
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, cg), np.float32)
    padded[:, pad : pad + h, pad : pad + w] = x[..., c0 : c0 + cg]
    view = cols.reshape(n, out_h, out_w, size, size, cg)
    for ky in range(size):
        for kx in range(size):
            view[:, :, :, ky, kx] = padded[
                :, ky : ky + (out_h - 1) * stride + 1 : stride, kx : kx + (out_w - 1) * stride + 1 : stride
            ]
    return cols


def col2im_add(dcols, size, stride, pad, c0, cg, dx):
    """The transpose of im2col: every window row of dcols added back onto dx's channels c0..c0+cg."""
    n, h, w, c = dx.shape
    out_h, out_w = conv_out(size, stride, pad, h, w)
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, cg), np.float32)
    view = dcols.reshape(n, out_h, out_w, size, size, cg)
    for ky in range(size):
        for kx in range(size):
            padded[:, ky : ky + (out_h - 1) * stride + 1 : stride, kx : kx + (out_w - 1) * stride + 1 : stride] += view[
                :, :, :, ky, kx
            ]
    dx[..., c0 : c0 + cg] += padded[:, pad : pad + h, pad : pad + w]


def activation_gradient(y, code, delta):
    """delta *= f'(x), written as darknet's gradient() does: from the activated output y."""
    f = np.float32
    if code == _A["linear"]:
        return
    if code == _A["leaky"]:
        g = np.where(y > 0, f(1), f(0.1))
    elif code == _A["relu"]:
        g = (y > 0).astype(np.float32)
    elif code == _A["logistic"]:
        g = (1 - y) * y
    elif code == _A["tanh"]:
        g = 1 - y * y
    elif code == _A["elu"]:
        g = np.where(y >= 0, f(1), y + 1)
    elif code == _A["selu"]:
        g = np.where(y >= 0, f(1.0507), y + f(1.0507 * 1.6732))
    elif code == _A["relie"]:
        g = np.where(y > 0, f(1), f(0.01))
    elif code == _A["ramp"]:
        g = (y > 0) + f(0.1)
    elif code == _A["hardtan"]:
        g = ((y > -1) & (y < 1)).astype(np.float32)
    elif code == _A["lhtan"]:
        g = np.where((y > 0) & (y < 1), f(1), f(0.001))
    elif code == _A["loggy"]:
        half = (y + 1) / 2
        g = 2 * (1 - half) * half
    elif code == _A["plse"]:
        g = np.where((y < 0) | (y > 1), f(0.01), f(0.125))
    elif code == _A["stair"]:
        g = (np.floor(y) != y).astype(np.float32)
    else:
        raise ValueError(f"unknown activation code {code}")
    delta *= g.astype(np.float32, copy=False)


def activate(y, code):
    """y = f(y) in place (the forward's activation: the inference kernels' own arithmetic)."""
    activate_array(y, code)


def batchnorm_forward(z, scales, biases, rolling_mean, rolling_variance, mean, variance, x_norm):
    """Training-mode batch norm of z (rows, channels) in place: the batch's mean and (unbiased,
    as darknet) variance, the rolling statistics moved 1 % towards them, x_norm kept for the
    backward pass, and z = x_norm * scales + biases."""
    rows = z.shape[0]
    mean[:] = z.sum(axis=0, dtype=np.float64) / rows
    centered = z - mean
    variance[:] = np.einsum("ij,ij->j", centered, centered, dtype=np.float64) / (rows - 1)
    rolling_mean *= ROLLING_MOMENTUM
    rolling_mean += np.float32(0.01) * mean
    rolling_variance *= ROLLING_MOMENTUM
    rolling_variance += np.float32(0.01) * variance
    np.divide(centered, np.sqrt(variance) + BN_FORWARD_EPS, out=x_norm)
    np.multiply(x_norm, scales, out=z)
    z += biases


def batchnorm_inference(z, scales, biases, rolling_mean, rolling_variance):
    """Inference-mode batch norm of z (rows, channels) in place, with the rolling statistics."""
    z -= rolling_mean
    z /= np.sqrt(rolling_variance) + BN_FORWARD_EPS
    z *= scales
    z += biases


def batchnorm_backward(delta, x_norm, scales, mean, variance, bias_updates, scale_updates):
    """darknet's backward_batchnorm_layer on delta (rows, channels) in place: the bias and scale
    updates, then the delta through the normalisation (with its mean and variance terms)."""
    rows = delta.shape[0]
    bias_updates += delta.sum(axis=0, dtype=np.float64).astype(np.float32)
    scale_updates += np.einsum("ij,ij->j", delta, x_norm, dtype=np.float64).astype(np.float32)
    delta *= scales
    std_eps = np.sqrt(variance.astype(np.float64) + BN_BACKWARD_EPS)
    centered = x_norm * (np.sqrt(variance) + BN_FORWARD_EPS)  # z - mean, from x_norm
    mean_delta = delta.sum(axis=0, dtype=np.float64) * (-1 / std_eps)
    variance_delta = np.einsum("ij,ij->j", delta, centered, dtype=np.float64) * (
        -0.5 * (variance.astype(np.float64) + BN_BACKWARD_EPS) ** -1.5
    )
    delta *= (1 / std_eps).astype(np.float32)
    delta += centered * (variance_delta * 2 / rows).astype(np.float32)
    delta += (mean_delta / rows).astype(np.float32)


def bias_backward(delta, bias_updates):
    bias_updates += delta.sum(axis=0, dtype=np.float64).astype(np.float32)


def maxpool_forward(x, size, stride, offset, out, argmax):
    """darknet's max pool of x (n, h, w, c) into out (n, oh, ow, c), keeping in argmax the flat
    index into x of each window's winner (the first largest, cells outside x never win)."""
    n, h, w, c = x.shape
    _, out_h, out_w, _ = out.shape
    flat = np.arange(x.size, dtype=np.int64).reshape(x.shape)
    best = np.full(out.shape, -np.inf, np.float32)
    where = np.zeros(out.shape, np.int64)
    for ky in range(size):
        for kx in range(size):
            ys = offset + ky + stride * np.arange(out_h)
            xs = offset + kx + stride * np.arange(out_w)
            inside_y, inside_x = (ys >= 0) & (ys < h), (xs >= 0) & (xs < w)
            yc, xc = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
            values = x[:, yc][:, :, xc]
            inside = (inside_y[:, None] & inside_x[None, :])[None, :, :, None]
            better = (values > best) & inside
            best = np.where(better, values, best)
            where = np.where(better, flat[:, yc][:, :, xc], where)
    out[...] = best
    argmax[...] = where


def maxpool_backward(delta, argmax, size, stride, dx):
    """Each window's delta added to its winner in dx."""
    flat = dx.reshape(-1)
    if size <= stride:  # windows do not overlap: every winner is a different cell
        flat[argmax.reshape(-1)] += delta.reshape(-1)
    else:
        np.add.at(flat, argmax.reshape(-1), delta.reshape(-1))


def sgd_update(values, updates, rate, momentum, decay, batch, decays):
    """darknet's update_*_layer for one array: updates -= decay*batch*values (weights only),
    values += rate/batch * updates, then updates *= momentum (what stays is the momentum)."""
    f = np.float32
    if decays:
        updates += f(-decay * batch) * values
    values += (f(rate) / f(batch)) * updates
    updates *= f(momentum)


def adam_update(values, updates, m, v, rate, decay, batch, b1, b2, eps, t):
    """darknet's adam_update_gpu for one array (the only Adam darknet writes): moments of the
    updates (with weight decay), a bias-corrected step, and the updates cleared."""
    f = np.float32
    m *= f(b1)
    v *= f(b2)
    updates += f(-decay * batch) * values
    m += f(1 - b1) * updates
    v += f(1 - b2) * updates * updates
    mhat = m / f(1 - b1**t)
    vhat = v / f(1 - b2**t)
    values += f(rate) * mhat / (np.sqrt(vhat) + f(eps))
    updates[...] = 0
