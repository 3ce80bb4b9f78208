"""Installed home of the project's data folders: cfg/ and resources/ map here (pyproject.toml)."""
