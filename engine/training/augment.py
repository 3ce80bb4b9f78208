"""darknet's classifier augmentation (data.c load_image_augment_paths, image.c), image by image
with OpenCV's affine warp and colour conversion doing the pixel work.

For each image: a random aspect change, a random scale putting its shorter side at a size in
[min_size, max_size], a rotation within +-angle degrees and a random offset, all one affine map
sampled bilinearly into the network's w x h (darknet's rotate_crop_image: black outside the
photo); a mirror on a coin flip; then the hue shifted and saturation and exposure scaled
(darknet's random_distort_image), the result clipped to 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..image import load_image, resize
from .settings import Augment


def center_crop(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """darknet's center_crop_image: the middle square of the photo, resized to w x h."""
    im_h, im_w = img.shape[:2]
    m = min(im_w, im_h)
    x0, y0 = (im_w - m) // 2, (im_h - m) // 2
    return resize(img[y0 : y0 + m, x0 : x0 + m], w, h)


def scale_and_crop(img: np.ndarray, size: int, w: int, h: int) -> np.ndarray:
    """The shorter side scaled to `size`, then the middle w x h (what validation sees: the
    training crops' scale, without their randomness)."""
    im_h, im_w = img.shape[:2]
    return cv2.warpAffine(
        img,
        crop_matrix(im_w, im_h, size / min(im_w, im_h), 0.0, 1.0, 0.0, 0.0, False, w, h),
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )


def crop_matrix(
    im_w: int, im_h: int, s: float, rad: float, aspect: float, dx: float, dy: float, flip: bool, w: int, h: int
) -> np.ndarray:
    """darknet's rotate_crop_image as the 2x3 map from an output pixel (x, y) to where it samples
    the photo: R(rad) . ((x - w/2 + dx) * aspect / s, (y - h/2 + dy) / s) + the photo's centre;
    flip mirrors the output (x -> w - 1 - x)."""
    c, sn = math.cos(rad), math.sin(rad)
    a, b = aspect / s, 1 / s
    ox, oy = (dx - w / 2) * a, (dy - h / 2) * b
    matrix = np.array([[c * a, -sn * b, c * ox - sn * oy + im_w / 2], [sn * a, c * b, sn * ox + c * oy + im_h / 2]])
    if flip:
        matrix[:, 2] += matrix[:, 0] * (w - 1)
        matrix[:, 0] *= -1
    return matrix


@dataclass(frozen=True)
class Draws:
    """The random choices of darknet's augmentation for a batch, one value per image."""

    aspect: np.ndarray
    size: np.ndarray
    rad: np.ndarray
    fx: np.ndarray  # the crop's offset, as a share of the room there is (-1..1)
    fy: np.ndarray
    flip: np.ndarray
    hue: np.ndarray  # degrees
    saturation: np.ndarray
    exposure: np.ndarray


def rand_scales(rng: np.random.Generator, s: float, n: int) -> np.ndarray:
    """darknet's rand_scale for n images: a factor between 1 and s, or its inverse, on a coin flip."""
    scale = rng.uniform(min(1, s), max(1, s), n)
    return np.where(rng.random(n) < 0.5, scale, 1 / scale)


def draw(rng: np.random.Generator, aug: Augment, n: int) -> Draws:
    return Draws(
        aspect=rand_scales(rng, aug.aspect, n),
        size=rng.integers(aug.min_size, aug.max_size + 1, n),
        rad=rng.uniform(-1, 1, n) * aug.angle * math.pi / 180,
        fx=rng.uniform(-1, 1, n),
        fy=rng.uniform(-1, 1, n),
        flip=(rng.random(n) < 0.5) & aug.flip,
        hue=rng.uniform(-1, 1, n) * aug.hue * 360,
        saturation=rand_scales(rng, aug.saturation, n),
        exposure=rand_scales(rng, aug.exposure, n),
    )


def augment_image(img: np.ndarray, aug: Augment, d: Draws, k: int, w: int, h: int) -> np.ndarray:
    """Image k of a batch (H, W, 3), any dtype → its w x h training crop, darknet's way (colour
    aside): centre crop, or a random scale, aspect, rotation and offset; mirrored on its coin."""
    if aug.center:
        crop = center_crop(img.astype(np.float32), w, h)
        return crop[:, ::-1] if d.flip[k] else crop
    im_h, im_w = img.shape[:2]
    aspect = float(d.aspect[k])
    s = float(d.size[k]) / min(im_h, im_w * aspect)
    dx = (im_w * s / aspect - w) / 2 * float(d.fx[k])
    dy = (im_h * s - h) / 2 * float(d.fy[k])
    matrix = crop_matrix(im_w, im_h, s, float(d.rad[k]), aspect, dx, dy, bool(d.flip[k]), w, h)
    return cv2.warpAffine(
        img,
        matrix,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def distort_colors(batch: np.ndarray, aug: Augment, d: Draws) -> None:
    """Hue, saturation and exposure jitter of a batch (n, h, w, 3) RGB 0..1 in place (darknet's
    random_distort_image), each image its own, clipped to 0..1."""
    if aug.hue == 0 and aug.saturation == 1 and aug.exposure == 1:
        return
    n, h, w, _ = batch.shape
    hsv = cv2.cvtColor(batch.reshape(n * h, w, 3), cv2.COLOR_RGB2HSV).reshape(n, h, w, 3)  # H in degrees
    hsv[..., 0] = np.mod(hsv[..., 0] + d.hue[:n, None, None].astype(np.float32), 360)
    hsv[..., 1] *= d.saturation[:n, None, None].astype(np.float32)
    hsv[..., 2] *= d.exposure[:n, None, None].astype(np.float32)
    rgb = cv2.cvtColor(hsv.reshape(n * h, w, 3), cv2.COLOR_HSV2RGB)
    np.clip(rgb.reshape(batch.shape), 0, 1, out=batch)


def plain(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """No augmentation: the photo (float RGB) as it is, resized to w x h (darknet's resize) only
    when it differs."""
    return img if img.shape[:2] == (h, w) else resize(img, w, h)


cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no libjpeg warnings on the terminal
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # darknet applies no EXIF rotation


def read_rgb_bytes(path: str) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB: OpenCV's decoder (4x quicker than Pillow's path for small
    images, the same pixels), else the engine's reader (other formats; its one-line errors)."""
    img = cv2.imread(path, _READ_FLAGS)
    if img is not None and img.ndim == 3 and img.size:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.round(load_image(path) * 255).astype(np.uint8)


def to_unit(img: np.ndarray) -> np.ndarray:
    """uint8 → float32 in 0..1 (darknet's byte / 255)."""
    return np.divide(img, np.float32(255), dtype=np.float32)
