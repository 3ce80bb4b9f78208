"""What heatmaps and test-time augmentation cost, and what the augmentation buys, with Tiny's real
weights on ../shared/teach-dev (89 labelled photos, one per ImageNet class).

- accuracy: top-1 / top-5 of each --tta setting over the 89 photos (as `tdn valid` counts them);
- cost: per photo, preprocessing included, each setting against one plain view measured in the
  same rounds (interleaved, medians), and a heatmap against the same pass without one.

    python bench/bench_see_better.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

SETTINGS = ("", "flip", "scales", "flip,scales")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the photos per setting")
    args = parser.parse_args()

    import engine
    from engine import kernels

    kernels.use("compiled")
    net = engine.Network.load(ROOT / "cfg" / "tiny.cfg", SHARED / "weights" / "tiny.weights")
    wnids = engine.load_names(SHARED / "darknet" / "data" / "imagenet.labels.list", net.classes)
    photos = sorted((SHARED / "teach-dev").rglob("*.jpg"))
    labels = np.array([wnids.index(p.name[:9]) for p in photos])
    images = [engine.load_image(p) for p in photos]
    classifiers = {tta: engine.Classifier(net, tta=tta) for tta in SETTINGS}

    print(f"tiny, real weights, {len(photos)} labelled photos (teach-dev); kernels: {kernels.status().describe()}")
    print(f"{'--tta':<14}{'top-1':>8}{'top-5':>8}")
    for tta, classifier in classifiers.items():
        probs = np.stack([classifier.classify(image).probs for image in images])
        order = np.argsort(-probs, axis=1)
        top1 = 100 * np.mean(order[:, 0] == labels)
        top5 = 100 * np.mean((order[:, :5] == labels[:, None]).any(axis=1))
        print(f"{tta or 'none':<14}{top1:8.1f}{top5:8.1f}")

    runs = {tta: [] for tta in SETTINGS} | {"heatmap": []}
    for _ in range(args.rounds):
        for key in runs:
            classifier = classifiers[""] if key == "heatmap" else classifiers[key]
            start = time.perf_counter()
            for image in images:
                classifier.classify(image, heatmap=key == "heatmap")
            runs[key].append((time.perf_counter() - start) / len(images))
    one = float(np.median(runs[""])) * 1e3
    print()
    print(f"{'per photo':<14}{'ms':>8}{'x one view':>12}")
    for key, times in runs.items():
        ms = float(np.median(times)) * 1e3
        print(f"{(key or 'none'):<14}{ms:8.2f}{ms / one:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
