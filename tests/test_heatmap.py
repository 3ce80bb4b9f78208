"""Heatmaps (class activation maps): each class's map over the picture averages to its score, the
maps cover the photo (letterbox bands cropped), the peak lies on the object on darknet's sample
photos, and `tdn classify --cam` writes them whole, or says in one line why it cannot."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.heatmap import HeatmapSource, crop_to_box, heatmap_source, overlay
from reference import reference_forward
from support import CFG_DIR, shared_path
from tdn_cli.main import main

# The networks whose classifier is a 1x1 conv next to a global average pool (either order)
MAPPED = ["tiny", "darknet", "darknet19", "extraction", "resnet18"]

# Boxes around the objects on darknet's sample photos (x0, y0, x1, y1 in the photo's pixels), by eye
DOG_JPG_DOG = (110, 200, 330, 545)
PERSON_JPG_DOG = (55, 250, 215, 350)
EAGLE_JPG_EAGLE = (120, 70, 610, 450)
DOG_BREEDS = ("n02085620", "n02113978")  # the WordNet ids of ImageNet's 118 dog breeds run between these


def logits(spec, weights, x) -> np.ndarray:
    """The reference's input to the softmax (the class scores) for one input."""
    return reference_forward(spec, weights, x, stop=len(spec.layers) - 2)


@pytest.mark.parametrize("name", MAPPED)
def test_each_maps_mean_is_its_class_score(name, random_weights):
    """On a 4:3 photo-shaped input in darknet's min mode (nothing cropped), every class's map
    averages to the score the reference computes, within 1e-5 of the scores' scale."""
    spec = engine.parse_network(CFG_DIR / f"{name}.cfg")
    weights = random_weights(name)
    net = engine.Network.load(CFG_DIR / f"{name}.cfg", weights)
    # the network's height by 64 more across: ResNet 18's shortcuts need sizes that halve evenly
    # (darknet asserts it too), and nothing is resized
    image = np.random.default_rng(3).random((spec.height, spec.height + 64, 3), dtype=np.float32)
    classifier = engine.Classifier(net, resize="min")
    prediction = classifier.classify(image, heatmap=True)
    x = classifier.preprocess(image)
    mapped = spec.shapes_for(x.shape[0], x.shape[1])[classifier.heatmap_source().layer]
    assert prediction.heatmap.shape == mapped[:2] and mapped[0] > 1 and mapped[1] > mapped[0]
    expected = logits(spec, weights, x)
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(prediction.heatmap.maps.mean(axis=(0, 1)) - expected).max() < 1e-5 * scale
    # and the same pass gave the usual answer
    np.testing.assert_allclose(prediction.probs, net.predict(x), atol=1e-6)


def test_tinys_map_is_its_classifier_layer_as_the_reference_computes_it(tiny_weights):
    spec = engine.parse_network(CFG_DIR / "tiny.cfg")
    net = engine.Network(spec, engine.read_weights(tiny_weights, spec)[1])
    image = engine.load_image(shared_path("darknet", "data", "dog.png"))
    classifier = engine.Classifier(net)
    maps = classifier.classify(image, heatmap=True).heatmap.maps
    assert classifier.heatmap_source() == HeatmapSource(layer=19)
    ref = reference_forward(spec, tiny_weights, classifier.preprocess(image), stop=19)
    ref = ref.reshape(1000, *maps.shape[:2]).transpose(1, 2, 0)
    assert np.abs(maps - ref).max() < 1e-4 * max(1.0, float(np.abs(ref).max()))


def test_pool_first_networks_map_through_their_classifier():
    spec = engine.parse_network(CFG_DIR / "darknet.cfg")
    assert [spec.layers[i].kind for i in (-3, -2)] == ["avgpool", "convolutional"]
    n = len(spec.layers)
    assert heatmap_source(spec) == HeatmapSource(layer=n - 4, conv=n - 2)


@pytest.mark.parametrize("name, layer", [("alexnet", "[connected]")])
def test_a_connected_classifier_has_no_heatmap_and_says_why(name, layer, random_weights):
    net = engine.Network.load(CFG_DIR / f"{name}.cfg", random_weights(name))
    classifier = engine.Classifier(net)
    with pytest.raises(engine.NoHeatmap) as caught:
        classifier.classify(np.zeros((227, 227, 3), np.float32), heatmap=True)
    message = str(caught.value)
    assert "\n" not in message and layer in message and f"{name}.cfg:" in message
    assert classifier.classify(np.zeros((227, 227, 3), np.float32)).probs.shape == (1000,)


