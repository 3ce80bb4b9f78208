"""The engine's forward pass, on its compiled and on its portable kernels, against the slow numpy
reference and OpenCV's darknet importer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import engine
from engine import plan
import cfg_builder as cfgs
from support import CFG_DIR, MODEL_CFGS
from reference import reference_forward

TOLERANCE = 1e-5  # on probabilities; OpenCV itself agrees with darknet to ~6e-6

pytestmark = pytest.mark.usefixtures("kernel_set")  # every test with both kernel sets


def random_image(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def check_close(ours, theirs):
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < TOLERANCE
    assert list(np.argsort(-ours)[:5]) == list(np.argsort(-theirs)[:5])


@pytest.mark.parametrize("name", MODEL_CFGS)
def test_engine_matches_numpy_reference(name, random_weights):
    weights = random_weights(name)
    net = engine.Network.load(CFG_DIR / f"{name}.cfg", weights)
    w, h = net.input_size
    image = random_image(h, w)
    probs = net.predict(image)
    expected = reference_forward(net.spec, weights, image)
    assert probs.shape == (1000,)
    assert abs(probs.sum() - 1) < 1e-4
    check_close(probs, expected.astype(np.float32))


OPENCV_CFGS = [n for n in MODEL_CFGS if n != "resnet18"]  # OpenCV cannot add unequal shortcuts


def opencv_forward(cfg, weights, image):
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    blob = np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32)
    net.setInput(blob)
    return net.forward().reshape(-1)


@pytest.mark.parametrize("name", OPENCV_CFGS)
def test_engine_matches_opencv(name, random_weights):
    cfg, weights = CFG_DIR / f"{name}.cfg", random_weights(name)
    net = engine.Network.load(cfg, weights)
    w, h = net.input_size
    image = random_image(h, w, seed=3)
    check_close(net.predict(image), opencv_forward(cfg, weights, image))


def test_batch_equals_single_images(random_weights):
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    batch = np.stack([random_image(224, 224, seed=s) for s in range(5)])
    together = net.predict(batch)
    assert together.shape == (5, 1000)
    for image, row in zip(batch, together):
        np.testing.assert_allclose(net.predict(image), row, atol=1e-6)


def test_keep_going_abandons_a_pass_between_layers(random_weights):
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    image = random_image(224, 224, seed=3)
    whole = net.predict(image)
    asked = []

    def keep_going():
        asked.append(len(asked))
        return len(asked) <= 5

    assert net.predict(image, keep_going) is None
    assert len(asked) == 6  # asked before each layer, stopped before the sixth
    np.testing.assert_array_equal(net.predict(image), whole)  # the buffers are fine afterwards
    asked.clear()
    np.testing.assert_array_equal(net.predict(image, lambda: asked.append(1) or True), whole)
    assert len(asked) == len(net.spec.layers)
    clf = engine.Classifier(net)
    assert clf.classify(image, keep_going=lambda: False) is None


@pytest.mark.parametrize("size", [(160, 200), (97, 131), (224, 298)])
def test_fully_convolutional_net_takes_other_sizes(size, random_weights):
    weights = random_weights("tiny")
    net = engine.Network.load(CFG_DIR / "tiny.cfg", weights)
    image = random_image(*size, seed=7)
    check_close(
        net.predict(image),
        reference_forward(
            net.spec.__class__(net.spec.path, size[1], size[0], 3, net.spec.layers, net.spec.shapes_for(*size)),
            weights,
            image,
        ).astype(np.float32),
    )


def test_connected_network_rejects_other_sizes_naming_the_layer(random_weights):
    net = engine.Network.load(CFG_DIR / "alexnet.cfg", random_weights("alexnet"))
    with pytest.raises(engine.ShapeError, match=r"alexnet\.cfg:\d+.*\[connected\]"):
        net.predict(random_image(200, 200))


def test_wrong_channel_count_is_a_clear_error(random_weights):
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    with pytest.raises(engine.ShapeError, match="tiny.cfg"):
        net.predict(np.zeros((224, 224, 4), np.float32))


@pytest.mark.parametrize("layer", [0, 1, 5, 17, 18, 19])
def test_features_of_any_layer_match_the_reference(layer, random_weights):
    """Layer outputs for transfer learning, including a conv whose max pool is normally fused
    (layer 0) and the classifier conv whose average pool normally runs first (layer 19)."""
    import dataclasses

    weights = random_weights("tiny")
    net = engine.Network.load(CFG_DIR / "tiny.cfg", weights)
    image = random_image(64, 80, seed=11)
    feats = net.features(image, layer)
    assert feats.shape == (1,) + net.spec.shapes_for(64, 80)[layer]
    cut = dataclasses.replace(
        net.spec,
        width=80,
        height=64,
        layers=net.spec.layers[: layer + 1],
        shapes=net.spec.shapes_for(64, 80)[: layer + 1],
    )
    expected = reference_forward(cut, weights, image, partial=True)
    np.testing.assert_allclose(feats[0].transpose(2, 0, 1).reshape(-1), expected, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(net.predict(image), net.predict(image))  # the full plan is unaffected


STRATEGY_CFG = (
    cfgs.net(32, 32)
    + cfgs.conv(64)
    + cfgs.maxpool(2, 2)
    + cfgs.conv(72)
    + cfgs.maxpool(2, 2)
    + cfgs.conv(40, bn=0, act="relu")
    + cfgs.AVGPOOL
    + cfgs.softmax()
)


@pytest.mark.parametrize(
    "batch, middle, last",
    [(1, "DirectStep", "DirectStep"), (8, "WinogradStep", "DirectStep"), (9, "WinogradStep", "DirectStep")],
)
def test_every_conv_strategy_matches_the_reference(batch, middle, last, tmp_path):
    """The conv layer strategies, each with a fused max pool where there is one: the RGB first
    layer (direct, the pool in its tiles), 64 channels on 16x16 (direct at batch 1: 16 tiles are
    too few for Winograd; Winograd by blocks of tiles at batch 8 and 9), and the 8x8 map (direct,
    its 72 input channels and 40 filters: a part-empty last block of 16)."""
    cfg = tmp_path / "strategies.cfg"
    cfg.write_text(STRATEGY_CFG)
    weights = tmp_path / "strategies.weights"
    engine.write_random_weights(cfg, weights, seed=5)
    net = engine.Network.load(cfg, weights)
    kinds = [type(step).__name__ for step in net.plan(batch, 32, 32)]
    assert (kinds[0], kinds[2], kinds[4]) == ("DirectStep", middle, last)
    images = np.stack([random_image(32, 32, seed=20 + i) for i in range(batch)])
    probs = net.predict(images)
    for image, row in zip(images, probs):
        expected = reference_forward(net.spec, weights, image).astype(np.float32)
        assert np.abs(row - expected).max() < TOLERANCE


HEAD_CFG = """[net]
width=24
height=20
channels=3

