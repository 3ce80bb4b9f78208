"""The direct convolution's two tile widths: TDN_SIMD forcing one, the tuning record the compile
step writes (engine/tile_tuning.py) and the plans reading it, and the machine code of each width.
Each width's answers against the reference: tests/test_kernels.py (tile_width)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from numba.core import config as numba_config

import engine
from engine import tile_tuning
from engine.kernels import cache, tuning
from engine.kernels.peak import widths
from engine.weights import random_params
from support import CFG_DIR, shared_path
from tdn_cli.main import main


@pytest.fixture
def record(tmp_path, monkeypatch):
    """The tuning record in a folder of the test's own, TDN_SIMD unset (the machine's choice)."""
    path = tmp_path / tuning.RECORD
    monkeypatch.setattr(tuning, "record_path", lambda: path)
    monkeypatch.setenv(tuning.ENV, "auto")
    return path


def direct_kernels(network, h, w) -> dict[str, str]:
    return {step.tile_key: step.kernel for step in network.plan(1, h, w) if type(step).__name__ == "DirectStep"}


def test_without_a_record_every_conv_runs_8_float_tiles(record):
    assert tuning.read_record() is None
    assert tuning.lanes_for("224x224x3-16-3/1-pool") == 8


def test_the_record_chooses_per_shape_and_the_default_for_the_rest(record):
    tuning.write_record({"a": 16, "b": 8}, 16, {})
    assert [tuning.lanes_for(key) for key in ("a", "b", "unmeasured")] == [16, 8, 16]


def test_forcing_beats_the_record_and_the_innermost_force_wins(record, monkeypatch):
    tuning.write_record({"a": 16}, 16, {})
    monkeypatch.setenv(tuning.ENV, "avx2")
    assert tuning.lanes_for("a") == 8
    with tuning.forced(16):
        assert tuning.lanes_for("a") == 16
        with tuning.forced(8):
            assert tuning.lanes_for("a") == 8
        assert tuning.lanes_for("a") == 16
    assert tuning.lanes_for("a") == 8


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r.update(fingerprint="another machine"),
        lambda r: r.update(version=0),
        lambda r: r.update(default=12),
        lambda r: r.update(default=None),
        lambda r: r["layers"].update(a=32),
        lambda r: r.update(layers=[16]),
    ],
    ids=["another-cpu-or-kernels", "old-version", "unknown-width", "no-default", "unknown-layer-width", "a-list"],
)
def test_a_record_for_something_else_is_ignored(record, damage):
    tuning.write_record({"a": 16}, 16, {})
    written = json.loads(record.read_text())
    damage(written)
    record.write_text(json.dumps(written))
    assert tuning.read_record() is None and tuning.lanes_for("a") == 8


def test_a_damaged_record_is_ignored(record):
    record.write_text('{"version": 1, "finger')
    assert tuning.lanes_for("a") == 8


def test_the_record_is_keyed_by_the_cpu_and_the_kernel_sources(record):
    tuning.write_record({}, 8, {})
    assert json.loads(record.read_text())["fingerprint"] == cache.fingerprint()


def test_a_wider_tile_wins_a_shape_only_by_more_than_noise():
    found = {
        "clear": {8: 1.00, 16: 0.90},
        "noise": {8: 1.00, 16: 0.99},
        "slower": {8: 1.00, 16: 1.60},
        "also": {8: 2.00, 16: 1.50},
    }
    layers, default = tile_tuning.choose(found)
    assert layers == {"clear": 16, "noise": 8, "slower": 8, "also": 16}
    assert default == 8  # a tie, 2 shapes each: the narrower width


def test_the_default_follows_the_count_of_shapes_won_not_the_largest_layer():
    found = {f"small{i}": {8: 1.0, 16: 0.8} for i in range(3)}
    found["huge"] = {8: 10.0, 16: 30.0}
    assert tile_tuning.choose(found)[1] == 16


def test_nothing_measured_leaves_the_default():
    assert tile_tuning.choose({}) == ({}, tuning.DEFAULT_LANES)


def test_a_cpu_of_one_width_records_it_without_measuring(record, monkeypatch):
    monkeypatch.setattr(tile_tuning, "host_widths", lambda: (8,))
    monkeypatch.setattr(tile_tuning, "measure", lambda **kw: pytest.fail("measured"))
    tile_tuning.tune()
    assert tuning.read_record()["layers"] == {} and tuning.lanes_for("anything") == 8


def test_tuning_measures_every_direct_conv_and_the_plans_follow_the_record(record, monkeypatch):
    """Both widths run on any machine (16 floats as two halves without AVX-512): the tuner's
    figures for each direct conv of the cfg, and a network planned afterwards runs each shape at
    the width the record gives it."""
    from engine import kernels

    cfg = CFG_DIR / "tiny.cfg"
    kernels.use("portable")  # the plumbing, not the speed: the portable set runs both names
    monkeypatch.setattr(tile_tuning, "host_widths", lambda: (8, 16))
    monkeypatch.setattr(tile_tuning, "shipped_cfgs", lambda: [cfg])
    monkeypatch.setattr(tile_tuning, "ROUNDS", 1)
    found = tile_tuning.measure(widths=(8, 16), rounds=1)
    spec = engine.parse_network(cfg)
    network = engine.Network(spec, random_params(spec))
    with tuning.forced(8):
        shapes = direct_kernels(network, spec.height, spec.width)
    assert set(found) == set(shapes) and len(found) >= 10  # Tiny: 15 direct convs of 14 shapes
    assert all(set(times) == {8, 16} and min(times.values()) > 0 for times in found.values())

    half = sorted(shapes)[::2]
    tuning.write_record({key: 16 if key in half else 8 for key in shapes}, 8, {})
    network = engine.Network(spec, random_params(spec))
    chosen = direct_kernels(network, spec.height, spec.width)
    assert chosen == {key: "direct_conv_wide" if key in half else "direct_conv" for key in shapes}


def test_each_width_gives_tinys_answers_to_the_bit(tiny_weights, kernel_set):
    """Every output is the same chain of FMAs at either width (a lane is a filter), so the
    16-float tiles must reproduce the 8-float ones exactly, on the real weights and a photo."""
    photo = engine.load_image(shared_path("darknet", "data", "dog.jpg"))
    answers = {}
    for lanes in (8, 16):
        with tuning.forced(lanes):
            network = engine.Network.load(CFG_DIR / "tiny.cfg", tiny_weights)
            image = engine.fit_input(photo, "min", network.spec.height, network.spec.width, free_size=False)
            answers[lanes] = network.predict(image)
            kinds = set(direct_kernels(network, network.spec.height, network.spec.width).values())
            assert kinds == {tuning.DIRECT_KERNEL[lanes]}
    np.testing.assert_array_equal(answers[8], answers[16])


@pytest.mark.skipif(16 not in widths(), reason="this CPU has no AVX-512")
@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="no machine code under NUMBA_DISABLE_JIT")
def test_the_16_float_tile_keeps_its_vectors_whole_in_zmm_registers():
    """LLVM splits 512-bit vectors into 256-bit halves on CPUs it tunes to prefer them unless the
    function asks otherwise: the 16-float tile's FMAs must be on zmm registers, the 8-float
    tile's on ymm. (The kernels themselves come from Numba's cache, whose code cannot be read:
    their tiles are compiled here, uncached, as the same generated functions.)"""
    from engine.kernels import direct

    for lanes, register in ((16, "zmm"), (8, "ymm")):
        tile = direct.TILE_FOR[lanes]
        pixels = direct.TILE_PIXELS_FOR[lanes]
        data = np.ones(4096, np.float32)
        out = np.zeros(4096, np.float32)
        tile(data, (0,) * pixels, 64, 1, 16, data, 0, out, 0, 16, out, 0, 16, data[:16], 16, np.float32(1), 0)
        assert out[:16].tolist() == [16.0] * 16  # 16 products of ones, for each filter
        asm = tile.inspect_asm(tile.signatures[0])
        fmas = re.findall(r"vfmadd\w+\s+[^\n]*", asm)
        assert fmas and all(register in line for line in fmas), (lanes, fmas[:3])


def test_bad_tdn_simd_or_tdn_kernels_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv(tuning.ENV, "avx9")
    assert main(["summary", str(CFG_DIR / "tiny.cfg")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "tdn: error: TDN_SIMD='avx9': choose one of auto, avx2, avx512"
    monkeypatch.setenv(tuning.ENV, "auto")
    monkeypatch.setenv("TDN_KERNELS", "fastest")
    assert main(["summary", str(CFG_DIR / "tiny.cfg")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "tdn: error: TDN_KERNELS='fastest': choose one of auto, portable, compiled"


def test_info_says_which_widths_the_convs_run(record, capsys):
    tuning.write_record({"a": 16, "b": 16, "c": 8}, 16, {})
    assert main(["info"]) == 0
    assert "  tiles   16-float vectors on 2 of 3 measured layer shapes, 16-float elsewhere" in capsys.readouterr().out


def test_a_network_planned_before_the_record_takes_it_up_at_its_next_pass(record):
    """A running app plans on 8-float tiles until the background compile has measured the
    machine: the record's arrival replans, and the answers stay the same."""
    spec = engine.parse_network(CFG_DIR / "tiny.cfg")
    network = engine.Network(spec, random_params(spec))
    image = np.random.default_rng(0).random((1, spec.height, spec.width, 3), np.float32)
    before = network.predict(image)
    shapes = direct_kernels(network, spec.height, spec.width)
    assert set(shapes.values()) == {"direct_conv"}
    tuning.write_record(dict.fromkeys(shapes, 16), 16, {})
    after = network.predict(image)
    assert set(direct_kernels(network, spec.height, spec.width).values()) == {"direct_conv_wide"}
    assert network.plans_held == 1  # the old plan and its buffers are gone
    np.testing.assert_array_equal(before, after)


