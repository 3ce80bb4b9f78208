"""Training speed and accuracy: `tdn train` on CIFAR-10 with cifar_small.cfg, beside darknet C.

Uses ../shared/cifar10 (50,000 training images and cifar_small.cfg). The images are unpacked into
a temporary folder (or --cifar DIR, already unpacked) and split: the first 4,500 of each class
(sorted names) to train on, the other 500 held out.

- speed (always): `tdn train cifar_small.cfg --batches N --json` in a fresh process (the compiled
  kernels, data loading and augmentation included: a batch's time runs from asking the loader to
  the end of its update), its images/s (median after the first ten) and peak RSS. With
  --darknet PATH (a darknet binary built with OPENMP=1), darknet's own `classifier train` on the
  same images and cfg in the same run, in turn with tdn (--runs times each), and the ratio;
  without it the ratio is against darknet's recorded 650 images/s on this project's machine;
- --full: the cfg's whole schedule (5,000 updates) on the 45,000, its wall time, peak RSS and
  top-1/top-5 on the 5,000 held out;
- --tiny: one update of Tiny Darknet at batch 32, 224x224 (a fine-tuning step): images/s and
  each layer's share of the time, forward and backward.

    python bench/bench_train.py [--darknet /path/to/darknet] [--batches 100] [--runs 2] [--full] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

DARKNET_RECORDED = 650.0  # images/s, darknet C on this project's 2-core Zen 5 (shared/cifar10)
HELD_OUT = 500  # images a class kept for validation


def unpack(target: Path) -> Path:
    """CIFAR's train/<class>/*.jpg under target (unpacked once)."""
    train = target / "train"
    if not train.is_dir():
        with tarfile.open(SHARED / "cifar10" / "cifar10-train.tar.gz") as tar:
            tar.extractall(target, filter="data")
    return train


def split(train: Path, out: Path) -> tuple[Path, Path]:
    """Symlinked class folders: the first 4,500 of each class to train on, the rest held out."""
    fit, held = out / "fit", out / "held"
    if not fit.is_dir():
        for cls in sorted(p for p in train.iterdir() if p.is_dir()):
            files = sorted(cls.iterdir())
            for folder, part in ((fit, files[:-HELD_OUT]), (held, files[-HELD_OUT:])):
                (folder / cls.name).mkdir(parents=True)
                for f in part:
                    (folder / cls.name / f.name).symlink_to(f)
    return fit, held


def run_measured(argv: list[str], env=None) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in MB) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv[0]} exited with {proc.returncode}")
    return out, time.perf_counter() - start, usage.ru_maxrss / 1024


def tdn_train(cfg: Path, data: Path, out: Path, extra: list[str]) -> tuple[dict, float, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TDN_KERNELS", None)
    stdout, wall, rss = run_measured(
        [
            sys.executable,
            "-m",
            "tdn_cli.main",
            "train",
            str(cfg),
            "--data",
            str(data),
            "--out",
            str(out),
            "--json",
            *extra,
        ],
        env,
    )
    return json.loads(stdout.strip().splitlines()[-1]), wall, rss


def darknet_train(darknet: Path, cfg: Path, data: Path, work: Path, batches: int) -> tuple[float, float]:
    """darknet's classifier train for `batches` updates: (images/s from the median per-batch
    wall time after the first ten: its loader's wait plus its update, peak RSS MB)."""
    work.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in data.iterdir())
    images = sorted(str(p) for cls in names for p in (data / cls).iterdir())
    (work / "train.list").write_text("\n".join(images) + "\n")
    (work / "labels.txt").write_text("\n".join(names) + "\n")
    (work / "backup").mkdir(exist_ok=True)
    (work / "cifar.data").write_text(
        f"classes={len(names)}\ntrain={work / 'train.list'}\n"
        f"labels={work / 'labels.txt'}\nbackup={work / 'backup'}\ntop=2\n"
    )
    text = re.sub(r"max_batches\s*=\s*\d+", f"max_batches={batches}", cfg.read_text())
    (work / "net.cfg").write_text(text)
    stdout, _, rss = run_measured(
        [str(darknet), "classifier", "train", str(work / "cifar.data"), str(work / "net.cfg")]
    )
    loaded = [float(x) for x in re.findall(r"Loaded: ([\d.]+) seconds", stdout)]
    trained = [float(x) for x in re.findall(r"rate, ([\d.]+) seconds", stdout)]
    per_batch = [a + b for a, b in zip(loaded, trained)][10:]
    batch = int(re.search(r"batch\s*=\s*(\d+)", text).group(1))
    return batch / statistics.median(per_batch), rss


def speed(cfg: Path, fit: Path, work: Path, args) -> None:
    print(f"## speed: {cfg.name}, {args.batches} updates a run, {args.runs} runs each, in turn")
    tdn_speeds, dn_speeds = [], []
    for run in range(args.runs):
        result, wall, rss = tdn_train(cfg, fit, work / f"tdn{run}", ["--batches", str(args.batches)])
        tdn_speeds.append(result["images_per_second"])
        print(
            f"tdn     run {run + 1}: {result['images_per_second']:7.0f} images/s, {wall:5.1f} s for the "
            f"process, peak RSS {rss:.0f} MB, final loss {result['final_loss']:.3f}"
        )
        if args.darknet:
            dn, dn_rss = darknet_train(Path(args.darknet), cfg, fit, work / f"darknet{run}", args.batches)
            dn_speeds.append(dn)
            print(f"darknet run {run + 1}: {dn:7.0f} images/s, peak RSS {dn_rss:.0f} MB")
    mine = statistics.median(tdn_speeds)
    if dn_speeds:
        theirs = statistics.median(dn_speeds)
        print(f"tdn / darknet C: {mine / theirs:.2f}x ({mine:.0f} vs {theirs:.0f} images/s, measured in this run)")
    else:
        print(
            f"tdn / darknet C: {mine / DARKNET_RECORDED:.2f}x ({mine:.0f} vs darknet's recorded "
            f"{DARKNET_RECORDED:.0f} images/s; --darknet PATH measures it here)"
        )


