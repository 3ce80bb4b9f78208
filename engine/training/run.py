"""A training run as `tdn train` does it: darknet's train_classifier loop, with its outputs.

    result = train(RunOptions(cfg="net.cfg", data="images/", out_dir="run/"), on_update=print)

Writes into out_dir: <stem>.weights (darknet's format) at the end, <stem>.cfg and <stem>.names
(the class names in label order) at the start, <stem>.backup every CHECKPOINT_EVERY updates and
on an interruption, and the loss curve <stem>.csv (every update) and <stem>.png. Every file is
written whole or not at all (engine.files).
"""

from __future__ import annotations

import math
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import memory
from ..files import write_atomic
from ..spec import parse_network
from ..weights import read_weights, write_weights
from . import curve
from .augment import plain, scale_and_crop
from .data import Dataset, read_dataset
from .initial import initial_params
from .loader import Loader
from .settings import read_settings
from .trainer import Trainer, TrainingError, output_layer

CHECKPOINT_EVERY = 100  # updates between .backup files (darknet: 1000 for classifiers)
SPEED_SKIP = 10  # updates left out of the speed's median (compiling, caches warming)
VALID_CHUNK = 64  # validation images a forward pass


class Interrupted(TrainingError):
    """Ctrl+C: the run stopped after saving a checkpoint; the message says how to resume."""


@dataclass
class RunOptions:
    cfg: str
    data: str
    out_dir: str = "."
    weights: str | None = None  # start from these (else darknet's random start)
    clear: bool = False  # restart the schedule: seen = 0, as darknet's -clear
    valid: str | None = None  # a class folder or .data to report top-1/top-5 on
    valid_every: int | None = None  # updates between validations (None: a quarter of a run of 100 or more
    # updates, else the end only; 0: the end only)
    batches: int | None = None  # stop after this many updates (the schedule is unchanged)
    in_order: bool = False
    augment: bool = True
    seed: int = 0
    compiled: bool = True


@dataclass
class RunProgress:
    update: int  # darknet's batch number (updates the weights have had)
    done: int  # updates in this run
    total: int  # updates this run will make
    loss: float
    avg_loss: float
    rate: float
    images_per_second: float
    seconds_left: float


@dataclass
class RunResult:
    images: int = 0
    batches: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0
    final_loss: float = float("nan")
    top1: float | None = None
    top5: float | None = None
    weights: str = ""
    skipped: dict = field(default_factory=dict)
    validations: list = field(default_factory=list)  # (update, top1, top5)

    def as_json(self) -> dict:
        out = {
            "images": self.images,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 1),
            "final_loss": self.final_loss,
            "weights": self.weights,
            "skipped_images": len(self.skipped),
        }
        if self.top1 is not None:
            out.update(
                top1=self.top1,
                top5=self.top5,
                validations=[{"update": u, "top1": t1, "top5": t5} for u, t1, t5 in self.validations],
            )
        return out


def paths_for(out_dir: str | Path, stem: str) -> dict[str, Path]:
    out = Path(out_dir)
    return {ext: out / f"{stem}.{ext}" for ext in ("weights", "cfg", "names", "backup", "csv", "png")}


def _start(options: RunOptions, spec) -> tuple[list, int, int]:
    """(params, seen, layers read from --weights): a base that covers only the first layers (a
    `tdn partial` file) gives those, and the rest start as a new network's would."""
    params = initial_params(spec, options.seed)
    if options.weights is None:
        return params, 0, 0
    header, read = read_weights(options.weights, spec, prefix=True)
    if not any(read):
        raise TrainingError(f"{options.weights}: holds no layer's weights (only a header): nothing to start from")
    params[: len(read)] = read
    return params, 0 if options.clear else header.seen, len(read)


def prepare(options: RunOptions):
    """Everything checked before any work: the cfg and its settings, the data, the weights and
    the memory the run needs. Returns (spec, settings, data, valid, params, seen, layers read from
    --weights)."""
    spec = parse_network(options.cfg)
    settings = read_settings(spec)
    data = read_dataset(options.data)
    last = output_layer(spec)
    classes = int(np.prod(spec.shapes[last]))
    if len(data.names) != classes:
        raise TrainingError(
            f"{options.data}: {len(data.names)} classes, but {spec.layers[last].describe()} "
            f"gives {classes} outputs: the cfg's last layers must have one output per class"
        )
    valid = read_dataset(options.valid, "valid", data.names) if options.valid else None
    params, seen, based = _start(options, spec)
    return spec, settings, data, valid, params, seen, based


