"""Every layer's backward pass against finite differences of a float64 training forward
(tests/reference_training.py), with both training kernel sets.

For each learned array the engine's `*_updates` after one forward and backward is projected on
random directions and compared with the central difference of the reference loss along the same
direction. The networks put a conv first, so each later layer's input delta reaches a checked
weight gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.layers.identity import DropoutTrainStep
from engine.spec import parse_network
from engine.training import Trainer, read_settings
from engine.weights import random_params

from cfg_builder import AVGPOOL, connected, conv, cost, dropout, maxpool, net, route, shortcut, softmax
from reference import ACT
from reference_training import gradient_factor, loss, output_index

KERNELS = ["compiled", "portable"]
STEP = 1e-6  # the finite difference's step along a unit direction
DIRECTIONS = 3


def case(size: int, channels: int, batch: int, *layers: str) -> str:
    return net(size, size, channels, batch=batch) + "".join(layers)


HEAD = conv(10, 1, bn=0, act="linear") + AVGPOOL + softmax()

CASES = {
    "conv and maxpool": case(8, 3, 3, conv(8, bn=0), maxpool(2, 2), HEAD),
    "grouped and strided convs": case(
        9,
        4,
        2,
        conv(6, bn=0, act="logistic"),
        conv(8, stride=2, groups=2, bn=0),
        conv(10, 1, groups=2, bn=0, act="linear"),
        AVGPOOL,
        softmax(),
    ),
    "unpadded 5x5 conv, stride 3": case(11, 2, 2, conv(6, 5, stride=3, padding=0, bn=0, act="tanh"), HEAD),
    "overlapping padded maxpools": case(9, 3, 2, conv(6, bn=0), maxpool(3, 2), maxpool(2, 1), maxpool(3, 2, 1), HEAD),
    "connected layers": case(4, 3, 3, conv(4, bn=0), connected(12), connected(10, act="linear"), softmax()),
    "dropout": case(8, 3, 3, conv(8, bn=0), dropout(0.4), HEAD),
    "route and shortcut across shapes": case(
        8,
        3,
        2,
        conv(8, bn=0),
        conv(6, stride=2, bn=0),
        shortcut(0, "linear", 0.5, 1.5),
        route(0),
        shortcut(2, "leaky"),
        route(4, 0),
        HEAD,
    ),
    # pjreddie/darknet issue 1229: the 1x1 conv's input (layer 0) also feeds a shortcut and a
    # route, whose deltas reach layer 0 before the 1x1 conv's backward, which must add to them
    "shortcut and route beside a 1x1 conv": case(
        6, 3, 2, conv(8, bn=0), conv(8, 1, bn=0), shortcut(-2), route(-1, -3), HEAD
    ),
    "softmax groups and temperature": case(
        6, 3, 3, conv(8, bn=0), conv(12, 1, bn=0, act="linear"), AVGPOOL, softmax(3, 2.5)
    ),
    "average pool of a 1x1 map": case(
        6, 3, 2, conv(8, stride=6, padding=0, bn=0), AVGPOOL, connected(10, act="linear"), softmax()
    ),
}
for cost_type in ("sse", "smooth", "l1"):
    CASES[f"cost {cost_type}"] = case(
        6, 3, 3, conv(8, bn=0), conv(10, 1, bn=0, act="linear"), AVGPOOL, cost(cost_type, 1.5)
    )

# darknet's backward batch norm is not the exact gradient of its forward (sqrt(var + 1e-5)
# against sqrt(var) + 1e-6, and 1/count where the forward's variance divides by count - 1): the
# difference is about 1/count of the variance term, so these cases keep count >= 500 values a
# channel and a looser tolerance; test_batchnorm_kernels checks darknet's formulas themselves.
BATCH_NORM_CASES = {
    "batch-normalized convs": case(12, 3, 16, conv(8), conv(10, stride=2, act="relu"), AVGPOOL, softmax()),
    "batch-normalized connected layer": case(
        3, 2, 512, conv(4, bn=0), connected(12, bn=1, act="relu"), connected(10, act="linear"), softmax()
    ),
}


def make_truth(spec, n: int, rng) -> np.ndarray:
    """One-hot truth in each softmax group (or over the cost's outputs)."""
    out = spec.layers[output_index(spec)]
    outputs = int(np.prod(spec.shapes[out.index]))
    groups = getattr(out, "groups", 1)
    size = outputs // groups
    truth = np.zeros((n, outputs))
    for image in range(n):
        for g in range(groups):
            truth[image, g * size + rng.integers(size)] = 1
    return truth


def check_gradients(text: str, compiled: bool, rtol: float, seed: int = 0, scale: float = 1.0) -> None:
    spec = parse_network("case.cfg", text)
    params = random_params(spec, seed)
    trainer = Trainer(spec, params, read_settings(spec, text), compiled=compiled)
    rng = np.random.default_rng(seed)
    n = trainer.batch
    x = (scale * rng.standard_normal((n,) + spec.input_shape)).astype(np.float32)
    truth = make_truth(spec, n, rng)
    trainer.forward(x, truth.astype(np.float32))
    trainer.backward(x)
    masks = {
        i: step.keep[:n].copy()
        for i, step in enumerate(trainer.steps)
        if isinstance(step, DropoutTrainStep) and step.probability
    }
    factor = gradient_factor(spec)
    reference = [{name: v.astype(np.float64) for name, v in p.items()} for p in params]
    checked = 0
    for i, step in enumerate(trainer.steps):
        for name, updates in step.updates.items():
            values = reference[i][name]
            start = values.copy()
            u = updates.astype(np.float64)
            for _ in range(DIRECTIONS):
                v = rng.standard_normal(values.shape)
                v /= np.linalg.norm(v)
                values[...] = start + STEP * v
                above = loss(spec, reference, x, truth, masks)
                values[...] = start - STEP * v
                below = loss(spec, reference, x, truth, masks)
                values[...] = start
                expected = -factor * (above - below) / (2 * STEP)
                got = float(u.reshape(-1) @ v.reshape(-1))
                tolerance = rtol * np.linalg.norm(u) + 1e-6
                assert abs(got - expected) <= tolerance, (
                    f"layer {i} ({spec.layers[i].kind}) {name}: backward gives {got:.6g} along a direction, "
                    f"finite differences {expected:.6g}"
                )
                checked += 1
    assert checked >= 2 * DIRECTIONS


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_matches_finite_differences(case, kernels):
    check_gradients(CASES[case], kernels == "compiled", rtol=2e-4)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("case", sorted(BATCH_NORM_CASES))
def test_batch_norm_backward_matches_finite_differences(case, kernels):
    check_gradients(BATCH_NORM_CASES[case], kernels == "compiled", rtol=1e-2)


ACTIVATIONS = sorted(ACT)  # every activation darknet has, as the float64 reference writes it


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_backward(activation, kernels):
    """Inputs spread over +-6 so every piece of the piecewise activations (stair's steps,
    plse's +-4, hardtan's +-1) is met."""
    text = case(6, 3, 2, conv(8, bn=0, act=activation), HEAD)
    check_gradients(text, kernels == "compiled", rtol=2e-4, scale=3.0)


def darknet_batchnorm_backward(delta, z, scales):
    """batchnorm_layer.c's backward in float64 (mean_delta_cpu, variance_delta_cpu and
    normalize_delta_cpu written out), on z before normalisation."""
    rows = z.shape[0]
    mean = z.mean(axis=0)
    variance = ((z - mean) ** 2).sum(axis=0) / (rows - 1)
    x_norm = (z - mean) / (np.sqrt(variance) + 1e-6)
    bias_updates, scale_updates = delta.sum(axis=0), (delta * x_norm).sum(axis=0)
    delta = delta * scales
    mean_delta = delta.sum(axis=0) * (-1 / np.sqrt(variance + 1e-5))
    variance_delta = (delta * (z - mean)).sum(axis=0) * -0.5 * (variance + 1e-5) ** -1.5
    dz = delta / np.sqrt(variance + 1e-5) + variance_delta * 2 * (z - mean) / rows + mean_delta / rows
    return dz, bias_updates, scale_updates


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("rows,channels", [(2, 3), (37, 5), (1000, 16)])
def test_batchnorm_kernels_follow_darknet(rows, channels, kernels):
    from engine.kernels import training_kernels

    k = training_kernels(kernels == "compiled")
    rng = np.random.default_rng(rows)
    z64 = rng.normal(0.3, 2.0, (rows, channels))
    scales, biases = rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.1, channels)
    delta64 = rng.standard_normal((rows, channels))
    f32 = np.float32
    z, rolling_mean, rolling_variance = z64.astype(f32), np.zeros(channels, f32), np.ones(channels, f32)
    mean, variance, x_norm = np.empty(channels, f32), np.empty(channels, f32), np.empty((rows, channels), f32)
    k.batchnorm_forward(
        z, scales.astype(f32), biases.astype(f32), rolling_mean, rolling_variance, mean, variance, x_norm
    )
    ref_mean = z64.mean(axis=0)
    ref_variance = ((z64 - ref_mean) ** 2).sum(axis=0) / (rows - 1)
    expected = (z64 - ref_mean) / (np.sqrt(ref_variance) + 1e-6) * scales + biases
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rolling_mean, 0.01 * ref_mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rolling_variance, 0.99 + 0.01 * ref_variance, rtol=1e-5)
    delta = delta64.astype(f32)
    bias_updates, scale_updates = np.zeros(channels, f32), np.zeros(channels, f32)
    k.batchnorm_backward(delta, x_norm, scales.astype(f32), mean, variance, bias_updates, scale_updates)
    dz, ref_bias, ref_scale = darknet_batchnorm_backward(delta64, z64, scales)
    np.testing.assert_allclose(bias_updates, ref_bias, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(scale_updates, ref_scale, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(delta, dz, rtol=1e-4, atol=1e-5 * np.abs(dz).max())
