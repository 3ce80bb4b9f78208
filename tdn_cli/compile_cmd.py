"""`tdn compile`: compile the fast kernels now (a fresh install otherwise does it in the
background while answering on the portable kernels)."""

from __future__ import annotations

from .common import compile_kernels


def add_parser(subparsers):
    p = subparsers.add_parser(
        "compile",
        help="compile the fast kernels now (once per install)",
        description="Compile the engine's Numba kernels into Numba's on-disk cache, on every core, "
        "with a progress bar. A fresh install does this by itself in the background, "
        "answering on slower portable kernels meanwhile; this is for people who want it "
        "done now, and for building CI or container images.",
    )
    p.add_argument("--jobs", type=int, metavar="N", help="compile processes at once (default: one per core)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from engine.errors import EngineError

    if args.jobs is not None and args.jobs < 1:
        raise EngineError(f"--jobs must be at least 1 (got {args.jobs})")
    return compile_kernels(args.jobs)
