"""Images in, ranked classes out: preprocessing, forward pass and class names together.
This is what the CLI and the GUI's worker call."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EngineError
from .heatmap import Heatmap, HeatmapSource, NoHeatmap, class_maps, crop_to_box, heatmap_source
from .image import check_resize_mode, fit_input, fitted_size, image_box, image_from_array
from .network import Network

# Test-time augmentation (--tta): what each choice adds to the one view darknet takes.
#   flip:   the mirror image too, in the same batched pass; the probabilities are averaged.
#   scales: the image at TTA_SCALE times the network's size (Tiny: shorter side 256, not 224).
# Why one larger scale instead of averaging with the network's own: Tiny was trained on 224 crops
# of photos scaled to a shorter side of 224-320 (max_crop=320 in darknet's tiny.cfg), so at 224
# objects look smaller than it learned them. Measured with Tiny's real weights, top-1 / top-5:
#   89 labelled photos (teach-dev): 224 59.6 / 84.3; flip 58.4 / 85.4; 256 64.0 / 88.8;
#     224 + 256 averaged 56.2 / 89.9; flip at 256 65.2 / 89.9; flip at 224 and 256 60.7 / 88.8;
#   250 ImageNet photos (issue 16): 224 66.0 / 82.8; 256 68.8 / 85.6; flip at 256 70.0 / 86.8;
#     flip at 224 and 256 70.0 / 86.4 (twice the work of flip at 256).
TTA_CHOICES = ("flip", "scales")
TTA_SCALE = 8 / 7


def parse_tta(text: str | None) -> tuple[str, ...]:
    """ "flip", "scales", "flip,scales" (any order), or ""/"none" → the choices, in TTA_CHOICES order."""
    if text is None or text.strip() in ("", "none"):
        return ()
    parts = {p.strip() for p in text.split(",") if p.strip()}
    unknown = sorted(parts - set(TTA_CHOICES))
    if unknown:
        raise EngineError(f"unknown test-time augmentation {unknown[0]!r}: choose flip, scales or flip,scales")
    return tuple(c for c in TTA_CHOICES if c in parts)


class NamesError(EngineError):
    """A class-names file that cannot be used with the network."""


def load_names(path: str | Path, classes: int | None = None) -> list[str]:
    """One class name per line. darknet's ImageNet list has 21,842 lines, of which the
    first 1000 are the 1000 classes in weight order: so keep the first `classes` lines."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise NamesError(f"{path}: cannot read class names: {exc.strerror or exc}") from None
    names = [line.strip() for line in lines]
    if classes is not None:
        if len(names) < classes:
            raise NamesError(f"{path}: has {len(names)} names but the network has {classes} classes")
        names = names[:classes]
    return names


def class_name(names: list[str] | None, index: int) -> str:
    return names[index] if names and index < len(names) else f"class {index}"


@dataclass(frozen=True)
class Prediction:
    probs: np.ndarray  # (classes,) float32
    names: tuple[str, ...] | None
    seconds: float  # preprocessing + forward
    input_shape: tuple[int, int]  # (h, w) the network actually saw
    heatmap: Heatmap | None = None  # every class's map over the image, when asked for

    def top(self, k: int = 5) -> list[tuple[int, str, float]]:
        """(index, name, probability), best first; ties keep the lower index first."""
        k = min(k, self.probs.size)
        order = np.argsort(-self.probs, kind="stable")[:k]
        return [(int(i), class_name(self.names, int(i)), float(self.probs[i])) for i in order]


