"""tdn's desktop app (PySide6). Talks to the engine only through its public API, on one worker thread."""
# First, before any widget exists: PySide6 6.12.0 on Python 3.11 over-releases None and True,
# which aborts a long-running window (see pyside_fix.py).
from . import pyside_fix  # noqa: F401
