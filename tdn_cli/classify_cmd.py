"""`tdn classify MODEL|CFG [WEIGHTS] IMAGE...`: darknet's classifier output, per image."""
from __future__ import annotations

import json
import sys

# Below this much work (images x BFLOPs at the cfg's size) the portable kernels answer sooner
# than loading the compiled ones, which costs a process ~0.8-1 s (Numba's start-up, then the
# kernels) and saves ~15 ms per BFLOP: `tdn classify tiny dog.jpg` took 1.7 s warm on the
# compiled kernels, 0.8 s on the portable ones (2026-11-30).
PORTABLE_WORK = 30

from .common import add_model_arguments, fail, kernel_path_note, load_class_names, load_network, split_weights


def add_parser(subparsers):
    from engine.image import RESIZE_HELP, RESIZE_MODES

    p = subparsers.add_parser("classify", help="print the top classes of images",
                              description="Classify images and print darknet's top-k output.")
    add_model_arguments(p, inputs="IMAGE")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to print (default 5)")
    p.add_argument("--resize", choices=RESIZE_MODES, default="min", help=RESIZE_HELP + " (default: min)")
    p.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
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
    net = load_network(args.model, weights)
    if len(images) * net.bflops < PORTABLE_WORK:
        kernels.defer_loading()
    classifier = engine.Classifier(net, load_class_names(net, args.names), resize=args.resize)
    net.warm_up()           # "Predicted in" times the network, as darknet's does, not JIT loading
    note = kernel_path_note()
    failures = 0
    for path in images:
        try:
            prediction = classifier.classify(engine.load_image(path))
        except engine.EngineError as exc:
            fail(str(exc))
            failures += 1
            continue
        top = prediction.top(args.top)
        if args.json:
            print(json.dumps({"image": path, "seconds": round(prediction.seconds, 6),
                              "top": [{"index": i, "name": n, "prob": p} for i, n, p in top]}))
        else:
            print(f"{path}: Predicted in {prediction.seconds:f} seconds.")
            for _, name, prob in top:
                print(f"{prob * 100:5.2f}%: {name}")
        sys.stdout.flush()
    if note:
        print(note, file=sys.stderr)
    return 1 if failures else 0