def validate(spec, params, valid: Dataset, crop_size: int | None) -> tuple[float, float]:
    """top-1 and top-5 of the network as it stands, by the engine's own inference (batch norm
    folded), on each photo scaled so its shorter side is crop_size and cropped in the middle
    (the training crops' scale), or resized to the network's size when crop_size is None."""
    from ..image import ImageError, load_image
    from ..network import Network

    net = Network(spec, [{k: v.copy() for k, v in p.items()} for p in params])
    w, h = spec.width, spec.height
    top1 = top5 = seen = 0
    for start in range(0, len(valid), VALID_CHUNK):
        images, labels = [], []
        for path, label in zip(valid.paths[start : start + VALID_CHUNK], valid.labels[start : start + VALID_CHUNK]):
            try:
                img = load_image(path)
            except ImageError:
                continue
            images.append(scale_and_crop(img, crop_size, w, h) if crop_size else plain(img, w, h))
            labels.append(label)
        if not images:
            continue
        probs = net.predict(np.stack(images))
        order = np.argsort(-probs, axis=1)[:, :5]
        labels = np.array(labels)
        top1 += int((order[:, 0] == labels).sum())
        top5 += int((order == labels[:, None]).any(axis=1).sum())
        seen += len(labels)
    if not seen:
        raise TrainingError(f"{valid.source}: none of its images could be read")
    return top1 / seen, top5 / seen