def test_a_leaky_classifier_after_the_pool_has_no_heatmap(tmp_path):
    cfg = (CFG_DIR / "darknet.cfg").read_text()
    head, _, tail = cfg.rpartition("activation=linear")
    path = tmp_path / "leaky-head.cfg"
    path.write_text(head + "activation=leaky" + tail)
    with pytest.raises(engine.NoHeatmap, match=r"leaky-head\.cfg:\d+: layer \d+ \[convolutional\].*leaky"):
        heatmap_source(engine.parse_network(path))


def test_cropping_keeps_the_cells_over_the_image():
    """A map that is a linear function of position, cropped to a box, is that function sampled at
    the cropped cells' centres: bilinear sampling is exact on it."""
    rows, cols, w, h = 7, 7, 224, 224
    yy, xx = np.meshgrid(np.arange(rows) + 0.5, np.arange(cols) + 0.5, indexing="ij")
    maps = np.stack([yy, xx], -1).astype(np.float32)  # cell centres, in cells
    assert crop_to_box(maps, (0, 0, w, h), w, h) is maps
    box = (0, 32, 224, 192)  # a 224x160 photo letterboxed
    cropped = crop_to_box(maps, box, w, h)
    assert cropped.shape == (5, 7, 2)
    y0, y1 = box[1] * rows / h, box[3] * rows / h
    np.testing.assert_allclose(cropped[:, 0, 0], y0 + (np.arange(5) + 0.5) * (y1 - y0) / 5, atol=1e-6)
    np.testing.assert_allclose(cropped[0, :, 1], np.arange(7) + 0.5, atol=1e-6)


def _peak(values: np.ndarray, photo_shape) -> tuple[float, float]:
    """The hottest cell's centre in the photo's pixels (x, y)."""
    i, j = np.unravel_index(int(values.argmax()), values.shape)
    h, w = photo_shape[:2]
    return (j + 0.5) * w / values.shape[1], (i + 0.5) * h / values.shape[0]


def _inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@pytest.mark.parametrize("resize", ["min", "letterbox"])
def test_the_peak_lies_on_the_object(tiny, resize):
    """dog.jpg's top class (malamute) on the dog; person.jpg's dog breeds together on the dog (not
    on the person or the white horse, which a white-dog breed alone also likes); bald eagle on the
    eagle."""
    net, names = tiny
    wnids = engine.load_names(shared_path("darknet", "data", "imagenet.labels.list"), net.classes)
    dogs = [k for k, wnid in enumerate(wnids) if DOG_BREEDS[0] <= wnid <= DOG_BREEDS[1]]
    assert len(dogs) == 118
    classifier = engine.Classifier(net, names, resize=resize)
    for photo, box, classes in [
        ("dog.jpg", DOG_JPG_DOG, lambda p: [p.top(1)[0][0]]),
        ("person.jpg", PERSON_JPG_DOG, lambda p: dogs),
        ("eagle.jpg", EAGLE_JPG_EAGLE, lambda p: [names.index("bald eagle")]),
    ]:
        image = engine.load_image(shared_path("darknet", "data", photo))
        prediction = classifier.classify(image, heatmap=True)
        peak = _peak(prediction.heatmap.maps[:, :, classes(prediction)].sum(-1), image.shape)
        assert _inside(peak, box), (photo, resize, peak)


def test_letterbox_maps_cover_the_photo_alone(tiny):
    """dog.jpg (768x576) letterboxed into 224x224 fills 224x168: 14 columns, 10.5 rows of cells."""
    net, _ = tiny
    image = engine.load_image(shared_path("darknet", "data", "dog.jpg"))
    heatmap = engine.Classifier(net, resize="letterbox").classify(image, heatmap=True).heatmap
    assert heatmap.shape == (10, 14)


