"""Shared fixtures: paths to ../shared (skipped with a reason when absent) and model files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CFG_DIR = ROOT / "cfg"
MODEL_CFGS = sorted(p.stem for p in CFG_DIR.glob("*.cfg"))


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared reference data is not beside this checkout)")
    return path


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