[convolutional]
filters=24
size=3
stride=2
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=50
size={size}
stride=1
{padding}
batch_normalize=1
activation={activation}

[avgpool]
{route}
[softmax]
"""


@pytest.mark.parametrize(
    "size, padding, activation, route, pooled_first",
    [
        (1, "pad=1", "linear", "", True),  # pad=1 on a 1x1 kernel means no padding
        (1, "pad=1", "leaky", "", False),  # not linear: pooling first would change the answer
        (3, "pad=1", "linear", "", False),
        (1, "padding=1", "linear", "", False),  # a padded 1x1 conv has bias-only borders
        (1, "pad=1", "linear", "\n[route]\nlayers=-2\n\n[avgpool]\n", False),
    ],
)  # a route reads the conv too
def test_average_pool_runs_first_only_where_it_gives_the_same_numbers(
    size, padding, activation, route, pooled_first, tmp_path
):
    cfg = tmp_path / "head.cfg"
    cfg.write_text(HEAD_CFG.format(size=size, padding=padding, activation=activation, route=route))
    weights = tmp_path / "head.weights"
    engine.write_random_weights(cfg, weights, seed=9)
    net = engine.Network.load(cfg, weights)
    assert (plan.joins(net.spec)[1] == {1}) == pooled_first
    for seed in range(3):
        image = random_image(20, 24, seed=40 + seed)
        expected = reference_forward(net.spec, weights, image).astype(np.float32)
        assert np.abs(net.predict(image) - expected).max() < TOLERANCE


def test_replicas_run_on_two_threads_at_once(random_weights):
    """A replica shares the prepared weights but not the buffers: two threads, one network each,
    give the answers one thread gives (where Numba's threading layer allows concurrent kernels)."""
    import threading

    from engine.parallel import concurrent_ok, set_threads

    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    twin = net.replica()
    assert twin.params is net.params and twin.plan(1, 64, 64)[0].out is not net.plan(1, 64, 64)[0].out
    images = [random_image(64, 64, seed=s) for s in (30, 31)]
    alone = [net.predict(image) for image in images]
    if not concurrent_ok():
        pytest.skip("Numba's threading layer cannot run kernels on two threads at once")
    together = [None, None]

    def run(i, network):
        set_threads(1)
        for _ in range(3):
            together[i] = network.predict(images[i])

    threads = [threading.Thread(target=run, args=(i, n)) for i, n in enumerate((net, twin))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(together, alone):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_softmax_groups_temperature_and_spatial_input_match_the_reference(tmp_path):
    """[softmax] over a 4x4x12 map (darknet flattens it channel-major) in 3 groups at t=0.5."""
    cfg = tmp_path / "soft.cfg"
    cfg.write_text(
        "[net]\nwidth=4\nheight=4\nchannels=3\n\n[convolutional]\nfilters=12\nsize=1\n"
        "stride=1\nactivation=linear\n\n[softmax]\ngroups=3\ntemperature=0.5\n"
    )
    weights = tmp_path / "soft.weights"
    engine.write_random_weights(cfg, weights, seed=9)
    net = engine.Network.load(cfg, weights)
    images = np.stack([random_image(4, 4, seed=40 + i) for i in range(2)])
    probs = net.predict(images)
    assert probs.shape == (2, 192)
    for image, row in zip(images, probs):
        np.testing.assert_allclose(row.reshape(3, 64).sum(axis=1), 1, atol=1e-5)
        np.testing.assert_allclose(row, reference_forward(net.spec, weights, image), atol=1e-6)
