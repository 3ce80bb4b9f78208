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


@pytest.mark.parametrize(
    "activation, route, fused",
    [
        ("leaky", "", {0}),
        ("stair", "", set()),  # stair is not monotonic: pool after it
        ("leaky", "\n[route]\nlayers=-2\n", set()),  # a route reads the conv's own output
    ],
)
def test_a_max_pool_joins_the_conv_before_it_as_the_layers_declare(activation, route, fused):
    net = network(POOL_CFG.format(activation=activation, route=route))
    joined, pooled_first = plan.joins(net.spec)
    assert joined == fused
    head = len(net.spec.layers) - 3  # the linear 1x1 conv before [avgpool]
    assert pooled_first == {head}
    steps = net.plan(1, 16, 16)
    assert (type(steps[0]).__name__, steps[1].__name__) == (
        ("DirectStep", "_already_done") if fused else ("DirectStep", "maxpool")
    )
    kept = net.plan(1, 16, 16, stop=0)  # features of layer 0: never pooled away
    assert kept[0].out.shape == (1, 16, 16, 8)


def test_tiny_darknets_conv_steps():
    """Which step runs each of Tiny Darknet's convs at 224x224, batch 1, on 2 threads: the
    thresholds in plan.py as they apply to the network the app is built around."""
    spec = engine.parse_network(CFG_DIR / "tiny.cfg")
    shapes = spec.input_shapes()
    kinds = {
        i: plan.conv_step_type(layer, shapes[i], spec.shapes[i], 1, None).__name__
        for i, layer in enumerate(spec.layers)
        if layer.kind == "convolutional"
    }
    assert set(kinds.values()) == {"DirectStep"}  # 3-64 input channels: direct throughout
    assert (
        plan.conv_step_type(spec.layers[2], shapes[2], spec.shapes[2], 1, engine.layers.base.Pool(3, 2, 0)).__name__
        == "DirectStep"
    )


def test_winograd_takes_the_layers_of_many_channels():
    """Darknet19 at its 256x256: at batch 1, Winograd by blocks of tiles for the 64-channel convs
    of the 64x64 maps (256 tiles) and direct for the rest (32x32 maps have 64 tiles, too few);
    at batch 2, the 32x32 maps' convs too (128 tiles), and the 16x16 maps' 256-channel convs by
    chunks of filters (32 tiles); direct for the 8x8 maps, under 64 channels and the 1x1s."""
    spec = engine.parse_network(CFG_DIR / "darknet19.cfg")
    shapes = spec.input_shapes()

    def by_kind(batch):
        kinds = {}
        for i, layer in enumerate(spec.layers):
            if layer.kind == "convolutional":
                kind = plan.conv_step_type(layer, shapes[i], spec.shapes[i], batch, None).__name__
                kinds.setdefault(kind, set()).add((layer.size, shapes[i][0], shapes[i][2]))
        return kinds

    one, two = by_kind(1), by_kind(2)
    assert one["WinogradStep"] == {(3, 64, 64)} and "WinogradByFiltersStep" not in one
    assert {(h, c) for size, h, c in two["WinogradStep"]} == {(64, 64), (32, 128)}
    assert {(h, c) for size, h, c in two["WinogradByFiltersStep"]} == {(16, 256)}
    assert all(size == 1 or c < 64 or h == 8 for size, h, c in two["DirectStep"])


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
        assert net.plan(1, 64, 64) is one  # both are kept
    finally:
        set_threads(before)
    np.testing.assert_allclose(on_one, on_two, atol=1e-6)


