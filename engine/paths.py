"""Where the data shipped with tdn lives, in a source checkout and in an installed package."""
from __future__ import annotations

import importlib.resources
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    # A source checkout (or editable install) has the folder beside engine/; an installed
    # wheel has it as the package tdn_data.<name> (see pyproject.toml's package-dir).
    beside = _SOURCE_ROOT / name
    if beside.is_dir():
        return beside
    return Path(str(importlib.resources.files(f"tdn_data.{name}")))


def cfg_dir() -> Path:
    """The folder holding the project's own cfg files (tiny.cfg, darknet.cfg, ...)."""
    return _data_dir("cfg")


def resources_dir() -> Path:
    """The folder holding icons and other files the app ships."""
    return _data_dir("resources")
