"""Shared fixtures: seeded random weights per cfg, the real tiny.weights and ImageNet names."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from support import CFG_DIR, shared_path  # noqa: E402


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
