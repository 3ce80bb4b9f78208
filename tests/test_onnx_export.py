"""`tdn export --onnx` (engine/onnx_export.py) against ONNX Runtime, an independent runtime: every
network the project ships, a taught head, each activation and darknet's own pooling, shortcut
and softmax semantics give Network.predict's probabilities; refusals are one line and leave no
file; without the onnx package one line says how to install it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import engine
from engine import teach
from engine.activations import ACTIVATIONS
from engine.weights import random_params
import cfg_builder as cfgs
from support import CFG_DIR, ROOT, SHARED, shared_path
from tdn_cli.main import main

pytest.importorskip("onnx", reason="needs the onnx extra: pip install -e '.[onnx,bench]'")
ort = pytest.importorskip("onnxruntime", reason="needs the bench extra (ONNX Runtime): pip install -e '.[bench]'")
from engine.onnx_export import INPUT, OUTPUT, ExportError, export_onnx  # noqa: E402


TOLERANCE = 1e-5
# (cfg, input size (w, h) or None for the cfg's): the smallest sizes each cfg allows, to keep
# the file fast; AlexNet's [connected] layers fix its size
NETWORKS = [
    ("tiny", None),
    ("darknet", (128, 128)),
    ("darknet19", (96, 96)),
    ("extraction", (112, 112)),
    ("resnet18", (128, 128)),
    ("alexnet", None),
]

# darknet's max pool where ONNX's defaults differ: a 3x3/2 window that starts one cell before
# the map (padding 2) and a 2x2/1 that keeps the size (padding 1, the extra cells after it),
# after a linear conv, so cells outside the map must lose to negative values
MAXPOOL_CFG = cfgs.net(13, 15) + cfgs.conv(4, bn=0, act="linear") + cfgs.maxpool(3, 2) + cfgs.maxpool(2, 1)

# [shortcut]s of maps of other sizes and channels (the smaller added to every other cell with
# alpha and beta; fewer channels), a grouped conv, [connected] with batch norm, [dropout], and a
# [softmax] in groups at a temperature
ODD_LAYERS_CFG = (
    cfgs.net(16, 16)
    + cfgs.conv(8)
    + cfgs.conv(4, stride=2, bn=0, act="linear")
    + cfgs.route(0)
    + cfgs.shortcut(1, "logistic", 0.5, 2)
    + cfgs.conv(6, stride=2, groups=2, bn=0, act="relu")
    + cfgs.shortcut(1)
    + cfgs.connected(12, bn=1, act="tanh")
    + cfgs.dropout(0.5)
    + cfgs.softmax(3, 2)
)
CONNECTED_LINE = ODD_LAYERS_CFG.splitlines().index("[connected]") + 1

# A [softmax] over a map: darknet flattens it channel-major, then softmaxes 4 slices
SPATIAL_SOFTMAX_CFG = cfgs.net(8, 8) + cfgs.conv(3, stride=2, bn=0, act="linear") + cfgs.softmax(4, 0.5)

# One conv with the activation under test, batch norm folded, a padded pool, a linear 1x1 conv
# the engine runs after the average pool
ACTIVATION_CFG = """[net]
width=20
height=18
channels=3