HALVES = """
import re
import numpy as np
from engine.kernels import direct
tile = direct.TILE_FOR[16]
data = np.linspace(0, 1, 4096).astype(np.float32)
out = np.zeros(4096, np.float32)
tile(data, tuple(range(0, 64, 8)), 64, 1, 16, data, 0, out, 0, 16, out, 0, 16, data[:16], 16, np.float32(1), 0)
asm = tile.inspect_asm(tile.signatures[0])
fmas = re.findall(r"vfmadd\\w+\\s+[^\\n]*", asm)
print(len(fmas), sum("ymm" in f for f in fmas), "zmm" in asm)
np.save(__import__("sys").argv[1], out[: 8 * 16])
"""


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="no machine code under NUMBA_DISABLE_JIT")
def test_on_a_cpu_without_avx512_the_16_float_tile_runs_as_two_8_float_halves(tmp_path):
    """Numba compiling for an AVX2 CPU (Haswell: NUMBA_CPU_NAME, as it would on such a machine):
    every 16-float FMA becomes two on ymm registers, none on zmm, and the sums are the 8-float
    tile's own (numpy's, per filter, in the same order)."""
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        NUMBA_CPU_NAME="haswell",
        NUMBA_CPU_FEATURES="+avx,+avx2,+fma,+sse4.2,+popcnt,+f16c,+bmi,+bmi2",
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
    )
    saved = tmp_path / "sums.npy"
    done = subprocess.run([sys.executable, "-c", HALVES, str(saved)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    fmas, on_ymm, zmm = done.stdout.split()
    assert int(fmas) == int(on_ymm) == 2 * 8 and zmm == "False"  # 8 pixels, two halves each
    data = np.linspace(0, 1, 4096).astype(np.float32)
    weights = data[:256].reshape(16, 16)  # run 16 steps of 16 filters
    expected = np.stack([data[x : x + 16] @ weights for x in range(0, 64, 8)])  # mode 0: raw sums, no bias
    np.testing.assert_allclose(np.load(saved).reshape(8, 16), expected, rtol=1e-6)
