"""Fine-tuning: the base network's last layers trained together with the taught head, kept
only when cross-validation says it beats the linear head.

After train_head has chosen the head and its l2, each candidate depth (DEPTHS: how many of the
base's layers with weights, counted back from the head, are trained; tuned_part.cuts says which
the network allows) is cross-validated on the same folds as the linear head:

- every photo is seen as VIEWS darknet-style training views (a random crop of the network's size
  from the photo scaled to a random size, a coin-flip mirror, hue / saturation / exposure
  jitter), and held out as the backbone prepares it for classifying; the frozen layers run once
  per view, and training runs on the cut layer's outputs (tuned_part);
- in each fold the head starts from the linear head fitted on that fold's training photos and
  the base's layers from their weights, then Adam at a small rate, an epoch at a time (as many
  draws as photos, each class equally often), all folds in step, judging the held-out photos
  after every epoch; training stops PATIENCE epochs after the lowest held-out log-loss over all
  folds, or at EPOCHS, and that epoch is the depth's (0: the linear head itself).

A depth is chosen when its held-out log-loss is lower than the linear head's by more than one
standard error of the difference (photo by photo) and it gets no fewer photos right; then it is
trained on every photo for its number of epochs and the taught model is the whole network with
those layers' new weights. Otherwise the linear head stays. So on held-out photos the default
never does worse than the linear head, as cross-validation measures it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .. import memory
from ..image import ImageError, load_image
from ..network import Network
from ..training.augment import distort_colors, draw
from ..training.augment import augment_image as augment_crop
from ..training.settings import Augment, TrainSettings
from ..training.trainer import Trainer, TrainingError
from .backbone import Backbone
from .errors import Cancelled, TeachError, stop_check
from .model import TaughtModel
from .regression import Problem
from .training import FineTuning, TeachResult, TuneTrial, assign_folds, evaluate
from .tuned_part import cuts, head_arrays, part_flops, part_params, part_spec, unfold

DEPTHS = (2, 4)  # layers with weights trained besides the head, the candidates
VIEWS = 4  # augmented training views of each photo
EPOCHS = 6  # the most epochs a depth trains; the held-out folds choose how many
BATCH = 16  # photos an update
RATE = 1e-4  # Adam's learning rate
VIEW_BATCH = 8  # views through the frozen layers in one pass
JUDGE_BATCH = 16  # held-out photos of one shape through the trained part in one pass
# The most a depth's layers may cost a photo in one forward pass: training is ~3 passes a photo an
# epoch on every fold. Tiny's deepest candidate (layers 16-19) is 0.2 GFLOPs; 1 GFLOP is a whole
# Tiny pass, and keeps fine-tuning on a hundred photos within about a minute.
MAX_PART_FLOPS = 1.0e9
PATIENCE = 2  # epochs without a new lowest held-out loss before a depth stops training


def jitter(width: int, height: int) -> Augment:
    """darknet-style augmentation for fine-tuning: the shorter side scaled to 100-125 % of the
    network's size, a random crop, a coin-flip mirror, mild colour jitter."""
    side = min(width, height)
    return Augment(side, int(side * 1.25), hue=0.03, saturation=1.3, exposure=1.3, flip=True)


