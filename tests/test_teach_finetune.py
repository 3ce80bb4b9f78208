"""Fine-tuning in teach (engine/teach/finetune.py, tuned_part.py, `tdn teach`): which cuts a
network allows, the trained part as a network of its own (equal to the whole network from the
cut, before and after its weights change, batch norm folded and written back), the linear head
at 0 epochs, the choice, the exported whole network against our engine and OpenCV, cancel, and
the command line's options and refusals."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import engine
from engine import teach
from engine.spec import parse_network
from engine.teach.heads import Head
from engine.teach.tuned_part import Cut, cuts, part_params, part_spec, unfold
from engine.weights import random_params
from cfg_builder import AVGPOOL, conv, net, route, shortcut, softmax
from support import CFG_DIR, shared_path
from test_teach import make_class_folder
from tdn_cli.main import main

TOLERANCE = 1e-5

# 0 conv, 1 conv, 2 conv 1x1, 3 shortcut from 0, 4 conv, 5 conv 1x1, 6 route 5,4, 7 classifier
BRANCHY = (
    net(16, 16)
    + conv(8)
    + conv(8)
    + conv(8, size=1)
    + shortcut(-3)
    + conv(16)
    + conv(8, size=1)
    + route(-1, -2)
    + conv(10, size=1, bn=0, act="linear")
    + AVGPOOL
    + softmax()
)


@pytest.fixture(scope="module")
def branchy(tmp_path_factory):
    path = tmp_path_factory.mktemp("branchy") / "branchy.cfg"
    path.write_text(BRANCHY)
    spec = parse_network(path)
    return spec, random_params(spec, seed=4)


def test_cuts_are_the_depths_nothing_reads_across():
    tiny = parse_network(CFG_DIR / "tiny.cfg")
    route_head = Head((17, 19))
    found = cuts(tiny, route_head, (1, 2, 3, 4))
    assert [c.depth for c in found] == [2, 3, 4]  # depth 1 would cut after layer 17, which the head reads
    assert found[0] == Cut(17, (18, 19)) and found[2] == Cut(15, (16, 17, 18, 19))
    assert [c.trained for c in cuts(tiny, Head((18,)), (1, 2))] == [(18,), (17, 18)]
    assert cuts(tiny, Head((18,)), (0, 99)) == ()


def test_a_cut_is_refused_where_a_shortcut_reads_across_it(branchy):
    spec, _ = branchy
    found = {c.depth: c for c in cuts(spec, Head((4, 7)), range(1, 8))}
    # depth 1 cuts after 5 (the head reads 4); depth 4 cuts after 1 (the shortcut reads 0)
    assert sorted(found) == [2, 3, 5]
    assert found[5] == Cut(0, (1, 2, 4, 5, 7))


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_the_trained_part_is_the_network_from_its_cut(branchy, tmp_path, depth):
    """The part (its batch norm folded, references renumbered) on the cut layer's output gives
    the whole taught network's answer; after its weights change, unfold() writes them back so
    the whole network, batch norm and all, still gives the part's answer."""
    spec, params = branchy
    head = Head((4, 7))
    cut = {c.depth: c for c in cuts(spec, head, (depth,))}[depth]
    backbone = teach.Backbone(engine.Network(spec, params), layers=head.layers)
    rng = np.random.default_rng(depth)
    k, channels = 3, spec.shapes[4][2] + spec.shapes[7][2]
    weights, bias = rng.normal(0, 0.3, (k, channels)).astype(np.float32), rng.normal(0, 0.1, k).astype(np.float32)
    model = teach.TaughtModel(backbone, head, ("a", "b", "c"), weights, bias)
    x = rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    frozen = backbone.net.features_of(x, [cut.layer])[0]

    part = part_spec(spec, backbone.cfg_text, head, cut, k)
    trained = part_params(spec, params, head, cut, weights, bias)
    assert [layer.kind for layer in part.layers][:1] == ["maxpool"] and part.input_shape == spec.shapes[cut.layer]
    whole = model.network().forward(x).reshape(2, k)
    np.testing.assert_allclose(engine.Network(part, trained).forward(frozen).reshape(2, k), whole, atol=TOLERANCE)

    for arrays in trained:  # as if trained: every weight moved
        for name in arrays:
            arrays[name] += rng.normal(0, 0.3, arrays[name].shape).astype(np.float32)
    moved = engine.Network(part, trained).forward(frozen).reshape(2, k)
    assert np.abs(moved - whole).max() > 1e-2
    tuned = teach.Backbone(engine.Network(spec, unfold(spec, params, head, cut, trained)), layers=head.layers)
    new_weights, new_bias = trained[-3]["weights"].reshape(k, -1), trained[-3]["biases"]
    rebuilt = teach.TaughtModel(tuned, head, model.classes, new_weights, new_bias, tuned_layers=cut.trained)
    np.testing.assert_allclose(rebuilt.network().forward(x).reshape(2, k), moved, atol=TOLERANCE)
    untouched = [i for i in range(cut.layer + 1)]
    for i in untouched:
        for name, value in params[i].items():
            np.testing.assert_array_equal(tuned.params[i][name], value)


