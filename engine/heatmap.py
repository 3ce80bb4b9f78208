"""Heatmaps: where in the picture each class is (class activation maps).

Tiny Darknet, Darknet Reference, Darknet19, Extraction, ResNet 18 (ours) and every taught head end
in a 1x1 [convolutional] and a global [avgpool], in one order or the other. Either way the logit
of class k is the mean over the picture's cells of one map per class:

- conv then pool (Tiny, Darknet19, Extraction, taught heads): the conv's own output, whatever its
  activation; the plan must not run the pool first, so that layer's output is kept;
- pool then a linear conv (Darknet Reference, ResNet 18): the conv applied to every cell of the
  pool's input, W·F(i, j) + b, whose mean is W·mean(F) + b.

A [connected] classifier mixes every position into every class: there is no such map, and
heatmap_source says so in one line rather than draw something wrong.

The maps cover the image as the network saw it: letterbox's grey bands are cropped away, so cell
(i, j) of a rows x cols map stands for the pixels i/rows..(i+1)/rows down and j/cols..(j+1)/cols
across the photo.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .activations import LINEAR
from .errors import EngineError


class NoHeatmap(EngineError):
    """A network whose classifier has no per-position map."""


@dataclass(frozen=True)
class HeatmapSource:
    """Where a network's maps come from."""

    layer: int  # the layer whose kept output is the map, or what the conv maps
    conv: int | None = None  # pool first: the 1x1 conv to apply to every cell of `layer`'s output


def heatmap_source(spec) -> HeatmapSource:
    """How to get `spec`'s class maps; NoHeatmap (one line, naming the layer) when it has none."""
    layers = spec.layers
    end = len(layers) - 1
    if layers[end].kind == "softmax":
        end -= 1
    last = layers[end]
    before = layers[end - 1] if end >= 1 else None
    if last.kind == "avgpool" and before is not None and _pointwise(before):
        return HeatmapSource(end - 1)
    if _pointwise(last) and before is not None and before.kind == "avgpool" and end >= 2:
        if last.activation != LINEAR:
            raise NoHeatmap(
                f"{last.where}: layer {last.index} [convolutional] after the [avgpool] has "
                f"a {last.activation_name} activation, so its map's mean is not the class "
                f"score: no heatmap"
            )
        return HeatmapSource(end - 2, conv=end)
    if last.kind == "connected":
        raise NoHeatmap(
            f"{last.where}: layer {last.index} [connected] is the classifier, and it mixes "
            f"every position of the picture into every class: no heatmap (heatmaps need a "
            f"1x1 [convolutional] next to an [avgpool])"
        )
    raise NoHeatmap(
        f"{spec.path}: the network does not end in a 1x1 [convolutional] next to an "
        f"[avgpool] (it ends in layer {last.index} [{last.kind}]): no heatmap"
    )


def _pointwise(layer) -> bool:
    return layer.kind == "convolutional" and layer.size == 1 and layer.stride == 1 and layer.groups == 1


@dataclass(frozen=True)
class Heatmap:
    """Every class's map over one image: maps[i, j, k] is class k's score at cell (i, j)."""

    maps: np.ndarray  # (rows, cols, classes) float32

    @property
    def shape(self) -> tuple[int, int]:
        return self.maps.shape[:2]

    def of(self, index: int) -> np.ndarray:
        """Class `index`'s map, (rows, cols) float32."""
        return np.ascontiguousarray(self.maps[:, :, index])

    def rgba(self, index: int) -> np.ndarray:
        """Class `index`'s map as a picture to lay over the photo: (rows, cols, 4) uint8, cold to
        hot, hot cells opaque and cold ones at a third (as `overlay` blends)."""
        t = stretch(self.of(index))
        alpha = np.round(255 * (1 + 2 * t) / 3).astype(np.uint8)
        return np.ascontiguousarray(np.concatenate([colourise(t), alpha[..., None]], -1))


def class_maps(net, source: HeatmapSource, kept: np.ndarray) -> np.ndarray:
    """(n, rows, cols, classes) maps from the kept output of source.layer, (n, rows, cols, c)."""
    if source.conv is None:
        return kept
    packed = net.packed_weights(source.conv)
    n, rows, cols, c = kept.shape
    maps = kept.reshape(-1, c) @ packed.mats[0] + packed.bias
    return maps.reshape(n, rows, cols, -1).astype(np.float32, copy=False)