def fine_tune(
    result: TeachResult,
    depths=DEPTHS,
    epochs: int = EPOCHS,
    views: int = VIEWS,
    seed: int = 0,
    force: bool = False,
    compiled: bool | None = None,
    progress=None,
    cancel=None,
) -> TeachResult:
    """result (train_head's, with the same seed) with a fine-tuned model when cross-validation
    chooses one (see the module docstring), and its .fine_tuning report either way.
    force: keep the best depth at its best number of epochs (at least one) whatever the linear
    head scores, and try every depth asked for whatever it costs (MAX_PART_FLOPS).
    compiled: the training kernels (None: the compiled ones when they are in Numba's cache,
    else numpy's). progress(done, total)."""
    if epochs < 1 or views < 1:
        raise TeachError(f"fine-tuning needs at least 1 epoch and 1 view (got {epochs} and {views})")
    start = time.perf_counter()
    stop = stop_check(cancel)
    features, backbone, head = result.features, result.features.backbone, result.head
    k, labels = len(result.classes), result.features.image_labels
    linear = result.cv_probabilities
    spec = backbone.spec
    if linear is None:
        return _without(result, "too few photos to cross-validate", start)
    allowed = cuts(spec, head, depths)
    # a depth asked for by name (force) is tried whatever it costs
    candidates = tuple(cut for cut in allowed if force or part_flops(spec, head, cut) <= MAX_PART_FLOPS)
    costly = [cut for cut in allowed if cut not in candidates]
    too_costly = (
        "; ".join(
            f"{cut.describe()} not tried ({part_flops(spec, head, cut) / 1e9:.1f} GFLOPs a photo a pass, "
            f"over {MAX_PART_FLOPS / 1e9:g})"
            for cut in costly
        )
        if costly
        else ""
    )
    if not candidates:
        why = too_costly or f"{spec.name} has no layers before the head that can be trained"
        return _without(result, why, start)
    if compiled is None:
        from ..kernels import backprop_compiled

        compiled = backprop_compiled.in_cache()
    images, folds = labels.size, result.folds
    fold_of = assign_folds(labels, folds, seed)
    batches = _batches_per_epoch(labels, np.ones(images, bool))
    fold_batches = sum(_batches_per_epoch(labels, fold_of != f) for f in range(folds))
    total = images + len(candidates) * (fold_batches + batches) * epochs
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(done[0], total), total)

    def check() -> None:
        if stop():
            raise Cancelled("teaching cancelled")

    frozen = _views(backbone, features.paths, [c.layer for c in candidates], views, seed, check, advance)
    frozen_bytes = sum(views_of.nbytes for views_of in frozen.values())
    lin_loss = _losses(linear, labels)
    columns = backbone.columns(head)
    row_labels = labels[features.row_image]
    fold_heads = []  # each fold's linear head, fitted on its training photos: every depth starts there
    for fold in range(folds):
        rows = (fold_of != fold)[features.row_image]
        fit = Problem(features.vectors[rows][:, columns], row_labels[rows], k, True).fit(result.l2)
        fold_heads.append((fit.weights, fit.bias))
    trials = []
    for cut in candidates:
        part = part_spec(spec, backbone.cfg_text, head, cut, k)
        runs = [
            _Run(part, part_params(spec, backbone.params, head, cut, weights, bias), frozen[cut.layer], labels,
                 np.flatnonzero(fold_of != fold), seed + fold)
            for fold, (weights, bias) in enumerate(fold_heads)
        ]  # fmt: skip
        # every fold an epoch at a time, so the held-out loss over all of them stops the training;
        # one trainer's buffers serve them all, each fold's weights and moments swapped in
        held = np.zeros((epochs + 1, images, k))
        for run, fold in zip(runs, range(folds)):
            held[0, fold_of == fold] = run.judge(np.flatnonzero(fold_of == fold))
        curve = [_log_loss(held[0], labels)]
        trainer = _trainer(part, runs[0].params, compiled, seed, frozen_bytes)
        for epoch in range(1, epochs + 1):
            for fold, run in enumerate(runs):
                run.epoch(trainer, check, advance)
                held[epoch, fold_of == fold] = run.judge(np.flatnonzero(fold_of == fold))
            curve.append(_log_loss(held[epoch], labels))
            if epoch - int(np.argmin(curve)) >= PATIENCE:
                advance(fold_batches * (epochs - epoch))
                break
        del runs, run, trainer  # the folds' weights and the training buffers
        losses = np.stack(
            [_losses(probabilities, labels) for probabilities in held[: len(curve)]]
        )  # (epochs + 1, images)
        first = 1 if force else 0
        best = first + int(np.argmin(losses[first:].mean(axis=1)))
        diff = lin_loss - losses[best]
        trials.append(
            TuneTrial(
                cut,
                best,
                float(losses[best].mean()),
                float(np.mean(np.argmax(held[best], axis=1) == labels)),
                float(diff.mean()),
                float(diff.std() / np.sqrt(images)),
                held[best],
                tuple(curve),
            )
        )
        advance(batches * (epochs - best))  # the final fit trains `best` epochs, not all
    lin_accuracy = float(np.mean(np.argmax(linear, axis=1) == labels))
    winners = trials if force else [t for t in trials if t.wins and t.accuracy >= lin_accuracy]
    chosen = max(winners, key=lambda t: t.gain) if winners else None
    for trial in trials:
        if trial is not chosen:
            advance(batches * trial.epochs)
    report = FineTuning(tuple(trials), chosen, float(lin_loss.mean()), lin_accuracy, views, 0.0, too_costly)
    if chosen is None:
        seconds = time.perf_counter() - start
        return dataclasses.replace(
            result, fine_tuning=dataclasses.replace(report, seconds=seconds), seconds=result.seconds + seconds
        )
    cut = chosen.cut
    params = part_params(spec, backbone.params, head, cut, result.model.weights, result.model.bias)
    part = part_spec(spec, backbone.cfg_text, head, cut, k)
    final = _Run(part, params, frozen[cut.layer], labels, np.arange(images), seed + folds)
    trainer = _trainer(part, params, compiled, seed, frozen_bytes)
    for _ in range(chosen.epochs):
        final.epoch(trainer, check, advance)
    seen = final.judge(np.arange(images))
    del final
    weights, bias = head_arrays(params, k)
    tuned = Backbone(Network(spec, unfold(spec, backbone.params, head, cut, params), backbone.header),
                     head.layers, backbone.resize)  # fmt: skip
    model = TaughtModel(tuned, head, result.classes, weights, bias, tuned_layers=cut.trained)
    advance(total)
    return dataclasses.replace(
        result,
        model=model,
        cv=evaluate(chosen.probabilities, labels, k),
        cv_probabilities=chosen.probabilities,
        train=evaluate(seen, labels, k),
        fine_tuning=dataclasses.replace(report, seconds=time.perf_counter() - start),
        seconds=result.seconds + time.perf_counter() - start,
    )


