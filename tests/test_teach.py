"""Teaching new classes (engine/teach/, `tdn teach`): accuracy on a learnable dataset, the export
against our engine and OpenCV, the head commuting with average pooling, and every bad input."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance

import engine
from engine import teach
from engine.summary import summarize
from support import CFG_DIR, shared_path
from tdn_cli.main import main

TOLERANCE = 1e-5
PHOTOS = ("dog", "eagle", "giraffe")
PER_CLASS = 20
SIZES = ((200, 160), (160, 200))        # (w, h): two input shapes, so batches fill up


def make_class_folder(folder, photo, count, seed):
    """Crops (50-90% of each side), mirror images and brightness changes of one shared photo."""
    rng = np.random.default_rng(seed)
    source = Image.open(shared_path("darknet", "data", f"{photo}.png")).convert("RGB")
    folder.mkdir(parents=True)
    for i in range(count):
        w, h = SIZES[i % 2]
        scale = rng.uniform(0.5, 0.9)
        cw = int(source.width * scale)
        ch = min(source.height, int(cw * h / w))
        x0, y0 = rng.integers(0, source.width - cw + 1), rng.integers(0, source.height - ch + 1)
        image = source.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
        image.save(folder / f"{photo}_{i:02d}.jpg", quality=92)


@pytest.fixture(scope="module")
def backbone(tiny_weights):
    return teach.Backbone.load(CFG_DIR / "tiny.cfg", tiny_weights)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("animals")
    for seed, photo in enumerate(PHOTOS):
        make_class_folder(root / photo, photo, PER_CLASS, seed)
    return root


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """Plays TDN_CACHE_DIR: the CLI's feature cache is its features/ folder."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def features(backbone, dataset_dir, cache_root):
    cache = teach.FeatureCache(cache_root / "features")
    return teach.extract_features(backbone, teach.scan_dataset(dataset_dir), augment=(), cache=cache)


@pytest.fixture(scope="module")
def result(features):
    return teach.train_head(features, val_fraction=0.25, seed=0)


@pytest.fixture(scope="module")
def exported(result, tmp_path_factory):
    return teach.export(result.model, tmp_path_factory.mktemp("export"), "animals")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- learning

def test_held_out_accuracy_on_a_learnable_dataset(result, features):
    assert features.computed + features.cached == len(PHOTOS) * PER_CLASS and not features.skipped
    assert result.val_images == len(PHOTOS) * round(0.25 * PER_CLASS)
    assert result.val.accuracy >= 0.95
    assert result.val.confusion.shape == (3, 3) and result.val.count == result.val_images
    assert np.all(result.val.per_class >= 0.8)
    assert result.train.accuracy == 1.0
    losses = [s.loss for s in result.history]
    assert losses[-1] < losses[0] and all(s.val_accuracy is not None for s in result.history)


def test_training_is_deterministic_and_reports_every_epoch(features, result):
    seen = []
    again = teach.train_head(features, val_fraction=0.25, seed=0, on_epoch=seen.append)
    np.testing.assert_array_equal(again.model.weights, result.model.weights)
    np.testing.assert_array_equal(again.model.bias, result.model.bias)
    assert [s.epoch for s in seen] == list(range(1, len(seen) + 1)) and tuple(seen) == again.history
    other = teach.split_images(features.image_labels, 0.25, seed=1)[1]
    assert not np.array_equal(other, teach.split_images(features.image_labels, 0.25, seed=0)[1])
    short = teach.train_head(features, val_fraction=0.25, epochs=2)
    assert len(short.history) == 2


def test_split_is_stratified_and_keeps_a_training_image_per_class():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1)
    train, val = teach.split_images(labels, 0.2, seed=4)
    assert sorted(np.concatenate([train, val])) == list(range(14))
    assert [int(np.sum(labels[val] == k)) for k in range(3)] == [2, 1, 0]
    assert teach.split_images(labels, 0.0, seed=4)[1].size == 0


