"""Every kind of forward step, on both kernel sets, against the slow numpy reference
(tests/reference.py): small networks written as cfg text, with seeded random weights, and the
output of the last layer before any [softmax] compared image by image (a softmax would flatten
errors away). The cases are chosen by what the plan does with them: each conv strategy, a max
pool fused into the conv before it or run on its own, every activation in each kind of epilogue.

scripts/run-tests runs the compiled half again with NUMBA_DISABLE_JIT=1: the compiled kernels'
source as plain Python, for coverage and readable tracebacks (~10 s). With tests/test_image.py's
resize tests it runs every line of every compiled kernel, but for the scalar activate's linear,
leaky and relu branches, which _activate_span does itself.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

import engine
from engine.activations import ACTIVATIONS
from engine.kernels import tuning
from engine.weights import random_params, write_weights
from cfg_builder import AVGPOOL, COST, DROPOUT, connected, conv, maxpool, net, route, shortcut, softmax
from reference import reference_forward

pytestmark = pytest.mark.usefixtures("kernel_set")  # every test with both kernel sets

# Relative to the size of the values: the engine sums in float32, the reference in float64.
# Measured on these cases: im2col + GEMM within 2e-6 of max(1, |expected|), Winograd's
# transforms within 4e-6 of a layer's pre-activations, and so within 1.4e-5 of 1 after an
# activation that squashes pre-activations of ~5 into [-1, 1] (tanh, hardtan, lhtan). A wrong
# index, a missed border pixel or a wrong activation is off by 1e-3 to O(1) of the values.
ATOL, RTOL = 3e-5, 1e-5
INPUT_RANGE = 3.0  # inputs in [-3, 3): pre-activations cross every activation's branch points

# The plan's step names this file asserts, all here (engine/plan.py may rename them)
DIRECT, IM2COL, WINOGRAD, WINOGRAD_BY_FILTERS = ("DirectStep", "ConvStep", "WinogradStep", "WinogradByFiltersStep")
OWN_MAXPOOL, OWN_AVGPOOL = "maxpool", "avgpool"  # pools that run as steps of their own
JOINED = object()  # expected of a pool that a conv's step does too: in its epilogue, or first


def step_names(network, batch, h, w) -> list[str]:
    """Each layer's step in the network's plan: a conv's strategy class, else the step's function."""
    return [
        step.__name__ if isinstance(step, types.FunctionType) else type(step).__name__
        for step in network.plan(batch, h, w)
    ]


def close(got, expected):
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * max(1.0, np.abs(expected).max()))


@pytest.fixture(params=["avx2", "avx512"])
def tile_width(request, monkeypatch):
    """TDN_SIMD forcing each width of the direct convolution's tiles (8 or 16 floats): on a CPU
    without AVX-512 the 16-float tiles run as two halves, with the same sums."""
    monkeypatch.setenv(tuning.ENV, request.param)
    return tuning.CHOICES[request.param]


@pytest.fixture
def check(tmp_path):
    """check(cfg, batch, steps): run `batch` random inputs through the cfg's network (seeded random
    weights) and compare the output of its last layer before any [softmax], and the [softmax]'s
    if it has one, with the reference; steps: {layer: what the plan must run it with}."""

    def run(cfg: str, batch: int = 1, steps: dict | None = None):
        path = tmp_path / "case.cfg"
        path.write_text(cfg)
        spec = engine.parse_network(path, cfg)
        params = random_params(spec, seed=0)
        weights = tmp_path / "case.weights"
        write_weights(weights, spec, params)
        network = engine.Network(spec, params)
        h, w, c = spec.height, spec.width, spec.channels
        # inputs shrink with the channels past 8, so a conv's sums stay near the same size (with
        # 64 channels at the full range, Winograd's float32 error after hardtan reached 4.3e-5)
        spread = INPUT_RANGE * min(1.0, (8 / c) ** 0.5)
        images = np.random.default_rng(0).uniform(-spread, spread, (batch, h, w, c)).astype(np.float32)
        names = step_names(network, batch, h, w)
        lanes = tuning.requested()
        if lanes:  # every direct conv runs the forced width's kernel
            kernels_run = {step.kernel for step in network.plan(batch, h, w) if type(step).__name__ == DIRECT}
            assert kernels_run <= {tuning.DIRECT_KERNEL[lanes]}, kernels_run
        for layer, want in (steps or {}).items():
            if want is JOINED:
                assert names[layer] not in (OWN_MAXPOOL, OWN_AVGPOOL), names
            else:
                assert names[layer] == want, names
        last = max(i for i, layer in enumerate(spec.layers) if layer.kind != "softmax")
        (features,) = network.features_of(images, [last])
        assert features.shape == (batch,) + spec.shapes[last]
        for image, out in zip(images, features):
            close(out.transpose(2, 0, 1).reshape(-1), reference_forward(spec, weights, image, stop=last))
        if last < len(spec.layers) - 1:
            for image, probs in zip(images, network.predict(images)):
                close(probs, reference_forward(spec, weights, image))

    return run


# --------------------------------------------------------------------------- convolutions

CONV_GEOMETRY = [  # (cfg, batch): kernel sizes, strides, padding and groups, mostly direct
    pytest.param(net(9, 11, 8) + conv(12, 1), 2, id="1x1-direct-gemm"),
    pytest.param(net(7, 6, 5) + conv(6, 1, padding=1), 1, id="1x1-padded-bias-borders"),
    pytest.param(net(12, 8, 8) + conv(10, 1, stride=2), 1, id="1x1-stride2"),
    pytest.param(net(20, 18, 3) + conv(16), 1, id="3x3-rgb-16-filters"),
    pytest.param(net(13, 17, 4) + conv(10, bn=0), 3, id="3x3-4-channels-no-bn"),
    pytest.param(net(15, 20, 6) + conv(12, stride=2), 2, id="3x3-stride2"),
    pytest.param(net(10, 9, 3) + conv(6, stride=3), 1, id="3x3-stride3"),
    pytest.param(net(12, 10, 8) + conv(8, padding=0), 1, id="3x3-no-padding"),
    pytest.param(net(1, 1, 5) + conv(7), 2, id="3x3-on-1x1-map"),
    pytest.param(net(16, 16, 3) + conv(6, 5), 1, id="5x5"),
    pytest.param(net(17, 13, 4) + conv(6, 5, stride=2, padding=0), 1, id="5x5-stride2-no-padding"),
    pytest.param(net(32, 28, 3) + conv(8, 7, stride=2), 1, id="7x7-stride2-resnet-stem"),
    pytest.param(net(39, 39, 3) + conv(16, 11, stride=4, padding=0), 1, id="11x11-stride4-alexnet-stem"),
    pytest.param(net(12, 12, 8) + conv(8, 2, stride=2, padding=0), 1, id="2x2-stride2"),
    pytest.param(net(9, 11, 4) + conv(6, 2, padding=1), 1, id="2x2-padded-grows-the-map"),
    pytest.param(net(11, 10, 8) + conv(12, groups=2), 2, id="3x3-2-groups"),
    pytest.param(net(12, 12, 8) + conv(8, groups=4, bn=0), 1, id="3x3-4-groups"),
    pytest.param(net(14, 13, 8) + conv(8, groups=8), 1, id="3x3-depthwise"),
    pytest.param(net(14, 14, 16) + conv(16, stride=2, groups=16), 1, id="3x3-depthwise-stride2"),
    pytest.param(net(8, 9, 6) + conv(9, 1, groups=3), 2, id="1x1-3-groups"),
    pytest.param(net(40, 40, 32) + conv(16, padding=0), 2, id="3x3-several-row-bands-per-image"),
]


@pytest.mark.parametrize("cfg, batch", CONV_GEOMETRY)
def test_conv_matches_reference(check, cfg, batch):
    check(cfg, batch)


# (cfg, batch, the plan's steps); direct: tiles of 4 pixels x 16 filters, running on from one
# row into the next unless a pool pairs them; a band's last 1-3 pixels by a tile moved back
CONV_STRATEGIES = [
    pytest.param(net(20, 20, 3) + conv(16), 2, {0: DIRECT}, id="direct-rgb"),
    pytest.param(net(9, 13, 5) + conv(20), 1, {0: DIRECT}, id="direct-13-wide-20-filters"),
    pytest.param(net(7, 7, 16) + conv(40), 3, {0: DIRECT}, id="direct-7-wide-moved-back-tile"),
    pytest.param(net(6, 6, 16) + conv(16, 1), 1, {0: DIRECT}, id="direct-1x1-6-wide"),
    pytest.param(net(3, 2, 8) + conv(16), 2, {0: DIRECT}, id="direct-narrower-than-a-tile"),
    pytest.param(net(1, 3, 8) + conv(16), 2, {0: DIRECT}, id="direct-fewer-pixels-than-a-tile"),
    pytest.param(net(4, 4, 128) + conv(72), 1, {0: DIRECT}, id="direct-filters-split-weights-heavy"),
    pytest.param(net(16, 16, 3) + conv(32) + maxpool(2, 2), 1, {0: DIRECT, 1: JOINED}, id="direct-2x2-pool-in-tiles"),
    # rows of whole 4-pixel tiles but not of 8-pixel ones: pooled pairs at 8 floats, raw sums at 16
    pytest.param(net(12, 12, 3) + conv(16) + maxpool(2, 2), 2, {0: DIRECT, 1: JOINED}, id="direct-2x2-pool-12-wide"),
    pytest.param(
        net(15, 14, 3) + conv(24) + maxpool(2, 2), 2, {0: DIRECT, 1: JOINED}, id="direct-2x2-pool-odd-map-epilogue"
    ),
    pytest.param(net(24, 24, 8) + conv(16) + maxpool(3, 2), 1, {0: DIRECT, 1: JOINED}, id="direct-3x3-pool"),
    pytest.param(
        net(15, 20, 6) + conv(12, stride=2) + maxpool(2, 2), 2, {0: DIRECT, 1: JOINED}, id="direct-stride2-2x2-pool"
    ),
    # a conv writing the next one's input inside its border (plan.border_handovers): after pooled
    # pairs (0 -> 2) and finished sums (3 -> 4 -> 5); not where a route reads the output (5 -> 6)
    pytest.param(
        net(16, 16, 3) + conv(16) + maxpool(2, 2) + conv(32) + conv(16, 1) + conv(24) + conv(8) + conv(16) + route(-2),
        2,
        {0: DIRECT, 2: DIRECT, 4: DIRECT, 6: DIRECT},
        id="direct-handovers",
    ),
    pytest.param(net(11, 10, 8) + conv(12, groups=2), 2, {0: IM2COL}, id="im2col-2-groups"),
    pytest.param(net(47, 45, 64) + conv(16), 1, {0: WINOGRAD}, id="winograd-144-part-tiles"),
    pytest.param(
        net(45, 43, 64) + conv(24) + maxpool(2, 2), 2, {0: WINOGRAD, 1: JOINED}, id="winograd-odd-map-2x2-pool"
    ),
    pytest.param(net(52, 40, 64) + conv(64), 1, {0: WINOGRAD}, id="winograd-130-tiles-64-filters"),
    pytest.param(net(16, 16, 64) + conv(72), 8, {0: WINOGRAD}, id="winograd-batch8"),
    pytest.param(net(36, 40, 64) + conv(16), 1, {0: DIRECT}, id="direct-not-winograd-under-128-tiles"),
    pytest.param(net(16, 16, 64) + conv(72), 1, {0: DIRECT}, id="direct-not-winograd-by-filters-under-256-channels"),
    pytest.param(net(28, 28, 256) + conv(72), 1, {0: WINOGRAD_BY_FILTERS}, id="winograd-by-filters-49-tiles"),
    pytest.param(
        net(15, 13, 256) + conv(64) + maxpool(2, 2),
        3,
        {0: WINOGRAD_BY_FILTERS, 1: JOINED},
        id="winograd-by-filters-odd-map-2x2-pool",
    ),
]


@pytest.mark.parametrize("cfg, batch, steps", CONV_STRATEGIES)
def test_conv_strategy_matches_reference(check, tile_width, cfg, batch, steps):
    check(cfg, batch, steps)


# --------------------------------------------------------------------------- pools

POOLS = [  # (cfg, batch, the plan's steps)
    pytest.param(net(16, 16, 3) + conv(16) + maxpool(2, 2), 1, {1: JOINED}, id="fused-2x2"),
    pytest.param(net(15, 13, 5) + conv(10) + maxpool(2, 2), 3, {1: JOINED}, id="fused-2x2-odd-map"),
    pytest.param(net(15, 13, 5) + conv(10) + maxpool(2, 2, padding=0), 1, {1: JOINED}, id="fused-2x2-no-padding"),
    pytest.param(net(27, 27, 3) + conv(12) + maxpool(3, 2, padding=0), 1, {1: JOINED}, id="fused-3x3-alexnet"),
    pytest.param(net(20, 18, 4) + conv(8) + maxpool(3, 2), 2, {1: JOINED}, id="fused-3x3-window-before-the-map"),
    pytest.param(net(12, 12, 4) + conv(8) + maxpool(3, 1), 1, {1: JOINED}, id="fused-3x3-stride1"),
    pytest.param(net(11, 9, 4) + conv(8) + maxpool(2, 1), 1, {1: JOINED}, id="fused-2x2-stride1"),
    pytest.param(net(17, 16, 4) + conv(8) + maxpool(5, 3, padding=1), 1, {1: JOINED}, id="fused-5x5-stride3"),
    pytest.param(net(16, 16, 3) + conv(8) + route(-1) + maxpool(2, 2), 2, {2: OWN_MAXPOOL}, id="own-2x2"),
    pytest.param(net(15, 13, 3) + conv(8) + route(-1) + maxpool(2, 2), 1, {2: OWN_MAXPOOL}, id="own-2x2-odd-map"),
    pytest.param(
        net(27, 27, 3) + conv(8) + route(-1) + maxpool(3, 2, padding=0), 1, {2: OWN_MAXPOOL}, id="own-3x3-alexnet"
    ),
    pytest.param(
        net(20, 18, 3) + conv(8) + route(-1) + maxpool(3, 2), 2, {2: OWN_MAXPOOL}, id="own-3x3-window-before-the-map"
    ),
    pytest.param(net(11, 9, 3) + conv(8) + route(-1) + maxpool(2, 1), 1, {2: OWN_MAXPOOL}, id="own-2x2-stride1"),
    pytest.param(
        net(17, 16, 3) + conv(8) + route(-1) + maxpool(5, 3, padding=1), 1, {2: OWN_MAXPOOL}, id="own-5x5-stride3"
    ),
    pytest.param(net(14, 12, 3) + maxpool(3, 2), 2, {0: OWN_MAXPOOL}, id="own-on-the-input"),
    pytest.param(
        net(12, 10, 3) + conv(8) + maxpool(2, 1) + route(-1, -2),
        1,
        {1: OWN_MAXPOOL},
        id="own-where-a-route-reads-the-conv",
    ),
    pytest.param(net(16, 14, 3) + conv(8, act="stair") + maxpool(2, 2), 2, {1: OWN_MAXPOOL}, id="own-after-stair"),
    pytest.param(net(20, 18, 3) + conv(8, act="stair") + maxpool(3, 2), 1, {1: OWN_MAXPOOL}, id="own-3x3-after-stair"),
]


@pytest.mark.parametrize("cfg, batch, steps", POOLS)
def test_maxpool_matches_reference(check, tile_width, cfg, batch, steps):
    check(cfg, batch, steps)


AVGPOOLS = [  # (cfg, batch, the plan's steps): a linear 1x1 conv runs on the pooled pixel
    pytest.param(net(11, 9, 3) + conv(8) + AVGPOOL, 3, {1: OWN_AVGPOOL}, id="after-leaky-conv"),
    pytest.param(
        net(11, 9, 6) + conv(8) + conv(12, 1, act="linear") + AVGPOOL, 2, {2: JOINED}, id="first-then-linear-1x1"
    ),
    pytest.param(
        net(12, 12, 3) + conv(8) + maxpool(2, 2) + conv(10, 1, act="linear") + AVGPOOL,
        1,
        {1: JOINED, 3: JOINED},
        id="first-then-linear-1x1-after-fused-maxpool",
    ),
    pytest.param(
        net(8, 8, 4) + conv(8) + conv(6, 1, padding=1, act="linear") + AVGPOOL,
        1,
        {2: OWN_AVGPOOL},
        id="after-padded-linear-1x1",
    ),
    pytest.param(net(1, 1, 4) + conv(8, 1) + AVGPOOL, 2, {1: OWN_AVGPOOL}, id="of-one-pixel"),
]


@pytest.mark.parametrize("cfg, batch, steps", AVGPOOLS)
def test_avgpool_matches_reference(check, cfg, batch, steps):
    check(cfg, batch, steps)


# --------------------------------------------------------------------------- activations

NOT_FUSED_WITH_A_POOL = {"stair"}  # the engine fuses a max pool only after the other activations


def activation_sites(name):
    """The places an activation runs, each a cfg: (id, cfg, batch, the plan's steps)."""
    pool = {1: OWN_MAXPOOL if name in NOT_FUSED_WITH_A_POOL else JOINED}
    return [
        ("conv", net(9, 10, 3) + conv(12, act=name), 1, {}),
        ("conv-2x2-pool", net(12, 14, 3) + conv(16, act=name) + maxpool(2, 2), 2, pool),
        ("conv-2x2-pool-in-tiles", net(12, 16, 3) + conv(20, act=name) + maxpool(2, 2), 1, pool),
        ("conv-3x3-pool", net(13, 12, 3) + conv(10, act=name) + maxpool(3, 2), 1, pool),
        ("winograd-2x2-pool", net(32, 40, 64) + conv(16, act=name) + maxpool(2, 2), 2, {0: WINOGRAD} | pool),
        ("connected", net(3, 4, 5) + connected(24, bn=1, act=name), 2, {}),
        ("shortcut", net(6, 5, 4) + conv(6) + conv(6, act="linear") + shortcut(-2, act=name), 2, {}),
    ]


ACTIVATION_CASES = [
    pytest.param(cfg, batch, steps, id=f"{name}-{site}")
    for name in ACTIVATIONS
    for site, cfg, batch, steps in activation_sites(name)
]


@pytest.mark.parametrize("cfg, batch, steps", ACTIVATION_CASES)
def test_activation_matches_reference(check, cfg, batch, steps):
    check(cfg, batch, steps)


# --------------------------------------------------------------------------- other layers

OTHER_LAYERS = [  # (cfg, batch)
    pytest.param(net(8, 10, 3) + conv(6, stride=2) + connected(20), 1, id="connected-after-a-map"),
    pytest.param(
        net(8, 10, 3) + conv(6, stride=2) + connected(20, bn=1, act="logistic"), 3, id="connected-batch-normalized"
    ),
    pytest.param(
        net(3, 4, 2) + connected(16, bn=1) + DROPOUT + connected(10, act="linear") + COST,
        2,
        id="connected-connected-dropout-cost",
    ),
    pytest.param(
        net(10, 9, 3) + conv(6) + conv(6) + shortcut(-2, act="leaky", alpha=0.5, beta=2.0),
        2,
        id="shortcut-equal-shapes",
    ),
    pytest.param(
        net(16, 20, 3) + conv(12) + conv(24, stride=2) + shortcut(-2, act="relu"),
        1,
        id="shortcut-from-a-larger-map-fewer-channels",
    ),
    pytest.param(
        net(16, 16, 3) + conv(8) + conv(16, stride=2) + route(-2) + shortcut(1, act="leaky"),
        2,
        id="shortcut-from-a-smaller-map-more-channels",
    ),
    pytest.param(net(15, 15, 3) + conv(8) + conv(8, stride=2) + shortcut(-2), 1, id="shortcut-15-into-8"),
    pytest.param(
        net(9, 8, 3) + conv(8) + conv(4, 1) + conv(6, act="relu") + route(-1, -3, -2) + conv(10, 1),
        2,
        id="route-of-three-layers-then-conv",
    ),
    pytest.param(net(9, 8, 3) + conv(8) + conv(4) + route(0, 1), 1, id="route-absolute-indices"),
    pytest.param(net(9, 8, 3) + conv(8) + conv(4) + route(-2) + conv(5), 1, id="route-of-one-layer"),
    pytest.param(
        net(4, 4, 3) + conv(12, 1, act="linear") + softmax(groups=3, temperature=0.5),
        2,
        id="softmax-groups-temperature-spatial",
    ),
    pytest.param(
        net(10, 10, 3) + conv(8) + conv(20, 1, act="linear") + AVGPOOL + softmax(temperature=2.0),
        3,
        id="softmax-classifier-head",
    ),
    pytest.param(
        net(6, 6, 3) + conv(4, stride=2) + connected(30, act="linear") + softmax(groups=5),
        1,
        id="softmax-groups-after-connected",
    ),
]


@pytest.mark.parametrize("cfg, batch", OTHER_LAYERS)
def test_layer_matches_reference(check, cfg, batch):
    check(cfg, batch)
