"""The kernels a forward pass calls, by name, each bound to its compiled or its portable version.

    from engine import kernels
    kernels.conv_forward(x, wmat, bias, ...)     # whichever version is bound now
    kernels.status()                             # KernelStatus: mode, how many are compiled, ...

Two sets implement the same kernels with the same arguments and results:

- compiled (compiled.py, direct.py, winograd.py): Numba, the fast set. Compiling it takes a minute or
  more of CPU; Numba keeps the machine code in its on-disk cache, so that happens once per
  install (see cache.py for how we know what is there);
- portable (portable.py): numpy, nothing to compile, several times slower.

The steps of a forward plan call the names of this module, so rebinding a name takes effect at
the next layer. The mode says which set (TDN_KERNELS=auto|portable|compiled, or `use`):

- "auto", the default: each kernel compiled when Numba's cache has it, portable until then,
  while a separate process (`python -m engine.compile --background`, started here when needed)
  compiles the rest. `refresh()`, called before every forward pass, looks for newly compiled
  kernels twice a second at most; a thread loads them from the cache and then rebinds them;
- "portable": numpy only; nothing is compiled or started (the GUI and CLI tests use it);
- "compiled": Numba only, compiling here and now what the cache lacks (benchmarks, and tests
  of the compiled kernels).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ..parallel import share_numpy_blas
from . import cache, portable
from .compile_costs import progress_done

# Each kernel's compiled version: the module that defines it (imported, with Numba, on first need)
COMPILED_IN = {
    "direct_conv": "direct",
    "direct_conv_wide": "direct",
    "conv_forward": "compiled",
    "winograd_conv": "winograd",
    "winograd_conv_by_filters": "winograd",
    "maxpool": "compiled",
    "global_avgpool": "compiled",
    "softmax": "compiled",
    "shortcut_add": "compiled",
    "bias_activate": "compiled",
    "resize_bilinear": "compiled",
}
NAMES = tuple(COMPILED_IN)
MODES = ("auto", "portable", "compiled")
ENV = "TDN_KERNELS"
CHECK_INTERVAL = 0.5  # seconds between looks for newly compiled kernels in "auto" mode
COMPILER_GRACE = 10.0  # seconds a started compiler gets to take the compile lock
MAX_COMPILER_STARTS = 3  # per process: a compiler that keeps dying is not started forever

# The bound versions: the steps call these names
direct_conv = portable.direct_conv
direct_conv_wide = portable.direct_conv_wide
conv_forward = portable.conv_forward
winograd_conv = portable.winograd_conv
winograd_conv_by_filters = portable.winograd_conv_by_filters
maxpool = portable.maxpool
global_avgpool = portable.global_avgpool
softmax = portable.softmax
shortcut_add = portable.shortcut_add
bias_activate = portable.bias_activate
resize_bilinear = portable.resize_bilinear


@dataclass(frozen=True)
class KernelStatus:
    mode: str  # auto, portable or compiled
    compiled: int  # kernels bound to their compiled version
    total: int
    compiling: bool  # a process is compiling them (on this machine, for this cache)
    progress: float = 1.0  # the share of the compile work done, 0..1 (weighted by compile time)
    cached: int = 0  # kernels in the compiled cache, bound or not (see defer_loading)

    @property
    def path(self) -> str:
        """ "compiled", "portable", or "mixed" while the compiled kernels arrive."""
        if self.compiled == self.total:
            return "compiled"
        return "portable" if self.compiled == 0 else "mixed"

    def describe(self) -> str:
        if self.path == "compiled":
            return "compiled kernels (Numba)"
        if self.mode == "portable":
            return "portable kernels (numpy; compiled kernels switched off)"
        text = f"portable kernels (numpy), {self.compiled} of {self.total} compiled"
        return text + (", compiling the rest in the background" if self.compiling else "")


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode: str | None = None
        self.bound: set[str] = set()  # names bound to the compiled version
        self.loading: set[str] = set()  # names a loader thread is fetching from the cache
        self.failed: dict[str, str] = {}  # names whose cache entry would not load: why
        self.next_check = 0.0
        self.fingerprint: str | None = None
        self.live_lock = None  # the shared live.lock while classifying in auto mode
        self.compiler_starts = 0  # background compilers this process started
        self.compiler_started_at = 0.0
        self.cached = 0  # kernels in the cache at the last look (bound or not)
        self.defer = False  # leave cached kernels unloaded (see defer_loading)


_state = _State()


def mode() -> str:
    if _state.mode is None:
        use(_requested_mode())
    return _state.mode


def _requested_mode() -> str:
    requested = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if requested not in MODES:
        raise ValueError(f"{ENV}={requested!r}: choose one of {', '.join(MODES)}")
    return requested


def check_settings() -> None:
    """ValueError, one line, for a TDN_KERNELS or TDN_SIMD (kernels/tuning.py) this engine does not
    know: the command line and the app ask before anything runs."""
    from . import tuning

    _requested_mode()
    tuning.requested()


def use(new_mode: str) -> None:
    """Switch the mode (see the module docstring); takes effect at the next kernel call."""
    if new_mode not in MODES:
        raise ValueError(f"unknown kernel mode {new_mode!r}; choose one of {', '.join(MODES)}")
    with _state.lock:
        _state.mode = new_mode
        _state.next_check = 0.0
        if new_mode == "compiled":
            bind(NAMES, compiled_names=NAMES)
        elif new_mode == "portable":
            bind(NAMES, compiled_names=())


_compiled: dict | None = None


def compiled_kernels() -> dict:
    """{name: its Numba dispatcher}. The first call imports Numba and the compiled modules
    (~0.5 s), which a process on the portable kernels never needs."""
    global _compiled
    if _compiled is None:
        import importlib

        modules = {m: importlib.import_module(f"{__name__}.{m}") for m in set(COMPILED_IN.values())}
        _compiled = {name: getattr(modules[m], name) for name, m in COMPILED_IN.items()}
    return _compiled


def bind(names, compiled_names) -> None:
    """Bind each of `names` to its compiled version if it is in `compiled_names`, else to its
    portable one (engine.compile binds the kernels it compiles this way)."""
    if any(name in compiled_names for name in names):
        from ..parallel import limit_kernel_blas

        limit_kernel_blas()  # before any compiled GEMM runs
    for name in names:
        chosen = compiled_kernels()[name] if name in compiled_names else getattr(portable, name)
        globals()[name] = chosen
        if name in compiled_names:
            _state.bound.add(name)
        else:
            _state.bound.discard(name)


def refresh() -> None:
    """In "auto" mode: bind the kernels that have arrived in the cache since the last look, and
    make sure a compiler is at work on the rest. Cheap: a set comparison once all are there.

    The first look in a process loads what the cache has right here (a warm start: its first
    answer is already on the compiled kernels); later arrivals load on a thread, while the
    portable kernels go on serving."""
    if len(_state.bound) == len(NAMES) or mode() != "auto" or (_state.defer and _state.cached == len(NAMES)):
        return
    now = time.monotonic()
    if now < _state.next_check:
        return
    with _state.lock:
        if now < _state.next_check or _state.mode != "auto":
            return
        _state.next_check = now + CHECK_INTERVAL
        first_look = _state.fingerprint is None
        if first_look:
            _state.fingerprint = cache.fingerprint()
            _state.live_lock = cache.try_lock(cache.LIVE_LOCK, shared=True)
        wanted = [n for n in NAMES if n not in _state.bound and n not in _state.loading and n not in _state.failed]
        ready = cache.read_stamps(wanted, _state.fingerprint)
        missing = len(ready) < len(wanted)
        _state.cached = len(NAMES) - (len(wanted) - len(ready)) - len(_state.failed)
        if _state.defer:
            ready = {}
        _state.loading.update(ready)
    if ready and first_look:
        load_from_cache(ready)
    elif ready:
        threading.Thread(target=load_from_cache, args=(ready,), name="tdn-kernel-loader", daemon=True).start()
    if missing:
        _keep_a_compiler_at_work(now)
    share_numpy_blas(busy=missing)  # a compiler is at work: see share_numpy_blas


def defer_loading(defer: bool = True) -> None:
    """In "auto" mode, answer on the portable kernels even where compiled ones are in the cache:
    loading them costs ~0.8 s per process (Numba's own start-up, then the kernels), more than a
    handful of images take on the portable kernels. Compiling what is missing goes on as
    usual. The command line does this for small jobs (see tdn_cli.classify_cmd)."""
    with _state.lock:
        _state.defer = defer
        _state.next_check = 0.0


def _keep_a_compiler_at_work(now: float) -> None:
    """Start a background compiler unless one holds the compile lock; start it again if it
    died (killed, or the machine ran out of memory), a few times at most."""
    if _state.compiler_starts and now - _state.compiler_started_at < COMPILER_GRACE:
        return  # the last one may still be starting up
    if _state.compiler_starts >= MAX_COMPILER_STARTS or cache.is_locked(cache.COMPILE_LOCK):
        return
    if start_compiler():
        _state.compiler_starts += 1
        _state.compiler_started_at = now


def load_from_cache(ready: dict[str, list]) -> None:
    """Load kernels from Numba's cache ({name: signatures}, as cache.read_stamps gives: no
    compiling, the stamps list what is there), then bind them (in "auto" mode); one that fails
    to load stays portable. refresh() runs this on a thread of its own."""
    auto = mode() == "auto"
    for name, signatures in ready.items():
        try:
            for signature in signatures:
                compiled_kernels()[name].compile(signature)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the portable kernel serving
            with _state.lock:
                _state.failed[name] = f"{type(exc).__name__}: {exc}"
                _state.loading.discard(name)
            continue
        with _state.lock:
            if auto and _state.mode == "auto":
                bind((name,), compiled_names=(name,))
            _state.loading.discard(name)
            if len(_state.bound) == len(NAMES):
                share_numpy_blas(busy=False)


def start_compiler() -> bool:
    """Start `python -m engine.compile --background` as a process of its own, at a low
    priority. Its output goes to compile.log beside the stamps. False if it could not start."""
    folder = cache.stamp_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "compile.log", "ab")
    except OSError:
        return False
    try:
        # niced before anything is imported: it and its jobs (which inherit the priority) must
        # never slow down the process that started them
        bootstrap = (
            "import os, runpy, sys; os.nice(10); sys.argv[1:] = ['--background']; "
            "runpy.run_module('engine.compile', run_name='__main__', alter_sys=True)"
        )
        subprocess.Popen(
            [sys.executable, "-c", bootstrap],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            close_fds=True,
            start_new_session=True,
        )
    except OSError:
        return False
    finally:
        log.close()
    return True


def wait_until_compiled(timeout: float | None = None) -> bool:
    """In "auto" mode, block until every kernel is bound to its compiled version (or timeout)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while len(_state.bound) < len(NAMES):
        if mode() != "auto" or (deadline is not None and time.monotonic() > deadline):
            return False
        refresh()
        time.sleep(0.05)
    return True


def status() -> KernelStatus:
    """Where the kernels stand now (in "auto" mode after a look at the cache: see refresh)."""
    refresh()
    current = mode()
    done = len(_state.bound)
    if current != "auto" or done == len(NAMES):
        return KernelStatus(current, done, len(NAMES), False, 1.0 if done == len(NAMES) else 0.0, done)
    progress = progress_done(_state.bound)
    recently_started = _state.compiler_starts > 0 and time.monotonic() - _state.compiler_started_at < COMPILER_GRACE
    compiling = recently_started or cache.is_locked(cache.COMPILE_LOCK)
    return KernelStatus(current, done, len(NAMES), compiling, progress, max(_state.cached, done))


def failures() -> dict[str, str]:
    """Kernels whose compiled version would not load from the cache, and why."""
    return dict(_state.failed)


def training_kernels(compiled: bool):
    """The kernel set a training step calls: backprop.py's numpy kernels, or with compiled=True
    their Numba versions (backprop_compiled.py: compiled on first use, then kept in Numba's cache)."""
    if compiled:
        from . import backprop_compiled

        return backprop_compiled
    from . import backprop

    return backprop
