"""Image loading and darknet's preprocessing (resize_image, letterbox_image, resize_min).

Images are (H, W, 3) float32 RGB arrays in 0..1, C-contiguous. The arithmetic of the
resizers follows darknet's C step by step in float32, so the network sees the same
numbers darknet feeds it (bit for bit, given the same decoded pixels).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine import kernels, memory
from engine.errors import EngineError

__all__ = [
    "ImageError",
    "load_image",
    "image_from_array",
    "resize",
    "letterbox",
    "resize_min",
    "fit_input",
    "fitted_size",
    "image_box",
    "letterbox_box",
    "check_resize_mode",
    "RESIZE_MODES",
    "RESIZE_HELP",
    "MAX_ASPECT",
    "IMAGE_SUFFIXES",
]

# The "min" rule keeps the aspect ratio, so the network's work grows with the long side:
# a 5000x3 strip would become a 373,333x224 input. Past 4:1 (at most 4x the work of a
# square input) "min" falls back to letterbox, whose size is fixed.
MAX_ASPECT = 4.0

# File suffixes treated as images when scanning folders (anything else Pillow reads still loads)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

RESIZE_MODES = ("min", "letterbox", "stretch")
RESIZE_HELP = (
    "min: scale the shorter side to the network size and keep the aspect ratio (darknet's "
    f"classic classifier rule; letterbox is used instead when the network needs a fixed input "
    f"size or the image is longer than {MAX_ASPECT:g}:1); letterbox: fit the whole image "
    "inside the network size and pad with grey; stretch: resize to the network size, "
    "ignoring the aspect ratio."
)


def _bytes_to_unit(a: np.ndarray) -> np.ndarray:
    """darknet's (float)(byte / 255.), computed in double. Dividing in float32 gives the same
    value for all 256 bytes (a test checks) and is 5x faster than a lookup table."""
    return np.divide(a, np.float32(255), dtype=np.float32)


class ImageError(EngineError):
    """An image file that cannot be read."""


# --------------------------------------------------------------------------- loading


def load_image(path, at_least: int | None = None) -> np.ndarray:
    """Read an image file as (H, W, 3) float32 RGB in 0..1, like darknet's stb_image loader.

    No EXIF rotation (darknet does not apply it). Alpha is dropped, greyscale replicated,
    16-bit samples keep their high byte as stb_image (and Pillow for 16-bit RGB) does.

    at_least: the fewest pixels the caller needs on each side. A JPEG at least twice that on its
    shorter side is then decoded at 1/2, 1/4 or 1/8 of its size (the JPEG decoder's own scaling,
    keeping at least `at_least`): a 6000x4000 photo for Tiny (at_least 448) decoded at 750x500 in
    110 ms instead of 750 ms, its arrays 6 MB instead of 344 MB (bench/bench_big_photo.py).
    Smaller images, and other formats, decode whole, exactly as darknet does.
    """
    name = os.fspath(path)
    try:
        if os.path.isfile(name) and os.path.getsize(name) == 0:
            raise ImageError(f"cannot read image {name}: the file is empty")
        with Image.open(name) as im:
            if at_least is not None and im.format == "JPEG" and min(im.size) >= 2 * at_least:
                im.draft(im.mode, (at_least, at_least))
            im.load()  # decode now, inside the try: a truncated file must fail here
            if im.width == 0 or im.height == 0:
                raise ImageError(f"cannot read image {name}: it has zero size ({im.width}x{im.height})")
            if im.mode.startswith("I;16") or im.mode == "I":
                # 16-bit greyscale: Pillow's convert("RGB") would clip at 255; take the high byte.
                grey = (np.clip(np.asarray(im, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
                rgb = np.repeat(grey[:, :, None], 3, axis=2)
            else:
                rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"cannot read image {name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"cannot read image {name}: it is a folder, not a file") from None
    except PermissionError:
        raise ImageError(f"cannot read image {name}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(f"cannot read image {name}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"cannot read image {name}: too large ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        # Pillow reports broken data with any of these (truncated, corrupt, unsupported mode).
        detail = " ".join(str(e).split()) or type(e).__name__
        raise ImageError(f"cannot read image {name}: truncated or corrupt ({detail})") from None
    return _bytes_to_unit(rgb)


def image_from_array(a) -> np.ndarray:
    """(H, W, 3) RGB array -> float32 0..1, C-contiguous.

    uint8 is scaled like load_image; float must already be in 0..1 (checked, not clipped,
    so a 0..255 float frame fails loudly). (H, W) greyscale is replicated and a 4th
    (alpha) channel dropped. Raises ValueError for anything else.
    """
    a = np.asarray(a)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected an (H, W, 3) RGB image array, got shape {a.shape}")
    a = a[:, :, :3]
    if a.dtype == np.uint8:
        return _bytes_to_unit(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"expected a uint8 or float image array, got dtype {a.dtype}")
    out = np.ascontiguousarray(a, dtype=np.float32)
    lo, hi = float(out.min()), float(out.max())
    if not (0.0 <= lo and hi <= 1.0):  # also catches NaN
        raise ValueError(f"float image values must be in 0..1, got {lo:g}..{hi:g}")
    return out


# --------------------------------------------------------------------------- resizing


@lru_cache(maxsize=64)
def _taps(n_in: int, n_out: int):
    """Per-output-position (index, weight) of darknet's bilinear, in float32 as the C computes it.

    Returns i0, i1 (int arrays) and dx (float32), one entry per output position p:
        sx = float(p) * scale;  i0 = (int)sx;  dx = sx - i0;  i1 = i0 + 1
    with scale = (float)(n_in - 1) / (n_out - 1). i1 is clamped only so that it can be
    used as an index; callers decide (as darknet does) where the second tap is skipped.
    """
    if n_out == 1:
        # darknet divides by zero here (scale = inf, or NaN when n_in == 1); 0 * scale is NaN
        # and the C then reads outside the image. We use scale 0: sample position 0.
        scale = np.float32(0)
    else:
        scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    s = np.arange(n_out, dtype=np.float32) * scale
    i0 = s.astype(np.intp)  # truncation, s >= 0
    dx = s - i0.astype(np.float32)
    i1 = np.minimum(i0 + 1, n_in - 1)
    for a in (i0, i1, dx):
        a.setflags(write=False)  # cached: shared between calls
    return i0, i1, dx


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """darknet's resize_image: bilinear in two passes (columns, then rows), float32 throughout.

    Reproduced quirks: the last output column copies the last input column; the last output
    row uses only the (1 - dy) term, so when float rounding puts its source just below the
    last input row, darknet (and this) gives a nearly black last row. For a 1-pixel-wide
    output darknet's code is well defined (it takes the last column); for a 1-pixel-high
    output it is not (0 * inf), and we take row 0.
    """
    img = np.asarray(img, dtype=np.float32)
    w, h = int(w), int(h)
    if w < 1 or h < 1:
        raise ValueError(f"resize target must be at least 1x1, got {w}x{h}")
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an (H, W, C) image, got shape {img.shape}")
    im_h, im_w, channels = img.shape
    # the output and the column pass's rows go through the memory budget, as a plan's buffers do:
    # a cfg's width or height can ask for terabytes
    memory.check((h + im_h) * w * channels * FLOAT_BYTES, f"resizing a {im_w}x{im_h} image to {w}x{h}")

    ix0, ix1, dx = _taps(im_w, w)
    iy0, iy1, dy = _taps(im_h, h)
    out = np.empty((h, w, img.shape[2]), np.float32)
    kernels.resize_bilinear(_writable(img), ix0, ix1, dx, iy0, iy1, dy, out)
    return out


FLOAT_BYTES = 4


def _writable(img: np.ndarray) -> np.ndarray:
    """img as a C-contiguous, writable float32 array: the one array type the compiled resize
    kernel is compiled for (a read-only image would be a new type, compiled on the spot)."""
    if img.flags.c_contiguous and img.flags.writeable:
        return img
    return np.array(img, dtype=np.float32, order="C")


def letterbox(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """darknet's letterbox_image: resize to fit inside w x h keeping the aspect ratio and
    centre the result on a canvas of 0.5.

    One deliberate difference: darknet's integer rule can give a 0-pixel side for a very
    long strip (5000x3 into 224x224 -> 224x0) and then returns a blank grey canvas; we keep
    at least 1 pixel so the image is still seen.
    """
    img = np.asarray(img, dtype=np.float32)
    w, h = int(w), int(h)
    if w < 1 or h < 1:
        raise ValueError(f"letterbox target must be at least 1x1, got {w}x{h}")
    memory.check(h * w * img.shape[2] * FLOAT_BYTES, f"letterboxing an image into {w}x{h}")
    x0, y0, x1, y1 = letterbox_box(img.shape[1], img.shape[0], w, h)
    boxed = np.full((h, w, img.shape[2]), 0.5, np.float32)
    boxed[y0:y1, x0:x1] = resize(img, x1 - x0, y1 - y0)
    return boxed


def letterbox_box(im_w: int, im_h: int, w: int, h: int) -> tuple[int, int, int, int]:
    """Where letterbox puts an im_w x im_h image on its w x h canvas: (x0, y0, x1, y1)."""
    if np.float32(w) / np.float32(im_w) < np.float32(h) / np.float32(im_h):
        new_w, new_h = w, max(1, (im_h * w) // im_w)
    else:
        new_w, new_h = max(1, (im_w * h) // im_h), h
    x0, y0 = (w - new_w) // 2, (h - new_h) // 2
    return x0, y0, x0 + new_w, y0 + new_h


def resize_min(img: np.ndarray, size: int) -> np.ndarray:
    """darknet's resize_min: shorter side becomes `size`, aspect kept (768x576, 224 -> 298x224).

    Returns `img` itself when no resize is needed. Unbounded: see fit_input for the guard.
    """
    im_h, im_w = img.shape[:2]
    w, h = min_size(im_w, im_h, size)
    if (w, h) == (im_w, im_h):
        return img
    return resize(img, w, h)


def min_size(im_w: int, im_h: int, size: int) -> tuple[int, int]:
    """(width, height) resize_min gives an im_w x im_h image: shorter side `size`, darknet's integer rule."""
    return (size, (im_h * size) // im_w) if im_w < im_h else ((im_w * size) // im_h, size)


def check_resize_mode(mode: str) -> str:
    """mode, when it is one of RESIZE_MODES; else ValueError naming them."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}")
    return mode


def fit_input(img: np.ndarray, mode: str, net_w: int, net_h: int, free_size: bool, multiple: int = 1) -> np.ndarray:
    """Prepare an image for a network of net_w x net_h in one of RESIZE_MODES (see RESIZE_HELP).

    free_size: the network accepts any input size (fully convolutional + global pooling);
    only then can "min" change the input size, and only up to MAX_ASPECT. multiple: what the
    network needs each side to be a multiple of (NetworkSpec.size_multiple): "min" then rounds
    darknet's size to the nearest multiple, where darknet itself would stop on an assert.
    """
    how = _fit_rule(img.shape[1], img.shape[0], mode, free_size)
    if how == "stretch":
        return resize(img, net_w, net_h)
    if how == "min" and multiple > 1:
        w, h = fitted_size(img.shape[1], img.shape[0], mode, net_w, net_h, free_size, multiple)
        return resize(img, w, h)
    if how == "min":
        return resize_min(img, min(net_w, net_h))
    return letterbox(img, net_w, net_h)


def fitted_size(
    im_w: int, im_h: int, mode: str, net_w: int, net_h: int, free_size: bool, multiple: int = 1
) -> tuple[int, int]:
    """(width, height) of what fit_input makes of an im_w x im_h image, without making it."""
    if _fit_rule(im_w, im_h, mode, free_size) != "min":
        return net_w, net_h
    w, h = min_size(im_w, im_h, min(net_w, net_h))
    if multiple > 1:
        w, h = (max(multiple, round(side / multiple) * multiple) for side in (w, h))
    return w, h


def image_box(
    im_w: int, im_h: int, mode: str, net_w: int, net_h: int, free_size: bool, input_w: int, input_h: int
) -> tuple[int, int, int, int]:
    """Where fit_input put an im_w x im_h image in its input_w x input_h result: (x0, y0, x1, y1);
    all of it but letterbox's grey bands."""
    if _fit_rule(im_w, im_h, mode, free_size) == "letterbox":
        return letterbox_box(im_w, im_h, net_w, net_h)
    return 0, 0, input_w, input_h


def _fit_rule(im_w: int, im_h: int, mode: str, free_size: bool) -> str:
    """What fit_input does in `mode`: "min" falls back to letterbox (see RESIZE_HELP)."""
    check_resize_mode(mode)
    if mode == "min" and not (free_size and max(im_w, im_h) <= MAX_ASPECT * min(im_w, im_h)):
        return "letterbox"
    return mode