def full(cfg: Path, fit: Path, held: Path, work: Path) -> None:
    print(f"## the full schedule: {cfg.name} on {fit}, validated on {held}")
    result, wall, rss = tdn_train(cfg, fit, work / "full", ["--valid", str(held)])
    print(
        f"{result['batches']} updates in {wall / 60:.1f} min ({wall:.0f} s, the process start to end), "
        f"{result['images_per_second']:.0f} images/s, peak RSS {rss:.0f} MB"
    )
    print(f"held-out top-1 {result['top1']:.1%}, top-5 {result['top5']:.1%}, final loss {result['final_loss']:.3f}")


def tiny(batch: int = 32, updates: int = 3) -> None:
    """Per-layer times of Tiny Darknet's training step, through the trainer's own steps."""
    from engine.spec import parse_network
    from engine.training import Trainer, read_settings
    from engine.weights import random_params

    cfg = ROOT / "cfg" / "tiny.cfg"
    text = re.sub(r"(?m)^(batch|subdivisions)\s*=.*$", "", cfg.read_text()).replace("[net]", f"[net]\nbatch={batch}", 1)
    spec = parse_network(cfg, text)
    trainer = Trainer(spec, random_params(spec), read_settings(spec, text), compiled=True)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, spec.height, spec.width, 3)).astype(np.float32)
    labels = rng.integers(0, 1000, batch)
    n = len(trainer.steps)
    forward, backward, update, totals = np.zeros(n), np.zeros(n), [], []
    for run in range(updates + 1):
        start = time.perf_counter()
        times_f, times_b = timed_pass(trainer, x, labels)
        tick = time.perf_counter()
        trainer.update()
        update.append(time.perf_counter() - tick)
        totals.append(time.perf_counter() - start)
        if run:  # the first compiles and warms
            forward += times_f
            backward += times_b
    total = statistics.median(totals[1:])
    whole = forward.sum() + backward.sum()
    print(
        f"## Tiny Darknet, one update at batch {batch}, {spec.width}x{spec.height}: {total:.2f} s, "
        f"{batch / total:.1f} images/s (median of {updates}); "
        f"the update rule {statistics.median(update[1:]) * 1e3:.0f} ms"
    )
    print(f"{'layer':32s} {'forward':>8s} {'backward':>9s}")
    for i, layer in enumerate(spec.layers):
        print(f"{i:3d} {layer.kind:14s} {str(spec.shapes[i]):14s} {forward[i] / whole:7.1%} {backward[i] / whole:8.1%}")
    print(f"{'all':32s} {forward.sum() / whole:7.1%} {backward.sum() / whole:8.1%}")


def timed_pass(trainer, x, labels) -> tuple[np.ndarray, np.ndarray]:
    """Trainer.forward and .backward, step by step with a clock around each."""
    n = len(trainer.steps)
    tf, tb = np.zeros(n), np.zeros(n)
    truth = trainer.truth(labels)
    for delta in trainer.deltas:
        if delta is not None:
            delta[...] = 0
    trainer.outputs = [None] * n
    current = x
    for i, step in enumerate(trainer.steps):
        tick = time.perf_counter()
        step.truth = truth if i in trainer.scorers else None
        current = step.forward(current, trainer.outputs, True)
        trainer.outputs[i] = current
        tf[i] = time.perf_counter() - tick
    for i in range(n - 1, -1, -1):
        if trainer.deltas[i] is None:
            break
        tick = time.perf_counter()
        dx = trainer.deltas[i - 1] if i > 0 else None
        trainer.steps[i].backward(
            trainer.deltas[i], x if i == 0 else trainer.outputs[i - 1], trainer.outputs, trainer.deltas, dx
        )
        tb[i] = time.perf_counter() - tick
    trainer.seen += len(x)
    return tf, tb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--darknet", help="a darknet binary (OPENMP=1) to measure beside tdn")
    p.add_argument("--cifar", help="a folder with CIFAR's train/<class>/ already unpacked")
    p.add_argument("--batches", type=int, default=100, help="updates in each speed run (default 100)")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--full", action="store_true", help="also the whole schedule, with held-out accuracy")
    p.add_argument("--tiny", action="store_true", help="also Tiny Darknet's update at batch 32, per layer")
    p.add_argument("--no-speed", action="store_true")
    args = p.parse_args()
    cfg = SHARED / "cifar10" / "cifar_small.cfg"
    if not cfg.exists():
        raise SystemExit(f"needs {cfg} (the project's ../shared)")
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores: {cpu_name()}")
    with tempfile.TemporaryDirectory(prefix="tdn-bench-train-") as tmp:
        tmp = Path(tmp)
        train = (
            (Path(args.cifar) / "train" if (Path(args.cifar) / "train").is_dir() else Path(args.cifar))
            if args.cifar
            else unpack(tmp)
        )
        fit, held = split(train, tmp / "split")
        if not args.no_speed:
            speed(cfg, fit, tmp, args)
        if args.full:
            full(cfg, fit, held, tmp)
    if args.tiny:
        tiny()


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
