"""darknet .weights files: header versions, exact sizes, round trips and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from support import CFG_DIR
from engine.weights import count_params, random_params, read_weights

TINY = CFG_DIR / "tiny.cfg"


def test_round_trip_is_byte_exact(tmp_path, random_weights):
    spec = engine.parse_network(TINY)
    original = random_weights("tiny")
    header, params = read_weights(original, spec)
    copy = tmp_path / "copy.weights"
    engine.write_weights(copy, spec, params, seen=header.seen)
    assert copy.read_bytes() == original.read_bytes()
    assert (header.major, header.minor, header.revision) == (0, 2, 0)
    assert copy.stat().st_size == 20 + 4 * count_params(spec)


def test_old_header_with_32_bit_seen(tmp_path):
    spec = engine.parse_network(TINY)
    path = tmp_path / "old.weights"
    params = random_params(spec, seed=4)
    engine.write_weights(path, spec, params, seen=123456, version=(0, 1, 0))
    header, loaded = read_weights(path, spec)
    assert header.seen == 123456 and not header.wide_seen
    assert path.stat().st_size == engine.expected_weights_bytes(TINY) == 4_185_968
    for a, b in zip(params, loaded):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_truncated_weights_name_the_layer(tmp_path, random_weights):
    data = random_weights("tiny").read_bytes()
    path = tmp_path / "short.weights"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        engine.WeightsError,
        match=r"short\.weights: ends inside layer \d+ \[convolutional\] "
        r"\(\S*tiny\.cfg:\d+\).*needs 4185972 bytes, the file has 2092986",
    ):
        engine.Network.load(TINY, path)


def test_oversized_weights_are_rejected(tmp_path, random_weights):
    path = tmp_path / "long.weights"
    path.write_bytes(random_weights("tiny").read_bytes() + b"\0" * 8)
    with pytest.raises(engine.WeightsError, match="8 bytes left over.*needs 4185972 bytes, the file has 4185980"):
        engine.Network.load(TINY, path)


def test_weights_for_another_cfg_are_rejected(random_weights):
    with pytest.raises(engine.WeightsError, match="darknet.cfg"):
        engine.Network.load(CFG_DIR / "darknet.cfg", random_weights("tiny"))


def test_missing_and_tiny_files(tmp_path):
    with pytest.raises(engine.WeightsError, match="cannot read weights"):
        engine.Network.load(TINY, tmp_path / "none.weights")
    (tmp_path / "x.weights").write_bytes(b"abc")
    with pytest.raises(engine.WeightsError, match="3 bytes is too short"):
        engine.Network.load(TINY, tmp_path / "x.weights")


def test_write_is_atomic_on_error(tmp_path):
    spec = engine.parse_network(TINY)
    params = random_params(spec)
    params[2]["weights"] = params[2]["weights"][:-1]
    with pytest.raises(engine.WeightsError, match="layer 2"):
        engine.write_weights(tmp_path / "bad.weights", spec, params)
    assert list(tmp_path.iterdir()) == []


def test_batchnorm_is_folded_exactly_as_darknet_normalises(tmp_path):
    """A 1x1 conv with batch norm on a known input: darknet's formula by hand."""
    cfg = tmp_path / "bn.cfg"
    cfg.write_text(
        "[net]\nwidth=1\nheight=1\nchannels=2\n[convolutional]\nfilters=1\nsize=1\n"
        "batch_normalize=1\nactivation=linear\n"
    )
    spec = engine.parse_network(cfg)
    params = [
        {
            "biases": np.array([0.5], np.float32),
            "scales": np.array([2.0], np.float32),
            "rolling_mean": np.array([1.0], np.float32),
            "rolling_variance": np.array([4.0], np.float32),
            "weights": np.array([3.0, -1.0], np.float32),
        }
    ]
    engine.write_weights(tmp_path / "bn.weights", spec, params)
    net = engine.Network.load(cfg, tmp_path / "bn.weights")
    out = net.predict(np.array([[[0.25, 0.5]]], np.float32))
    conv = 3.0 * 0.25 - 1.0 * 0.5
    assert out[0] == pytest.approx((conv - 1.0) / (2.0 + 1e-6) * 2.0 + 0.5, abs=1e-6)
