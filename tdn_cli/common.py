"""What several tdn subcommands share: resolving MODEL|CFG [WEIGHTS], loading names, errors."""

from __future__ import annotations

import sys
from pathlib import Path


def add_model_arguments(p, inputs: str | None, optional: bool = False) -> None:
    """MODEL|CFG (optional: may be left out), then (inputs "IMAGE" or "FOLDER") [WEIGHTS] and the
    inputs, --weights, --names."""
    p.add_argument(
        "model",
        metavar="MODEL|CFG",
        nargs="?" if optional else None,
        help="a model name (tiny, darknet, ...; see `tdn models`) or a darknet .cfg file",
    )
    if inputs == "IMAGE":
        p.add_argument(
            "paths",
            nargs="+",
            metavar="[WEIGHTS] IMAGE",
            help="the .weights file when MODEL is a .cfg (or use --weights), then images",
        )
    elif inputs == "FOLDER":
        p.add_argument(
            "paths",
            nargs="+",
            metavar="[WEIGHTS] FOLDER",
            help="the .weights file when MODEL is a .cfg (or use --weights), then the folder",
        )
    p.add_argument("--weights", metavar="FILE", help="weights file (default: the downloaded one)")
    p.add_argument(
        "--names",
        metavar="FILE",
        help="class names, one per line (default: the downloaded ImageNet names, else 'class N')",
    )


def add_tta_argument(p) -> None:
    p.add_argument(
        "--tta",
        metavar="flip|scales|flip,scales",
        help="test-time augmentation: flip also classifies the mirror image (in the same pass) "
        "and averages; scales looks at the image at 8/7 of the network's size (256 for a "
        "224 network), the size it saw objects at in training",
    )


def add_cluster_argument(p) -> None:
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="classify on a Dask cluster: tcp://HOST:PORT (a running `dask scheduler`) or local:N "
        "(N worker processes here); the image paths must be readable on every worker "
        "(needs pip install 'tdn[cluster]')",
    )


def cluster_model(args, weights: str | None, classifier):
    """The engine.cluster.ModelSpec of the classifier the command built, with absolute paths
    (workers resolve nothing themselves)."""
    from engine import registry
    from engine.cluster import ModelSpec

    cfg, weights_file = registry.resolve(args.model, weights)
    return ModelSpec(
        str(Path(cfg).resolve()), str(Path(weights_file).resolve()), classifier.names, classifier.resize, classifier.tta
    )


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
    """Print one error line: a line break in the message (a file name can hold one) is escaped."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    print(f"tdn: error: {message}", file=sys.stderr)
    return code


def kernel_path_note() -> str | None:
    """The line to print on stderr after answering on the portable kernels in "auto" mode while
    the compiled ones are still being compiled (a fresh install), or None."""
    from engine import kernels

    status = kernels.status()
    if status.mode != "auto" or status.path == "compiled" or status.cached == status.total:
        return None
    return (
        f"tdn: answered on the portable kernels (numpy, slower) while the fast ones compile in the "
        f"background, once per install ({status.compiled} of {status.total} ready); "
        f"`tdn compile` waits for them"
    )


def compile_kernels(jobs: int | None = None, quiet: bool = False) -> int:
    """Compile the kernels now, with a progress bar on stderr; returns an exit status."""
    import time

    from tqdm import tqdm

    from engine import compile as engine_compile
    from engine.kernels import cache

    if not engine_compile.pending():
        if not quiet:
            print(f"tdn: the compiled kernels are ready ({cache.stamp_dir().parent})", file=sys.stderr)
        return 0
    print(
        f"tdn: compiling the fast kernels into Numba's cache, once per install ({cache.stamp_dir().parent})",
        file=sys.stderr,
    )
    start = time.perf_counter()
    bar = tqdm(total=100, unit="%", file=sys.stderr, disable=None, leave=False, bar_format="{l_bar}{bar}| {elapsed}")

    def progress(done: float) -> None:
        bar.update(round(100 * done) - bar.n)

    try:
        status = engine_compile.coordinate(background=False, jobs=jobs, progress=progress)
    finally:
        bar.close()
    if status == 0:
        print(f"tdn: compiled in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return status
