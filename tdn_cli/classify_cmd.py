"""`tdn classify MODEL|CFG [WEIGHTS] IMAGE...`: darknet's classifier output, per image."""

from __future__ import annotations

import json
import sys

from .common import (
    add_cluster_argument,
    add_model_arguments,
    add_tta_argument,
    cluster_model,
    fail,
    kernel_path_note,
    load_class_names,
    load_network,
    split_weights,
)

# Below this much work (images x BFLOPs at the cfg's size) the portable kernels answer sooner
# than loading the compiled ones, which costs a process ~0.8-1 s (Numba's start-up, then the
# kernels) and saves ~15 ms per BFLOP (bench/bench_cold_start.py measures both).
PORTABLE_WORK = 30


def add_parser(subparsers):
    from engine.image import RESIZE_HELP, RESIZE_MODES

    p = subparsers.add_parser(
        "classify",
        help="print the top classes of images",
        description="Classify images and print darknet's top-k output.",
    )
    add_model_arguments(p, inputs="IMAGE")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to print (default 5)")
    p.add_argument("--resize", choices=RESIZE_MODES, default="min", help=RESIZE_HELP + " (default: min)")
    p.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    add_tta_argument(p)
    p.add_argument(
        "--cam",
        metavar="DIR",
        help="write a heatmap per image: DIR/<name>.cam.npy (the map, float32, rows x columns "
        "over the image) and DIR/<name>.cam.png (the photo under it, with the class name)",
    )
    p.add_argument("--cam-class", metavar="NAME|INDEX", help="the class to map (default: each image's top-1)")
    add_cluster_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import engine
    from engine import kernels

    weights, images = split_weights(args)
    if not images:
        raise engine.EngineError("no image given")
    if args.top < 1:
        raise engine.EngineError(f"--top must be at least 1 (got {args.top})")
    if args.cam_class is not None and args.cam is None:
        raise engine.EngineError("--cam-class names the class of --cam's heatmaps: give --cam DIR too")
    if args.cluster:
        from engine.cluster import require

        require()  # before any work: without Dask, the one line on how to get it
    if args.cluster and args.cam:
        raise engine.EngineError("--cam writes its files here: run it without --cluster")
    net = load_network(args.model, weights)
    if len(images) * net.bflops < PORTABLE_WORK or args.cluster:
        kernels.defer_loading()
    classifier = engine.Classifier(net, load_class_names(net, args.names), resize=args.resize, tta=args.tta)
    if args.cluster:
        return _run_on_cluster(args, cluster_model(args, weights, classifier), images)
    cams = _Heatmaps(classifier, args.cam, args.cam_class) if args.cam else None
    net.warm_up()  # "Predicted in" times the network, as darknet's does, not JIT loading
    note = kernel_path_note()
    failures = 0
    for path in images:
        try:
            image = engine.load_image(path, classifier.decode_size)
            prediction = classifier.classify(image, heatmap=cams is not None)
            written = cams.write(path, image, prediction) if cams else None
        except (engine.EngineError, OSError) as exc:
            fail(str(exc) if isinstance(exc, engine.EngineError) else f"{path}: {exc.strerror or exc}")
            failures += 1
            continue
        _print(args, path, prediction.seconds, prediction.top(args.top), written)
    if note:
        print(note, file=sys.stderr)
    return 1 if failures else 0


def _print(args, path: str, seconds: float, top, written=None) -> None:
    """One image's answer, as darknet prints it or (--json) as one JSON object."""
    if args.json:
        record = {
            "image": path,
            "seconds": round(seconds, 6),
            "top": [{"index": i, "name": n, "prob": p} for i, n, p in top],
        }
        if written:
            record["cam"] = {"class": written[0], "npy": str(written[1]), "png": str(written[2])}
        print(json.dumps(record))
    else:
        print(f"{path}: Predicted in {seconds:f} seconds.")
        for _, name, prob in top:
            print(f"{prob * 100:5.2f}%: {name}")
        if written:
            print(f"heatmap of {written[3]}: {written[2]}")
    sys.stdout.flush()


def _run_on_cluster(args, model, images: list[str]) -> int:
    """The images classified by a Dask cluster's workers, printed in input order as they come."""
    from tqdm import tqdm

    from engine.cluster import Cluster, run_batches

    failures = 0
    with Cluster(args.cluster) as cluster:
        with tqdm(total=len(images), unit="img", file=sys.stderr, disable=None, leave=False) as bar:
            for answer in run_batches(cluster, model, images, args.top, progress=bar.update):
                if answer.error is not None:
                    fail(answer.error)
                    failures += 1
                else:
                    _print(args, images[answer.index], answer.seconds, answer.top)
    return 1 if failures else 0


class _Heatmaps:
    """--cam DIR [--cam-class]: checked before any image is classified, written per image."""

    def __init__(self, classifier, folder: str, cam_class: str | None):
        import engine
        from pathlib import Path

        classifier.heatmap_source()  # NoHeatmap: the one line, before any work
        self.names = classifier.names
        self.index = None if cam_class is None else class_index(cam_class, classifier.names, classifier.net.classes)
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise engine.EngineError(f"--cam {folder}: not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stems: set[str] = set()

    def write(self, path: str, image, prediction):
        """(class index, .npy path, .png path, class name) of the heatmap written for `path`."""
        import engine
        from pathlib import Path

        from engine.heatmap import write_heatmap

        index = self.index if self.index is not None else prediction.top(1)[0][0]
        name = engine.class_name(self.names, index)
        stem = self._stem(Path(path).stem)
        label = f"{name} {100 * float(prediction.probs[index]):.1f}%"
        npy, png = write_heatmap(self.folder, stem, image, prediction.heatmap.of(index), label)
        return index, npy, png, name

    def _stem(self, stem: str) -> str:
        """The name's stem, numbered when two images given share it (a/dog.jpg, b/dog.png)."""
        unique, n = stem, 1
        while unique in self.stems:
            n += 1
            unique = f"{stem}-{n}"
        self.stems.add(unique)
        return unique


def class_index(text: str, names, classes: int) -> int:
    """A class given by index or by name (case ignored); an ambiguous or unknown name is an error."""
    import engine

    if text.strip().isdigit():
        index = int(text)
        if index >= classes:
            raise engine.EngineError(f"--cam-class {index}: the network has classes 0-{classes - 1}")
        return index
    found = [i for i, name in enumerate(names or ()) if name.lower() == text.strip().lower()]
    if not found:
        raise engine.EngineError(
            f"--cam-class {text!r}: no class of that name"
            + ("" if names else " (this network has no class names: give an index)")
        )
    if len(found) > 1:
        raise engine.EngineError(f"--cam-class {text!r} is classes {', '.join(map(str, found))}: give the index")
    return found[0]