def _without(result: TeachResult, why: str, start: float) -> TeachResult:
    report = FineTuning((), None, float("nan"), float("nan"), 0, time.perf_counter() - start, why)
    return dataclasses.replace(result, fine_tuning=report)


@dataclass
class FrozenViews:
    """The cut layer's output for each photo: `train` (photos, views, h, w, c) float16 from the
    augmented crops, `originals` each photo as classifying prepares it (h, w, c) float32."""

    train: np.ndarray
    originals: list

    @property
    def nbytes(self) -> int:
        return self.train.nbytes + sum(view.nbytes for view in self.originals if view is not None)


def _views(backbone: Backbone, paths, layers, views: int, seed: int, check, advance) -> dict:
    """FrozenViews for each cut layer in `layers`, from one pass of the frozen layers per view."""
    spec = backbone.spec
    w, h = spec.width, spec.height
    layers = sorted(set(layers))
    per_view = sum(int(np.prod(spec.shapes[layer])) for layer in layers)
    need = len(paths) * views * per_view * 2 + len(paths) * per_view * 4 * 2
    memory.check(need, f"fine-tuning on {len(paths)} photos ({views} views each)")
    out = {
        layer: FrozenViews(np.empty((len(paths), views) + spec.shapes[layer], np.float16), [None] * len(paths))
        for layer in layers
    }
    aug = jitter(w, h)
    rng = np.random.default_rng(seed)
    try:
        _fill(backbone, paths, layers, out, aug, views, rng, check, advance)
    finally:
        backbone.forget_plans()  # the plans of the photos' shapes: see Backbone.forget_plans
    return out


def _fill(backbone: Backbone, paths, layers, out: dict, aug: Augment, views: int, rng, check, advance) -> None:
    w, h = backbone.spec.width, backbone.spec.height
    for i, path in enumerate(paths):
        check()
        try:
            image = load_image(path)
        except ImageError as exc:
            raise TeachError(f"{exc} (it was read when teaching began)") from None
        d = draw(rng, aug, views)
        crops = np.stack([augment_crop(image, aug, d, j, w, h) for j in range(views)]).astype(np.float32)
        distort_colors(crops, aug, d)
        for lo in range(0, views, VIEW_BATCH):
            for layer, value in zip(layers, backbone.net.features_of(crops[lo : lo + VIEW_BATCH], layers)):
                out[layer].train[i, lo : lo + VIEW_BATCH] = value
        x = backbone.preprocess(image)
        for layer, value in zip(layers, backbone.net.features_of(x[None], layers)):
            out[layer].originals[i] = value[0]
        advance(1)


