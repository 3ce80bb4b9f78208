"""`tdn train` (darknet's `classifier train`) and `tdn partial` (darknet's `partial`)."""

from __future__ import annotations

import json
import os
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a darknet classifier cfg on your images (darknet's arithmetic)",
        description="Train every layer of a darknet classifier, as darknet's `classifier train` does: its "
        "backward passes, its SGD update (momentum, decay, subdivisions, the cfg's learning-rate "
        "policy) and its augmentation. Writes OUT/<cfg name>.weights, .cfg and .names, a "
        ".backup every 100 updates and on Ctrl+C, and the loss curve (.csv, .png).",
    )
    p.add_argument(
        "cfg",
        metavar="CFG",
        help="the network and its training settings ([net]: batch, "
        "learning_rate, policy, max_batches, crops and colour jitter...)",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="FOLDER|FILE.data",
        help="a folder with one subfolder of images per class (sorted names = class order), or a "
        "darknet .data file (train= a list of images, labels= the class names)",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="start from these weights (the schedule goes on from their "
        "image count; --clear starts it again), e.g. a base made by `tdn partial`",
    )
    p.add_argument("--clear", action="store_true", help="start the schedule at 0 (darknet's -clear)")
    p.add_argument("--out", default=".", metavar="DIR", help="where the weights and the rest go (default: here)")
    p.add_argument(
        "--valid", metavar="FOLDER|FILE.data", help="report top-1/top-5 on these images as it goes and at the end"
    )
    p.add_argument(
        "--valid-every",
        type=int,
        metavar="N",
        help="updates between validations (default: every quarter of a run of 100 updates or more, "
        "and at the end; 0: at the end only)",
    )
    p.add_argument(
        "--batches",
        type=int,
        metavar="N",
        help="stop after N updates (the learning rate still follows the cfg's max_batches)",
    )
    p.add_argument(
        "--in-order",
        action="store_true",
        help="feed the images in the list's (or the folders' sorted) order instead of at random",
    )
    p.add_argument(
        "--no-augment",
        action="store_true",
        help="images as they are (resized to the network's size when they differ): no crops, flips or colour jitter",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="for the order, the augmentation and a new network's starting weights (default 0)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object at the end instead of text")
    p.set_defaults(func=run)

    q = sub.add_parser(
        "partial",
        help="the first N layers' weights as a pretrained base (darknet's partial)",
        description="Write the weights of CFG's first N layers to OUT: a base to fine-tune from "
        "with `tdn train NEW.cfg --weights OUT`, where NEW.cfg keeps those N layers "
        "and adds its own.",
    )
    q.add_argument("cfg", metavar="CFG")
    q.add_argument("weights", metavar="WEIGHTS")
    q.add_argument("out", metavar="OUT")
    q.add_argument("layers", type=int, metavar="N")
    q.set_defaults(func=run_partial)


def _kernels_compiled() -> bool:
    return os.environ.get("TDN_KERNELS", "").strip().lower() != "portable"


def run(args) -> int:
    from engine.training import Interrupted, RunOptions, train

    from .common import fail

    options = RunOptions(
        cfg=args.cfg,
        data=args.data,
        out_dir=args.out,
        weights=args.weights,
        clear=args.clear,
        valid=args.valid,
        valid_every=args.valid_every,
        batches=args.batches,
        in_order=args.in_order,
        augment=not args.no_augment,
        seed=args.seed,
        compiled=_kernels_compiled(),
    )
    bar = _Progress(quiet=args.json)
    try:
        result = train(options, on_update=bar.update, on_message=bar.message)
    except Interrupted as exc:
        bar.close()
        return fail(str(exc), 130)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    print(
        f"trained {result.batches} updates, {result.images} images in {result.seconds:.1f} s "
        f"({result.images_per_second:.0f} images/s); final loss {result.final_loss:.4f}"
    )
    if result.skipped:
        first = next(iter(result.skipped.values()))
        print(f"skipped {len(result.skipped)} unreadable images (e.g. {first})")
    if result.top1 is not None:
        print(f"validation: top-1 {result.top1:.1%}, top-5 {result.top5:.1%}")
    print(f"wrote {result.weights} (and .cfg, .names, .csv, .png beside it)")
    return 0


def run_partial(args) -> int:
    from engine.training import partial

    floats = partial(args.cfg, args.weights, args.out, args.layers)
    print(f"wrote {args.out}: the first {args.layers} layers of {args.cfg}, {floats} weights")
    return 0


class _Progress:
    """A tqdm bar on stderr (hidden when not a terminal): loss, darknet's running average, the
    learning rate and images/s; checkpoint and validation lines above it."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def update(self, p) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=p.total,
                unit="batch",
                file=sys.stderr,
                disable=None,
                leave=False,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}",
            )
        self.bar.set_postfix_str(
            f"loss {p.loss:.3f} avg {p.avg_loss:.3f} rate {p.rate:.3g} {p.images_per_second:.0f} img/s", refresh=False
        )
        self.bar.update(p.done - self.bar.n)

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