def test_overlay_is_the_photos_size_and_hot_where_the_map_is():
    photo = np.full((60, 80, 3), 128, np.uint8)
    values = np.zeros((3, 4), np.float32)
    values[2, 0] = 1.0  # bottom left (the label is top left)
    picture = overlay(photo, values, "x")
    assert picture.shape == (60, 80, 3) and picture.dtype == np.uint8
    hot, cold = picture[52, 8].astype(int), picture[5, 75].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # red over the hot cell, blue far from it


# --------------------------------------------------------------------------- tdn classify --cam


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cam_writes_the_map_and_the_picture(capsys, tmp_path, tiny_weights, imagenet_names):
    dog = shared_path("darknet", "data", "dog.jpg")
    out_dir = tmp_path / "cams"
    code, out, err = run_cli(
        capsys, "classify", CFG_DIR / "tiny.cfg", tiny_weights, dog, dog, "--names", imagenet_names, "--cam", out_dir
    )
    assert code == 0, err
    assert "heatmap of malamute" in out
    values = np.load(out_dir / "dog.cam.npy")
    assert values.dtype == np.float32 and values.shape == (14, 19)  # 224x298 input, stride 16
    from PIL import Image

    with Image.open(out_dir / "dog.cam.png") as picture:
        assert picture.size == (768, 576)
    assert sorted(p.name for p in out_dir.iterdir()) == ["dog-2.cam.npy", "dog-2.cam.png", "dog.cam.npy", "dog.cam.png"]
    np.testing.assert_array_equal(np.load(out_dir / "dog-2.cam.npy"), values)


def test_cam_class_by_name_or_index(capsys, tmp_path, tiny_weights, imagenet_names):
    dog = shared_path("darknet", "data", "dog.jpg")
    index = engine.load_names(imagenet_names, 1000).index("bicycle-built-for-two")
    maps = {}
    for cam_class in ("Bicycle-built-for-two", str(index)):
        out_dir = tmp_path / cam_class
        code, out, err = run_cli(
            capsys,
            "classify",
            CFG_DIR / "tiny.cfg",
            tiny_weights,
            dog,
            "--json",
            "--names",
            imagenet_names,
            "--cam",
            out_dir,
            "--cam-class",
            cam_class,
        )
        assert code == 0, err
        assert f'"class": {index}' in out
        maps[cam_class] = np.load(out_dir / "dog.cam.npy")
    np.testing.assert_array_equal(*maps.values())


@pytest.mark.parametrize(
    "argv_tail, message",
    [
        (["--cam-class", "unicorn"], "--cam-class 'unicorn': no class of that name"),
        (["--cam-class", "1000"], "--cam-class 1000: the network has classes 0-999"),
        (["--cam-class", "crane"], "--cam-class 'crane' is classes {cranes}: give the index"),
    ],
)
def test_a_bad_cam_class_is_one_line_before_any_work(
    capsys, tmp_path, tiny_weights, imagenet_names, argv_tail, message
):
    out_dir = tmp_path / "cams"
    code, out, err = run_cli(
        capsys,
        "classify",
        CFG_DIR / "tiny.cfg",
        tiny_weights,
        shared_path("darknet", "data", "dog.jpg"),
        "--names",
        imagenet_names,
        "--cam",
        out_dir,
        *argv_tail,
    )
    cranes = [i for i, name in enumerate(engine.load_names(imagenet_names, 1000)) if name == "crane"]
    assert code != 0 and out == "" and len(cranes) == 2
    assert err.strip() == "tdn: error: " + message.format(cranes=", ".join(map(str, cranes)))
    assert not out_dir.exists()


def test_cam_on_a_connected_classifier_is_one_line_and_writes_nothing(capsys, tmp_path, random_weights):
    out_dir = tmp_path / "cams"
    code, out, err = run_cli(
        capsys,
        "classify",
        CFG_DIR / "alexnet.cfg",
        random_weights("alexnet"),
        shared_path("darknet", "data", "dog.jpg"),
        "--cam",
        out_dir,
    )
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and "[connected]" in err and "no heatmap" in err
    assert not out_dir.exists()


def test_cam_class_without_cam_is_an_error(capsys, tiny_weights):
    code, _, err = run_cli(
        capsys,
        "classify",
        CFG_DIR / "tiny.cfg",
        tiny_weights,
        shared_path("darknet", "data", "dog.jpg"),
        "--cam-class",
        "3",
    )
    assert code != 0 and "give --cam DIR too" in err
