"""`tdn summary MODEL|CFG`: darknet's layer table with BFLOPs, parameters and file size."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser(
        "summary",
        help="print the layer table of a cfg",
        description="Print a network's layers, BFLOPs, parameters and weights-file size (no weights needed).",
    )
    p.add_argument("model", metavar="MODEL|CFG", help="a model name or a darknet .cfg file")
    p.add_argument("--size", metavar="WxH", help="input size to compute shapes for (default: the cfg's)")
    p.set_defaults(func=run)
    return p


def cfg_for(model: str) -> Path:
    from engine import registry

    if model in registry.MODELS:
        return registry.cfg_path(model)
    return Path(model)


def parse_size(text: str) -> tuple[int, int]:
    import engine

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise engine.EngineError(f"--size {text}: expected WIDTHxHEIGHT, e.g. 320x240") from None
    if w < 1 or h < 1:
        raise engine.EngineError(f"--size {text}: width and height must be positive")
    return w, h


def run(args) -> int:
    import dataclasses

    import engine
    from engine.summary import summarize

    spec = engine.parse_network(cfg_for(args.model))
    if args.size:
        w, h = parse_size(args.size)
        if (w, h) != (spec.width, spec.height):
            spec = dataclasses.replace(spec, width=w, height=h, shapes=spec.shapes_for(h, w))
    summary = summarize(spec)
    print(f"{spec.path}: {spec.width}x{spec.height}x{spec.channels} input")
    print(summary.table())
    return 0
