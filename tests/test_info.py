"""`tdn --version` and `tdn info`: the version from the source tree or an install, and a report that
reads the machine without changing it (no Qt imported, no kernel loaded, no compile started)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from support import ROOT
from tdn_cli.main import main

PYPROJECT_VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_version_is_pyprojects(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"tdn {PYPROJECT_VERSION}\n"


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    """A model cache holding a complete (random) tiny.weights and nothing else."""
    from engine import registry, write_random_weights

    cache = tmp_path / "models"
    cache.mkdir()
    monkeypatch.setenv("TDN_CACHE_DIR", str(cache))
    write_random_weights(registry.cfg_path("tiny"), cache / "tiny.weights")
    return cache


def test_info_text_names_everything_a_report_needs(capsys, model_cache):
    from engine.kernels import cache

    code, out, err = run(capsys, "info")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"tdn       {PYPROJECT_VERSION}"
    assert lines[1].startswith(f"Python    {sys.version.split()[0]} ")
    for label in ("numpy", "Numba", "llvmlite", "SciPy", "PySide6", "OpenCV"):
        assert re.search(rf"^  {label} +(\d+\.\d+\S*|not installed)", out, re.M), label
    assert re.search(r"^threads   \d+ \(Numba's (tbb|omp|workqueue) layer\)$", out, re.M)
    assert f"  cache   {cache.stamp_dir()}" in lines
    assert "  mode    TDN_KERNELS=portable" in lines  # tests/conftest.py's choice
    assert f"  downloaded      tiny ({model_cache / 'tiny.weights'})" in lines
    assert "  not downloaded  darknet, darknet19, extraction, alexnet, resnet18" in lines
    assert re.search(r"^CPU       .+", out, re.M) and re.search(r"^  SIMD    \S", out, re.M)


def test_info_json(capsys, model_cache):
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["tdn"] == PYPROJECT_VERSION
    assert set(report["packages"]) >= {"numpy", "Numba", "llvmlite", "SciPy", "PySide6", "OpenCV"}
    assert report["packages"]["numpy"] == __import__("numpy").__version__
    assert report["models"]["downloaded"] == {"tiny": str(model_cache / "tiny.weights")}
    assert report["kernels"]["total"] == report["kernels"]["compiled"] + len(report["kernels"]["missing"])
    assert report["threads"]["count"] >= 1
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    for flag in report["cpu"]["simd"]:
        assert re.search(rf"\b{flag}\b", flags)


def test_info_imports_no_qt_and_leaves_the_kernels_alone(tmp_path):
    # An empty kernel cache in auto mode: `tdn classify` would start a compile here; info must not
    code = (
        "import sys; from tdn_cli.main import main; code = main(['info']); "
        "print(code, 'PySide6' in sys.modules, 'engine.kernels.compiled' in sys.modules, "
        "'engine.compile' in sys.modules)"
    )
    env = dict(
        os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), TDN_KERNELS="auto", TDN_CACHE_DIR=str(tmp_path / "models")
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "kernels   none compiled; `tdn compile` compiles them" in done.stdout
    assert done.stdout.splitlines()[-1] == "0 False False False"
    stamps = next((tmp_path / "numba").glob("tdn-kernels-*"))
    assert not (stamps / "compile.log").exists()  # start_compiler() opens it first


@pytest.mark.skipif(os.environ.get("TDN_SKIP_INSTALL_TEST") == "1", reason="TDN_SKIP_INSTALL_TEST=1")
def test_installed_wheel_has_the_version_and_the_icon(tmp_path):
    """Away from the source tree the version comes from the wheel's metadata, and the icon ships."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
    )
    code = (
        "import engine.paths, engine.version as v; print(v.version()); "
        "print(engine.paths.resources_dir() / 'tdn.svg'); print(v._PYPROJECT.exists())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(target)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [PYPROJECT_VERSION, str(target / "tdn_data" / "resources" / "tdn.svg"), "False"]
    assert (target / "tdn_data" / "resources" / "tdn.svg").is_file()
