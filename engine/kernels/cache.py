"""Where the compiled kernels stand on this machine: which are in Numba's on-disk cache, who is
compiling them, and whether an app is running. Nothing here imports Numba: a process that
answers on the portable kernels never pays for loading it.

Numba writes a kernel to its cache when it compiles it, and loads it from there on the
first call in a later process; it keeps the cache beside the package (engine/kernels/
__pycache__), or in NUMBA_CACHE_DIR when that is set. Beside it (stamp_dir) we keep:

- one stamp per kernel, `NAME.ready`, written by the compiling process once the kernel is in
  Numba's cache: the signatures it was compiled for, the index files Numba wrote for it, and
  the fingerprint of what Numba's cache depends on (the kernel sources' stat, the Numba,
  llvmlite and Python versions, the CPU). A stamp with another fingerprint, or whose index
  files are gone, is stale: the kernel counts as not compiled;
- `compile.lock`, held (flock) by the one process that compiles, with its pid inside: a second
  launch sees it and does not compile twice; the lock dies with its process, so a killed
  compiler is simply started again, and finds what it had finished in the cache;
- `live.lock`, held shared by every process that classifies in automatic mode.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import pickle
import platform
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from ..files import write_atomic

STAMP_SUFFIX = ".ready"
STAMP_VERSION = 2
COMPILE_LOCK = "compile.lock"
LIVE_LOCK = "live.lock"
KERNELS_DIR = Path(__file__).resolve().parent
# What Numba compiles: a change to any of them makes the stamps stale (the modules of
# kernels.COMPILED_IN; tests/test_kernel_sets.py checks the two lists agree)
KERNEL_SOURCES = (
    KERNELS_DIR / "compiled.py",
    KERNELS_DIR / "direct.py",
    KERNELS_DIR / "vectors.py",
    KERNELS_DIR / "winograd.py",
    KERNELS_DIR / "store_modes.py",
    KERNELS_DIR / "layout.py",
)


@lru_cache(maxsize=1)
def stamp_dir() -> Path:
    """The folder of stamps and locks, by Numba's own rule for its cache: in NUMBA_CACHE_DIR when
    set, else beside the kernel sources when that is writable, else in the per-user cache."""
    tag = hashlib.sha1(str(KERNELS_DIR).encode()).hexdigest()[:12]
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / f"tdn-kernels-{tag}"
    in_tree = KERNELS_DIR / "__pycache__" / "tdn-kernels"
    try:
        in_tree.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=in_tree).close()
        return in_tree
    except OSError:
        import platformdirs

        return Path(platformdirs.user_cache_dir("tdn")) / f"kernels-{tag}"


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """What Numba's cache of our kernels depends on: the kernel sources' stat (Numba's own test
    of freshness), the Numba, llvmlite and Python versions, and the CPU."""
    parts = [STAMP_VERSION, sys.version, _cpu()]
    for package in ("numba", "llvmlite"):
        try:
            parts.append(importlib.metadata.version(package))
        except importlib.metadata.PackageNotFoundError:
            parts.append(None)
    for source in KERNEL_SOURCES:
        st = os.stat(source)
        parts += [str(source), st.st_mtime, st.st_size]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def _cpu() -> str:
    """The CPU model and its features, as Linux lists them (Numba compiles for the host CPU)."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n", 1)[0]
        wanted = ("model name", "flags", "Features", "CPU part")
        return "\n".join(line for line in first.splitlines() if line.split(":")[0].strip() in wanted)
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


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
            continue  # damaged or from another version: not ready
        if (
            isinstance(stamp, dict)
            and stamp.get("fingerprint") == expected
            and all(os.path.exists(index) for index in stamp.get("index_files", ()))
        ):
            ready[name] = stamp["signatures"]
    return ready


def write_stamp(name: str, signatures: list, key: str, index_files: list[str]) -> None:
    """Record that kernel `name` is in Numba's cache (in `index_files`), compiled for
    `signatures`, under the fingerprint `key`."""
    folder = stamp_dir()
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(
        folder / (name + STAMP_SUFFIX),
        pickle.dumps({"fingerprint": key, "signatures": list(signatures), "index_files": list(index_files)}),
    )


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
    """Whether another process holds `name` (in any mode). False where the lock file cannot
    even be made (a read-only cache): nobody can hold it there."""
    try:
        f = _open_lock(name)
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
    return False
