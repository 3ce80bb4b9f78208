"""The published Tiny Darknet weights on real photos: the page's numbers, all three resize
modes against OpenCV, the registry's hash pin, and `tdn valid` on a labelled folder."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

import engine
from engine import registry
from support import CFG_DIR, shared_path
from tdn_cli.main import main

TINY = CFG_DIR / "tiny.cfg"
# darknet's `classify cfg/tiny.cfg tiny.weights data/dog.jpg`, as printed on the Tiny Darknet page
PAGE = [
    ("malamute", 0.167168),
    ("Eskimo dog", 0.065828),
    ("dogsled", 0.063020),
    ("standard schnauzer", 0.051153),
    ("Siberian husky", 0.037506),
]


def test_dog_jpg_gives_the_pages_five_classes_in_order(tiny):
    net, names = tiny
    prediction = engine.Classifier(net, names).classify(engine.load_image(shared_path("darknet", "data", "dog.jpg")))
    assert prediction.input_shape == (224, 298)  # darknet's resize_min of 768x576
    top = prediction.top(5)
    assert [n for _, n, _ in top] == [n for n, _ in PAGE]
    for (_, _, ours), (_, page) in zip(top, PAGE):
        assert abs(ours - page) < 0.005  # JPEG decoders differ (stb vs libjpeg)


@pytest.mark.parametrize("mode, shape", [("min", (224, 298)), ("letterbox", (224, 224)), ("stretch", (224, 224))])
def test_each_resize_mode_matches_opencv_on_the_same_pixels(tiny, tiny_weights, mode, shape):
    net, _ = tiny
    classifier = engine.Classifier(net, resize=mode)
    x = classifier.preprocess(engine.load_image(shared_path("darknet", "data", "dog.png")))
    assert x.shape[:2] == shape
    ours = net.predict(x)
    cv = cv2.dnn.readNetFromDarknet(str(TINY), str(tiny_weights))
    cv.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
    theirs = cv.forward().reshape(-1)
    assert np.abs(ours - theirs).max() < 1e-5
    assert list(np.argsort(-ours)[:5]) == list(np.argsort(-theirs)[:5])


def test_modes_disagree_as_darknet_versions_do(tiny):
    """Today's darknet letterboxes: malamute ~14.5%, Newfoundland second (the page's numbers
    are from the older shorter-side resize)."""
    net, names = tiny
    image = engine.load_image(shared_path("darknet", "data", "dog.jpg"))
    top = engine.Classifier(net, names, resize="letterbox").classify(image).top(2)
    assert [n for _, n, _ in top] == ["malamute", "Newfoundland"]
    assert abs(top[0][2] - 0.1451) < 0.005


def test_registry_rejects_a_tampered_tiny_weights(tmp_path, monkeypatch, tiny_weights):
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    dest = registry.weights_path("tiny")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny_weights, dest)
    assert registry.resolve("tiny") == (registry.cfg_path("tiny"), dest)
    data = bytearray(dest.read_bytes())
    data[1000] ^= 0x01
    dest.write_bytes(bytes(data))
    with pytest.raises(registry.RegistryError, match="is not the published tiny.weights"):
        registry.resolve("tiny")


@pytest.fixture
def labelled_folder(tmp_path):
    """A few shared photos under ImageNet habits: WordNet-id file names, WordNet-id folders,
    class-name folders; plus a corrupt image and an unlabelled one."""
    data = shared_path("darknet", "data")
    wnids = shared_path("darknet", "data", "imagenet.labels.list").read_text().splitlines()[:1000]
    names = shared_path("darknet", "data", "imagenet.shortnames.list").read_text().splitlines()[:1000]
    root = tmp_path / "photos"
    (root / "mixed").mkdir(parents=True)
    malamute, eagle = wnids[names.index("malamute")], wnids[names.index("bald eagle")]
    shutil.copy(data / "dog.png", root / "mixed" / f"{malamute}_0001.png")
    (root / eagle).mkdir()
    shutil.copy(data / "eagle.png", root / eagle / "eagle.png")
    (root / "sorrel").mkdir()
    shutil.copy(data / "horses.png", root / "sorrel" / "horses.png")
    (root / "tench").mkdir()
    shutil.copy(data / "giraffe.png", root / "tench" / "giraffe.png")  # wrongly labelled on purpose
    (root / "mixed" / f"{malamute}_broken.jpg").write_bytes((data / "dog.jpg").read_bytes()[:2000])
    shutil.copy(data / "person.png", root / "mixed" / "holiday.png")  # no label
    return root, names.index("tench")


def test_tdn_valid_counts_skips_csv_and_json(
    capsys, tmp_path, monkeypatch, labelled_folder, tiny_weights, imagenet_names
):
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "cache"))
    root, tench = labelled_folder
    labels = shared_path("darknet", "data", "imagenet.labels.list")
    csv_path = tmp_path / "rows.csv"
    code = main(
        [
            "valid",
            str(TINY),
            str(tiny_weights),
            str(root),
            "--names",
            str(imagenet_names),
            "--labels",
            str(labels),
            "--csv",
            str(csv_path),
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out)
    assert summary["images"] == 4 and summary["skipped"] == 2
    assert set(summary) == {"images", "top1", "top5", "skipped", "seconds"}
    assert "_broken.jpg: cannot read image" in err and "holiday.png: no label" in err
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 4
    by_file = {r["file"].rsplit("/", 1)[1]: r for r in rows}
    giraffe = by_file["giraffe.png"]
    assert giraffe["label"] == str(tench) and giraffe["correct1"] == "0"
    # the classifier's own answers decide what counts as correct
    net = engine.Network.load(TINY, tiny_weights)
    clf = engine.Classifier(net)
    expected1 = sum(
        int(clf.classify(engine.load_image(root / r["file"].split(str(root) + "/")[1])).top(1)[0][0]) == int(r["label"])
        for r in rows
    )
    assert summary["top1"] == pytest.approx(expected1 / 4)
    assert summary["top5"] >= summary["top1"]
    assert by_file["eagle.png"]["correct5"] == "1"  # bald eagle is 2nd after ruddy turnstone


def test_tdn_valid_limit_and_text_summary(capsys, tmp_path, monkeypatch, labelled_folder, tiny_weights, imagenet_names):
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "cache"))
    root, _ = labelled_folder
    code = main(
        [
            "valid",
            str(TINY),
            str(tiny_weights),
            str(root),
            "--names",
            str(imagenet_names),
            "--limit",
            "2",
            "--resize",
            "letterbox",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    # without WordNet ids only the class-name folders are labelled: 2 images, 4 skipped
    assert "images: 2, top-1:" in out and "skipped: 4" in out
