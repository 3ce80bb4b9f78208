"""Teaching on real photos: held-out accuracy of the exported model, and the time `tdn teach` takes.

Uses ../shared/teach-dev (89 real photos, 5 classes, one photo per ImageNet class):

- accuracy: 5 seeded 70/30 splits (each class's 30 % held out); on each, teach with the default
  settings on the 70 %, export, and classify the held-out photos with the exported files as
  `tdn classify` would; the mean is the figure README quotes. Also prints what cross-validation
  reported on the 70 %, and the head and l2 it chose;
- time: `tdn teach` on 100 photos with no features cached (the 89, and 11 of them mirrored and
  saved as new files), from the command's start to its end, on the compiled kernels.

    python bench/bench_teach.py [--seeds 5] [--no-time]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def split(labels: np.ndarray, seed: int, held_out: float = 0.3):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in range(labels.max() + 1):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(members.size)]
        n = max(1, round(held_out * members.size))
        test += list(members[:n])
        train += list(members[n:])
    return sorted(train), sorted(test)


def accuracy(seeds: int) -> None:
    import engine
    from engine import teach

    data = SHARED / "teach-dev"
    dataset = teach.scan_dataset(data)
    labels = np.array([label for _, label in dataset.images])
    backbone = teach.Backbone.load(ROOT / "cfg" / "tiny.cfg", SHARED / "weights" / "tiny.weights")
    cache = teach.FeatureCache()  # in memory: each photo's features computed once
    scores = []
    for seed in range(seeds):
        train, test = split(labels, seed)
        part = teach.Dataset(dataset.classes, tuple(dataset.images[i] for i in train))
        features = teach.extract_features(backbone, part, ("flip",), cache)
        result = teach.train_head(features)
        with tempfile.TemporaryDirectory() as out:
            paths = teach.export(result.model, out, "taught")
            net = engine.Network.load(paths.cfg, paths.weights)
            classifier = engine.Classifier(net, engine.load_names(paths.names, net.classes), "min")
            right = sum(
                classifier.classify(engine.load_image(dataset.images[i][0])).top(1)[0][0] == labels[i] for i in test
            )
        scores.append(right / len(test))
        print(
            f"split {seed}: held out {right}/{len(test)} = {100 * scores[-1]:.1f} %; cross-validated on "
            f"the rest {100 * result.cv.accuracy:.1f} %; head {result.head.label}, l2 {result.l2:g}; "
            f"training {result.seconds:.2f} s",
            flush=True,
        )
    print(
        f"mean held-out accuracy over {seeds} splits: {100 * np.mean(scores):.1f} % "
        f"({', '.join(f'{100 * s:.1f}' for s in scores)})"
    )


def teach_time() -> None:
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        photos = sorted((SHARED / "teach-dev").glob("*/*.jpg"))
        for path in photos:
            (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
            (folder / path.parent.name / path.name).write_bytes(path.read_bytes())
        for path in photos[: 100 - len(photos)]:
            Image.open(path).transpose(Image.FLIP_LEFT_RIGHT).save(
                folder / path.parent.name / f"mirrored-{path.name}", quality=92
            )
        env = dict(os.environ, TDN_CACHE_DIR=str(Path(tmp) / "cache"))
        subprocess.run([sys.executable, "-m", "engine.compile"], cwd=ROOT, check=True)
        command = [
            sys.executable,
            "-m",
            "tdn_cli.main",
            "teach",
            str(folder),
            "--out",
            str(Path(tmp) / "out"),
            "--weights",
            str(SHARED / "weights" / "tiny.weights"),
        ]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        count = sum(1 for _ in folder.glob("*/*"))
        print(f"tdn teach on {count} photos, no features cached: {seconds:.1f} s")
        print("\n".join(line for line in done.stdout.splitlines() if line.startswith(("features:", "time:"))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-time", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "teach-dev").is_dir():
        raise SystemExit(f"needs {SHARED / 'teach-dev'}")
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    accuracy(args.seeds)
    if not args.no_time:
        teach_time()
    return 0


if __name__ == "__main__":
    sys.exit(main())
