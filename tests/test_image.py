"""Tests for engine.image: loading, and darknet's resize / letterbox / resize_min rules."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import image as eimg
from engine.errors import EngineError
from engine.image import (
    MAX_ASPECT,
    RESIZE_HELP,
    RESIZE_MODES,
    ImageError,
    fit_input,
    image_from_array,
    letterbox,
    load_image,
    resize,
    resize_min,
)
import engine
from reference import reference_resize
from support import CFG_DIR

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "darknet" / "data"
needs_shared = pytest.mark.skipif(not DATA.is_dir(), reason=f"reference data {SHARED} not present")

f32 = np.float32


def rand_img(w, h, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


# ----------------------------------------------------------------------------- resize


@pytest.mark.parametrize(
    "src,dst",
    [
        ((7, 5), (3, 11)),
        ((13, 9), (4, 4)),
        ((5, 7), (11, 13)),
        ((9, 13), (4, 6)),
        ((1, 6), (5, 3)),
        ((6, 1), (4, 5)),
        ((1, 1), (3, 3)),
        ((4, 4), (1, 1)),
        ((5, 5), (1, 4)),
        ((5, 5), (4, 1)),
        ((2, 2), (9, 9)),
        ((5, 4), (5, 4)),
        ((7, 4), (6, 38)),
        ((7, 14), (5, 12)),
        ((3, 4), (22, 22)),
        ((31, 17), (16, 29)),
    ],
)
@pytest.mark.usefixtures("kernel_set")  # the compiled and the portable resize kernel
def test_resize_matches_reference_exactly(src, dst):
    # Same float32 operations in the same order (each product rounded, then the sum), so the
    # vectorised version is bit-identical, not merely close.
    img = rand_img(*src, seed=src[0] * 100 + dst[1])
    got = resize(img, *dst)
    assert got.shape == (dst[1], dst[0], 3) and got.dtype == np.float32
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, reference_resize(img, *dst))


@pytest.mark.usefixtures("kernel_set")
def test_resize_same_size_is_identity():
    img = rand_img(11, 8)
    np.testing.assert_array_equal(resize(img, 11, 8), img)


@pytest.mark.usefixtures("kernel_set")
def test_resize_one_pixel_output():
    img = rand_img(5, 4)
    # 1 wide: darknet's rule (c == w-1) takes the last column; 1 high: row 0 (our choice).
    np.testing.assert_array_equal(resize(img, 1, 4)[:, 0], img[:, 4])
    np.testing.assert_array_equal(resize(img, 5, 1)[0], img[0])
    np.testing.assert_array_equal(resize(img, 1, 1)[0, 0], img[0, 4])


@pytest.mark.usefixtures("kernel_set")
def test_resize_known_values():
    # 2x1 -> 3x1: middle column is the mean of the two, ends are copies.
    img = np.array([[[0.0] * 3, [1.0] * 3]], np.float32)
    np.testing.assert_array_equal(resize(img, 3, 1)[0, :, 0], [0.0, 0.5, 1.0])


@pytest.mark.usefixtures("kernel_set")
def test_last_row_quirk_nearly_black():
    # Height 4 -> 38: h_scale = 3/37 in float32, and 37 * h_scale = 2.9999998 < 3, so the last
    # row samples iy = 2 with dy = 0.99999976, and darknet keeps only (1 - dy) * row 2.
    h_scale = f32(3) / f32(37)
    sy = f32(37) * h_scale
    dy = sy - f32(int(sy))
    assert int(sy) == 2 and dy > f32(0.999)
    img = np.ones((4, 7, 3), np.float32)
    got = resize(img, 6, 38)
    np.testing.assert_array_equal(got, reference_resize(img, 6, 38))
    np.testing.assert_array_equal(got[-1], np.full((6, 3), f32(1) - dy))
    assert got[-1].max() < 1e-6  # a naive bilinear would give 1.0 here
    np.testing.assert_array_equal(got[:-1], 1.0)


@pytest.mark.usefixtures("kernel_set")
def test_last_row_quirk_slightly_dim():
    # Height 4 -> 22: 21 * (3/21) = 3.0000002, so iy = 3 and dy = 2.4e-7 on the last row:
    # (1 - dy) * row 3, one float32 step below the true value.
    sy = f32(21) * (f32(3) / f32(21))
    dy = sy - f32(3)
    assert int(sy) == 3 and dy > 0
    img = np.ones((4, 3, 3), np.float32)
    got = resize(img, 3, 22)
    np.testing.assert_array_equal(got, reference_resize(img, 3, 22))
    assert got[-1, 0, 0] == f32(1) - dy and got[-1, 0, 0] < 1.0


def test_resize_rejects_bad_size():
    with pytest.raises(ValueError, match="0x5"):
        resize(rand_img(4, 4), 0, 5)


# ----------------------------------------------------------------------------- resize_min


@pytest.mark.parametrize(
    "w,h,expected_shape",
    [
        (768, 576, (224, 298, 3)),  # landscape
        (576, 768, (298, 224, 3)),  # portrait
        (300, 300, (224, 224, 3)),  # square
        (1, 3, (672, 224, 3)),
    ],
)
def test_resize_min_sizes(w, h, expected_shape):
    assert resize_min(np.zeros((h, w, 3), np.float32), 224).shape == expected_shape


def test_resize_min_unchanged_returns_same_array():
    img = rand_img(298, 224)
    assert resize_min(img, 224) is img


def test_resize_min_content_is_resize():
    img = rand_img(40, 30)
    np.testing.assert_array_equal(resize_min(img, 12), resize(img, 16, 12))


# ----------------------------------------------------------------------------- letterbox


def test_letterbox_landscape_geometry():
    img = rand_img(30, 10) * f32(0.4)  # keep content away from 0.5
    out = letterbox(img, 20, 20)
    # 20/30 < 20/10 -> new 20 x (10*20//30 = 6), placed at y0 = (20-6)//2 = 7
    assert out.shape == (20, 20, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[7:13], resize(img, 20, 6))
    assert np.all(out[:7] == f32(0.5)) and np.all(out[13:] == f32(0.5))


def test_letterbox_portrait_geometry():
    img = rand_img(10, 40) * f32(0.4)
    out = letterbox(img, 16, 16)
    # 16/10 >= 16/40 -> new (10*16//40 = 4) x 16, placed at x0 = (16-4)//2 = 6
    np.testing.assert_array_equal(out[:, 6:10], resize(img, 4, 16))
    assert np.all(out[:, :6] == f32(0.5)) and np.all(out[:, 10:] == f32(0.5))


def test_letterbox_dog_size():
    img = rand_img(768, 576)
    out = letterbox(img, 224, 224)
    # 768x576 -> 224x168 at y0 = 28
    np.testing.assert_array_equal(out[28:196], resize(img, 224, 168))
    assert np.all(out[:28] == 0.5) and np.all(out[196:] == 0.5)


def test_letterbox_extreme_strip_keeps_one_row():
    # darknet's rule gives 224 x (3*224//5000 = 0) and a blank canvas; we keep 1 row.
    img = rand_img(5000, 3) * f32(0.4)
    out = letterbox(img, 224, 224)
    np.testing.assert_array_equal(out[111], resize(img, 224, 1)[0])
    assert np.all(np.delete(out, 111, axis=0) == f32(0.5))


# ----------------------------------------------------------------------------- fit_input


def test_fit_input_modes():
    img = rand_img(64, 48)
    np.testing.assert_array_equal(fit_input(img, "min", 32, 32, True), resize(img, 42, 32))
    np.testing.assert_array_equal(fit_input(img, "min", 32, 32, False), letterbox(img, 32, 32))
    np.testing.assert_array_equal(fit_input(img, "letterbox", 32, 32, True), letterbox(img, 32, 32))
    np.testing.assert_array_equal(fit_input(img, "stretch", 32, 24, True), resize(img, 32, 24))


def test_fit_input_min_uses_smaller_net_side():
    assert fit_input(rand_img(64, 48), "min", 40, 30, True).shape == (30, 40, 3)


def test_fit_input_aspect_limit():
    assert MAX_ASPECT == 4.0
    at_limit = rand_img(40, 10)
    assert fit_input(at_limit, "min", 8, 8, True).shape == (8, 32, 3)
    past_limit = rand_img(41, 10)
    np.testing.assert_array_equal(fit_input(past_limit, "min", 8, 8, True), letterbox(past_limit, 8, 8))


def test_fit_input_huge_strip_is_bounded(monkeypatch):
    img = rand_img(5000, 3)
    sizes = []
    real_resize = eimg.resize
    monkeypatch.setattr(eimg, "resize", lambda im, w, h: sizes.append((w, h)) or real_resize(im, w, h))
    tracemalloc.start()
    try:
        out = fit_input(img, "min", 224, 224, True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sizes == [(224, 1)]  # the only resize: a 224x1 row, letterboxed
    assert out.shape == (224, 224, 3)
    np.testing.assert_array_equal(out, letterbox(img, 224, 224))
    assert peak < 5_000_000  # darknet's rule would build a 373,333 x 224 x 3 float array (1 GB)


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("w,h", [(1, 1), (2, 2), (1, 7), (7, 1), (3000, 2), (2, 3000)])
def test_fit_input_tiny_and_degenerate(mode, w, h):
    img = rand_img(w, h)
    out = fit_input(img, mode, 16, 16, True)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    if mode != "min" or max(w, h) > MAX_ASPECT * min(w, h):
        assert out.shape == (16, 16, 3)
    else:
        assert min(out.shape[:2]) == 16


def test_fit_input_bad_mode():
    with pytest.raises(ValueError, match="'crop'.*min, letterbox, stretch"):
        fit_input(rand_img(4, 4), "crop", 8, 8, True)


def test_resize_modes_and_help():
    assert RESIZE_MODES == ("min", "letterbox", "stretch")
    assert "\n" not in RESIZE_HELP
    for word in (*RESIZE_MODES, "4:1"):
        assert word in RESIZE_HELP


# ----------------------------------------------------------------------------- loading


@needs_shared
def test_load_dog_png():
    img = load_image(DATA / "dog.png")
    assert img.shape == (576, 768, 3) and img.dtype == np.float32 and img.flags.c_contiguous
    assert img.min() >= 0.0 and img.max() <= 1.0 and img.std() > 0.1
    raw = np.asarray(Image.open(DATA / "dog.png").convert("RGB"))
    # darknet: (float)byte / 255. -- computed in double, stored as float
    np.testing.assert_array_equal(img, (raw / 255.0).astype(np.float32))


@needs_shared
def test_png_matches_jpg():
    png, jpg = load_image(DATA / "dog.png"), load_image(DATA / "dog.jpg")
    diff = np.abs(png - jpg) * 255
    assert diff.max() <= 4 and diff.mean() < 1


def test_load_greyscale(tmp_path):
    grey = np.array([[0, 1, 128], [200, 254, 255]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.shape == (2, 3, 3)
    for k in range(3):
        np.testing.assert_array_equal(img[:, :, k], (grey / 255.0).astype(np.float32))


def test_load_rgba_drops_alpha(tmp_path):
    rgba = np.array([[[10, 20, 30, 0], [40, 50, 60, 128], [70, 80, 90, 255]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    # the pixels' own RGB, not composited over any background, even where alpha is 0
    np.testing.assert_array_equal(img, (rgba[:, :, :3] / 255.0).astype(np.float32))


def test_load_greyscale_alpha_and_palette(tmp_path):
    Image.fromarray(np.array([[[100, 0], [200, 255]]], np.uint8), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_image(tmp_path / "la.png")[0, :, 1], [f32(100 / 255), f32(200 / 255)])
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putdata([1, 0])
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    np.testing.assert_array_equal(load_image(tmp_path / "p.png")[0], [[0, 0, 1], [1, 0, 0]])


def test_load_16bit_greyscale(tmp_path):
    v = np.array([[0, 255, 256, 0x12FF, 65535]], np.uint16)
    Image.fromarray(v).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    img = load_image(tmp_path / "g16.png")
    # high byte / 255, like stb_image's 16 -> 8 bit conversion (not clipped at 255)
    expect = (np.array([0, 0, 1, 0x12, 255]) / 255.0).astype(np.float32)
    for k in range(3):
        np.testing.assert_array_equal(img[0, :, k], expect)


def test_load_ignores_exif_rotation(tmp_path):
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert Image.open(tmp_path / "r.jpg").getexif()[0x0112] == 6
    assert load_image(tmp_path / "r.jpg").shape == (20, 40, 3)


def _assert_image_error(path, *words):
    with pytest.raises(ImageError) as e:
        load_image(path)
    msg = str(e.value)
    assert Path(path).name in msg and "\n" not in msg
    for w in words:
        assert w in msg
    assert isinstance(e.value, EngineError)


def test_error_missing_file(tmp_path):
    _assert_image_error(tmp_path / "nope.jpg", "no such file")


def test_error_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not an image\n")
    _assert_image_error(tmp_path / "notes.jpg", "not an image")


def test_error_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_image_error(tmp_path / "empty.png", "empty")


def test_error_directory(tmp_path):
    (tmp_path / "dir.jpg").mkdir()
    _assert_image_error(tmp_path / "dir.jpg", "folder")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_error_truncated(tmp_path, fmt):
    from PIL import ImageFile

    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    src = tmp_path / f"full.{fmt.lower()}"
    Image.fromarray(rand_img(64, 48).__mul__(255).astype(np.uint8)).save(src, fmt)
    data = src.read_bytes()
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[: len(data) // 2])
    _assert_image_error(cut, "truncated")


# ----------------------------------------------------------------------------- arrays


def test_image_from_array_uint8_matches_load(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    rgb[0, 0, 0] = 1
    Image.fromarray(rgb).save(tmp_path / "x.png")
    img = image_from_array(rgb)
    assert img.dtype == np.float32 and img.flags.c_contiguous
    np.testing.assert_array_equal(img, load_image(tmp_path / "x.png"))
    assert img[rgb == 1][0] == f32(1 / 255.0)


def test_image_from_array_float():
    a = np.random.default_rng(2).random((4, 5, 3))  # float64
    out = image_from_array(a)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, a.astype(np.float32))
    flipped = image_from_array(a.astype(np.float32)[:, ::-1])  # non-contiguous view
    assert flipped.flags.c_contiguous
    np.testing.assert_array_equal(flipped, a[:, ::-1].astype(np.float32))


def test_image_from_array_grey_and_alpha():
    g = np.array([[0, 255]], np.uint8)
    np.testing.assert_array_equal(image_from_array(g), [[[0, 0, 0], [1, 1, 1]]])
    rgba = np.zeros((1, 1, 4), np.uint8)
    rgba[..., 3] = 255
    np.testing.assert_array_equal(image_from_array(rgba), np.zeros((1, 1, 3)))


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 3), np.int32), "dtype"),
        (np.full((4, 4, 3), 255.0), "0..1"),
        (np.full((4, 4, 3), np.nan), "0..1"),
    ],
)
def test_image_from_array_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        image_from_array(bad)


def test_uint8_frames_scale_exactly_like_darknet():
    """darknet stores (float)(byte / 255.) computed in double; every byte must agree."""
    from engine.image import image_from_array

    every_byte = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    expected = (np.arange(256) / 255.0).astype(np.float32).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(image_from_array(every_byte), expected)


# --------------------------------------------------------------------------- big photos


def _photo(path, w, h, fmt="JPEG"):
    """A smooth synthetic photo (gradients and a disc), saved as `fmt`."""
    from PIL import Image as PILImage

    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2
    rgb = np.stack([xx * 255 // w, yy * 255 // h, np.where(disc, 220, 40)], -1).astype(np.uint8)
    PILImage.fromarray(rgb).save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def test_a_big_jpeg_decodes_at_reduced_scale_and_keeps_what_is_needed(tmp_path):
    path = _photo(tmp_path / "big.jpg", 2000, 1600)
    whole = engine.load_image(path)
    reduced = engine.load_image(path, at_least=448)
    assert whole.shape == (1600, 2000, 3)
    assert reduced.shape == (800, 1000, 3)  # 1/2: 1/4 would leave 400 < 448 pixels
    assert reduced.dtype == np.float32 and reduced.flags.c_contiguous
    halved = whole.reshape(800, 2, 1000, 2, 3).mean(axis=(1, 3))
    assert np.abs(reduced - halved).mean() < 0.01  # the same picture, at half the size


def test_photos_below_twice_the_need_and_other_formats_decode_whole(tmp_path):
    jpeg = _photo(tmp_path / "mid.jpg", 1200, 890)  # 890 < 2 x 448: exact, as darknet
    np.testing.assert_array_equal(engine.load_image(jpeg, at_least=448), engine.load_image(jpeg))
    png = _photo(tmp_path / "big.png", 2000, 1600, "PNG")
    assert engine.load_image(png, at_least=448).shape == (1600, 2000, 3)


def test_the_classifier_asks_for_twice_its_input(tmp_path, random_weights):
    net = engine.Network.load(CFG_DIR / "tiny.cfg", random_weights("tiny"))
    assert engine.Classifier(net).decode_size == 448
    assert engine.Classifier(net, tta="scales").decode_size == 512


def test_min_rounds_to_the_multiple_a_resnet_needs(random_weights):
    """ResNet 18's shortcuts add maps that must halve evenly (darknet asserts it): darknet's
    min size for a 4:3 photo, 341x256, would stop at its first downsampling shortcut; rounded to
    a multiple of 32 (352x256) it runs, aspect within half a cell."""
    spec = engine.parse_network(CFG_DIR / "resnet18.cfg")
    assert spec.size_multiple == 32 and engine.parse_network(CFG_DIR / "tiny.cfg").size_multiple == 1
    with pytest.raises(EngineError, match=r"\[shortcut\]: cannot add layer"):
        spec.shapes_for(256, 341)
    assert eimg.fitted_size(768, 576, "min", 256, 256, True, 32) == (352, 256)
    assert eimg.fitted_size(576, 768, "min", 256, 256, True) == (256, 341)  # no multiple: darknet's
    net = engine.Network.load(CFG_DIR / "resnet18.cfg", random_weights("resnet18"))
    photo = np.random.default_rng(2).random((576, 768, 3), dtype=np.float32)
    prediction = engine.Classifier(net).classify(photo)
    assert prediction.input_shape == (256, 352) and prediction.probs.shape == (1000,)
