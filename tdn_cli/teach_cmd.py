"""`tdn teach FOLDER --out DIR`: teach a new head on a frozen network from one subfolder per class,
and export NAME.cfg / NAME.weights / NAME.names that `tdn classify` (and darknet, OpenCV) load."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

AUGMENT_CHOICES = {
    "none": (),
    "flip": ("flip",),
    "crops": ("crop-tl", "crop-tr", "crop-bl", "crop-br"),
    "all": ("flip", "crop-tl", "crop-tr", "crop-bl", "crop-br"),
}


def add_parser(subparsers):
    from engine.teach import DEFAULT_FOLDS, DEPTHS, L2_GRID, MIN_TRUSTED

    p = subparsers.add_parser(
        "teach",
        help="teach your own classes on top of a network",
        description="Train a new classifier head on a network's features, from FOLDER's class "
        "subfolders (the folder name is the class name), and write DIR/NAME.cfg, "
        "DIR/NAME.weights and DIR/NAME.names. Cross-validation picks the features and the "
        "regularisation and measures the accuracy; then the network's last layers are "
        "fine-tuned with the head, kept only when cross-validation says that does better. "
        "The model written is trained on every image.",
    )
    p.add_argument("folder", metavar="FOLDER", help="one subfolder of images per class")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the model to")
    p.add_argument("--name", default="taught", metavar="NAME", help="model file name (default: taught)")
    p.add_argument(
        "--base",
        default="tiny",
        metavar="MODEL|CFG",
        help="network to build on: a model name or a .cfg with --weights (default: tiny)",
    )
    p.add_argument("--weights", metavar="FILE", help="weights of --base (default: the downloaded ones)")
    p.add_argument(
        "--layer",
        metavar="N[,M...]",
        help="the layer the head reads, or layers of one size for a [route] (17,19); default: "
        "chosen by cross-validation among the network's candidates (tiny: 17,19 / 18 / 19)",
    )
    p.add_argument(
        "--l2",
        type=float,
        metavar="X",
        help=f"L2 regularisation (default: chosen by cross-validation among {', '.join(f'{v:g}' for v in L2_GRID)})",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=DEFAULT_FOLDS,
        metavar="K",
        help=f"cross-validation folds (default {DEFAULT_FOLDS})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the folds (default 0)")
    p.add_argument(
        "--augment",
        choices=AUGMENT_CHOICES,
        default="flip",
        help="extra training examples per image: flip (mirror), crops (4 corners), all, or none (default: flip)",
    )
    p.add_argument(
        "--predictions",
        metavar="FILE.csv",
        help="write each image's cross-validated prediction (path, class, predicted class, their "
        "probabilities): the mistakes to look at",
    )
    p.add_argument(
        "--no-fine-tune",
        dest="fine_tune",
        action="store_false",
        help="train the head only; by default the network's last layers are also fine-tuned with it "
        "(depths " + "/".join(map(str, DEPTHS)) + ") and kept when cross-validation says that beats the head alone",
    )
    p.add_argument(
        "--fine-tune-depth",
        type=int,
        metavar="N",
        help="fine-tune the last N layers with weights and keep them whatever cross-validation says "
        "(the number of epochs is still chosen by it)",
    )
    p.add_argument("--verbose", action="store_true", help="every head and l2 cross-validated, not only the one chosen")
    p.set_defaults(func=run, min_trusted=MIN_TRUSTED)
    return p


def run(args) -> int:
    from engine import registry, teach
    from engine.errors import EngineError
    from engine.teach.tuned_part import cuts

    from .common import kernel_path_note

    # Everything that can be checked cheaply fails before the slow part.
    if args.folds < 2:
        raise EngineError(f"--folds must be at least 2 (got {args.folds})")
    if args.l2 is not None and not args.l2 >= 0:
        raise EngineError(f"--l2 must be 0 or more (got {args.l2:g})")
    if args.fine_tune_depth is not None and (args.fine_tune_depth < 1 or not args.fine_tune):
        raise EngineError(
            f"--fine-tune-depth must be 1 or more (got {args.fine_tune_depth})"
            if args.fine_tune
            else "--fine-tune-depth and --no-fine-tune ask for opposite things: give one"
        )
    layers = _layers(args.layer)
    out = teach.check_output(args.out, args.name)
    if args.predictions:
        _check_writable(args.predictions)
    dataset = teach.scan_dataset(args.folder)
    cfg, weights = registry.resolve(args.base, args.weights)
    backbone = teach.Backbone.load(cfg, weights, layers)
    if args.fine_tune_depth is not None and not any(
        cuts(backbone.spec, head, (args.fine_tune_depth,)) for head in backbone.heads
    ):
        raise EngineError(_no_cut(args.fine_tune_depth, backbone.heads[0]))
    counts = ", ".join(f"{name} ({n})" for name, n in zip(dataset.classes, dataset.counts()))
    print(f"base: {backbone.describe()}")
    print(f"classes: {len(dataset.classes)}: {counts}")

    cache = teach.user_feature_cache()
    bar = _progress_bar("features")
    features = teach.extract_features(backbone, dataset, AUGMENT_CHOICES[args.augment], cache, bar)
    bar.close()
    note = kernel_path_note()
    if note and features.computed:
        print(note, file=sys.stderr)
    for _, reason in features.skipped:
        print(f"skipped {reason}")
    print(
        f"features: {len(features.paths)} images x {len(features.variants)} "
        f"({', '.join(features.variants)}) in {features.seconds:.2f} s ({features.computed} computed, "
        f"{features.cached} cached), {len(features.skipped)} skipped"
    )

    bar = _progress_bar("cross-validation")
    result = teach.train_head(features, args.folds, args.l2, args.seed, progress=bar)
    bar.close()
    if args.verbose and result.trials:
        print(_trials(result))
    print(
        f"head: {result.head.describe(backbone.spec)}, l2 {result.l2:g}"
        + (" (chosen by cross-validation)" if len(result.trials) > 1 else "")
    )
    if args.fine_tune:
        result = _fine_tune(result, args)
    evaluation, what = (result.cv, "cross-validated") if result.cv is not None else (result.train, "training")
    print(
        f"{what} accuracy: {100 * evaluation.accuracy:.1f}% ({int(evaluation.confusion.trace())}/"
        f"{evaluation.count}), measured {result.how}"
    )
    print(_table(result.classes, evaluation))
    for name in result.few:
        n = int(np.sum(features.image_labels == result.classes.index(name)))
        print(
            f"warning: class '{name}' has only {n} image{'s' if n != 1 else ''}: too few to trust its "
            f"figures; {args.min_trusted} or more would be better"
        )
    print(f"the model written is trained on all {result.images} images")
    if args.predictions and result.cv is None:
        print(f"{args.predictions} not written: too few images to cross-validate")
    elif args.predictions:
        wrong = _write_predictions(args.predictions, result)
        print(f"wrote {args.predictions}: {result.images} cross-validated predictions, {wrong} of them wrong")

    start = time.perf_counter()
    paths = teach.export(result.model, out, args.name)
    export_seconds = time.perf_counter() - start
    print("wrote:")
    for path in (paths.cfg, paths.weights, paths.names):
        print(f"  {path}")
    print(
        f"time: feature extraction {features.seconds:.2f} s, cross-validation and training "
        f"{result.seconds:.2f} s"
        + (f" (fine-tuning {result.fine_tuning.seconds:.2f} s of it)" if result.fine_tuning else "")
        + f", export {export_seconds:.2f} s"
    )
    print(f"try: tdn classify {paths.cfg} {paths.weights} IMAGE --names {paths.names}")
    return 0


def _fine_tune(result, args):
    """teach.fine_tune with a progress bar, and a line saying what it tried and kept."""
    from engine import teach
    from engine.errors import EngineError
    from engine.teach.tuned_part import cuts

    forced = args.fine_tune_depth is not None
    depths = (args.fine_tune_depth,) if forced else teach.DEPTHS
    if forced and not cuts(result.features.backbone.spec, result.head, depths):
        raise EngineError(_no_cut(args.fine_tune_depth, result.head))
    bar = _progress_bar("fine-tuning")
    result = teach.fine_tune(result, depths, seed=args.seed, force=forced, progress=bar)
    bar.close()
    print(result.fine_tuning.describe() + f" ({result.fine_tuning.seconds:.1f} s)")
    if args.verbose:
        for trial in result.fine_tuning.trials:
            curve = ", ".join(f"{value:.3f}" for value in trial.curve)
            print(f"  {trial.cut.describe()}: held-out log-loss after 0, 1, ... epochs: {curve}")
    return result


def _no_cut(depth: int, head) -> str:
    return (
        f"--fine-tune-depth {depth}: the head reads layer {min(head.layers)}, and fine-tuning that many "
        "layers would cut the network after it, or before its first layer, or across a layer that "
        "reads past the cut"
    )


def _layers(text: str | None):
    """--layer 18 → 18; --layer 17,19 → (17, 19); None → None (cross-validation chooses)."""
    from engine.errors import EngineError

    if text is None:
        return None
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise EngineError(f"--layer wants a layer number, or numbers joined by commas (got '{text}')") from None
    return values[0] if len(values) == 1 else values


def _trials(result) -> str:
    """Every head × l2 cross-validated: accuracy and log-loss, the chosen one marked."""
    values = sorted({t.l2 for t in result.trials})
    lines = [
        "cross-validation (accuracy % / log-loss):",
        f"  {'head':<8}" + "".join(f"{'l2 ' + format(v, 'g'):>17}" for v in values),
    ]
    for head in dict.fromkeys(t.head for t in result.trials):
        cells = []
        for v in values:
            t = next(t for t in result.trials if t.head == head and t.l2 == v)
            mark = "*" if (head, v) == (result.head, result.l2) else " "
            cells.append(f"{100 * t.accuracy:5.1f} / {t.log_loss:.3f}{mark}")
        lines.append(f"  {head.label:<8}" + "".join(f"{c:>17}" for c in cells))
    lines.append("  (* chosen: the most preferred head within one standard error of the lowest log-loss)")
    return "\n".join(lines)


def _table(classes, evaluation) -> str:
    """Per class: images, recall (its images predicted right), precision (the images predicted as
    it that are), then the confusion matrix: rows are true classes, columns predicted ones."""
    width = max(5, max(len(name) for name in classes))
    cell = max(5, len(str(int(evaluation.confusion.max()))) + 2)

    def share(value) -> str:
        return "-" if math.isnan(value) else f"{100 * value:.1f}%"

    lines = [
        f"{'#':>3}  {'class':<{width}}  {'images':>6}  {'recall':>7}  {'precision':>9}  predicted as:",
        f"{'':>3}  {'':<{width}}  {'':>6}  {'':>7}  {'':>9}  " + "".join(f"{k:>{cell}}" for k in range(len(classes))),
    ]
    for k, name in enumerate(classes):
        lines.append(
            f"{k:>3}  {name:<{width}}  {int(evaluation.counts[k]):>6}  {share(evaluation.recall[k]):>7}  "
            f"{share(evaluation.precision[k]):>9}  " + "".join(f"{int(v):>{cell}}" for v in evaluation.confusion[k])
        )
    return "\n".join(lines)


PREDICTION_COLUMNS = ("path", "class", "predicted", "probability", "class_probability", "correct")


def _check_writable(path: str) -> None:
    """--predictions' folder exists and the name is not a folder: said before any work."""
    from pathlib import Path

    from engine.errors import EngineError

    target = Path(path)
    if target.is_dir():
        raise EngineError(f"--predictions {path}: is a folder; give a file name (e.g. predictions.csv)")
    if not target.parent.is_dir():
        raise EngineError(f"--predictions {path}: the folder {target.parent} does not exist")


def _write_predictions(path: str, result) -> int:
    """The CSV of result.judged(), written whole or not at all; returns how many are wrong."""
    import csv
    import io

    from engine.files import write_atomic

    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\n")
    rows.writerow(PREDICTION_COLUMNS)
    wrong = 0
    for judged in result.judged():
        wrong += not judged.right
        rows.writerow(
            [
                str(judged.path),
                result.classes[judged.true],
                result.classes[judged.predicted],
                f"{judged.probabilities[judged.predicted]:.4f}",
                f"{judged.probabilities[judged.true]:.4f}",
                int(judged.right),
            ]
        )
    write_atomic(path, text.getvalue().encode())
    return wrong


def _progress_bar(stage: str):
    """A tqdm bar (stderr; hidden when not a terminal)."""
    from tqdm import tqdm

    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=total,
                unit={"features": "img", "fine-tuning": "step"}.get(stage, "fold"),
                desc=stage,
                file=sys.stderr,
                disable=None,
                leave=False,
            )
        bar.update(done - bar.n)

    def close():
        if bar is not None:
            bar.close()

    update.close = close
    return update
