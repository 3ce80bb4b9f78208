"""Teaching on real photos: held-out accuracy of the exported model, and the time teaching takes.

Uses ../shared/teach-dev (89 real photos, 5 classes, one photo per ImageNet class):

- accuracy: 5 seeded 70/30 splits (each class's 30 % held out); on each, teach on the 70 % with
  the head alone (--no-fine-tune) and with the defaults (fine-tuning tried, kept when
  cross-validation chooses it), export each, and classify the held-out photos with the exported
  files as `tdn classify` would; the means are the figures README quotes. Also prints what
  cross-validation reported on the 70 %, the head and l2 it chose, each fine-tuning depth's
  cross-validated accuracy and what was kept; --forced N adds the same with N layers always
  fine-tuned, to see what fine-tuning does on photos it was not chosen on;
- time: `tdn teach` on 100 photos with no features cached (the 89, and 11 of them mirrored and
  saved as new files), from the command's start to its end, on the compiled kernels, with the
  defaults and with --no-fine-tune;
- the Teach view (offscreen): train on the 89 photos, then move a photo to another class from
  the Mistakes window and time until the new result is shown.

    python bench/bench_teach.py [--seeds 5] [--forced N] [--no-time] [--no-gui]
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def held_out(model, dataset, test, labels) -> int:
    """Photos of `test` the exported model gets right, classified from its files."""
    import engine
    from engine import teach

    with tempfile.TemporaryDirectory() as out:
        paths = teach.export(model, out, "taught")
        net = engine.Network.load(paths.cfg, paths.weights)
        classifier = engine.Classifier(net, engine.load_names(paths.names, net.classes), "min")
        return sum(classifier.classify(engine.load_image(dataset.images[i][0])).top(1)[0][0] == labels[i] for i in test)


def accuracy(seeds: int, forced: int | None) -> None:
    from engine import teach

    data = SHARED / "teach-dev"
    dataset = teach.scan_dataset(data)
    labels = np.array([label for _, label in dataset.images])
    backbone = teach.Backbone.load(ROOT / "cfg" / "tiny.cfg", SHARED / "weights" / "tiny.weights")
    cache = teach.FeatureCache()  # in memory: each photo's features computed once
    scores = {"linear head": [], "defaults": []} | ({f"{forced} layers forced": []} if forced else {})
    for seed in range(seeds):
        train, test = split(labels, seed)
        part = teach.Dataset(dataset.classes, tuple(dataset.images[i] for i in train))
        features = teach.extract_features(backbone, part, ("flip",), cache)
        linear = teach.train_head(features)
        start = time.perf_counter()
        tuned = teach.fine_tune(linear)
        seconds = time.perf_counter() - start
        results = {"linear head": linear, "defaults": tuned}
        if forced:
            results[f"{forced} layers forced"] = teach.fine_tune(linear, (forced,), force=True)
        rights = {}
        for name, result in results.items():
            model = result.model
            rights[name] = (
                held_out(model, dataset, test, labels) if name == "linear head" or model.tuned_layers else None
            )
        rights["defaults"] = rights["defaults"] if rights["defaults"] is not None else rights["linear head"]
        for name in results:
            scores[name].append(rights[name] / len(test))
        print(
            f"split {seed}: held out of {len(test)}: "
            + ", ".join(f"{name} {rights[name]}" for name in results)
            + f"; cross-validated on the rest {100 * linear.cv.accuracy:.1f} %, head {linear.head.label}, "
            f"l2 {linear.l2:g}; {tuned.fine_tuning.describe()} ({seconds:.1f} s)",
            flush=True,
        )
    for name, values in scores.items():
        print(
            f"mean held-out accuracy over {seeds} splits, {name}: {100 * np.mean(values):.1f} % "
            f"({', '.join(f'{100 * s:.1f}' for s in values)})"
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
        for extra in ([], ["--no-fine-tune"]):
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
                *extra,
            ]
            shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)  # no features cached, each run
            start = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            count = sum(1 for _ in folder.glob("*/*"))
            print(f"tdn teach {' '.join(extra) or '(defaults)'} on {count} photos, no features cached: {seconds:.1f} s")
            keep = ("features:", "time:", "fine-tuning:")
            print("\n".join("  " + line for line in done.stdout.splitlines() if line.startswith(keep)))


def mistakes_time(runs: int = 3) -> None:
    """The Teach view offscreen: train (head only, as a retrain from the Mistakes window does),
    then move a photo from the Mistakes window and time until the view has the new result."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from tdn_gui.app import build_window

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(SHARED / "teach-dev", project)
        os.environ["TDN_CACHE_DIR"] = str(Path(tmp) / "cache")
        weights = str(SHARED / "weights" / "tiny.weights")
        window = build_window(["--model", str(ROOT / "cfg" / "tiny.cfg"), "--weights", weights])
        view = window.teach_view

        def wait(signal, seconds=300.0):
            loop = QEventLoop()
            signal.connect(loop.quit)
            QTimer.singleShot(int(seconds * 1000), loop.quit)
            loop.exec()
            signal.disconnect(loop.quit)

        while window.model_info is None:
            app.processEvents()
        assert view.classes.open_project(str(project))
        view.training.fine_tune_box.setChecked(False)
        view.train()
        wait(view.training.trained)
        for run in range(runs):
            result = view.training.result
            judged = [j for j in result.judged() if not j.right] or result.judged()
            photo = judged[0]
            source = result.classes[photo.true]
            target = result.classes[photo.predicted if photo.predicted != photo.true else (photo.true + 1) % 2]
            start = time.perf_counter()
            view.move_photos([str(photo.path)], source, target)
            wait(view.training.trained)
            print(
                f"Teach view, move 1 photo ({source} -> {target}) and train again: {time.perf_counter() - start:.2f} s"
            )
        window.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--forced", type=int, metavar="N", help="also fine-tune N layers on every split, kept")
    parser.add_argument("--no-time", action="store_true")
    parser.add_argument("--no-gui", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "teach-dev").is_dir():
        raise SystemExit(f"needs {SHARED / 'teach-dev'}")
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    accuracy(args.seeds, args.forced)
    if not args.no_time:
        teach_time()
    if not args.no_gui:
        mistakes_time()
    return 0


if __name__ == "__main__":
    sys.exit(main())
