"""A fresh install's first start: answers on the portable kernels, a background compiler that
survives being killed, a running network that switches to the compiled kernels, one compile
lock per cache. Each test gets an empty Numba cache (NUMBA_CACHE_DIR), as a fresh install has,
and runs the engine in processes of its own with TDN_KERNELS=auto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from engine.compile import KERNEL_SECONDS
from support import CFG_DIR, process_alive

CLASSIFY = [sys.executable, "-m", "tdn_cli.main", "classify"]


def fresh_install(tmp_path) -> dict:
    return dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
        TDN_KERNELS="auto",
        TDN_CACHE_DIR=str(tmp_path / "tdn-cache"),
    )


def photo(tmp_path):
    import numpy as np
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (150, 200, 3), np.uint8)).save(path)
    return path


def top(stdout: str) -> dict:
    answer = json.loads(stdout.splitlines()[0])
    return {entry["index"]: entry["prob"] for entry in answer["top"]}


# The process that lives through the compile: it classifies before, during and after, kills the
# compiler once the first kernel has arrived, and reports what it saw.
LIVE_PROCESS = textwrap.dedent("""
    import json, os, signal, sys, time
    import numpy as np
    import engine
    from engine import kernels
    from engine.kernels import cache

    net = engine.Network.load(sys.argv[1], sys.argv[2])
    x = np.random.default_rng(5).random((96, 128, 3), dtype=np.float32)
    seen = {"first": net.predict(x).tolist(), "first_status": kernels.status().path}
    deadline = time.monotonic() + 600
    while not cache.read_stamps(kernels.NAMES) and time.monotonic() < deadline:
        time.sleep(0.05)
        net.predict(x)
    lock = cache.stamp_dir() / cache.COMPILE_LOCK
    killed = int(lock.read_text().split()[0])
    os.kill(killed, signal.SIGKILL)
    seen["after_kill"] = net.predict(x).tolist()
    seen["killed"] = killed
    seen["compiled"] = kernels.wait_until_compiled(timeout=600)
    seen["last"] = net.predict(x).tolist()
    seen["last_status"] = kernels.status().path
    seen["bound"] = all(getattr(kernels, n) is kernels.compiled_kernels()[n] for n in kernels.NAMES)
    seen["restarted_by"] = int(lock.read_text().split()[0])
    seen["failures"] = kernels.failures()
    print(json.dumps(seen))
""")


def test_fresh_install_answers_at_once_then_compiles_in_the_background(tmp_path, random_weights):
    import numpy as np

    env = fresh_install(tmp_path)
    cfg, weights, image = CFG_DIR / "tiny.cfg", random_weights("tiny"), photo(tmp_path)
    command = CLASSIFY + [str(cfg), str(weights), str(image), "--json", "--top", "1000"]

    cold = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert cold.returncode == 0, cold.stderr
    note = [line for line in cold.stderr.splitlines() if line.strip()]
    assert len(note) == 1 and "portable kernels" in note[0] and "tdn compile" in note[0]

    live = subprocess.run(
        [sys.executable, "-c", LIVE_PROCESS, str(cfg), str(weights)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert live.returncode == 0, live.stderr
    seen = json.loads(live.stdout.splitlines()[-1])
    assert seen["first_status"] in ("portable", "mixed")
    first, after_kill, last = (np.array(seen[k]) for k in ("first", "after_kill", "last"))
    np.testing.assert_allclose(after_kill, first, atol=1e-5)  # a killed compiler harms no answer
    assert seen["compiled"] and seen["last_status"] == "compiled" and seen["bound"]
    assert seen["restarted_by"] != seen["killed"] and not seen["failures"]
    np.testing.assert_allclose(last, first, atol=1e-5)  # the same answer on both paths
    assert list(np.argsort(-last)[:5]) == list(np.argsort(-first)[:5])

    warm = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert warm.returncode == 0 and warm.stderr.strip() == ""  # compiled now: nothing to say
    portable_probs, compiled_probs = top(cold.stdout), top(warm.stdout)
    assert list(portable_probs)[:5] == list(compiled_probs)[:5]
    assert max(abs(portable_probs[i] - compiled_probs[i]) for i in portable_probs) < 1e-5

    done = subprocess.run(
        [sys.executable, "-m", "tdn_cli.main", "compile"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "ready" in done.stderr


def test_one_compiler_per_cache(tmp_path):
    """A second background compiler leaves at once while the first holds the lock; the first,
    killed, takes its workers with it, even workers it had paused (SIGSTOP, as while an app is busy)."""
    env = fresh_install(tmp_path)
    background = [sys.executable, "-m", "engine.compile", "--background"]
    first = subprocess.Popen(background, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        locks = tmp_path / "numba"
        deadline = time.monotonic() + 60
        while not any(p.read_text().strip() for p in locks.glob("tdn-kernels-*/compile.lock")):
            assert time.monotonic() < deadline and first.poll() is None, "the first compiler never took the lock"
            time.sleep(0.05)
        second = subprocess.run(background, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0 and first.poll() is None
        # Every worker, once it runs its own program: the coordinator pauses a worker only after
        # Popen returned, so after exec; a pause before it, between fork and exec, is not one a
        # coordinator can make.
        wanted = min(os.cpu_count() or 1, len(KERNEL_SECONDS))
        while len(workers := [pid for pid in _children(first.pid) if _is_worker(pid)]) < wanted:
            assert time.monotonic() < deadline, "the first compiler did not start a worker per core"
            time.sleep(0.05)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
    finally:
        first.kill()
        first.wait()
    deadline = time.monotonic() + 30
    while any(process_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its killed coordinator"
        time.sleep(0.05)


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--job" in f.read().split(b"\0")
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pytest.skip("needs Linux's /proc to find the compiler's workers")


def test_kernels_are_dealt_to_workers_by_compile_time():
    from engine.compile import KERNEL_SECONDS, share

    names = list(KERNEL_SECONDS)
    assert share([], 2) == [] and share(names[:1], 2) == [names[:1]]
    one, two = share(names, 2)
    assert sorted(one + two) == sorted(names)
    assert one[0] == names[0] and two[0] == names[1]  # the most used kernels first
    loads = [sum(KERNEL_SECONDS[n] for n in part) for part in (one, two)]
    assert abs(loads[0] - loads[1]) <= max(KERNEL_SECONDS.values())
    assert share(names, 1) == [names]


def test_answering_on_the_portable_kernels_never_loads_numba(tmp_path, random_weights):
    """Importing Numba (and SciPy, for its BLAS) is ~0.5 s of a start: a process that answers
    on the portable kernels must not pay it."""
    code = (
        "import sys, numpy as np, engine; net = engine.Network.load(sys.argv[1], sys.argv[2]); "
        "probs = net.predict(np.zeros((96, 128, 3), np.float32)); "
        "print(probs.shape, 'numba' in sys.modules, 'scipy' in sys.modules)"
    )
    env = dict(os.environ, TDN_KERNELS="portable")
    done = subprocess.run(
        [sys.executable, "-c", code, str(CFG_DIR / "tiny.cfg"), str(random_weights("tiny"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(1000,)", "False", "False"]
