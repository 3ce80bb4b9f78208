"""tdn's version, for `tdn --version`, `tdn-gui --version`, `tdn info` and Help ▸ About.

Run from a source tree (a clone, or the editable install scripts/run-tests makes), the code is
the tree's, so its pyproject.toml says which version it is, even when the installed metadata was
written for an older one. Installed from a wheel (scripts/run-app's `pip install .`), there is no
pyproject.toml beside the package, and the distribution's metadata says.
"""

from __future__ import annotations

import importlib.metadata
import re
from functools import lru_cache
from pathlib import Path

DISTRIBUTION = "tdn"
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# [project]'s own version line (before the next table): enough for our pyproject, and Python 3.10
# has no tomllib
_VERSION_LINE = re.compile(r'^\[project\]\s*$(?:(?!^\[).)*?^version\s*=\s*"([^"]+)"', re.M | re.S)


@lru_cache(maxsize=1)
def version() -> str:
    """The version string, e.g. "0.1.0"; "unknown" when neither source says."""
    try:
        match = _VERSION_LINE.search(_PYPROJECT.read_text(encoding="utf-8"))
    except OSError:
        match = None
    if match:
        return match.group(1)
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
