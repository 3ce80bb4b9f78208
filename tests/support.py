"""Paths shared by the tests: the project, its cfg files and ../shared (skip when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

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


# A 32x32, 10-class darknet classifier (conv, maxpool, 1x1 conv, avgpool, softmax): small
# enough that tests run it in milliseconds, with every kind of step the engine fuses.
SMALL_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=10
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
"""


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (Linux's /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
