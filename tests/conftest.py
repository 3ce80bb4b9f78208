"""Shared fixtures: seeded random weights per cfg, the real tiny.weights and ImageNet names."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The portable (numpy) kernels unless a test asks for the compiled ones (`kernel_set`):
# nothing starts a background compiler, here or in the subprocesses the tests run.
os.environ.setdefault("TDN_KERNELS", "portable")
# The direct convolution's 8-float tiles, whatever this machine's tuning record says: the plans
# (and so the steps tests assert) are the same on every CPU. Tests of the other width and of the
# record set TDN_SIMD themselves.
os.environ.setdefault("TDN_SIMD", "avx2")
# Downloads and teach's feature cache in a folder of this run's own, never the user's: a feature
# cached by an earlier run would also let a teach skip the passes a test means to check
_CACHE = tempfile.TemporaryDirectory(prefix="tdn-test-cache-")
os.environ["TDN_CACHE_DIR"] = _CACHE.name

from support import CFG_DIR, shared_path  # noqa: E402


def jit_disabled() -> bool:
    """NUMBA_DISABLE_JIT=1: the compiled kernels are their plain Python; nothing is compiled or cached."""
    from numba import config

    return bool(config.DISABLE_JIT)


@pytest.fixture(scope="session")
def compiled_cache():
    """The compiled kernels in Numba's cache: `python -m engine.compile` once per session (on a
    fresh clone it compiles them on every core; afterwards it finds them there and returns)."""
    if jit_disabled():
        return
    done = subprocess.run([sys.executable, "-m", "engine.compile"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def compiled_kernels(compiled_cache):
    """The test runs on the compiled kernels (loaded from the cache engine.compile filled)."""
    from engine import kernels

    kernels.use("compiled")
    yield
    kernels.use("portable")


@pytest.fixture(params=["compiled", "portable"])
def kernel_set(request):
    """Run the test once with each kernel set. With the compiled set, it also checks that every
    kernel the test called came from the cache that engine.compile filled: a miss would mean
    its specimens do not cover an argument type the engine passes, and a fresh install would
    compile it in the middle of classifying."""
    from engine import kernels

    if request.param == "compiled":
        request.getfixturevalue("compiled_cache")
    kernels.use(request.param)
    yield request.param
    kernels.use("portable")
    if jit_disabled():
        return
    misses = {
        name: dict(d.stats.cache_misses) for name, d in kernels.compiled_kernels().items() if d.stats.cache_misses
    }
    assert not misses, f"compiled in the test process, not by engine.compile: {misses}"


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """random_weights(name) → path of seeded random weights for cfg/NAME.cfg (written once)."""
    from engine import write_random_weights

    made: dict[str, Path] = {}

    def make(name: str, seed: int = 1) -> Path:
        key = f"{name}-{seed}"
        if key not in made:
            path = tmp_path_factory.mktemp("weights") / f"{key}.weights"
            write_random_weights(CFG_DIR / f"{name}.cfg", path, seed=seed)
            made[key] = path
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_weights():
    return shared_path("weights", "tiny.weights")


@pytest.fixture(scope="session")
def imagenet_names():
    return shared_path("darknet", "data", "imagenet.shortnames.list")


@pytest.fixture(scope="session")
def tiny(tiny_weights, imagenet_names):
    """(Network, names): Tiny Darknet with its published weights and the ImageNet short names."""
    import engine

    net = engine.Network.load(CFG_DIR / "tiny.cfg", tiny_weights)
    return net, engine.load_names(imagenet_names, net.classes)