[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation={activation}

[maxpool]
size=3
stride=2

[convolutional]
filters=6
size=1
stride=1
activation=linear

[avgpool]

[softmax]
"""


def random_network(cfg, seed: int = 1) -> engine.Network:
    spec = engine.parse_network(cfg)
    return engine.Network(spec, random_params(spec, seed))


def network_from_text(tmp_path, name: str, text: str, seed: int = 1) -> engine.Network:
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(text)
    return random_network(cfg, seed)


@pytest.fixture(scope="module")
def tiny_weights_or_random(tmp_path_factory):
    """Tiny Darknet's published weights when ../shared has them, else seeded random ones."""
    real = SHARED / "weights" / "tiny.weights"
    if real.exists():
        return real
    path = tmp_path_factory.mktemp("tiny") / "tiny.weights"
    engine.write_random_weights(CFG_DIR / "tiny.cfg", path)
    return path


def inputs(batch: int, size, seed: int = 0) -> np.ndarray:
    w, h = size
    return np.random.default_rng(seed).random((batch, h, w, 3), dtype=np.float32)


def assert_exported_matches(net, path, *batches) -> float:
    """On each NHWC batch, ONNX Runtime running the exported model (NCHW) gives net.predict's
    probabilities and top-5; returns the largest difference."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT]
    assert [o.name for o in session.get_outputs()] == [OUTPUT]
    largest = 0.0
    for x in batches:
        expected = net.predict(x)
        got = session.run([OUTPUT], {INPUT: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]
        assert got.shape == expected.shape
        largest = max(largest, float(np.abs(got - expected).max()))
        assert largest <= TOLERANCE
        top = min(5, expected.shape[1])
        assert (np.argsort(-got, axis=1)[:, :top] == np.argsort(-expected, axis=1)[:, :top]).all()
    return largest


@pytest.mark.parametrize("name,size", NETWORKS, ids=[n for n, _ in NETWORKS])
def test_every_shipped_network_gives_the_engines_probabilities(name, size, tmp_path, tiny_weights_or_random):
    cfg = CFG_DIR / f"{name}.cfg"
    net = engine.Network.load(cfg, tiny_weights_or_random) if name == "tiny" else random_network(cfg)
    size = size or net.input_size
    x = inputs(2, size)  # the batch is symbolic: 2, then 1
    if name == "tiny" and (SHARED / "darknet" / "data" / "dog.jpg").exists():
        x[0] = engine.letterbox(engine.load_image(SHARED / "darknet" / "data" / "dog.jpg"), *size)
    path = tmp_path / f"{name}.onnx"
    export_onnx(net, path, size)
    assert_exported_matches(net, path, x, x[1:])


def test_darknets_own_tiny_cfg_with_the_published_weights(tmp_path):
    net = engine.Network.load(shared_path("darknet", "cfg", "tiny.cfg"), shared_path("weights", "tiny.weights"))
    image = engine.load_image(shared_path("darknet", "data", "dog.jpg"))
    x = engine.letterbox(image, *net.input_size)[None]
    export_onnx(net, tmp_path / "tiny.onnx")
    assert_exported_matches(net, tmp_path / "tiny.onnx", x)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_activation_is_written_exactly(activation, tmp_path):
    net = network_from_text(tmp_path, activation, ACTIVATION_CFG.format(activation=activation))
    export_onnx(net, tmp_path / "act.onnx")
    x = inputs(2, net.input_size)
    assert_exported_matches(net, tmp_path / "act.onnx", x)


def test_darknets_max_pool_padding_is_exact(tmp_path):
    net = network_from_text(tmp_path, "maxpool", MAXPOOL_CFG)
    assert net.spec.shapes[1:] == ((7, 8, 4), (7, 8, 4))  # ONNX's unpadded 3x3/2 gives 6x7, 2x2/1 6x7
    export_onnx(net, tmp_path / "maxpool.onnx")
    x = inputs(2, net.input_size)
    assert_exported_matches(net, tmp_path / "maxpool.onnx", x)
    pooled = net.predict(x).reshape(2, 4, 7, 8)
    assert (pooled[:, :, -1, :] < 0).any() and (pooled[:, :, :, -1] < 0).any()  # zero padding would differ


@pytest.mark.parametrize("text", [ODD_LAYERS_CFG, SPATIAL_SOFTMAX_CFG], ids=["shortcuts-connected", "spatial-softmax"])
def test_darknets_shortcut_connected_and_softmax_semantics(text, tmp_path):
    net = network_from_text(tmp_path, "odd", text)
    export_onnx(net, tmp_path / "odd.onnx")
    assert_exported_matches(net, tmp_path / "odd.onnx", inputs(3, net.input_size))


def test_a_taught_head_exports_through_its_cfg_and_weights(tmp_path, capsys, tiny_weights_or_random):
    backbone = teach.Backbone.load(CFG_DIR / "tiny.cfg", tiny_weights_or_random, layers=(17, 19))  # a [route]
    rng = np.random.default_rng(2)
    model = teach.TaughtModel(
        backbone,
        backbone.heads[0],
        ("cat", "dog", "fish"),
        rng.normal(0, 0.05, (3, backbone.channels)),
        rng.normal(0, 0.1, 3),
    )
    paths = teach.export(model, tmp_path, "pets")
    out = tmp_path / "pets.onnx"
    assert main(["export", str(paths.cfg), str(paths.weights), "--onnx", str(out)]) == 0
    taught = engine.Network.load(paths.cfg, paths.weights)
    assert_exported_matches(taught, out, inputs(2, taught.input_size))


def test_a_size_a_fixed_size_network_cannot_take_is_refused_naming_the_layer(tmp_path):
    net = network_from_text(tmp_path, "odd", ODD_LAYERS_CFG)
    with pytest.raises(ExportError) as refused:
        export_onnx(net, tmp_path / "odd.onnx", size=(32, 32))
    assert str(refused.value) == (
        f"layer 6 [connected] ({tmp_path / 'odd.cfg'}:{CONNECTED_LINE}) fixes the input "
        "to 16x16: cannot export it at 32x32"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "odd.cfg"]


def test_a_model_past_what_one_file_holds_is_refused(tmp_path, monkeypatch):
    from engine import onnx_export

    net = network_from_text(tmp_path, "small", ACTIVATION_CFG.format(activation="leaky"))
    monkeypatch.setattr(onnx_export, "MAX_BYTES", 1024)
    with pytest.raises(
        ExportError,
        match=r"^layer 2 \[convolutional\] \(.*small\.cfg:\d+\): its weights bring "
        r"the model to 1\.1 KiB, past the 1\.0 KiB one \.onnx file can hold$",
    ):
        export_onnx(net, tmp_path / "small.onnx")
    assert not (tmp_path / "small.onnx").exists()


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_tdn_export_writes_the_model_with_the_usual_mode(tmp_path, capsys, umask_027, tiny_weights_or_random):
    out = tmp_path / "tiny.onnx"
    assert (
        main(["export", "tiny", "--weights", str(tiny_weights_or_random), "--onnx", str(out), "--size", "160x128"]) == 0
    )
    printed, err = capsys.readouterr()
    assert err == "" and printed.startswith(f"{out}: tiny at 160x128, 1000 classes")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert_exported_matches(
        engine.Network.load(CFG_DIR / "tiny.cfg", tiny_weights_or_random), out, inputs(2, (160, 128))
    )


def test_tdn_export_refused_is_one_line_and_leaves_no_file(tmp_path, capsys):
    cfg = tmp_path / "odd.cfg"
    cfg.write_text(ODD_LAYERS_CFG)
    engine.write_random_weights(cfg, tmp_path / "odd.weights")
    out = tmp_path / "odd.onnx"
    assert main(["export", str(cfg), str(tmp_path / "odd.weights"), "--onnx", str(out), "--size", "32x32"]) == 1
    printed, err = capsys.readouterr()
    assert printed == ""
    assert err == (
        f"tdn: error: layer 6 [connected] ({cfg}:{CONNECTED_LINE}) fixes the input to 16x16: "
        "cannot export it at 32x32\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.cfg", "odd.weights"]


def test_without_the_extra_one_line_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['onnx'] = None; from tdn_cli.main import main; "
        "sys.exit(main(['export', 'tiny', '--weights', 'x.weights', '--onnx', 'x.onnx']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip() == "tdn: error: exporting to ONNX needs the onnx package: pip install 'tdn[onnx]'"
    assert list(tmp_path.iterdir()) == []