@pytest.mark.parametrize("adam", [True, False], ids=["adam", "sgd"])
def test_folds_sharing_one_trainer_train_as_if_each_had_its_own(branchy, adam):
    """The folds lend their weights and their update rule's state (Adam's moments, SGD's momentum)
    to one trainer in turn: interleaved epochs on it end bit for bit where each fold's own
    trainer ends."""
    from engine.teach.finetune import FrozenViews, _Run, _trainer

    spec, params = branchy
    head = Head((4, 7))
    cut = cuts(spec, head, (2,))[0]
    part = part_spec(spec, Path(spec.path).read_text(), head, cut, 3)
    rng = np.random.default_rng(0)
    frozen = FrozenViews(rng.normal(0, 1, (12, 2) + spec.shapes[cut.layer]).astype(np.float16), [None] * 12)
    labels = np.arange(12) % 3
    folds = [np.arange(0, 8), np.arange(4, 12)]
    channels = spec.shapes[4][2] + spec.shapes[7][2]
    heads = [(rng.normal(0, 0.1, (3, channels)).astype(np.float32), np.zeros(3, np.float32)) for _ in folds]

    def runs():
        return [
            _Run(part, part_params(spec, params, head, cut, w, b), frozen, labels, photos, seed)
            for seed, ((w, b), photos) in enumerate(zip(heads, folds))
        ]

    def quiet():
        return None

    shared_runs, own_runs = runs(), runs()
    shared = _trainer(part, shared_runs[0].params, False, 0, 0, adam)
    for _ in range(3):
        for run in shared_runs:
            run.epoch(shared, quiet, lambda n: None)
    for run in own_runs:
        own = _trainer(part, run.params, False, 0, 0, adam)
        for _ in range(3):
            run.epoch(own, quiet, lambda n: None)
    start = runs()[0].params
    assert np.abs(shared_runs[0].params[1]["weights"] - start[1]["weights"]).max() > 0  # it trained
    for a, b in zip(shared_runs, own_runs):
        assert a.t == b.t == 3  # 8 photos an epoch: one batch (topped up to 16) an epoch
        for mine, theirs in zip(a.params, b.params):
            for name in mine:
                np.testing.assert_array_equal(mine[name], theirs[name])


# --------------------------------------------------------------------------- on Tiny Darknet

PHOTOS = ("dog", "eagle", "giraffe")


@pytest.fixture(scope="module")
def linear(tiny_weights, tmp_path_factory):
    """The linear head on 3 classes x 8 photos, 3 folds."""
    root = tmp_path_factory.mktemp("three")
    for seed, photo in enumerate(PHOTOS):
        make_class_folder(root / photo, photo, 8, seed + 10)
    backbone = teach.Backbone.load(CFG_DIR / "tiny.cfg", tiny_weights)
    features = teach.extract_features(backbone, teach.scan_dataset(root), augment=("flip",))
    return root, teach.train_head(features, folds=3, seed=1)


@pytest.fixture(scope="module")
def forced(linear):
    _, result = linear
    steps = []
    tuned = teach.fine_tune(
        result, depths=(2,), epochs=2, views=2, seed=1, force=True, progress=lambda d, t: steps.append((d, t))
    )
    return tuned, steps


