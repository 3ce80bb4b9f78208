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
    assert "7 kept, 0 broken" in result.stdout
    assert "the engine's floors" in result.stdout and "scheduler is plain Python" in result.stdout


def test_engine_imports_without_qt():
    code = "import sys, engine, engine.registry, engine.download; sys.exit('PySide6' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_the_engine_has_no_import_circles():
    """No two engine modules import each other, however indirectly, lazy imports included:
    the strongly connected parts of the import graph are single modules."""
    import grimp

    graph = grimp.build_graph("engine")
    circles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if (
                imported != module
                and imported.startswith("engine")
                and graph.chain_exists(importer=imported, imported=module)
            ):
                circles.append((module, imported))
    assert not circles, circles[:5]


def test_the_kernels_import_nothing_above_them():
    """engine.kernels imports only its own modules and the shared pieces below it."""
    import grimp

    graph = grimp.build_graph("engine")
    shared = {"engine.activations", "engine.errors", "engine.files", "engine.memory", "engine.parallel"}
    for module in graph.find_children("engine.kernels") | {"engine.kernels"}:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("engine"):
                assert imported.startswith("engine.kernels") or imported in shared, (module, imported)


def test_ruff_passes_on_the_whole_tree():
    """pyflakes' and pycodestyle's rules and the formatter's layout (pyproject.toml's
    [tool.ruff]) on every file."""
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