@pytest.mark.parametrize("name, size, batch", [("tiny", 96, 16), ("darknet19", 256, 2)])
def test_a_plan_for_a_batch_runs_fewer_images_split_as_their_own_plan_would(
    compiled_kernels, random_weights, name, size, batch
):
    """A plan for `batch` images also runs fewer (PlanCache keeps one plan per shape), and each
    step splits its work for the images it is given: one image after a batch runs on every
    thread, as a plan of its own would run it (a batch's split gave it whole images per task: one
    thread). The kind of step is the batch's (more tiles can make a conv Winograd's); where it is
    the same, so is the split. Darknet19 at 256x256 runs both kinds of Winograd."""
    if max_threads() < 2:
        pytest.skip("needs 2 kernel threads")
    weights = random_weights(name)
    cfg = CFG_DIR / f"{name}.cfg"
    batched, single = engine.Network.load(cfg, weights), engine.Network.load(cfg, weights)
    images = np.random.default_rng(5).random((batch, size, size, 3), dtype=np.float32)
    everyone = batched.predict(images)
    alone = batched.predict(images[:1])
    assert batched.plans_held == 1  # the batch's plan ran the single image
    expected = single.predict(images[:1])
    np.testing.assert_allclose(alone[0], expected[0], atol=1e-6)
    np.testing.assert_allclose(everyone[0], expected[0], atol=1e-6)
    kinds = set()
    for step, its_own in zip(batched.plan(batch, size, size), single.plan(1, size, size)):
        kinds.add(type(step).__name__)
        if type(step) is not type(its_own):
            continue  # the step kind is chosen for the batch (Winograd: by its tiles)
        if hasattr(step, "split_for"):
            assert step.split_for(1) == its_own.split_for(1)
            assert step.split_for(1)[0] <= step.split_for(batch)[0]  # the scratch, sized for the batch, holds it
        if hasattr(step, "block_for"):
            assert step.block_for(1) == its_own.block_for(1) <= step.block_for(batch)
    assert kinds >= ({"DirectStep", "WinogradStep", "WinogradByFiltersStep"} if name == "darknet19" else {"DirectStep"})


@pytest.mark.parametrize("threads_, blocks, weight_bytes", [(1, 2, 10), (2, 8, 10**6), (2, 32, 10), (4, 5, 10**7)])
def test_no_smaller_batch_takes_a_taller_band_or_a_bigger_block(threads_, blocks, weight_bytes):
    """A step's scratch is sized for its plan's batch and reused for fewer images: that holds
    because fewer images never split into taller bands (direct, im2col) or bigger blocks of
    Winograd tiles."""
    for final_h in (1, 3, 7, 14, 28, 56, 112, 300):
        for raw_row in (0, 7168, 200000):
            for batch in (2, 3, 16, 64):
                whole = plan.direct_split(final_h, weight_bytes, 40000, blocks, batch, threads_, raw_row)
                for n in range(1, batch):
                    part = plan.direct_split(final_h, weight_bytes, 40000, blocks, n, threads_, raw_row)
                    assert part[0] <= whole[0] and part[1] == whole[1]
                    assert plan.row_band(final_h, 56, 200, 2, n, threads_) <= plan.row_band(
                        final_h, 56, 200, 2, batch, threads_
                    )
                    assert plan.winograd_block(n * final_h, threads_) <= plan.winograd_block(batch * final_h, threads_)


def test_a_conv_writes_the_next_convs_input_inside_its_border(monkeypatch, random_weights):
    """Tiny at 224: convs 0, 4, 6, 9 and 11 write their outputs inside the zero border of the
    next conv's input (0 through its pool); the 14x14 ones do not (their tiles run on across
    row ends, which a border would break), nor does a conv whose output is kept as a feature.
    The answers are those of the same network with every input copied into its border."""
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    spec = net.spec
    last = len(spec.layers) - 1
    fused, pooled_first = plan.joins(spec)
    handovers = plan.border_handovers(
        spec, 1, spec.shapes, spec.input_shapes(), last, frozenset({last}), fused, pooled_first
    )
    assert handovers == {0: 1, 4: 1, 6: 1, 9: 1, 11: 1}
    steps = net.plan(1, 224, 224)
    for producer, consumer in ((0, 2), (4, 5), (6, 7), (9, 10), (11, 12)):
        assert steps[consumer].padded is steps[producer].out
        assert steps[producer].out.shape[1:3] == tuple(d + 2 for d in steps[producer].inside.shape[1:3])
    assert steps[15].padded is not steps[14].out and steps[14].border == 0
    image = np.random.default_rng(6).random((1, 224, 224, 3), dtype=np.float32)
    probs, features = net.predict(image), net.features(image, 4)  # 4 kept: written without a border
    assert features.shape == (1, 56, 56, 16) and net.plan(1, 224, 224, stop=4, keep=frozenset({4}))[4].border == 0
    monkeypatch.setattr(plan, "border_handovers", lambda *args: {})
    copied = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    assert all(getattr(step, "border", 0) == 0 for step in copied.plan(1, 224, 224))
    np.testing.assert_array_equal(probs, copied.predict(image))
    np.testing.assert_array_equal(features, copied.features(image, 4))