def test_zero_epochs_is_the_linear_head(forced, linear):
    """Before any step the part is the linear head fitted on the fold: its held-out log-loss is the
    linear head's cross-validated one, photo by photo."""
    _, result = linear
    tuned, _ = forced
    trial = tuned.fine_tuning.trials[0]
    labels = result.features.image_labels
    linear_loss = -np.log(result.cv_probabilities[np.arange(labels.size), labels]).mean()
    assert trial.curve[0] == pytest.approx(linear_loss, abs=1e-5)
    assert tuned.fine_tuning.linear_log_loss == pytest.approx(linear_loss, abs=1e-9)
    assert len(trial.curve) == 3 and trial.epochs in (1, 2)  # forced: at least one epoch


def test_forced_fine_tuning_exports_a_whole_network_that_classifies_like_the_model(forced, linear, tmp_path):
    _, result = linear
    tuned, steps = forced
    model = tuned.model
    assert model.tuned_layers == (18, 19) and tuned.fine_tuning.chosen.cut == Cut(17, (18, 19))
    assert "layers 18-19 fine-tuned" in tuned.how
    assert steps[-1][0] == steps[-1][1] and all(a[0] <= b[0] for a, b in zip(steps, steps[1:]))
    base = result.features.backbone.params
    for i in range(18):
        for name, value in base[i].items():
            np.testing.assert_array_equal(model.backbone.params[i][name], value)
    assert not np.array_equal(model.backbone.params[18]["weights"], base[18]["weights"])
    assert not np.array_equal(model.weights, result.model.weights)

    paths = teach.export(model, tmp_path, "tuned")
    assert "# Layers 18-19's weights were fine-tuned with the head." in paths.cfg.read_text()
    net = engine.Network.load(paths.cfg, paths.weights)
    opencv = cv2.dnn.readNetFromDarknet(str(paths.cfg), str(paths.weights))
    for photo in ("eagle", "scream"):  # 773x512, 352x448: the app's own input sizes
        image = engine.load_image(shared_path("darknet", "data", f"{photo}.png"))
        app = model.classify(image)
        x = model.backbone.preprocess(image)
        np.testing.assert_allclose(net.predict(x), app.probs, atol=TOLERANCE)
        opencv.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        np.testing.assert_allclose(opencv.forward().reshape(-1), app.probs, atol=TOLERANCE)
    # the cross-validated figures are the fine-tuned ones
    assert np.array_equal(tuned.cv_probabilities, tuned.fine_tuning.chosen.probabilities)
    assert tuned.cv.count == result.cv.count


def test_the_default_keeps_the_linear_head_unless_it_wins(linear):
    _, result = linear
    kept = teach.fine_tune(result, depths=(2,), epochs=1, views=1, seed=1)
    report = kept.fine_tuning
    trial = report.trials[0]
    if report.chosen is None:
        assert kept.model is result.model and kept.cv is result.cv
        assert "kept the linear head" in report.describe()
    else:  # it may win: then by more than its noise, and with no fewer photos right
        assert trial.gain > trial.gain_se and trial.accuracy >= report.linear_accuracy
        assert kept.model.tuned_layers == (18, 19)


def test_training_stops_once_the_held_out_loss_has_not_improved_for_a_while(linear):
    """Early stopping on the held-out folds: a depth trains until PATIENCE epochs have passed
    without a new lowest held-out loss (or EPOCHS), and its epochs are the lowest's."""
    from engine.teach.finetune import EPOCHS, PATIENCE

    _, result = linear
    report = teach.fine_tune(result, depths=(2, 4), views=1, seed=1).fine_tuning
    for trial in report.trials:
        ran = len(trial.curve) - 1
        lowest = int(np.argmin(trial.curve))
        assert ran == EPOCHS or ran - lowest == PATIENCE, trial.curve
        assert trial.epochs == lowest and trial.log_loss == pytest.approx(trial.curve[lowest])