def crop_to_box(maps: np.ndarray, box: tuple[int, int, int, int], input_w: int, input_h: int) -> np.ndarray:
    """The part of (rows, cols, classes) maps over an input_w x input_h input that covers the box
    (x0, y0, x1, y1) of it, resampled (bilinear, at cell centres) to as many cells as the box
    spans, at least one; the whole map when the box is the whole input."""
    x0, y0, x1, y1 = box
    rows, cols = maps.shape[:2]
    if (x0, y0, x1, y1) == (0, 0, input_w, input_h):
        return maps
    out_rows = max(1, round((y1 - y0) * rows / input_h))
    out_cols = max(1, round((x1 - x0) * cols / input_w))
    ys = _sample_positions(y0 * rows / input_h, y1 * rows / input_h, out_rows, rows)
    xs = _sample_positions(x0 * cols / input_w, x1 * cols / input_w, out_cols, cols)
    return _bilinear(maps, ys, xs)


def _sample_positions(start: float, stop: float, count: int, size: int) -> np.ndarray:
    """Centres of `count` equal cells over [start, stop) in map coordinates, as indices into a map
    of `size` cells (cell i's centre is at i + 0.5), clamped to it."""
    centres = start + (np.arange(count) + 0.5) * (stop - start) / count - 0.5
    return np.clip(centres, 0, size - 1)


def _bilinear(maps: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, maps.shape[0] - 1)
    x1 = np.minimum(x0 + 1, maps.shape[1] - 1)
    dy = (ys - y0).astype(np.float32)[:, None, None]
    dx = (xs - x0).astype(np.float32)[None, :, None]
    top = maps[y0][:, x0] * (1 - dx) + maps[y0][:, x1] * dx
    bottom = maps[y1][:, x0] * (1 - dx) + maps[y1][:, x1] * dx
    return np.ascontiguousarray(top * (1 - dy) + bottom * dy, dtype=np.float32)


# --- pictures -------------------------------------------------------------------------------

# The colour scale, cold to hot: dark blue, blue, cyan, yellow, red (positions 0..1)
_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32)
_COLOURS = np.array([[0, 0, 110], [20, 90, 255], [40, 220, 220], [255, 220, 40], [220, 20, 20]], np.float32)


def stretch(values: np.ndarray) -> np.ndarray:
    """values scaled to 0..1 from the map's minimum to its maximum (a flat map: all 0)."""
    lo, hi = float(values.min()), float(values.max())
    return ((values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)).astype(np.float32)


def colourise(t: np.ndarray) -> np.ndarray:
    """(rows, cols) values in 0..1 → (rows, cols, 3) uint8 on the cold-to-hot scale."""
    channels = [np.interp(t, _STOPS, _COLOURS[:, k]) for k in range(3)]
    return np.stack(channels, -1).round().astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray, label: str, opacity: float = 0.6) -> np.ndarray:
    """The photo (h, w, 3; uint8, or float 0..1) under the coloured map stretched over it, with
    `label` in its top-left corner: (h, w, 3) uint8. Hot cells cover the photo at `opacity`, cold
    ones at a third of it, so the photo stays readable where the class is not."""
    from PIL import Image, ImageDraw, ImageFont

    photo = np.asarray(image)
    if photo.dtype != np.uint8:
        photo = (np.clip(photo, 0, 1) * 255).round().astype(np.uint8)
    h, w = photo.shape[:2]
    t = np.asarray(Image.fromarray(stretch(values), mode="F").resize((w, h), Image.Resampling.BILINEAR))
    alpha = (opacity * (1 + 2 * t) / 3)[..., None]
    blended = photo.astype(np.float32) * (1 - alpha) + colourise(t).astype(np.float32) * alpha
    picture = Image.fromarray(blended.round().astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(12, min(w, h) // 20))
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    pad = max(3, (bottom - top) // 4)
    draw.rectangle((0, 0, right - left + 2 * pad, bottom - top + 2 * pad), fill=(0, 0, 0))
    draw.text((pad - left, pad - top), label, fill=(255, 255, 255), font=font)
    return np.asarray(picture)


def write_heatmap(
    folder: str | Path, stem: str, image: np.ndarray, values: np.ndarray, label: str
) -> tuple[Path, Path]:
    """FOLDER/STEM.cam.npy (the map, float32) and FOLDER/STEM.cam.png (the overlay): both whole,
    or neither; returns their paths."""
    from PIL import Image

    from .files import publish, stage

    folder = Path(folder)
    npy, png = folder / f"{stem}.cam.npy", folder / f"{stem}.cam.png"
    data = io.BytesIO()
    np.save(data, np.ascontiguousarray(values, dtype=np.float32))
    picture = io.BytesIO()
    Image.fromarray(overlay(image, values, label)).save(picture, "PNG")
    staged_npy = stage(npy, data.getvalue())
    try:
        staged_png = stage(png, picture.getvalue())
    except BaseException:
        staged_npy.unlink(missing_ok=True)
        raise
    publish(staged_npy, npy)
    publish(staged_png, png)
    return npy, png
