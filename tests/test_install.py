"""A non-editable install (what `pip install .` gives a user) finds the cfg files and
resources it ships, answers at once on the portable kernels, and keeps the kernels that
engine.compile compiles beside itself, where the next start finds them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support import ROOT, shared_path


@pytest.mark.skipif(os.environ.get("TDN_SKIP_INSTALL_TEST") == "1", reason="TDN_SKIP_INSTALL_TEST=1")
def test_wheel_install_ships_cfg_and_resources_and_keeps_compiled_kernels(tmp_path):
    target = tmp_path / "site"
    # --no-deps: the running environment already has them; this checks our own packaging
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
    )
    assert (target / "tdn_data" / "cfg" / "tiny.cfg").is_file()
    assert (target / "tdn_data" / "resources" / "screenshot-image-view.png").is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    code = (
        "import sys, engine.paths as p; from engine import registry; "
        "print(p.cfg_dir()); print(registry.cfg_path('tiny').is_file())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(target / "tdn_data" / "cfg"), "True"]
    weights = shared_path("weights", "tiny.weights")
    image = shared_path("darknet", "data", "dog.png")
    run = [sys.executable, "-m", "tdn_cli.main", "classify", "tiny", str(image), "--weights", str(weights)]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "17.03%: class 14"  # malamute, as README says
    # One cheap kernel through the real compile job (the whole set is engine.compile's test)
    env.pop("NUMBA_CACHE_DIR", None)
    subprocess.run(
        [sys.executable, "-m", "engine.compile", "--job", "softmax"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    kernel_cache = target / "engine" / "kernels" / "__pycache__"
    assert list(kernel_cache.glob("compiled.softmax-*.nbi")), "Numba wrote no cache beside the installed engine"
    assert (kernel_cache / "tdn-kernels" / "softmax.ready").is_file()
    code = (
        "from engine import kernels; from engine.kernels import cache; "
        "kernels.load_from_cache(cache.read_stamps(['softmax'])); d = kernels.compiled_kernels()['softmax']; "
        "print(kernels.softmax is d, sum(d.stats.cache_hits.values()), len(d.stats.cache_misses))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(env, TDN_KERNELS="auto"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["True", "1", "0"]  # bound to the compiled kernel, loaded, nothing compiled