def test_a_depth_that_costs_too_much_is_not_tried_and_the_report_says_so(linear, monkeypatch):
    from engine.teach import finetune

    _, result = linear
    monkeypatch.setattr(finetune, "MAX_PART_FLOPS", 1e8)  # between Tiny's depth 2 (0.08) and 4 (0.2 GFLOPs)
    report = teach.fine_tune(result, depths=(2, 4), epochs=1, views=1, seed=1).fine_tuning
    assert [t.cut.depth for t in report.trials] == [2]
    assert "layers 16-19 not tried (0.2 GFLOPs a photo a pass, over 0.1)" in report.describe()
    monkeypatch.setattr(finetune, "MAX_PART_FLOPS", 1e7)
    report = teach.fine_tune(result, depths=(2, 4), epochs=1, views=1, seed=1).fine_tuning
    assert report.trials == () and report.describe().startswith("fine-tuning: layers 18-19 not tried")
    forced = teach.fine_tune(result, depths=(4,), epochs=1, views=1, seed=1, force=True).fine_tuning
    assert [t.cut.depth for t in forced.trials] == [4]  # asked for by name: tried whatever it costs


def test_a_network_without_a_cut_keeps_the_linear_head(linear):
    _, result = linear
    kept = teach.fine_tune(result, depths=(99,))
    assert kept.model is result.model and kept.fine_tuning.trials == ()
    assert kept.fine_tuning.describe().startswith("fine-tuning: tiny has no layers before the head")


def test_cancel_stops_fine_tuning_within_a_step(linear):
    _, result = linear
    cancel, calls = threading.Event(), []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 30:
            cancel.set()

    with pytest.raises(teach.Cancelled):
        teach.fine_tune(result, depths=(2,), epochs=2, views=2, seed=1, progress=progress, cancel=cancel)
    assert len(calls) == 30


def test_tdn_teach_fine_tunes_by_default_and_says_what_it_kept(capsys, monkeypatch, linear, tiny_weights, tmp_path):
    root, _ = linear
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["teach", str(root), "--out", str(tmp_path / "m"), "--weights", str(tiny_weights),
                 "--folds", "3", "--verbose"])  # fmt: skip
    text, err = capsys.readouterr()
    assert code == 0, err
    line = next(line for line in text.splitlines() if line.startswith("fine-tuning: "))
    assert (
        "layers 18-19" in line and "layers 16-19" in line and ("kept the linear head" in line or "kept layers" in line)
    )
    assert "held-out log-loss after 0, 1, ... epochs:" in text
    assert "(fine-tuning " in text and (tmp_path / "m" / "taught.weights").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--fine-tune-depth", "0"], "--fine-tune-depth must be 1 or more (got 0)"),
        (["--fine-tune-depth", "2", "--no-fine-tune"], "--fine-tune-depth and --no-fine-tune ask for opposite"),
        (["--fine-tune-depth", "1", "--layer", "17,19"], "--fine-tune-depth 1: the head reads layer 17"),
    ],
)
def test_bad_fine_tuning_options_are_one_line(capsys, monkeypatch, linear, tiny_weights, tmp_path, argv, message):
    root, _ = linear
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "m"
    code = main(["teach", str(root), "--out", str(out), "--weights", str(tiny_weights), "--folds", "3", *argv])
    _, err = capsys.readouterr()
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("cfg", ["darknet.cfg", "resnet18.cfg"])
def test_other_base_networks_fine_tune_and_export(cfg, tmp_path, random_weights):
    """Darknet Reference (max pools among the trained layers) and ResNet 18 ([shortcut]s): the cut
    comes from the network, the forced depth trains, and the export is the base cfg with new
    weights that our engine loads and classifies as the taught model does."""
    root = tmp_path / "photos"
    for seed, photo in enumerate(PHOTOS):
        make_class_folder(root / photo, photo, 3, seed + 20)
    backbone = teach.Backbone.load(CFG_DIR / cfg, random_weights(cfg.removesuffix(".cfg")))
    features = teach.extract_features(backbone, teach.scan_dataset(root), augment=())
    result = teach.train_head(features, folds=3, seed=0)
    tuned = teach.fine_tune(result, depths=(2,), epochs=1, views=1, seed=0, force=True)
    chosen = tuned.fine_tuning.chosen
    assert chosen is not None and tuned.model.tuned_layers == chosen.cut.trained
    assert chosen.cut.trained[-1] == max(result.head.layers)
    paths = teach.export(tuned.model, tmp_path / "out", "tuned")
    net = engine.Network.load(paths.cfg, paths.weights)
    image = engine.load_image(shared_path("darknet", "data", "eagle.png"))
    x = tuned.model.backbone.preprocess(image)
    np.testing.assert_allclose(net.predict(x), tuned.model.classify(image).probs, atol=TOLERANCE)
