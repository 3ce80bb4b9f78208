"""`tdn info`: what a bug report needs to know about this machine and this install.

Versions come from the installed packages' metadata, so nothing heavy is imported for them (and
never Qt: the CLI does not import it). Numba is imported, to ask which threading layer its pool
gets; the kernel cache is read, never changed: no compile starts, no kernel is loaded.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys

from engine import registry
from engine.kernels import ENV as KERNELS_ENV
from engine.kernels import NAMES as KERNEL_NAMES
from engine.kernels import cache, tuning
from engine.version import version

# (what to call it, the distributions that provide it: the first one installed is reported)
PACKAGES = (
    ("numpy", ("numpy",)),
    ("Numba", ("numba",)),
    ("llvmlite", ("llvmlite",)),
    ("SciPy", ("scipy",)),
    ("PySide6", ("PySide6", "PySide6-Essentials")),
    ("OpenCV", ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python")),
    ("Pillow", ("pillow",)),
    ("TBB", ("tbb",)),
)
# The vector instructions LLVM can use in Numba's kernels, as /proc/cpuinfo names them, by the
# line that lists them: "flags" on x86, "Features" on ARM
SIMD_FLAGS = {
    "flags": ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"),
    "Features": ("asimd", "asimdhp", "asimddp", "sve", "sve2"),
}


def add_parser(subparsers):
    p = subparsers.add_parser(
        "info",
        help="versions, threads, kernel cache, models and CPU: paste it into a bug report",
        description="Print tdn's version and its libraries', Numba's threads, where the compiled "
        "kernels are cached and whether they are compiled, the downloaded models, and "
        "the CPU's vector instructions. Compiles, loads and downloads nothing.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    report = gather()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_text(report))
    return 0


def gather() -> dict:
    return {
        "tdn": version(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "packages": {label: package_version(dists) for label, dists in PACKAGES},
        "threads": threads(),
        "kernels": kernels(),
        "models": models(),
        "cpu": cpu(),
    }


def package_version(distributions) -> str:
    for dist in distributions:
        try:
            found = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        # where there are several, which one matters (OpenCV's non-headless wheel brings a Qt)
        return found if len(distributions) == 1 else f"{found} ({dist})"
    return "not installed"


def threads() -> dict:
    try:
        import numba
    except ImportError:
        return {"count": None, "layer": None}
    # The layer is chosen when the pool starts, at the first parallel kernel; starting the pool
    # without a kernel is Numba's internal call (importing engine has already preloaded TBB)
    try:
        from numba.np.ufunc import parallel

        parallel._launch_threads()
        layer = numba.threading_layer()
    except Exception as exc:  # noqa: BLE001 - a report says what went wrong rather than failing
        layer = f"unknown ({type(exc).__name__}: {exc})"
    return {"count": numba.get_num_threads(), "layer": layer}


def tiles_line(t: dict) -> str:
    if t["simd"] != "auto":
        return f"TDN_SIMD={t['simd']} (every direct conv)"
    if not t["tuned"]:
        return f"{t['default_floats']}-float vectors until `tdn compile` has measured this machine"
    return (
        f"16-float vectors on {t['wide_shapes']} of {t['shapes']} measured layer shapes, "
        f"{t['default_floats']}-float elsewhere (TDN_SIMD=auto)"
    )


def kernels() -> dict:
    # Read from the stamps and the compile lock, not kernels.status(): that would load the
    # compiled kernels, and start a compile when some are missing
    compiled = cache.read_stamps(KERNEL_NAMES)
    return {
        "mode": os.environ.get(KERNELS_ENV, "auto") or "auto",
        "cache": str(cache.stamp_dir()),
        "compiled": len(compiled),
        "total": len(KERNEL_NAMES),
        "missing": [name for name in KERNEL_NAMES if name not in compiled],
        "compiling": cache.is_locked(cache.COMPILE_LOCK),
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        "tiles": tiles(),
    }


def tiles() -> dict:
    """The direct convolution's tile widths: forced by TDN_SIMD, or this machine's tuning record."""
    record = tuning.read_record()
    layers = record["layers"] if record else {}
    return {
        "simd": os.environ.get(tuning.ENV, "auto") or "auto",
        "tuned": record is not None,
        "shapes": len(layers),
        "wide_shapes": sum(1 for lanes in layers.values() if lanes == 16),
        "default_floats": record["default"] if record else tuning.DEFAULT_LANES,
    }


def models() -> dict:
    names = registry.find_names()
    return {
        "cache": str(registry.cache_dir()),
        "downloaded": {key: str(registry.weights_path(key)) for key in registry.MODELS if registry.is_downloaded(key)},
        "not_downloaded": [key for key in registry.MODELS if not registry.is_downloaded(key)],
        "names": str(names) if names else None,
    }


def cpu() -> dict:
    name, known, flags = platform.machine(), (), set()
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n", 1)[0]  # every core lists the same
    except OSError:
        first = ""
    for line in first.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name":
            name = value.strip()
        elif key in SIMD_FLAGS:
            known, flags = SIMD_FLAGS[key], set(value.split())
    try:
        import llvmlite.binding

        llvm = llvmlite.binding.get_host_cpu_name()
    except Exception:  # noqa: BLE001 - not installed, or an llvmlite without it
        llvm = None
    return {
        "model": name,
        "llvm_cpu": llvm,
        "simd": [f for f in known if f in flags],
        "simd_absent": [f for f in known if f not in flags],
    }


def format_text(report: dict) -> str:
    k, m, c, t = report["kernels"], report["models"], report["cpu"], report["threads"]
    packages = [f"  {label:<9} {found}" for label, found in report["packages"].items()]
    threads_line = (
        f"{t['count']} (Numba's {t['layer']} layer)" if t["count"] is not None else "? (Numba is not installed)"
    )
    if k["compiled"] == k["total"]:
        state = "all compiled"
    elif k["compiled"] == 0:
        state = "none compiled"
    else:
        state = f"{k['compiled']} of {k['total']} compiled (missing: {', '.join(k['missing'])})"
    if k["compiled"] < k["total"]:
        state += "; a compile is running" if k["compiling"] else "; `tdn compile` compiles them"
    downloaded = ", ".join(f"{key} ({path})" for key, path in m["downloaded"].items())
    simd = " ".join(c["simd"]) or "none of those tdn looks for"
    if c["simd_absent"]:
        simd += f" (not: {' '.join(c['simd_absent'])})"
    llvm = f" (LLVM: {c['llvm_cpu']})" if c["llvm_cpu"] else ""
    return "\n".join(
        [
            f"tdn       {report['tdn']}",
            f"Python    {report['python']}",
            f"platform  {report['platform']}",
            *packages,
            f"threads   {threads_line}",
            f"kernels   {state}",
            f"  mode    TDN_KERNELS={k['mode']}",
            f"  cache   {k['cache']}",
            f"  tiles   {tiles_line(k['tiles'])}",
            f"models    in {m['cache']}",
            f"  downloaded      {downloaded or 'none'}",
            f"  not downloaded  {', '.join(m['not_downloaded']) or 'none'}",
            f"  class names     {m['names'] or 'not downloaded'}",
            f"CPU       {c['model']}{llvm}",
            f"  SIMD    {simd}",
        ]
    )