class Classifier:
    def __init__(
        self, net: Network, names: list[str] | None = None, resize: str = "min", tta: tuple[str, ...] | str | None = ()
    ):
        check_resize_mode(resize)
        if names is not None and len(names) < net.classes:
            raise NamesError(f"{len(names)} class names for a network with {net.classes} classes")
        self.net = net
        self.names = tuple(names[: net.classes]) if names is not None else None
        self.resize = resize
        self._heatmap: HeatmapSource | NoHeatmap | None = None
        self.use_tta(tta)

    def use_tta(self, tta: tuple[str, ...] | str | None) -> None:
        """Test-time augmentation from now on (see TTA_CHOICES); an EngineError (one line) leaves
        it as it was."""
        choices = parse_tta(tta if isinstance(tta, str) or tta is None else ",".join(tta))
        net = self.net
        if "scales" in choices and not net.any_size:
            fixed = next(layer for layer in net.spec.layers if layer.needs_fixed_size)
            raise EngineError(
                f"test-time scales need a network that takes any input size: {fixed.describe()} "
                f"fixes it at {net.input_size[0]}x{net.input_size[1]}"
            )
        w, h = net.input_size
        self.tta = choices
        self.input_size = (round(w * TTA_SCALE), round(h * TTA_SCALE)) if "scales" in choices else (w, h)

    @property
    def decode_size(self) -> int:
        """The fewest pixels a photo needs on each side for this classifier (load_image's
        at_least): twice its input size, so a JPEG decoded at reduced scale is still resized
        down by darknet's rule, and photos below 4x the input decode whole, exactly as darknet."""
        return 2 * max(self.input_size)

    @property
    def views(self) -> int:
        """Forward passes' worth of inputs per image: 2 with a mirror image."""
        return 2 if "flip" in self.tta else 1

    def preprocess(self, image: np.ndarray, resize: str | None = None) -> np.ndarray:
        """The network's input for an image, by this classifier's resize mode or `resize`, at its
        input size (larger with test-time scales)."""
        w, h = self.input_size
        image = image_from_array(image)
        mode = resize or self.resize
        multiple = self.net.spec.size_multiple
        fitted = fitted_size(image.shape[1], image.shape[0], mode, w, h, self.net.any_size, multiple)
        self.net.check_memory(self.views, fitted[1], fitted[0])  # before an input that size exists
        return fit_input(image, mode, w, h, self.net.any_size, multiple)

    def heatmap_source(self) -> HeatmapSource:
        """Where this network's class maps come from; NoHeatmap (one line) when it has none."""
        if self._heatmap is None:
            try:
                self._heatmap = heatmap_source(self.net.spec)
            except NoHeatmap as exc:
                self._heatmap = exc
        if isinstance(self._heatmap, NoHeatmap):
            raise self._heatmap
        return self._heatmap

    def classify(self, image: np.ndarray, keep_going=None, heatmap: bool = False) -> Prediction | None:
        """image: (h, w, 3) RGB, float32 in 0..1 or uint8. None when keep_going (asked between
        layers, see Network.forward) said to stop. heatmap: also every class's map over the
        image (Prediction.heatmap; NoHeatmap when the network has none), from the same pass."""
        start = time.perf_counter()
        x = self.preprocess(image)
        batch = self._with_views(x[None])
        maps = None
        if heatmap:
            source = self.heatmap_source()
            out = self.net.predict_keeping(batch, source.layer, keep_going)
            if out is None:
                return None
            probs, kept = out
            maps = self._heatmap_of(np.shape(image)[:2], x, class_maps(self.net, source, kept))
        else:
            probs = self.net.predict(batch, keep_going)
            if probs is None:
                return None
        probs = self._merge_views(probs)[0]
        return Prediction(probs, self.names, time.perf_counter() - start, x.shape[:2], maps)

    def classify_batch(self, inputs: np.ndarray) -> list[Prediction]:
        """Already-prepared inputs of one shape, (n, h, w, 3): one forward pass for all (and
        their mirror images, with test-time flips)."""
        start = time.perf_counter()
        probs = self._merge_views(self.net.predict(self._with_views(inputs)))
        each = (time.perf_counter() - start) / max(len(inputs), 1)
        return [Prediction(p, self.names, each, inputs.shape[1:3]) for p in probs]

    def _with_views(self, inputs: np.ndarray) -> np.ndarray:
        """The batch to run: the inputs, then their mirror images when flipping."""
        if "flip" not in self.tta:
            return inputs
        return np.concatenate([inputs, inputs[:, :, ::-1]])

    def _merge_views(self, probs: np.ndarray) -> np.ndarray:
        """Each image's probabilities, averaged over its views."""
        if "flip" not in self.tta:
            return probs
        n = len(probs) // 2
        return (probs[:n] + probs[n:]) / 2

    def _heatmap_of(self, image_hw: tuple[int, int], x: np.ndarray, maps: np.ndarray) -> Heatmap:
        """One image's maps (a mirror view's turned back and averaged in), cropped to the image."""
        merged = maps[0] if "flip" not in self.tta else (maps[0] + maps[1][:, ::-1]) / 2
        w, h = self.input_size
        box = image_box(image_hw[1], image_hw[0], self.resize, w, h, self.net.any_size, x.shape[1], x.shape[0])
        return Heatmap(crop_to_box(merged, box, x.shape[1], x.shape[0]))
