"""What the views may use of the engine directly: constants, types and quick look-ups.

Nothing here classifies or teaches: that is the scheduler's (InferenceWorker), and decoding is
the decode pool's (qt_decoder). The rest of tdn_gui imports the engine through this module only
(an import-linter contract in pyproject.toml says so), so that every piece of engine work the GUI
asks for is in one package, off the GUI thread.
"""

from __future__ import annotations

from engine.files import replacing
from engine.image import IMAGE_SUFFIXES, RESIZE_HELP, RESIZE_MODES
from engine.kernels import check_settings
from engine.paths import cfg_dir, resources_dir
from engine.registry import (
    MODELS,
    cfg_path,
    expected_weights_bytes,
    find_labels,
    find_names,
    is_downloaded,
    weights_path,
)
from engine.teach import MIN_TRUSTED, ExportPaths, Features, TaughtModel, TeachResult, class_files
from engine.validate import Validation
from engine.version import version

__all__ = [
    "settings_problem",
    # images and resize modes
    "IMAGE_SUFFIXES",
    "RESIZE_MODES",
    "RESIZE_HELP",
    # the model registry and where cfg files live (look-ups only: downloads run in qt_download)
    "MODELS",
    "cfg_path",
    "weights_path",
    "expected_weights_bytes",
    "is_downloaded",
    "find_names",
    "find_labels",
    "cfg_dir",
    # teaching: what a job hands back, and the project folders' listing rule (`tdn teach`'s own)
    "TeachResult",
    "TaughtModel",
    "Features",
    "ExportPaths",
    "MIN_TRUSTED",
    "class_files",
    # a folder run's result (File ▸ Classify folder…)
    "Validation",
    # files written whole or not at all (the Teach view's writer thread, the launcher)
    "replacing",
    # tdn's version and the shipped resources (the icon): Help ▸ About, the launcher
    "version",
    "resources_dir",
]


def settings_problem() -> str | None:
    """What is wrong with the engine's environment settings (TDN_KERNELS, TDN_SIMD), in one line, or None."""
    try:
        check_settings()
    except ValueError as exc:
        return str(exc)
    return None
