"""What several tdn subcommands share: resolving MODEL|CFG [WEIGHTS], loading names, errors."""
from __future__ import annotations

import sys


def add_model_arguments(p, images: bool) -> None:
    p.add_argument("model", metavar="MODEL|CFG",
                   help="a model name (tiny, darknet, ...; see `tdn models`) or a darknet .cfg file")
    if images:
        p.add_argument("paths", nargs="+", metavar="[WEIGHTS] IMAGE",
                       help="the .weights file when MODEL is a .cfg (or use --weights), then images")
    p.add_argument("--weights", metavar="FILE", help="weights file (default: the downloaded one)")
    p.add_argument("--names", metavar="FILE",
                   help="class names, one per line (default: the downloaded ImageNet names, else 'class N')")


def split_weights(args) -> tuple[str | None, list[str]]:
    """`tdn classify a.cfg a.weights x.jpg`: the first path after a .cfg is its weights."""
    paths = list(getattr(args, "paths", []))
    weights = args.weights
    if weights is None and args.model.endswith(".cfg") and paths and paths[0].endswith(".weights"):
        weights = paths.pop(0)
    return weights, paths


def load_network(model: str, weights: str | None):
    import engine
    from engine import registry

    cfg, weights_file = registry.resolve(model, weights)
    net = engine.Network.load(cfg, weights_file)
    return net


def load_class_names(net, names_path: str | None) -> list[str] | None:
    import engine
    from engine import registry

    if names_path:
        return engine.load_names(names_path, net.classes)
    found = registry.find_names()
    if found and net.classes == registry.NUM_CLASSES:
        return engine.load_names(found, net.classes)
    return None


def fail(message: str, code: int = 1) -> int:
    print(f"tdn: error: {message}", file=sys.stderr)
    return code

