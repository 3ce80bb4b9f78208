"""`tdn valid MODEL|CFG [WEIGHTS] FOLDER`: top-1/top-5 accuracy on a labelled folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import (
    add_cluster_argument,
    add_model_arguments,
    add_tta_argument,
    cluster_model,
    kernel_path_note,
    load_class_names,
    load_network,
    split_weights,
)


def add_parser(subparsers):
    from engine.image import RESIZE_HELP, RESIZE_MODES

    p = subparsers.add_parser(
        "valid",
        help="measure top-1/top-5 accuracy on a labelled folder",
        usage="tdn valid [options] MODEL|CFG [WEIGHTS] FOLDER",
        description="Classify every image under FOLDER and compare with its label: a WordNet id "
        "(n01440764) starting the file name or naming its folder, or a folder named after "
        "a class. Unreadable and unlabelled files are counted and listed, never fatal.",
    )
    add_model_arguments(p, inputs="FOLDER")
    p.add_argument(
        "--labels", metavar="FILE", help="WordNet ids, one per class, in weight order (default: the downloaded list)"
    )
    p.add_argument("--resize", choices=RESIZE_MODES, default="min", help=RESIZE_HELP + " (default: min)")
    p.add_argument("--csv", metavar="FILE", help="write one row per image")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--limit", type=int, metavar="N", help="classify at most N labelled images")
    add_tta_argument(p)
    add_cluster_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import engine
    from engine import registry
    from engine.validate import Labeler, validate, write_csv

    weights, rest = split_weights(args)
    if len(rest) != 1:
        raise engine.EngineError("give exactly one FOLDER (after the weights file, if MODEL is a .cfg)")
    if args.limit is not None and args.limit < 1:
        raise engine.EngineError(f"--limit must be at least 1 (got {args.limit})")
    if args.cluster:
        from engine.cluster import require

        require()  # before any work: without Dask, the one line on how to get it
    folder = Path(rest[0])
    net = load_network(args.model, weights)
    names = load_class_names(net, args.names)
    labels_file = args.labels or registry.find_labels()
    wnids = engine.load_names(labels_file, net.classes) if labels_file else None
    classifier = engine.Classifier(net, names, resize=args.resize, tta=args.tta)
    bar = _progress_bar()
    if args.cluster:
        from engine.cluster import Cluster
        from engine.validate import validate_on_cluster

        note = None
        with Cluster(args.cluster) as cluster:
            result = validate_on_cluster(
                cluster,
                cluster_model(args, weights, classifier),
                folder,
                Labeler(wnids, names),
                limit=args.limit,
                progress=bar,
            )
    else:
        net.warm_up()  # loads the compiled kernels there are, so the note below is true
        note = kernel_path_note()
        result = validate(classifier, folder, Labeler(wnids, names), limit=args.limit, progress=bar)
    bar.close()
    if args.csv:
        write_csv(result, Path(args.csv))
    summary = result.summary()
    skipped_out = sys.stderr if args.json else sys.stdout
    for path, reason in result.skipped:
        print(f"skipped {path}: {reason}", file=skipped_out)
    if args.json:
        print(json.dumps(summary))
    else:
        rate = result.images / result.seconds if result.seconds else 0.0
        print(
            f"images: {result.images}, top-1: {100 * result.top1:.2f}%, top-5: {100 * result.top5:.2f}%, "
            f"skipped: {len(result.skipped)}, seconds: {result.seconds:.2f} ({rate:.1f} images/s)"
        )
    if note:
        print(note, file=sys.stderr)
    return 0


def _progress_bar():
    """A tqdm bar (stderr; hidden when not a terminal) with running accuracy and speed."""
    from tqdm import tqdm

    bar = None

    def update(result, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="img", file=sys.stderr, disable=None, leave=False)
        bar.set_postfix_str(f"top-1 {100 * result.top1:.1f}% top-5 {100 * result.top5:.1f}%", refresh=False)
        bar.update(result.images - bar.n)

    def close():
        if bar is not None:
            bar.close()

    update.close = close
    return update
