"""engine/plan.py: what runs together, which step runs each conv, and plans kept per thread count."""
from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import plan
from engine.parallel import max_threads, set_threads, threads
from engine.weights import random_params
from support import CFG_DIR

POOL_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
filters=8
size=3
stride=1
pad=1
activation={activation}

[maxpool]
size=2
stride=2
{route}
[convolutional]
filters=4
size=1
stride=1
activation=linear

[avgpool]

[softmax]
"""


def network(text: str) -> engine.Network:
    spec = engine.parse_network("test.cfg", text)
    return engine.Network(spec, random_params(spec, seed=2))


@pytest.mark.parametrize("activation, route, fused", [
    ("leaky", "", {0}),
    ("stair", "", set()),                                   # stair is not monotonic: pool after it
    ("leaky", "\n[route]\nlayers=-2\n", set()),             # a route reads the conv's own output
])
def test_a_max_pool_joins_the_conv_before_it_as_the_layers_declare(activation, route, fused):
    net = network(POOL_CFG.format(activation=activation, route=route))
    joined, pooled_first = plan.joins(net.spec)
    assert joined == fused
    head = len(net.spec.layers) - 3                         # the linear 1x1 conv before [avgpool]
    assert pooled_first == {head}
    steps = net.plan(1, 16, 16)
    assert (type(steps[0]).__name__, steps[1].__name__) == (("DirectStep", "_already_done") if fused
                                                            else ("DirectStep", "maxpool"))
    kept = net.plan(1, 16, 16, stop=0)                      # features of layer 0: never pooled away
    assert kept[0].out.shape == (1, 16, 16, 8)


def test_tiny_darknets_conv_steps():
    """Which step runs each of Tiny Darknet's convs at 224x224, batch 1, on 2 threads: the
    thresholds in plan.py as they apply to the network the app is built around."""
    spec = engine.parse_network(CFG_DIR / "tiny.cfg")
    net = engine.Network(spec, random_params(spec))
    shapes = spec.input_shapes()
    kinds = {i: plan.conv_step_type(layer, shapes[i], spec.shapes[i], 1, None).__name__
             for i, layer in enumerate(spec.layers) if layer.kind == "convolutional"}
    assert set(kinds.values()) == {"DirectStep"}            # 3-64 input channels: direct throughout
    assert plan.conv_step_type(spec.layers[2], shapes[2], spec.shapes[2], 1,
                               engine.layers.base.Pool(3, 2, 0)).__name__ == "DirectStep"


def test_winograd_takes_the_layers_of_many_channels():
    """Darknet19 at its 256x256: Winograd by blocks of tiles from 64 input channels on 64x64 and
    32x32 maps, by chunks of filters from 256 on 16x16; direct for the rest (8x8 maps, 1x1s)."""
    spec = engine.parse_network(CFG_DIR / "darknet19.cfg")
    shapes = spec.input_shapes()
    kinds = {i: plan.conv_step_type(layer, shapes[i], spec.shapes[i], 1, None).__name__
             for i, layer in enumerate(spec.layers) if layer.kind == "convolutional"}
    by_kind = {}
    for i, kind in kinds.items():
        by_kind.setdefault(kind, []).append((spec.layers[i].size, shapes[i][0], shapes[i][2]))
    assert {c for size, h, c in by_kind["WinogradStep"]} == {64, 128}
    assert {(h, c) for size, h, c in by_kind["WinogradByFiltersStep"]} == {(16, 256)}
    assert all(size == 1 or c < 64 or h == 8 for size, h, c in by_kind["DirectStep"])


def test_plans_are_kept_per_thread_count(compiled_kernels, random_weights):
    """A plan's scratch and work split are sized by the kernel threads: a plan made on one
    thread is not reused on two (it would run on one of them), and both give the same answer."""
    if max_threads() < 2:
        pytest.skip("needs 2 kernel threads")
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    image = np.random.default_rng(4).random((64, 64, 3), dtype=np.float32)
    before = threads()
    try:
        set_threads(1)
        one = net.plan(1, 64, 64)
        on_one = net.predict(image)
        set_threads(2)
        two = net.plan(1, 64, 64)
        on_two = net.predict(image)
        assert one is not two and net.plan(1, 64, 64) is two
        assert one[0].acc.shape[0] == 1 and two[0].acc.shape[0] == 2
        set_threads(1)
        assert net.plan(1, 64, 64) is one                    # both are kept
    finally:
        set_threads(before)
    np.testing.assert_allclose(on_one, on_two, atol=1e-6)
