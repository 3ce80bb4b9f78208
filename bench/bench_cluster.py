"""`tdn valid` on one process against a Dask LocalCluster of 2 workers, on >= 1,000 labelled images
(teach-dev's 89 photos under 12 names each, linked into a temporary folder), Tiny's real weights.

Prints images/s for one process and for local:2 at a few batch sizes (tasks of that many paths),
the cluster's start-up (processes, then the first task: loading the network and its kernels), and
the scheduler's own cost per task (empty tasks), from which README's projection is made.

    python bench/bench_cluster.py [--copies 12] [--batches 8,32,128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def _noop(x):
    return x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=12, help="names per photo (default 12: 1,068 images)")
    parser.add_argument("--batches", default="8,32,128", help="paths per task to try")
    args = parser.parse_args()

    import engine
    from engine import kernels
    from engine.cluster import Cluster, ModelSpec
    from engine.validate import Labeler, validate, validate_on_cluster

    kernels.use("compiled")
    cfg, weights = ROOT / "cfg" / "tiny.cfg", SHARED / "weights" / "tiny.weights"
    net = engine.Network.load(cfg, weights)
    names = engine.load_names(SHARED / "darknet" / "data" / "imagenet.shortnames.list", net.classes)
    wnids = engine.load_names(SHARED / "darknet" / "data" / "imagenet.labels.list", net.classes)
    labeler = Labeler(wnids, names)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for photo in sorted((SHARED / "teach-dev").rglob("*.jpg")):
            for k in range(args.copies):
                (folder / f"{photo.stem}_{k:02}.jpg").symlink_to(photo)
        images = len(list(folder.iterdir()))
        print(
            f"{images} labelled images (teach-dev x {args.copies}), Tiny Darknet, real weights; "
            f"{engine.threads()} cores"
        )

        net.warm_up()
        here = validate(engine.Classifier(net, names), folder, labeler)
        print(
            f"one process ({engine.threads()} kernel threads): {here.images / here.seconds:6.1f} images/s  "
            f"(top-1 {100 * here.top1:.2f}%, top-5 {100 * here.top5:.2f}%)"
        )

        model = ModelSpec(str(cfg), str(weights), tuple(names))
        start = time.perf_counter()
        with Cluster("local:2") as cluster:
            started = time.perf_counter() - start
            first = time.perf_counter()
            validate_on_cluster(cluster, model, folder, labeler, limit=2, batch=2)
            print(
                f"local:2 start-up: {started:.1f} s for the processes, {time.perf_counter() - first:.1f} s for "
                f"the first task (each worker loads the network and its compiled kernels)"
            )
            for batch in (int(b) for b in args.batches.split(",")):
                result = validate_on_cluster(cluster, model, folder, labeler, batch=batch)
                same = (result.top1, result.top5) == (here.top1, here.top5)
                print(
                    f"local:2, {batch:4} paths per task: {result.images / result.seconds:6.1f} images/s  "
                    f"({-(-result.images // batch)} tasks; figures {'the same' if same else 'DIFFERENT'})"
                )
            tasks = 2000
            start = time.perf_counter()
            cluster.client.gather(cluster.client.map(_noop, range(tasks), pure=False))
            per_task = (time.perf_counter() - start) / tasks
            print(
                f"scheduler: {tasks} empty tasks in {per_task * tasks:.2f} s: {per_task * 1e3:.2f} ms per task, "
                f"{1 / per_task:.0f} tasks/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
