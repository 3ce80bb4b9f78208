"""A non-editable install (what `pip install .` gives a user) finds the cfg files and
resources it ships, and reuses Numba's compiled kernels on the next start."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support import ROOT, shared_path


@pytest.mark.skipif(os.environ.get("TDN_SKIP_INSTALL_TEST") == "1", reason="TDN_SKIP_INSTALL_TEST=1")
def test_wheel_install_ships_cfg_and_resources_and_caches_kernels(tmp_path):
    target = tmp_path / "site"
    # --no-deps: the running environment already has them; this checks our own packaging
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True)
    assert (target / "tdn_data" / "cfg" / "tiny.cfg").is_file()
    assert (target / "tdn_data" / "resources" / "screenshot-image-view.png").is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    code = ("import sys, engine.paths as p; from engine import registry; "
            "print(p.cfg_dir()); print(registry.cfg_path('tiny').is_file())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(target / "tdn_data" / "cfg"), "True"]
    weights = shared_path("weights", "tiny.weights")
    image = shared_path("darknet", "data", "dog.png")
    run = [sys.executable, "-m", "tdn_cli.main", "classify", "tiny", str(image), "--weights", str(weights)]
    for _ in range(2):
        done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    cached = list((target / "engine" / "__pycache__").glob("*.nbi"))
    assert cached, "Numba wrote no cache beside the installed engine"
