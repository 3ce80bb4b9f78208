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