def train(options: RunOptions, on_update=None, on_message=None) -> RunResult:
    """Run darknet's training loop; on_update(RunProgress) after every update, on_message(str)
    for checkpoints and validations. Raises Interrupted on Ctrl+C (after a checkpoint) and
    TrainingError when the loss stops being finite (keeping the last good checkpoint)."""
    spec, settings, data, valid, params, seen, based = prepare(options)
    if on_message and 0 < based < len(spec.layers):
        on_message(
            f"{options.weights}: the first {based} of {len(spec.layers)} layers; the others start from random weights"
        )
    batch = settings.batch
    loader_bytes = Loader.bytes_needed(batch, spec.width, spec.height)
    trainer = Trainer(
        spec, params, settings, seen=seen, compiled=options.compiled, seed=options.seed, extra_bytes=loader_bytes
    )
    out = paths_for(options.out_dir, spec.name)
    Path(options.out_dir).mkdir(parents=True, exist_ok=True)
    if Path(options.cfg).resolve() != out["cfg"].resolve():
        write_atomic(out["cfg"], Path(options.cfg).read_bytes())
    write_atomic(out["names"], ("\n".join(data.names) + "\n").encode())

    total = _updates_to_make(options, settings, trainer)
    if options.compiled and on_message:
        from ..kernels import backprop_compiled

        if not backprop_compiled.in_cache():
            on_message("compiling the training kernels (the first run only, about 15 s)")
    every = options.valid_every if options.valid_every is not None else (total // 4 if total >= 100 else 0)
    aug = settings.augment if options.augment else None
    crop_size = (aug.min_size + aug.max_size) // 2 if aug and not aug.center else None
    loader = Loader(data, spec.width, spec.height, batch, aug, options.in_order, options.seed)
    result = RunResult(weights=str(out["weights"]))
    rows: list[str] = []
    times: list[float] = []
    avg = -1.0
    started = time.perf_counter()
    last_checkpoint = None

    def checkpoint() -> None:
        nonlocal last_checkpoint
        write_weights(out["backup"], spec, params, trainer.seen)
        last_checkpoint = trainer.batches_done
        _write_curve(out, rows, spec.name)

    stop = threading.Event()

    def on_sigint(signum, frame):  # the first Ctrl+C stops after this update, a second at once
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        for done in range(1, total + 1):
            if stop.is_set():
                raise KeyboardInterrupt
            tick = time.perf_counter()  # a batch's time includes any wait for the loader
            x, labels = loader.next()
            loss = trainer.train_update(x, labels)
            times.append(time.perf_counter() - tick)
            if not math.isfinite(loss):
                kept = (
                    f"the last good checkpoint is {out['backup']} (update {last_checkpoint})"
                    if last_checkpoint is not None
                    else "no checkpoint had been written yet"
                )
                raise TrainingError(
                    f"training diverged at update {trainer.batches_done}: the loss is {loss}; "
                    f"{kept}; a lower learning_rate or a burn_in in the cfg's [net] may help"
                )
            avg = loss if avg < 0 else avg * 0.9 + loss * 0.1
            rate = trainer.rate()
            rows.append(
                curve.csv_row(trainer.batches_done, trainer.seen, loss, avg, rate, time.perf_counter() - started)
            )
            speed = _speed(times, batch)
            result.final_loss = loss
            if on_update:
                on_update(
                    RunProgress(
                        trainer.batches_done,
                        done,
                        total,
                        loss,
                        avg,
                        rate,
                        speed,
                        (total - done) * batch / speed if speed else 0.0,
                    )
                )
            if trainer.batches_done % CHECKPOINT_EVERY == 0:
                checkpoint()
            if valid is not None and every and done % every == 0 and done < total:
                top1, top5 = validate(spec, params, valid, crop_size)
                result.validations.append((trainer.batches_done, top1, top5))
                if on_message:
                    on_message(
                        f"update {trainer.batches_done}: top-1 {top1:.1%}, top-5 {top5:.1%} on {len(valid)} images"
                    )
    except KeyboardInterrupt:
        loader.close()
        checkpoint()
        raise Interrupted(
            f"interrupted at update {trainer.batches_done}: saved {out['backup']}; resume with "
            f"--weights {out['backup']}"
        ) from None
    finally:
        loader.close()
        if in_main:
            signal.signal(signal.SIGINT, previous)
    result.skipped = dict(loader.skipped)
    write_weights(out["weights"], spec, params, trainer.seen)
    _write_curve(out, rows, spec.name)
    result.seconds = time.perf_counter() - started
    result.batches = len(times)
    result.images = len(times) * batch
    result.images_per_second = _speed(times, batch)
    if valid is not None:
        result.top1, result.top5 = validate(spec, params, valid, crop_size)
        result.validations.append((trainer.batches_done, result.top1, result.top5))
    memory.give_back()
    return result


def _updates_to_make(options: RunOptions, settings, trainer: Trainer) -> int:
    """--batches N, else what the schedule has left (max_batches), else an error: darknet's loop
    would never end."""
    if options.batches is not None:
        if options.batches < 1:
            raise TrainingError(f"--batches {options.batches}: give at least 1")
        return options.batches
    if settings.max_batches == 0:
        raise TrainingError(f"{options.cfg}: the [net] has no max_batches: give --batches N")
    left = settings.max_batches - trainer.batches_done
    if left <= 0:
        raise TrainingError(
            f"{options.weights}: these weights have already had {trainer.batches_done} updates, the "
            f"cfg's max_batches={settings.max_batches}: use --clear to start the schedule again, "
            "or --batches N for more"
        )
    return left


def _speed(times: list[float], batch: int) -> float:
    """Images a second: the median over the updates after the first SPEED_SKIP (all, if fewer)."""
    steady = times[SPEED_SKIP:] if len(times) > SPEED_SKIP else times
    return batch / statistics.median(steady) if steady else 0.0


def _write_curve(out: dict, rows: list[str], title: str) -> None:
    write_atomic(out["csv"], (curve.CSV_HEADER + "".join(rows)).encode())
    curve.draw_png(curve.read_rows(out["csv"]), out["png"], f"{title}: training loss")


def partial(cfg: str, weights: str, out: str, layers: int) -> int:
    """darknet's `partial`: the first `layers` layers' weights of cfg + weights, as a weights file
    for the same cfg cut after them (a pretrained base), with seen 0 as darknet writes it (a
    network trained from it starts its schedule at the beginning). Returns the floats written."""
    spec = parse_network(cfg)
    if not 1 <= layers <= len(spec.layers):
        raise TrainingError(f"{cfg}: give a layer count from 1 to {len(spec.layers)} (got {layers})")
    _, params = read_weights(weights, spec)
    cut = spec.__class__(spec.path, spec.width, spec.height, spec.channels, spec.layers[:layers], spec.shapes[:layers])
    write_weights(out, cut, params[:layers], 0)
    return sum(a.size for p in params[:layers] for a in p.values())