def _batches_per_epoch(labels: np.ndarray, members: np.ndarray) -> int:
    present = np.count_nonzero(np.bincount(labels[members]))
    return -(-_per_class(int(members.sum()), present) * present // BATCH)


def _per_class(photos: int, classes: int) -> int:
    return -(-photos // classes)


def _epoch_order(labels: np.ndarray, photos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photos for one epoch, as many as there are, every class equally often (its photos
    shuffled, and dealt again where a class has fewer than its share), shuffled, topped up to
    whole batches."""
    classes = [photos[labels[photos] == c] for c in np.unique(labels[photos])]
    share = _per_class(photos.size, len(classes))
    order = np.concatenate([np.resize(rng.permutation(members), share) for members in classes])
    order = order[rng.permutation(order.size)]
    extra = -order.size % BATCH
    return np.concatenate([order, rng.choice(photos, extra)]) if extra else order


def _trainer(part, params, compiled: bool, seed: int, extra_bytes: int, adam: bool = True) -> Trainer:
    """A Trainer for the part (on copies of `params`: runs swap their own in), its buffers checked
    against the memory budget together with `extra_bytes` (the frozen views). adam=False:
    darknet's SGD with momentum at the same rate (for comparisons)."""
    settings = TrainSettings(
        batch=BATCH, subdivisions=1, learning_rate=RATE, momentum=0.9, decay=0.0,
        policy="constant", max_batches=1 << 30, adam=adam,
    )  # fmt: skip
    scratch = [{name: np.array(value) for name, value in arrays.items()} for arrays in params]
    try:
        return Trainer(part, scratch, settings, compiled=compiled, seed=seed, extra_bytes=extra_bytes)
    except TrainingError as exc:
        raise TeachError(f"cannot fine-tune: {exc}") from None


class _Run:
    """The trained part on one set of photos: its weights (params, changed in place), their
    update rule's state and counts, trained an epoch at a time on a trainer it lends them to; and
    its probabilities for photos' held-out views."""

    def __init__(self, part, params, frozen: FrozenViews, labels, photos, seed: int):
        self.part, self.params, self.frozen, self.labels, self.photos = part, params, frozen, labels, photos
        self.rng = np.random.default_rng(seed)
        self.state: dict[tuple[int, str], list[np.ndarray]] = {}  # (layer, name): weights, updates, moments
        self.t = self.seen = 0

    def epoch(self, trainer: Trainer, check, advance) -> None:
        self._swap(trainer, into_trainer=True)
        order = _epoch_order(self.labels, self.photos, self.rng)
        chosen = self.rng.integers(self.frozen.train.shape[1], size=order.size)
        for lo in range(0, order.size, BATCH):
            check()
            x = self.frozen.train[order[lo : lo + BATCH], chosen[lo : lo + BATCH]].astype(np.float32)
            trainer.train_update(x, self.labels[order[lo : lo + BATCH]])
            advance(1)
        self._swap(trainer, into_trainer=False)

    def _swap(self, trainer: Trainer, into_trainer: bool) -> None:
        """This run's weights, their pending updates (SGD's momentum; zero under Adam, which
        clears them), Adam's moments and the counts into the trainer's arrays, or back."""
        for i, (step, moments) in enumerate(zip(trainer.steps, trainer.moments)):
            for name, values in step.learned.items():
                theirs = (values, step.updates[name], *moments.get(name, ()))
                mine = self.state.setdefault((i, name), [self.params[i][name]] + [np.zeros_like(a) for a in theirs[1:]])
                for their, my in zip(theirs, mine):
                    if into_trainer:
                        np.copyto(their, my)
                    else:
                        np.copyto(my, their)
        if into_trainer:
            trainer.t, trainer.seen = self.t, self.seen
        else:
            self.t, self.seen = trainer.t, trainer.seen

    def judge(self, photos) -> np.ndarray:
        """(len(photos), k) probabilities of those photos' held-out views, a batch per shape."""
        net = Network(self.part, self.params)
        originals = self.frozen.originals
        out = np.empty((len(photos), self.part.shapes[-1][-1]))
        by_shape: dict[tuple, list[int]] = {}
        for row, i in enumerate(photos):
            by_shape.setdefault(originals[i].shape, []).append(row)
        for rows in by_shape.values():
            for lo in range(0, len(rows), JUDGE_BATCH):
                chunk = rows[lo : lo + JUDGE_BATCH]
                x = np.stack([originals[photos[row]] for row in chunk]).astype(np.float32)
                out[chunk] = net.forward(x).reshape(len(chunk), -1)
        return out


def _losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each photo's -log p(its class), from (photos, k) probabilities."""
    return -np.log(np.maximum(probabilities[np.arange(labels.size), labels], 1e-300))


def _log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(_losses(probabilities, labels).mean())
