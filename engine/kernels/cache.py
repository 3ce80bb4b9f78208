"""Where the compiled kernels stand on this machine: which are in Numba's on-disk cache, who is
compiling them, and whether an app is running.

Numba writes a kernel to its cache when it compiles it, and loads it from there on the
first call in a later process; it keeps the cache beside the package (or in
NUMBA_CACHE_DIR). Next to those files, in `tdn-kernels/`, we keep:

- one stamp per kernel, `NAME.ready`, written by the compiling process once the kernel is in
  Numba's cache: the signatures it was compiled for, and the fingerprint of what Numba's cache
  depends on (source files, Numba and LLVM versions, Python, the CPU). A stamp with another
  fingerprint is stale, and the kernel counts as not compiled;
- `compile.lock`, held (flock) by the one process that compiles: a second launch sees it
  and does not compile twice; the lock dies with its process, so a killed compiler is
  simply started again, and finds what it had finished in the cache;
- `live.lock`, held shared by every process that classifies in automatic mode: while any
  holds it, the compiler keeps to one core.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path

STAMP_SUFFIX = ".ready"
STAMP_VERSION = 1


def stamp_dir() -> Path:
    """The folder of stamps and locks: inside Numba's cache folder for the kernel modules."""
    from . import compiled

    cache = getattr(compiled.conv_forward, "_cache", None)
    base = getattr(cache, "_cache_path", None)
    if base is None:                    # a Numba without the attribute: the per-user cache
        import platformdirs
        base = platformdirs.user_cache_dir("tdn")
    return Path(base) / "tdn-kernels"


def fingerprint() -> str:
    """What Numba's cache of our kernels depends on: the kernel sources' stat (Numba's own test
    of freshness), the Numba, llvmlite and Python versions and the host CPU."""
    import llvmlite
    import llvmlite.binding as llvm
    import numba

    from .. import activations
    from . import compiled, winograd

    parts = [STAMP_VERSION, numba.__version__, llvmlite.__version__, sys.version,
             llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten(),
             os.environ.get("NUMBA_OPT", "")]
    for module in (compiled, winograd, activations):
        st = os.stat(module.__file__)
        parts += [module.__file__, st.st_mtime, st.st_size]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def read_stamps(names, expected: str | None = None) -> dict[str, list]:
    """{kernel name: its compiled signatures} for every kernel in `names` with a fresh stamp."""
    folder = stamp_dir()
    try:
        present = set(os.listdir(folder))
    except OSError:
        return {}
    expected = expected or fingerprint()
    ready = {}
    for name in names:
        if name + STAMP_SUFFIX not in present:
            continue
        try:
            with open(folder / (name + STAMP_SUFFIX), "rb") as f:
                stamp = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError):
            continue                    # damaged or from another version: not ready
        if isinstance(stamp, dict) and stamp.get("fingerprint") == expected:
            ready[name] = stamp["signatures"]
    return ready


def write_stamp(name: str, signatures: list, key: str) -> None:
    """Record that kernel `name` is in Numba's cache, compiled for `signatures`, under the
    fingerprint `key`."""
    folder = stamp_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps({"fingerprint": key, "signatures": list(signatures)})
    fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / (name + STAMP_SUFFIX))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_lock(name: str):
    folder = stamp_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return open(folder / name, "a+b")


def try_lock(name: str, shared: bool = False):
    """An open file holding the flock `name` (exclusive, or shared), or None when another
    process holds it the other way. The lock lasts until the file is closed or the process ends."""
    try:
        f = _open_lock(name)
    except OSError:
        return None
    try:
        fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def is_locked(name: str) -> bool:
    """Whether another process holds `name` (in any mode)."""
    f = try_lock(name)
    if f is None:
        return True
    f.close()
    return False


COMPILE_LOCK = "compile.lock"
LIVE_LOCK = "live.lock"