def test_augmentations_are_training_rows_only(backbone, tmp_path):
    for photo in ("dog", "eagle"):
        make_class_folder(tmp_path / photo, photo, 3, seed=9)
    feats = teach.extract_features(backbone, teach.scan_dataset(tmp_path), augment=("flip", "crop-br"))
    assert feats.variants == ("original", "flip", "crop-br") and feats.vectors.shape == (18, 128)
    assert not np.allclose(feats.vectors[0], feats.vectors[1])
    res = teach.train_head(feats, val_fraction=0.34, seed=0)
    assert res.val_images == 2 and res.val.count == 2                     # originals only
    assert res.train.count == 3 * res.train_images
    image = engine.load_image(feats.paths[0])
    flipped = backbone.pooled(backbone.prepare(teach.augment_image(image, "flip"))[None])[0]
    np.testing.assert_allclose(flipped, feats.vectors[1], rtol=1e-4, atol=1e-4)   # batch of 1 vs 6


def test_a_resize_variant_is_the_image_prepared_by_that_mode(backbone, tmp_path):
    """What the GUI adds when its webcam frames are prepared by another mode than its images."""
    make_class_folder(tmp_path / "dog", "dog", 2, seed=3)
    make_class_folder(tmp_path / "eagle", "eagle", 2, seed=4)
    feats = teach.extract_features(backbone, teach.scan_dataset(tmp_path), augment=("resize-letterbox",))
    assert backbone.resize == "min" and feats.variants == ("original", "resize-letterbox")
    image = engine.load_image(feats.paths[0])
    assert image.shape[0] != image.shape[1]             # so that min and letterbox differ
    boxed = backbone.prepare(image, "letterbox")
    assert boxed.shape[:2] == (224, 224) and backbone.prepare(image).shape[:2] != (224, 224)
    np.testing.assert_allclose(feats.vectors[1], backbone.pooled(boxed[None])[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feats.vectors[0], backbone.pooled(backbone.prepare(image)[None])[0],
                               rtol=1e-4, atol=1e-4)
    assert not np.allclose(feats.vectors[0], feats.vectors[1], rtol=1e-2, atol=1e-2)
    with pytest.raises(teach.TeachError, match="unknown augmentation 'resize-crop'"):
        teach.extract_features(backbone, teach.scan_dataset(tmp_path), augment=("resize-crop",))


def test_cancel_stops_extraction_and_training(backbone, dataset_dir, features):
    stop = threading.Event()
    stop.set()
    with pytest.raises(teach.Cancelled):
        teach.extract_features(backbone, teach.scan_dataset(dataset_dir), augment=(), cancel=stop)
    epochs = []
    with pytest.raises(teach.Cancelled):
        teach.train_head(features, on_epoch=epochs.append, cancel=lambda: len(epochs) >= 3)
    assert len(epochs) == 3


def test_default_layer_is_the_last_conv_before_the_classifier():
    tiny = engine.parse_network(CFG_DIR / "tiny.cfg")
    assert teach.default_layer(tiny) == 18 and tiny.shapes[18][2] == 128
    darknet = engine.parse_network(CFG_DIR / "darknet.cfg")
    layer = teach.default_layer(darknet)
    assert darknet.layers[layer].kind == "convolutional" and darknet.shapes[layer][2] == 1024
    assert darknet.layers[layer + 1].kind == "avgpool"


# --------------------------------------------------------------------------- export

def test_export_loads_in_our_engine_and_opencv_and_agrees_with_the_app(result, exported, backbone):
    net = engine.Network.load(exported.cfg, exported.weights)
    assert (net.header.major, net.header.minor) == (0, 2)
    assert net.header.seen == backbone.header.seen
    assert exported.names.read_text().splitlines() == list(PHOTOS)
    opencv = cv2.dnn.readNetFromDarknet(str(exported.cfg), str(exported.weights))
    for photo in ("eagle", "giraffe", "scream"):          # 773x512, 500x500, 352x448
        image = engine.load_image(shared_path("darknet", "data", f"{photo}.png"))
        app = result.model.classify(image)
        x = backbone.prepare(image)
        assert app.input_shape == x.shape[:2]
        ours = net.predict(x)
        opencv.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        theirs = opencv.forward().reshape(-1)
        assert np.abs(ours - app.probs).max() < TOLERANCE
        assert np.abs(theirs - app.probs).max() < TOLERANCE
    assert result.model.classify(engine.load_image(shared_path("darknet", "data", "eagle.png"))).top(1)[0][1] == "eagle"


def test_exported_layer_table_is_the_backbones_up_to_the_layer(exported, backbone):
    base = summarize(engine.parse_network(CFG_DIR / "tiny.cfg")).rows
    ours = summarize(engine.parse_network(exported.cfg)).rows
    layer = backbone.layer
    assert ours[:layer + 1] == base[:layer + 1]
    assert [(r.kind, r.filters, r.size) for r in ours[layer + 1:]] == [
        ("conv", "3", "1 x 1 / 1"), ("avg", "", ""), ("softmax", "", "")]
    assert ours[-1].output == (1, 1, 3)
    base_sections = engine.cfg.read_sections(CFG_DIR / "tiny.cfg")[:layer + 2]
    our_sections = engine.cfg.read_sections(exported.cfg)[:layer + 2]
    assert [(s.kind, {k: v for k, (v, _) in s.options.items()}) for s in our_sections] == \
           [(s.kind, {k: v for k, (v, _) in s.options.items()}) for s in base_sections]


def test_head_on_pooled_features_equals_the_full_exported_network(result, features, exported, backbone):
    """A linear 1x1 conv commutes with global average pooling: the trained head on each image's
    cached, spatially averaged features is the exported network run on the image."""
    net = engine.Network.load(exported.cfg, exported.weights)
    rows = np.linspace(0, len(features.paths) - 1, 6).astype(int)
    from_features = result.model.probabilities(features.vectors[rows])
    for row, expected in zip(rows, from_features):
        x = backbone.prepare(engine.load_image(features.paths[row]))
        assert np.abs(net.predict(x) - expected).max() < TOLERANCE
    image = np.random.default_rng(5).random((97, 131, 3), dtype=np.float32)   # any input size
    assert np.abs(net.predict(image) - result.model.probabilities(backbone.pooled(image[None]))[0]).max() < TOLERANCE
    in_memory = result.model.classifier("animals")
    assert in_memory.names == tuple(PHOTOS)
    np.testing.assert_allclose(in_memory.net.predict(image), net.predict(image), atol=1e-7)


# --------------------------------------------------------------------------- the command

def test_tdn_teach_then_tdn_classify(capsys, monkeypatch, dataset_dir, cache_root, features, tiny_weights,
                                     tmp_path):
    monkeypatch.setenv("TDN_CACHE_DIR", str(cache_root))
    out = tmp_path / "models"
    code, text, err = run(capsys, "teach", dataset_dir, "--out", out, "--name", "pets", "--base", "tiny",
                          "--weights", tiny_weights, "--val", "0.25", "--augment", "none", "--epochs", "50")
    assert code == 0, err
    assert f"(0 computed, {len(PHOTOS) * PER_CLASS} cached)" in text       # the cache: instant retraining
    assert "epoch    1: loss " in text and "val accuracy" in text
    accuracy = float(text.split("validation accuracy: ")[1].split("%")[0])
    assert accuracy >= 95
    for k, photo in enumerate(PHOTOS):
        assert any(line.split()[:2] == [str(k), photo] for line in text.splitlines())
    assert "time: feature extraction " in text and ", training " in text
    assert sorted(p.name for p in out.iterdir()) == ["pets.cfg", "pets.names", "pets.weights"]
    code, text, err = run(capsys, "classify", out / "pets.cfg", out / "pets.weights",
                          shared_path("darknet", "data", "giraffe.jpg"), "--names", out / "pets.names")
    assert code == 0, err
    assert text.splitlines()[1].endswith(": giraffe")


def test_unreadable_images_are_skipped_and_counted(capsys, monkeypatch, tmp_path, tiny_weights):
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    for photo in ("dog", "eagle"):
        make_class_folder(data / photo, photo, 2, seed=3)
    (data / "dog" / "broken.jpg").write_text("not a picture")
    (data / "eagle" / "notes.txt").write_text("eagles")
    code, text, err = run(capsys, "teach", data, "--out", tmp_path / "out", "--weights", tiny_weights,
                          "--val", "0", "--augment", "none")
    assert code == 0, err
    assert f"skipped cannot read image {data / 'dog' / 'broken.jpg'}: not an image file" in text
    assert "4 images x 1 (original)" in text and "2 skipped" in text
    assert "no validation split" in text and "training accuracy: 100.0% (4/4)" in text


# --------------------------------------------------------------------------- bad input

def bad_folder(root, layout):
    """layout: {class: number of images (0: an empty folder)}, images from one shared photo."""
    root.mkdir()
    for name, count in layout.items():
        if count:
            make_class_folder(root / name, "dog", count, seed=1)
        else:
            (root / name).mkdir()
    return root


@pytest.mark.parametrize("layout, message", [
    ({"cats": 2, "dogs": 0}, "class 'dogs' has no images"),
    ({"cats": 2}, "has only one class ('cats'): teaching needs at least two"),
    ({}, "has no class subfolders"),
])
def test_bad_datasets_are_one_line_and_write_nothing(capsys, tmp_path, tiny_weights, layout, message):
    data = bad_folder(tmp_path / "data", layout)
    out = tmp_path / "out"
    code, _, err = run(capsys, "teach", data, "--out", out, "--weights", tiny_weights)
    assert code == 1 and err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_a_class_of_only_unreadable_files_is_an_error(capsys, tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "cache"))
    data = bad_folder(tmp_path / "data", {"cats": 1, "dogs": 0})
    (data / "dogs" / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "out"
    code, _, err = run(capsys, "teach", data, "--out", out, "--weights", tiny_weights)
    assert code == 1 and err.count("\n") == 1
    assert "class 'dogs' has no readable images (1 file, none could be read as an image)" in err
    assert not out.exists()


@pytest.mark.parametrize("layer, message", [
    ("99", "there is no layer 99: the network has layers 0-21"),
    ("-1", "there is no layer -1"),
    ("21", "layer 21 is a [softmax], which gives no features"),
])
def test_bad_layer_is_one_line(capsys, tmp_path, tiny_weights, layer, message):
    data = bad_folder(tmp_path / "data", {"a": 1, "b": 1})
    out = tmp_path / "out"
    code, _, err = run(capsys, "teach", data, "--out", out, "--weights", tiny_weights, "--layer", layer)
    assert code == 1 and err.count("\n") == 1 and message in err
    assert not out.exists()


def test_unwritable_output_is_one_line_before_any_work(capsys, tmp_path, tiny_weights):
    data = bad_folder(tmp_path / "data", {"a": 1, "b": 1})
    blocker = tmp_path / "file.txt"
    blocker.write_text("in the way")
    for out in (blocker, blocker / "models"):
        code, _, err = run(capsys, "teach", data, "--out", out, "--weights", tiny_weights)
        assert code == 1 and err.count("\n") == 1
        assert f"cannot write to {out}: {blocker} is a file, not a folder" in err
    assert blocker.read_text() == "in the way"
    code, _, err = run(capsys, "teach", data, "--out", tmp_path / "o", "--name", "../up", "--weights", tiny_weights)
    assert code == 1 and "cannot be a model name" in err


@pytest.mark.parametrize("argv, message", [
    (["--val", "1"], "--val must be at least 0 and below 1"),
    (["--epochs", "0"], "--epochs must be at least 1"),
])
def test_bad_numbers_are_one_line(capsys, tmp_path, argv, message):
    code, _, err = run(capsys, "teach", tmp_path, "--out", tmp_path / "out", *argv)
    assert code == 1 and err.count("\n") == 1 and message in err


def test_a_failing_export_leaves_nothing(result, tmp_path, monkeypatch):
    """Files appear only when all three are complete: a failure on the second removes the first
    and the folders the export made."""
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(teach.exporting, "write_weights", broken)
    out = tmp_path / "new" / "models"
    with pytest.raises(teach.TeachError, match="cannot write to .*No space left on device"):
        teach.export(result.model, out, "animals")
    assert list(tmp_path.iterdir()) == []


def test_an_export_replaces_a_previous_one_whole(result, tmp_path):
    (tmp_path / "animals.cfg").write_text("old")
    paths = teach.export(result.model, tmp_path, "animals")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animals.cfg", "animals.names", "animals.weights"]
    assert engine.parse_network(paths.cfg).layers[-1].kind == "softmax"
