"""[connected]: a fully connected layer. darknet flattens its input channel-major (c, h, w);
our activations are (h, w, c), so the weight rows are permuted once at load instead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels, memory
from ..activations import activation_code
from .base import Layer, Shape, TrainStep
from .batchnorm import BN_PARAMS, NormalizeStep, fold_batchnorm, learned_arrays


@dataclass(frozen=True)
class Connected(Layer):
    outputs: int = 1
    inputs: int = 0  # fixed by the cfg: a connected layer binds the input size
    batch_normalize: bool = False
    activation: int = 0
    activation_name: str = "logistic"

    kind = "connected"
    needs_fixed_size = True

    @classmethod
    def parse(cls, s, index: int, where: str, in_shape: Shape) -> "Connected":
        outputs = s.get_int("output", 1)
        if outputs < 1:
            raise s.error(f"output={outputs} must be at least 1", "output")
        name = s.get_str("activation", "logistic")
        bn = s.get_flag("batch_normalize")
        h, w, c = in_shape
        return cls(index, where, outputs, h * w * c, bool(bn), activation_code(name, s), name.lower())

    def output_shape(self, in_shape: Shape, shapes) -> Shape:
        h, w, c = in_shape
        if h * w * c != self.inputs:
            raise self.shape_error(
                f"takes {self.inputs} inputs (fixed by the cfg's input size) but got "
                f"{w}x{h}x{c} = {h * w * c}; this network only runs at its cfg size"
            )
        return (1, 1, self.outputs)

    def flops(self, in_shape, out_shape) -> int:
        return 2 * self.inputs * self.outputs

    def param_layout(self, in_shape):
        layout = [("biases", self.outputs), ("weights", self.outputs * self.inputs)]
        if self.batch_normalize:
            layout += [(name, self.outputs) for name in BN_PARAMS]
        return layout

    def summary_row(self, in_shape, out_shape):
        return ("connected", str(self.outputs), "")

    def pack_weights(self, params, in_shape):
        h, w, c = in_shape
        weights = params["weights"].reshape(self.outputs, c, h, w)
        weights, bias = fold_batchnorm(weights, params, self.batch_normalize)
        matrix = np.ascontiguousarray(weights.transpose(2, 3, 1, 0).reshape(h * w * c, self.outputs))
        return matrix, bias

    def make_step(self, in_shape, out_shape, batch, packed, threads):
        matrix, bias = packed
        out = memory.empty((batch, 1, 1, self.outputs), np.float32)

        def connected(x, outputs):
            n = x.shape[0]
            acc = out[:n].reshape(n, self.outputs)
            np.matmul(x.reshape(n, -1), matrix, out=acc)
            kernels.bias_activate(acc, bias, self.activation)
            return out[:n]

        return connected

    def train_step(self, in_shape, out_shape, batch, params, k) -> "ConnectedTrainStep":
        return ConnectedTrainStep(self, in_shape, batch, params, k)


class ConnectedTrainStep(TrainStep):
    """darknet's connected layer in training: the input flattened channel-major as darknet
    holds it, out = x·W^T, batch norm over the batch (or the bias), then the weight delta
    delta^T·x and the input's delta·W."""

    def __init__(self, layer: Connected, in_shape, batch, params, k):
        self.layer, self.k = layer, k
        self.weights = params["weights"].reshape(layer.outputs, layer.inputs)
        self.learned, self.updates = learned_arrays(params)
        self.flat = memory.empty((batch, layer.inputs), np.float32)  # (n, c*h*w), darknet's order
        self.out = memory.empty((batch, 1, 1, layer.outputs), np.float32)
        self.normalize = NormalizeStep(batch, layer.outputs, params, self.updates, layer.batch_normalize)

    def forward(self, x, outputs, train):
        n = x.shape[0]
        flat = self.flat[:n]
        flat[...] = x.transpose(0, 3, 1, 2).reshape(n, -1)
        z = self.out[:n].reshape(n, -1)
        np.matmul(flat, self.weights.T, out=z)
        self.normalize.forward(self.k, z, train)
        self.k.activate(z, self.layer.activation)
        return self.out[:n]

    def backward(self, delta, x, outputs, deltas, dx):
        n, k = x.shape[0], self.k
        d = delta.reshape(n, -1)
        k.activation_gradient(self.out[:n].reshape(n, -1), self.layer.activation, d)
        self.normalize.backward(k, d)
        self.updates["weights"].reshape(self.weights.shape)[...] += d.T @ self.flat[:n]
        if dx is not None:
            _, h, w, c = dx.shape
            dx += (d @ self.weights).reshape(n, c, h, w).transpose(0, 2, 3, 1)
