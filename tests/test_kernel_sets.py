"""The two kernel sets kernel by kernel, where whole networks leave gaps: every activation, a max
pool no conv can fuse, shortcuts between unequal shapes, and the mode switch itself."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import kernels
from engine.activations import ACTIVATIONS
from engine.kernels import portable, tuning

import cfg_builder as cfgs
from reference import ACT, reference_forward


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_matches_the_compiled_one(name, compiled_cache):
    """Portable activations against the compiled kernel's (darknet's formulas as Numba compiles
    them), over values around every branch point of every activation."""
    kernels.use("compiled")
    try:
        values = np.concatenate([np.linspace(-6, 6, 481), [-4, -1, 0, 1, 4, -0.5, 2.5, 3.0]]).astype(np.float32)
        code = ACTIVATIONS[name]
        compiled = values.reshape(1, -1).copy()
        kernels.bias_activate(compiled, np.zeros(values.size, np.float32), code)
        ours = portable.activate_array(values.copy(), code)
        np.testing.assert_allclose(ours, compiled[0], rtol=1e-6, atol=1e-7)
        if name in ACT:  # and the test reference's formula
            np.testing.assert_allclose(ours, ACT[name](values.astype(np.float64)), rtol=1e-6, atol=1e-7)
    finally:
        kernels.use("portable")


UNFUSED_CFG = (
    cfgs.net(16, 20)
    + cfgs.conv(12, bn=0)
    + cfgs.route(-1)
    + cfgs.maxpool(3, 2)
    + cfgs.conv(12, 1, bn=0, act="relu")
    + cfgs.shortcut(-3)
    + cfgs.conv(24, stride=2, bn=0, act="logistic")
    + cfgs.shortcut(-2, "leaky")
    + cfgs.AVGPOOL
    + cfgs.softmax()
)


@pytest.mark.usefixtures("kernel_set")
def test_unfused_maxpool_and_unequal_shortcuts_match_the_reference(tmp_path):
    """A [maxpool] after a [route] (nothing to fuse into), a shortcut of equal shapes and one
    from a larger map with fewer channels (darknet samples it with a stride)."""
    cfg = tmp_path / "unfused.cfg"
    cfg.write_text(UNFUSED_CFG)
    weights = tmp_path / "unfused.weights"
    engine.write_random_weights(cfg, weights, seed=4)
    net = engine.Network.load(cfg, weights)
    names = [
        type(step).__name__ if not callable(step) or hasattr(step, "layer") else step.__name__
        for step in net.plan(1, 16, 20)
    ]
    assert names[2] == "maxpool"  # the pool runs as a step of its own
    for seed in range(2):
        image = np.random.default_rng(seed).random((16, 20, 3), dtype=np.float32)
        expected = reference_forward(net.spec, weights, image).astype(np.float32)
        np.testing.assert_allclose(net.predict(image), expected, atol=1e-5)


def test_mode_switch_rebinds_every_kernel(compiled_cache):
    kernels.use("portable")
    assert all(getattr(kernels, n) is getattr(portable, n) for n in kernels.NAMES)
    assert kernels.status().path == "portable" and kernels.status().mode == "portable"
    kernels.use("compiled")
    try:
        assert all(getattr(kernels, n) is kernels.compiled_kernels()[n] for n in kernels.NAMES)
        assert kernels.status().path == "compiled"
    finally:
        kernels.use("portable")
    with pytest.raises(ValueError, match="unknown kernel mode"):
        kernels.use("fast")


def test_the_stamps_follow_every_compiled_module():
    """A compiled kernel's stamp goes stale when its module changes (an upgrade): every module
    that COMPILED_IN names, and every module of the package they import (vectors.py's
    operations are compiled into the tile), is among the sources the stamps' fingerprint reads.
    direct.py was missing: after a change to it alone, the stamps said direct_conv was in the
    cache and the app compiled it in the middle of classifying."""
    import ast

    from engine import kernels
    from engine.kernels import cache

    def imported(module: str) -> set[str]:
        tree = ast.parse((cache.KERNELS_DIR / f"{module}.py").read_text())
        return {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        }

    modules, todo = set(), set(kernels.COMPILED_IN.values())
    while todo:
        module = todo.pop()
        modules.add(module)
        todo |= imported(module) - modules
    assert "vectors" in modules
    assert {f"{module}.py" for module in modules} == {source.name for source in cache.KERNEL_SOURCES}


def test_the_compile_specimens_call_every_kernel(monkeypatch):
    """engine.compile compiles each kernel by running the specimen networks through it, and a
    kernel they never call is never compiled: a fresh install would wait for it for ever. The
    specimens must keep reaching every step kind as the plan's thresholds move (raising
    Winograd's to 128 tiles left it uncalled until the specimen grew to 64x64)."""
    from engine import compile as engine_compile

    kernels.use("portable")
    called = set()
    for name in kernels.NAMES:

        def counted(*args, _name=name, _kernel=getattr(kernels, name)):
            called.add(_name)
            return _kernel(*args)

        monkeypatch.setattr(kernels, name, counted)
    for lanes in tuning.DIRECT_KERNEL:  # as the worker runs them for each width's kernel
        with tuning.forced(lanes):
            engine_compile.run_specimens()
    assert called == set(kernels.NAMES) == set(engine_compile.KERNEL_SECONDS)
