"""darknet's training augmentation and the loader, against numpy slicing and colorsys."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
from PIL import Image

from engine.training import read_dataset
from engine.training.augment import Draws, augment_image, distort_colors, draw, scale_and_crop
from engine.training.loader import Loader
from engine.training.settings import Augment


def draws(n=1, **values) -> Draws:
    base = dict(aspect=1.0, size=20, rad=0.0, fx=0.0, fy=0.0, flip=False, hue=0.0, saturation=1.0, exposure=1.0)
    base.update(values)
    return Draws(**{k: np.full(n, v) for k, v in base.items()})


@pytest.fixture
def photo():
    return np.random.default_rng(0).integers(0, 256, (20, 20, 3)).astype(np.uint8)


@pytest.mark.parametrize("fx,fy,window", [(-1, -1, (0, 0)), (1, 1, (4, 4)), (-1, 1, (4, 0)), (0, 0, (2, 2))])
def test_crop_at_scale_one_is_a_window_of_the_photo(photo, fx, fy, window):
    """Shorter side kept at 20, a 16x16 crop: the random offset picks a window, -1..1 of the room."""
    crop = augment_image(photo, Augment(20, 20), draws(fx=fx, fy=fy), 0, 16, 16)
    y, x = window
    np.testing.assert_array_equal(crop, photo[y : y + 16, x : x + 16])


def test_flip_mirrors_the_crop(photo):
    crop = augment_image(photo, Augment(20, 20), draws(fx=-1, fy=-1, flip=True), 0, 16, 16)
    np.testing.assert_array_equal(crop, photo[:16, 15::-1])


def test_scale_halves_the_photo_and_rotation_leaves_black_corners(photo):
    big = np.kron(photo, np.ones((2, 2, 1), np.uint8))  # 40x40, each pixel twice
    crop = augment_image(big, Augment(20, 20), draws(), 0, 20, 20)
    inner = crop[2:-2, 2:-2].astype(int) - photo[2:-2, 2:-2]
    assert np.abs(inner).mean() < 40  # the same picture at half the size (bilinear blur aside)
    turned = augment_image(photo, Augment(20, 20, angle=45), draws(rad=math.pi / 4), 0, 20, 20)
    assert (turned[0, 0] == 0).all() and (turned[-1, -1] == 0).all() and turned[10, 10].any()


def test_validation_crop_is_the_middle(photo):
    np.testing.assert_array_equal(scale_and_crop(photo, 20, 16, 16), photo[2:18, 2:18])


@pytest.mark.parametrize(
    "hue,saturation,exposure", [(0, 1, 1.5), (0, 0.4, 1), (0, 1.7, 0.8), (60, 1, 1), (-100, 1.2, 1.1)]
)
def test_colour_jitter_follows_hsv(hue, saturation, exposure):
    rng = np.random.default_rng(1)
    batch = rng.uniform(0, 1, (2, 4, 5, 3)).astype(np.float32)
    expected = np.empty_like(batch)
    for index in np.ndindex(batch.shape[:3]):
        h, s, v = colorsys.rgb_to_hsv(*batch[index])
        h = (h + hue / 360) % 1
        expected[index] = np.clip(colorsys.hsv_to_rgb(h, s * saturation, v * exposure), 0, 1)
    aug = Augment(4, 4, hue=0.5, saturation=2, exposure=2)
    distort_colors(batch, aug, draws(2, hue=hue, saturation=saturation, exposure=exposure))
    # as darknet, saturation and value are not clamped before going back to RGB, only the RGB
    np.testing.assert_allclose(batch, expected, atol=2e-3)


def test_draws_stay_within_the_cfg():
    aug = Augment(24, 40, angle=10, aspect=1.5, hue=0.1, saturation=1.5, exposure=1.25, flip=False)
    d = draw(np.random.default_rng(0), aug, 2000)
    assert d.size.min() == 24 and d.size.max() == 40
    assert 1 / 1.5 <= d.aspect.min() < 0.7 and 1.45 < d.aspect.max() <= 1.5
    assert np.abs(d.rad).max() <= math.radians(10) and np.abs(d.hue).max() <= 36
    assert not d.flip.any() and draw(np.random.default_rng(0), Augment(1, 1), 100).flip.mean() > 0.3


def test_loader_in_order_without_augmentation(tmp_path):
    rng = np.random.default_rng(0)
    pixels = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            img = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
            pixels[f"{name}{i}"] = img
    (tmp_path / "a" / "3.png").write_bytes(b"broken")
    data = read_dataset(tmp_path)
    loader = Loader(data, 8, 8, 4, None, in_order=True)
    try:
        x1, labels1 = loader.next()
        x2, labels2 = loader.next()
    finally:
        loader.close()
    order = ["a0", "a1", "a2", "b0", "b1", "b2", "a0", "a1"]  # a/3.png skipped, its place taken
    np.testing.assert_array_equal(np.concatenate([labels1, labels2]), [0, 0, 0, 1, 1, 1, 0, 0])
    for got, name in zip(np.concatenate([x1, x2]), order):
        np.testing.assert_allclose(got, pixels[name] / 255, atol=1e-6)
    assert list(loader.skipped) == [str(tmp_path / "a" / "3.png")]
