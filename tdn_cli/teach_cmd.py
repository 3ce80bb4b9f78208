"""`tdn teach FOLDER --out DIR`: teach a new head on a frozen network from one subfolder per class,
and export NAME.cfg / NAME.weights / NAME.names that `tdn classify` (and darknet, OpenCV) load."""
from __future__ import annotations

import math
import sys
import time

AUGMENT_CHOICES = {"none": (), "flip": ("flip",), "crops": ("crop-tl", "crop-tr", "crop-bl", "crop-br"),
                   "all": ("flip", "crop-tl", "crop-tr", "crop-bl", "crop-br")}


def add_parser(subparsers):
    from engine.teach import DEFAULT_EPOCHS, DEFAULT_VAL

    p = subparsers.add_parser(
        "teach", help="teach your own classes on top of a frozen network",
        description="Train a new classifier head (1x1 conv, avgpool, softmax) on a frozen network's "
                    "features, from FOLDER's class subfolders (the folder name is the class name), and "
                    "write DIR/NAME.cfg, DIR/NAME.weights and DIR/NAME.names.")
    p.add_argument("folder", metavar="FOLDER", help="one subfolder of images per class")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the model to")
    p.add_argument("--name", default="taught", metavar="NAME", help="model file name (default: taught)")
    p.add_argument("--base", default="tiny", metavar="MODEL|CFG",
                   help="network to build on: a model name or a .cfg with --weights (default: tiny)")
    p.add_argument("--weights", metavar="FILE", help="weights of --base (default: the downloaded ones)")
    p.add_argument("--layer", type=int, metavar="N",
                   help="feature layer: the network is kept up to it (default: the last convolutional "
                        "layer before the classifier; 18 for tiny, 128 channels)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="N",
                   help=f"at most N epochs, each one full-batch L-BFGS step (default {DEFAULT_EPOCHS}; "
                        "stops earlier once converged)")
    p.add_argument("--val", type=float, default=DEFAULT_VAL, metavar="FRACTION",
                   help=f"fraction of each class's images held out for validation (default {DEFAULT_VAL:g})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the validation split (default 0)")
    p.add_argument("--augment", choices=AUGMENT_CHOICES, default="flip",
                   help="extra training examples per image: flip (mirror), crops (4 corners), all, or "
                        "none (default: flip)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from engine import registry, teach
    from engine.errors import EngineError

    from .common import kernel_path_note

    # Everything that can be checked cheaply fails before the slow part.
    if not 0 <= args.val < 1:
        raise EngineError(f"--val must be at least 0 and below 1 (got {args.val:g})")
    if args.epochs < 1:
        raise EngineError(f"--epochs must be at least 1 (got {args.epochs})")
    out = teach.check_output(args.out, args.name)
    dataset = teach.scan_dataset(args.folder)
    cfg, weights = registry.resolve(args.base, args.weights)
    backbone = teach.Backbone.load(cfg, weights, args.layer)
    counts = ", ".join(f"{name} ({n})" for name, n in zip(dataset.classes, dataset.counts()))
    print(f"base: {backbone.describe()}")
    print(f"classes: {len(dataset.classes)}: {counts}")

    cache = teach.FeatureCache(registry.cache_dir() / "features")
    bar = _progress_bar()
    features = teach.extract_features(backbone, dataset, AUGMENT_CHOICES[args.augment], cache, bar)
    bar.close()
    note = kernel_path_note()
    if note and features.computed:
        print(note, file=sys.stderr)
    for _, reason in features.skipped:
        print(f"skipped {reason}")
    print(f"features: {len(features.paths)} images x {len(features.variants)} "
          f"({', '.join(features.variants)}) in {features.seconds:.2f} s ({features.computed} computed, "
          f"{features.cached} cached), {len(features.skipped)} skipped")

    result = teach.train_head(features, args.val, args.seed, args.epochs, on_epoch=_print_epoch)
    print(f"trained in {len(result.history)} epochs on {result.train_images} images "
          f"({len(result.features.variants)} examples each), {result.val_images} held out")

    evaluation, what = (result.val, "validation") if result.val is not None else (result.train, "training")
    if result.val is None:
        print("no validation split (--val 0 or too few images): the figures below are on the training set")
    print(f"{what} accuracy: {100 * evaluation.accuracy:.1f}% ({int(evaluation.confusion.trace())}/"
          f"{evaluation.count})")
    print(_table(result.classes, evaluation))

    start = time.perf_counter()
    paths = teach.export(result.model, out, args.name)
    export_seconds = time.perf_counter() - start
    print("wrote:")
    for path in (paths.cfg, paths.weights, paths.names):
        print(f"  {path}")
    print(f"time: feature extraction {features.seconds:.2f} s, training {result.seconds:.2f} s, "
          f"export {export_seconds:.2f} s")
    print(f"try: tdn classify {paths.cfg} {paths.weights} IMAGE --names {paths.names}")
    return 0


def _print_epoch(stats) -> None:
    val = "" if stats.val_accuracy is None else f", val accuracy {100 * stats.val_accuracy:.1f}%"
    print(f"epoch {stats.epoch:4d}: loss {stats.loss:.4f}, train accuracy {100 * stats.train_accuracy:.1f}%{val}")


def _table(classes, evaluation) -> str:
    """Per-class accuracy and the confusion matrix: rows are true classes, columns predicted ones."""
    width = max(5, max(len(name) for name in classes))
    cell = max(5, len(str(int(evaluation.confusion.max()))) + 2)
    lines = [f"{'#':>3}  {'class':<{width}}  accuracy  predicted as:",
             f"{'':>3}  {'':<{width}}  {'':>8}" + "".join(f"{k:>{cell}}" for k in range(len(classes)))]
    for k, name in enumerate(classes):
        acc = evaluation.per_class[k]
        acc_text = "-" if math.isnan(acc) else f"{100 * acc:.1f}%"
        lines.append(f"{k:>3}  {name:<{width}}  {acc_text:>8}"
                     + "".join(f"{int(v):>{cell}}" for v in evaluation.confusion[k]))
    return "\n".join(lines)


def _progress_bar():
    """A tqdm bar over feature extraction (stderr; hidden when not a terminal)."""
    from tqdm import tqdm

    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="img", desc="features", file=sys.stderr, disable=None, leave=False)
        bar.update(done - bar.n)

    def close():
        if bar is not None:
            bar.close()
    update.close = close
    return update

