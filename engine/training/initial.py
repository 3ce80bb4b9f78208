"""darknet's starting weights for a network trained from scratch (make_convolutional_layer,
make_connected_layer): conv weights normal with standard deviation sqrt(2 / fan-in), connected
weights uniform in +-sqrt(2 / inputs), biases and rolling statistics 0, batch-norm scales 1."""

from __future__ import annotations

import numpy as np

from ..spec import NetworkSpec
from ..weights import Params


def initial_params(spec: NetworkSpec, seed: int = 0) -> Params:
    rng = np.random.default_rng(seed)
    params: Params = []
    for layer, in_shape in zip(spec.layers, spec.input_shapes()):
        arrays = {}
        for name, count in layer.param_layout(in_shape):
            if name == "weights" and layer.kind == "connected":
                values = np.sqrt(2 / layer.inputs) * rng.uniform(-1, 1, count)
            elif name == "weights":
                fan_in = count // layer.filters
                values = np.sqrt(2 / fan_in) * rng.standard_normal(count)
            elif name == "scales":
                values = np.ones(count)
            else:
                values = np.zeros(count)
            arrays[name] = values.astype(np.float32)
        params.append(arrays)
    return params
