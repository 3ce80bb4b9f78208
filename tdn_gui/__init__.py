"""tdn's desktop app (PySide6): views/ and teach/ show, worker/ computes; only worker/ imports the engine."""
