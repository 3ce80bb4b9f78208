"""The layering rules in pyproject.toml, checked by import-linter on the real import graph."""
from __future__ import annotations

import shutil
import subprocess
import sys

from support import ROOT


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(ROOT / ".venv" / "bin" / "lint-imports")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def test_engine_imports_without_qt():
    code = "import sys, engine, engine.registry, engine.download; sys.exit('PySide6' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
