"""tdn's desktop app (PySide6). Talks to the engine only through its public API, on one worker thread."""
