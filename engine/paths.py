"""Where the data shipped with tdn lives, in a source checkout and in an installed package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    # A source checkout (or editable install) has the folder beside engine/; an installed
    # wheel has it as the package tdn_data.<name> (see pyproject.toml's package-dir).
    beside = _SOURCE_ROOT / name
    if beside.is_dir():
        return beside
    # cfg/ and resources/ have no __init__.py, so they install as namespace packages:
    # their spec's search location is the folder itself.
    spec = importlib.util.find_spec(f"tdn_data.{name}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"tdn's {name}/ folder is missing from this installation")
    return Path(next(iter(spec.submodule_search_locations)))


def cfg_dir() -> Path:
    """The folder holding the project's own cfg files (tiny.cfg, darknet.cfg, ...)."""
    return _data_dir("cfg")


def resources_dir() -> Path:
    """The folder holding the app's icon (tdn.svg) and the README's pictures."""
    return _data_dir("resources")
