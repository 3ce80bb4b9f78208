"""The bad-input corpus: every bad input gets one clear line naming its file and the line or layer
at fault, through the engine and through `tdn`; nothing ends in a traceback.

- weights cut at every layer boundary of tiny.cfg and darknet.cfg (and one byte short, one float
  in), too long, or with a header that cannot be darknet's;
- a small valid cfg with one option set out of range, per layer type, and broken cfg structure;
- images saved by Pillow in every mode it can write, and broken image files.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine
from support import CFG_DIR, SMALL_CFG
from tdn_cli.main import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code, out, err, message=None):
    """`tdn` failed with exactly one line on stderr, "tdn: error: ...", and no traceback."""
    assert code != 0
    assert err.startswith("tdn: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and out == ""
    if message is not None:
        assert err == f"tdn: error: {message}\n"


def single_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture(scope="module")
def small_png(tmp_path_factory) -> Path:
    """An image for `tdn classify` to be given after weights it must refuse."""
    path = tmp_path_factory.mktemp("image") / "small.png"
    Image.new("RGB", (8, 8), (120, 60, 30)).save(path)
    return path


# =========================================================================== weights

HEADER = 20  # engine.write_random_weights writes darknet's current header, version 0.2


def header_lines(cfg: Path) -> list[int]:
    """Line number of each layer's [section] header, read straight from the text."""
    lines = cfg.read_text().splitlines()
    headers = [n for n, line in enumerate(lines, start=1) if line.strip().startswith("[")]
    assert lines[headers[0] - 1].strip() == "[net]"
    return headers[1:]


def darknet_arrays(layer, in_channels: int) -> list[tuple[str, int]]:
    """The float32 arrays darknet stores for one layer, in its order: biases, the batch norm's
    scales, means and variances, then the filters (only the layer types tiny and darknet use)."""
    if layer.kind == "convolutional":
        n = layer.filters
        arrays = [("biases", n)]
        if layer.batch_normalize:
            arrays += [("scales", n), ("rolling_mean", n), ("rolling_variance", n)]
        return arrays + [("weights", n * in_channels // layer.groups * layer.size * layer.size)]
    assert layer.kind in ("maxpool", "avgpool", "softmax", "cost"), layer.kind
    return []


def layer_extents(name: str):
    """(layer, cfg line, arrays, first byte, end byte) of every layer that stores weights."""
    cfg = CFG_DIR / f"{name}.cfg"
    spec = engine.parse_network(cfg)
    lines = header_lines(cfg)
    assert len(lines) == len(spec.layers)
    extents, offset = [], HEADER
    for layer, in_shape, line in zip(spec.layers, spec.input_shapes(), lines):
        arrays = darknet_arrays(layer, in_shape[2])
        size = 4 * sum(count for _, count in arrays)
        if size:
            extents.append((layer, line, arrays, offset, offset + size))
        offset += size
    return extents, offset


def truncations(name: str):
    """Where to cut `name`'s weights, and what the error must name: the layer and array the file
    ran out in (None: the header itself)."""
    extents, total = layer_extents(name)
    cases = []
    for k, (layer, line, arrays, start, _) in enumerate(extents):
        here = (layer.index, layer.kind, line, arrays[0][0])
        tag = f"{name}-layer{layer.index}"
        cases.append(pytest.param(name, start, here, id=f"{tag}-at-its-start"))
        cases.append(pytest.param(name, start + 4, here, id=f"{tag}-one-float-in"))
        if k == 0:
            cases.append(pytest.param(name, start - 1, None, id=f"{tag}-one-byte-short-of-it"))
        else:
            before, before_line, before_arrays = extents[k - 1][:3]
            last = (before.index, before.kind, before_line, before_arrays[-1][0])
            cases.append(pytest.param(name, start - 1, last, id=f"{tag}-one-byte-short-of-it"))
    layer, line, arrays = extents[-1][:3]
    cases.append(
        pytest.param(
            name, total - 1, (layer.index, layer.kind, line, arrays[-1][0]), id=f"{name}-one-byte-short-of-the-end"
        )
    )
    return cases


TRUNCATIONS = truncations("tiny") + truncations("darknet")


@pytest.fixture(scope="module")
def full_weights(random_weights):
    """name → the bytes of cfg/NAME.cfg's seeded weights (engine.write_random_weights, seed 1)."""
    cache: dict[str, bytes] = {}

    def get(name: str) -> bytes:
        if name not in cache:
            cache[name] = random_weights(name, seed=1).read_bytes()
        return cache[name]

    return get


def expected_truncation_message(path: Path, name: str, size: int, total: int, where) -> str:
    cfg = CFG_DIR / f"{name}.cfg"
    if where is None:
        return f"{path}: {size} bytes is too short for a darknet weights header (version 0.2 has 20 bytes)"
    index, kind, line, array = where
    return (
        f"{path}: ends inside layer {index} [{kind}] ({cfg}:{line}) ({array}): the cfg {cfg} needs "
        f"{total} bytes, the file has {size}"
    )


@pytest.mark.parametrize("name, cut, where", TRUNCATIONS)
def test_truncated_weights_name_the_layer_they_ran_out_in(tmp_path, capsys, full_weights, small_png, name, cut, where):
    data = full_weights(name)
    assert len(data) == layer_extents(name)[1]  # the layout above is the file's
    path = tmp_path / f"cut-{cut}.weights"
    path.write_bytes(data[:cut])
    cfg = CFG_DIR / f"{name}.cfg"
    message = expected_truncation_message(path, name, cut, len(data), where)

    with pytest.raises(engine.WeightsError) as caught:
        engine.Network.load(cfg, path)
    assert single_line(caught.value) == message

    code, out, err = run_cli(capsys, "classify", cfg, path, small_png)
    assert_one_error_line(code, out, err, message)


@pytest.mark.parametrize("extra", [1, 3, 4, 4 * 1000])
def test_too_long_weights_say_how_much_is_left_over(tmp_path, capsys, full_weights, small_png, extra):
    data = full_weights("darknet")
    path = tmp_path / "long.weights"
    path.write_bytes(data + data[HEADER : HEADER + extra])
    cfg = CFG_DIR / "darknet.cfg"
    message = (
        f"{path}: {extra} bytes left over after the last layer: the cfg {cfg} needs {len(data)} "
        f"bytes, the file has {len(data) + extra} (wrong cfg?)"
    )
    with pytest.raises(engine.WeightsError) as caught:
        engine.Network.load(cfg, path)
    assert single_line(caught.value) == message
    assert_one_error_line(*run_cli(capsys, "classify", cfg, path, small_png), message)


def header(major: int, minor: int, revision: int = 0) -> bytes:
    return np.array([major, minor, revision], "<i4").tobytes()


BAD_HEADERS = [
    # version 0.2 keeps `seen` in 8 bytes: 16 to 19 bytes hold no whole header
    pytest.param(
        lambda body: header(0, 2) + b"\0" * 4,
        r"16 bytes is too short for a darknet weights header "
        r"\(version 0\.2 has 20 bytes\)$",
        id="v0.2-header-of-16-bytes",
    ),
    pytest.param(
        lambda body: header(0, 2) + b"\0" * 7,
        r"19 bytes is too short for a darknet weights header",
        id="v0.2-header-of-19-bytes",
    ),
    pytest.param(lambda body: b"", r"0 bytes is too short for a darknet weights header", id="empty-file"),
    pytest.param(
        lambda body: header(-1, 2) + b"\0" * 8 + body,
        r"not a darknet weights file \(its header says "
        r"version -1\.2\.0\)$",
        id="negative-version",
    ),
    pytest.param(
        lambda body: header(0, 2, -7) + b"\0" * 8 + body, r"not a darknet weights file", id="negative-revision"
    ),
    # a 0.1 header keeps `seen` in 4 bytes: the body then starts 4 bytes early
    pytest.param(
        lambda body: header(0, 1) + b"\0" * 8 + body,
        r"4 bytes left over after the last layer: "
        r"the cfg \S+darknet\.cfg needs {v01} bytes, the file has {v01_plus_4}",
        id="v0.1-header-v0.2-body",
    ),
    pytest.param(
        lambda body: header(0, 2) + b"\0" * 4 + body,
        r"ends inside layer 14 \[convolutional\] "
        r"\(\S+darknet\.cfg:\d+\) \(weights\)",
        id="v0.2-header-v0.1-body",
    ),
    pytest.param(
        lambda body: b"<html><body>404 Not Found</body></html>\n" * 4,
        # "<htm" as a version is over 1000: a 16-byte header, then 144 bytes of layer 0
        r"ends inside layer 0 \[convolutional\] \(\S+darknet\.cfg:\d+\) \(rolling_mean\): .* the file "
        r"has 160$",
        id="html-page",
    ),
]


@pytest.mark.parametrize("make, pattern", BAD_HEADERS)
def test_bad_headers_are_one_line(tmp_path, capsys, full_weights, small_png, make, pattern):
    body = full_weights("darknet")[HEADER:]
    path = tmp_path / "bad.weights"
    path.write_bytes(make(body))
    cfg = CFG_DIR / "darknet.cfg"
    with pytest.raises(engine.WeightsError) as caught:
        engine.Network.load(cfg, path)
    message = single_line(caught.value)
    pattern = pattern.format(v01=16 + len(body), v01_plus_4=16 + len(body) + 4)  # a 0.1 header: 16 bytes
    assert message.startswith(f"{path}: ") and re.search(pattern, message), message
    assert_one_error_line(*run_cli(capsys, "classify", cfg, path, small_png), message)


def test_refused_weights_leave_nothing_on_disk(tmp_path, capsys, full_weights, small_png):
    """`--cam DIR` after weights that do not load: no folder, no file, no half-written part."""
    path = tmp_path / "cut.weights"
    path.write_bytes(full_weights("tiny")[:1000])
    cams = tmp_path / "cams"
    code, out, err = run_cli(capsys, "classify", CFG_DIR / "tiny.cfg", path, small_png, "--cam", cams)
    assert_one_error_line(code, out, err)
    assert "ends inside layer 0" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.weights"]


def test_a_bad_image_leaves_no_heatmap_behind(tmp_path, capsys):
    """`--cam DIR` over a good image and a truncated one: the good one's two files, nothing else."""
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_CFG)
    weights = tmp_path / "small.weights"
    engine.write_random_weights(cfg, weights, seed=1)
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(good)
    bad.write_bytes(good.read_bytes()[:200])
    cams = tmp_path / "cams"
    code, out, err = run_cli(capsys, "classify", cfg, weights, good, bad, "--cam", cams)
    assert code == 1
    assert err.startswith(f"tdn: error: cannot read image {bad}: truncated or corrupt") and err.count("\n") == 1
    assert out.startswith(f"{good}: Predicted in")
    assert sorted(p.name for p in cams.iterdir()) == ["good.cam.npy", "good.cam.png"]


# =========================================================================== cfg options

# SMALL_CFG and one section of every other type the engine reads; it parses (a test checks), so
# each variant below fails for its one edit alone. Layers: 0 conv, 1 maxpool, 2 conv, 3 avgpool,
# 4 softmax, 5 dropout, 6 connected, 7 route, 8 shortcut, 9 softmax.
BASE = (
    SMALL_CFG
    + """
[dropout]
probability=0.5

[connected]
output=10
activation=linear

[route]
layers=-1

[shortcut]
from=-2
activation=linear

[softmax]
"""
)


def section_span(kind: str) -> tuple[int, int]:
    """Where BASE's first [kind] section starts and ends (the next header, or the end)."""
    start = BASE.index(f"[{kind}]\n")
    end = BASE.find("\n[", start + 1)
    return start, len(BASE) if end < 0 else end + 1


def edit(kind: str, old: str, new: str) -> str:
    """BASE with `old` (one or more whole lines) replaced by `new` in its first [kind] section."""
    start, end = section_span(kind)
    section = BASE[start:end]
    assert section.count(old) == 1, (kind, old)
    return BASE[:start] + section.replace(old, new) + BASE[end:]


def option(kind: str, key: str, value: str | None, pattern: str, at: str | None = None):
    """A table row: `key=value` set in the first [kind] section (added under its header when
    absent; value None removes the option). The error must be at the line `at` (default: the
    edited line, or the section's header when the option is removed), its message matching
    `pattern`."""
    header = f"[{kind}]\n"
    start, end = section_span(kind)
    found = re.search(rf"^{re.escape(key)}=.*\n", BASE[start:end], re.M)
    if value is None:
        text, at = edit(kind, found.group(0), ""), at or header.strip()
    elif found:
        text = edit(kind, found.group(0), f"{key}={value}\n")
    else:
        text = edit(kind, header, f"{header}{key}={value}\n")
    shown = f"{key}={value}" if value is not None else f"no-{key}"
    return pytest.param(text, at or f"{key}={value}", pattern, id=f"{kind}-{shown}")


def raw(name: str, kind: str, old: str, new: str, at: str, pattern: str):
    return pytest.param(edit(kind, old, new), at, pattern, id=name)


NOT_INT = r"option '{}' is not an integer"
NOT_NUMBER = r"option '{}' is not a finite number"

BAD_CFGS = [
    # [net]
    option("net", "width", "0", r"\[net\] needs a positive 'width' \(got 0\)"),
    option("net", "width", "-32", r"\[net\] needs a positive 'width' \(got -32\)"),
    option("net", "width", "wide", NOT_INT.format("width=wide")),
    option("net", "width", "32.5", NOT_INT.format(r"width=32\.5")),
    option("net", "width", None, r"\[net\] needs a positive 'width' \(got 0\)"),
    option("net", "height", "0", r"needs a positive 'height' \(got 0\)"),
    option("net", "height", "-1", r"needs a positive 'height' \(got -1\)"),
    option("net", "height", "1e3", NOT_INT.format("height=1e3")),
    option("net", "channels", "0", r"needs a positive 'channels' \(got 0\)"),
    option("net", "channels", "-3", r"needs a positive 'channels' \(got -3\)"),
    option("net", "channels", "three", NOT_INT.format("channels=three")),
    option("net", "channels", "3_0", NOT_INT.format("channels=3_0")),
    # [convolutional]
    option("convolutional", "filters", "0", r"\[convolutional\] filters=0 must be at least 1"),
    option("convolutional", "filters", "-8", r"filters=-8 must be at least 1"),
    option("convolutional", "filters", "eight", NOT_INT.format("filters=eight")),
    option("convolutional", "filters", "1_6", NOT_INT.format("filters=1_6")),
    option("convolutional", "filters", "\u0668", NOT_INT.format("filters=\u0668")),  # an Arabic-Indic 8
    option("convolutional", "filters", "9" * 40, r"option 'filters=9{24}\.\.\.' is out of range"),
    option("convolutional", "size", "0", r"size=0 must be at least 1"),
    option("convolutional", "size", "-3", r"size=-3 must be at least 1"),
    option("convolutional", "stride", "0", r"stride=0 must be at least 1"),
    option("convolutional", "stride", "-1", r"stride=-1 must be at least 1"),
    option("convolutional", "stride", "99999999999999999999", r"'stride=99999999999999999999' is out of range"),
    option("convolutional", "pad", "2", r"option 'pad=2' must be 0 or 1"),
    option("convolutional", "pad", "-1", r"option 'pad=-1' must be 0 or 1"),
    option("convolutional", "pad", "yes", NOT_INT.format("pad=yes")),
    raw(
        "convolutional-padding=-1",
        "convolutional",
        "pad=1\n",
        "padding=-1\n",
        "padding=-1",
        r"padding=-1 must not be negative",
    ),
    option("convolutional", "groups", "0", r"groups=0 must be at least 1"),
    option("convolutional", "groups", "-2", r"groups=-2 must be at least 1"),
    option("convolutional", "groups", "3", r"filters=8 is not divisible by groups=3", at="filters=8"),
    option(
        "convolutional",
        "groups",
        "2",
        r"layer 0 \[convolutional\]: 3 input channels are not divisible "
        r"by groups=2",
        at="[convolutional]",
    ),
    option("convolutional", "activation", "mish", r"unknown activation 'mish' \(known: linear, leaky"),
    option("convolutional", "activation", "", r"malformed option 'activation='"),
    option("convolutional", "batch_normalize", "2", r"option 'batch_normalize=2' must be 0 or 1"),
    # [maxpool]
    option("maxpool", "size", "0", r"\[maxpool\] size=0 must be at least 1"),
    option("maxpool", "size", "-2", r"size=-2 must be at least 1"),
    option("maxpool", "size", "two", NOT_INT.format("size=two")),
    option("maxpool", "stride", "0", r"\[maxpool\] stride=0 must be at least 1"),
    option("maxpool", "stride", "-2", r"stride=-2 must be at least 1"),
    option("maxpool", "padding", "-1", r"padding=-1 must not be negative"),
    option(
        "maxpool",
        "padding",
        "10",
        r"layer 1 \[maxpool\]: padding=10 puts whole 2x2 windows outside a "
        r"32x32 input",
        at="[maxpool]",
    ),
    # [avgpool] has no option: any is unknown
    option("avgpool", "size", "4", r"\[avgpool\] unknown option 'size'"),
    # [connected]
    option("connected", "output", "0", r"\[connected\] output=0 must be at least 1"),
    option("connected", "output", "-10", r"output=-10 must be at least 1"),
    option("connected", "output", "ten", NOT_INT.format("output=ten")),
    option("connected", "activation", "swish", r"unknown activation 'swish'"),
    option("connected", "batch_normalize", "3", r"option 'batch_normalize=3' must be 0 or 1"),
    # [route] is layer 7
    option("route", "layers", "7", r"\[route\] layers=7 refers to layer 7, which is not an earlier layer"),
    option("route", "layers", "8", r"layers=8 refers to layer 8, which is not an earlier layer"),
    option("route", "layers", "-8", r"layers=-8 refers to layer -1, which is not an earlier layer"),
    option("route", "layers", "-1,-99", r"layers=-99 refers to layer -92, which is not an earlier layer"),
    option("route", "layers", "-1,x", r"option 'layers=-1,x' is not a comma-separated list of integers"),
    option("route", "layers", ",", r"layers= lists no layer"),
    option(
        "route",
        "layers",
        "-1,-6",
        r"layer 7 \[route\]: layer 1 is 16x16 but layer 6 is 1x1; route needs "
        r"equal sizes",
        at="[route]",
    ),
    option("route", "layers", None, r"\[route\] needs option 'layers'"),
    # [shortcut] is layer 8
    option("shortcut", "from", None, r"\[shortcut\] needs option 'from'"),
    option("shortcut", "from", "8", r"from=8 refers to layer 8, which is not an earlier layer"),
    option("shortcut", "from", "9", r"from=9 refers to layer 9, which is not an earlier layer"),
    option("shortcut", "from", "-99", r"from=-99 refers to layer -91, which is not an earlier layer"),
    option("shortcut", "from", "-1.5", NOT_INT.format(r"from=-1\.5")),
    option("shortcut", "alpha", "nan", NOT_NUMBER.format("alpha=nan")),
    option("shortcut", "beta", "inf", NOT_NUMBER.format("beta=inf")),
    option("shortcut", "beta", "1_0", NOT_NUMBER.format("beta=1_0")),
    option("shortcut", "activation", "none", r"unknown activation 'none'"),
    # [softmax]: the first one, over 10 inputs
    option("softmax", "groups", "0", r"\[softmax\] groups=0 does not divide its 10 inputs"),
    option("softmax", "groups", "-2", r"groups=-2 does not divide its 10 inputs"),
    option("softmax", "groups", "3", r"groups=3 does not divide its 10 inputs"),
    option("softmax", "temperature", "0", r"temperature=0\.0 must be positive"),
    option("softmax", "temperature", "-1", r"temperature=-1\.0 must be positive"),
    option("softmax", "temperature", "nan", NOT_NUMBER.format("temperature=nan")),
    option("softmax", "temperature", "inf", NOT_NUMBER.format("temperature=inf")),
    option("softmax", "temperature", "1e999", NOT_NUMBER.format("temperature=1e999")),
    option("softmax", "temperature", "hot", NOT_NUMBER.format("temperature=hot")),
    # [dropout]
    option("dropout", "probability", "1", r"\[dropout\] probability=1\.0 must be in \[0, 1\)"),
    option("dropout", "probability", "1.5", r"probability=1\.5 must be in \[0, 1\)"),
    option("dropout", "probability", "-0.1", r"probability=-0\.1 must be in \[0, 1\)"),
    option("dropout", "probability", "nan", NOT_NUMBER.format("probability=nan")),
    option("dropout", "probability", "half", NOT_NUMBER.format("probability=half")),
    # structure
    raw(
        "unknown-section",
        "avgpool",
        "[avgpool]\n",
        "[lstm]\n",
        "[lstm]",
        r"\[lstm\] unknown or unsupported section \(supported: avgpool, connected",
    ),
    raw(
        "unknown-section-region",
        "softmax",
        "[softmax]\n",
        "[region]\n",
        "[region]",
        r"\[region\] unknown or unsupported section",
    ),
    raw(
        "option-with-no-value",
        "convolutional",
        "filters=8\n",
        "filters=\n",
        "filters=",
        r"malformed option 'filters=' \(expected key=value\)",
    ),
    raw("option-with-no-key", "maxpool", "size=2\n", "=2\n", "=2", r"malformed option '=2'"),
    raw("option-with-no-equals", "maxpool", "size=2\n", "size 2\n", "size 2", r"malformed option 'size 2'"),
    raw(
        "duplicate-option",
        "convolutional",
        "size=3\n",
        "size=3\nsize=5\n",
        "size=5",
        r"option 'size' given twice in \[convolutional\] \(first at line 8\)",
    ),
    raw(
        "duplicate-net-option",
        "net",
        "channels=3\n",
        "channels=3\nchannels=1\n",
        "channels=1",
        r"option 'channels' given twice in \[net\] \(first at line 4\)",
    ),
    raw(
        "missing-net",
        "net",
        "[net]\nwidth=32\nheight=32\nchannels=3\n",
        "",
        "[convolutional]",
        r"\[convolutional\] the first section must be \[net\]",
    ),
    raw("net-header-missing", "net", "[net]\n", "", "width=32", r"option 'width=32' before any \[section\]"),
    raw(
        "second-net",
        "softmax",
        "[softmax]\n",
        "[net]\nwidth=8\n",
        "[net]\nwidth=8",
        r"\[net\] only the first section may be \[net\]",
    ),
    raw("unclosed-header", "maxpool", "[maxpool]\n", "[maxpool\n", "[maxpool", r"malformed section header '\[maxpool'"),
]


def line_of(text: str, at: str) -> int:
    """The number of the line where `at` (one or more whole lines) first starts in text."""
    lines, wanted = text.splitlines(), at.split("\n")
    for number in range(len(lines)):
        if lines[number : number + len(wanted)] == wanted:
            return number + 1
    raise AssertionError(f"{at!r} is not in the cfg")


def test_the_base_cfg_parses():
    spec = engine.parse_network("base.cfg", BASE)
    assert [layer.kind for layer in spec.layers] == [
        "convolutional",
        "maxpool",
        "convolutional",
        "avgpool",
        "softmax",
        "dropout",
        "connected",
        "route",
        "shortcut",
        "softmax",
    ]
    assert spec.shapes[-1] == (1, 1, 10)


@pytest.mark.parametrize("text, at, pattern", BAD_CFGS)
def test_bad_cfg_is_one_line_at_its_file_and_line(tmp_path, capsys, text, at, pattern):
    path = tmp_path / "bad.cfg"
    path.write_text(text)
    with pytest.raises(engine.CfgError) as caught:
        engine.parse_network(path)
    message = single_line(caught.value)
    assert message.startswith(f"{path}:{line_of(text, at)}: "), message
    assert re.search(pattern, message), message

    code, out, err = run_cli(capsys, "summary", path)
    assert_one_error_line(code, out, err, message)


def test_a_byte_order_mark_is_not_an_option(tmp_path):
    """Windows editors start UTF-8 files with one; darknet's text is the same without it."""
    path = tmp_path / "bom.cfg"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert engine.parse_network(path).layers == engine.parse_network(path, BASE).layers


def test_nothing_but_comments_is_not_a_cfg(tmp_path, capsys):
    path = tmp_path / "notes.cfg"
    path.write_text("# a network\n; to be written\n\n")
    with pytest.raises(engine.CfgError) as caught:
        engine.parse_network(path)
    assert single_line(caught.value) == f"{path}: no sections: not a darknet cfg file"
    assert_one_error_line(*run_cli(capsys, "summary", path), str(caught.value))


# =========================================================================== images

GREYS = (0, 64, 191, 255)
COLOURS = ((200, 30, 10), (20, 180, 60), (40, 50, 220), (255, 255, 255))
ALPHAS = (0, 80, 160, 255)


def quadrants(values, dtype=np.uint8) -> np.ndarray:
    """A 16x16 image of four flat 8x8 blocks (top left, top right, bottom left, bottom right):
    JPEG's blocks, so that even JPEG keeps each one flat."""
    v = np.asarray(values, dtype)
    v = v.reshape(2, 2, *v.shape[1:])
    return np.ascontiguousarray(np.repeat(np.repeat(v, 8, axis=0), 8, axis=1))


def grey_rgb(values) -> np.ndarray:
    return np.repeat(quadrants(values)[:, :, None], 3, axis=2)


def palette_image(mode: str) -> Image.Image:
    index = quadrants((2, 0, 3, 1))
    if mode == "P":
        im = Image.frombytes("P", (16, 16), index.tobytes())
    else:
        im = Image.frombytes("PA", (16, 16), np.stack([index, quadrants(ALPHAS)], axis=2).tobytes())
    im.putpalette([c for rgb in COLOURS for c in rgb])
    return im


PALETTE_RGB = quadrants([COLOURS[i] for i in (2, 0, 3, 1)])
CMYK = ((55, 225, 245, 0), (235, 75, 195, 0), (215, 205, 35, 0), (0, 0, 0, 255))  # R = 255 - C when K = 0
SIXTEEN_BITS = (0, 0x40FF, 0xBF00, 0xFFFF)  # high bytes 0, 64, 191, 255

# mode → (the image in that mode, the RGB it shows as 8-bit, the largest error allowed anywhere
# when the format keeps it whole)
MODES = {
    "1": lambda: (Image.fromarray(quadrants((0, 1, 1, 0), bool)), grey_rgb((0, 255, 255, 0)), 0),
    "L": lambda: (Image.fromarray(quadrants(GREYS)), grey_rgb(GREYS), 0),
    "LA": lambda: (Image.fromarray(np.stack([quadrants(GREYS), quadrants(ALPHAS)], axis=2), "LA"), grey_rgb(GREYS), 0),
    "P": lambda: (palette_image("P"), PALETTE_RGB, 0),
    "PA": lambda: (palette_image("PA"), PALETTE_RGB, 0),
    "RGB": lambda: (Image.fromarray(quadrants(COLOURS)), quadrants(COLOURS), 0),
    # alpha is dropped, never composited: a fully transparent block keeps its colour
    "RGBA": lambda: (
        Image.fromarray(np.concatenate([quadrants(COLOURS), quadrants(ALPHAS)[:, :, None]], axis=2)),
        quadrants(COLOURS),
        0,
    ),
    "RGBX": lambda: (Image.fromarray(quadrants(COLOURS)).convert("RGBX"), quadrants(COLOURS), 0),
    "CMYK": lambda: (
        Image.frombytes("CMYK", (16, 16), quadrants(CMYK).tobytes()),
        quadrants([(200, 30, 10), (20, 180, 60), (40, 50, 220), (0, 0, 0)]),
        0,
    ),
    "YCbCr": lambda: (
        Image.frombytes("YCbCr", (16, 16), quadrants([(g, 128, 128) for g in GREYS]).tobytes()),
        grey_rgb(GREYS),
        0,
    ),
    # CIELAB in 8 bits does not keep every RGB colour exactly (the green block comes back 9 levels off)
    "LAB": lambda: (Image.fromarray(quadrants(COLOURS)).convert("LAB"), quadrants(COLOURS), 10),
    "HSV": lambda: (Image.fromarray(quadrants(COLOURS)).convert("HSV"), quadrants(COLOURS), 3),
    # 32-bit integers: read as 16-bit samples (clipped to 0..65535), then the high byte
    "I": lambda: (Image.fromarray(quadrants((-1000, 0x40FF, 0xBF00, 70000), np.int32)), grey_rgb(GREYS), 0),
    "I;16": lambda: (Image.fromarray(quadrants(SIXTEEN_BITS, np.uint16)), grey_rgb(GREYS), 0),
    "I;16B": lambda: (Image.frombytes("I;16B", (16, 16), quadrants(SIXTEEN_BITS, ">u2").tobytes()), grey_rgb(GREYS), 0),
    # 32-bit floats on Pillow's 0..255 scale, clipped
    "F": lambda: (Image.fromarray(quadrants((-5.0, 64.0, 191.0, 1e6), np.float32)), grey_rgb(GREYS), 0),
}

FORMATS = {
    "PNG": ("png", {}),
    "TIFF": ("tif", {}),
    "BMP": ("bmp", {}),
    "GIF": ("gif", {}),
    "PPM": ("ppm", {}),
    "JPEG": ("jpg", {"quality": 100, "subsampling": 0}),
    "WEBP": ("webp", {"lossless": True, "exact": True}),
}
LOSSY = {"JPEG": 4}  # the largest error allowed after JPEG at quality 100, 4:4:4

SAVED = {  # what Pillow writes each mode to (PA to WEBP is left out: Pillow writes it without its palette)
    "1": ["PNG", "TIFF", "JPEG", "BMP", "WEBP", "GIF", "PPM"],
    "L": ["PNG", "TIFF", "JPEG", "BMP", "WEBP", "GIF", "PPM"],
    "LA": ["PNG", "TIFF", "WEBP", "GIF"],
    "P": ["PNG", "TIFF", "BMP", "WEBP", "GIF"],
    "PA": ["TIFF"],
    "RGB": ["PNG", "TIFF", "JPEG", "BMP", "WEBP", "GIF", "PPM"],
    "RGBA": ["PNG", "TIFF", "BMP", "WEBP", "GIF"],
    "RGBX": ["TIFF", "JPEG"],
    "CMYK": ["TIFF", "JPEG"],
    "YCbCr": ["TIFF", "JPEG"],
    "LAB": ["TIFF"],
    "HSV": ["WEBP"],
    "I": ["TIFF", "PPM"],
    "I;16": ["PNG", "TIFF", "PPM"],
    "I;16B": ["PNG", "TIFF"],
    "F": ["TIFF", "PPM"],
}
MODE_CASES = [pytest.param(mode, fmt, id=f"{mode}-{fmt}") for mode, fmts in SAVED.items() for fmt in fmts]


def as_loaded(rgb: np.ndarray) -> np.ndarray:
    return np.divide(rgb, np.float32(255), dtype=np.float32)


@pytest.mark.parametrize("mode, fmt", MODE_CASES)
def test_every_pillow_mode_loads_as_rgb_in_0_to_1(tmp_path, mode, fmt):
    im, expected, tolerance = MODES[mode]()
    assert im.mode == mode
    suffix, options = FORMATS[fmt]
    path = tmp_path / f"{mode.replace(';', '_')}.{suffix}"
    im.save(path, fmt, **options)

    img = engine.load_image(path)
    assert img.shape == (16, 16, 3) and img.dtype == np.float32 and img.flags.c_contiguous
    assert 0.0 <= img.min() and img.max() <= 1.0
    tolerance = max(tolerance, LOSSY.get(fmt, 0))
    if tolerance:
        np.testing.assert_allclose(img, as_loaded(expected), rtol=0, atol=tolerance / 255 + 1e-6)
    else:
        np.testing.assert_array_equal(img, as_loaded(expected))


def assert_image_error(path, *words) -> str:
    with pytest.raises(engine.ImageError) as caught:
        engine.load_image(path)
    message = single_line(caught.value)
    assert message.startswith(f"cannot read image {path}: "), message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("suffix", ["jpg", "png", "gif", "webp", "bmp", "tif"])
def test_zero_byte_files(tmp_path, suffix):
    path = tmp_path / f"empty.{suffix}"
    path.write_bytes(b"")
    assert assert_image_error(path) == f"cannot read image {path}: the file is empty"


def test_a_web_page_saved_as_jpg(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("<!DOCTYPE html><html><body>403 Forbidden</body></html>\n")
    assert_image_error(path, "not an image file")


def png_bytes(width: int, height: int, rows: list[bytes], color_type: int = 2, depth: int = 8) -> bytes:
    """A PNG written by hand (scanlines without filters), for files Pillow would not write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + row for row in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def noisy_png() -> bytes:
    """A 64x48 PNG of noise (its IDAT is most of the file)."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "cut, words",
    [
        (4, "not an image file"),  # inside the signature
        (8, "not an image file"),  # the signature alone
        (20, "truncated or corrupt"),  # inside IHDR
        (33, "not an image file"),  # IHDR and nothing else
        (60, "truncated or corrupt"),  # just into IDAT
        (-100, "truncated or corrupt"),  # most of IDAT
    ],
)
def test_truncated_png(tmp_path, noisy_png, cut, words):
    path = tmp_path / "cut.png"
    path.write_bytes(noisy_png[:cut])
    assert_image_error(path, words)


def test_png_with_corrupt_image_data(tmp_path, noisy_png):
    data = bytearray(noisy_png)
    data[100] ^= 0xFF  # a byte of IDAT: its zlib stream no longer decodes
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    assert_image_error(path, "truncated or corrupt")


def test_png_that_claims_ten_billion_pixels(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(100_000, 100_000, [b""]))
    assert_image_error(path, "too large")


def test_png_of_zero_width(tmp_path):
    path = tmp_path / "zero.png"
    path.write_bytes(png_bytes(0, 4, [b""] * 4))
    assert_image_error(path)


def test_sixteen_bit_rgb_png_keeps_the_high_byte(tmp_path):
    samples = np.array(SIXTEEN_BITS, ">u2")
    row = np.repeat(samples, 3).astype(">u2").tobytes()  # 4 grey pixels, 48 bits each
    path = tmp_path / "rgb48.png"
    path.write_bytes(png_bytes(4, 1, [row], color_type=2, depth=16))
    np.testing.assert_array_equal(engine.load_image(path), as_loaded(np.array([[[g] * 3 for g in GREYS]])))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_one_pixel_image(tmp_path, fmt):
    suffix, options = FORMATS[fmt]
    path = tmp_path / f"one.{suffix}"
    Image.new("RGB", (1, 1), (200, 100, 50)).save(path, fmt, **options)
    img = engine.load_image(path)
    assert img.shape == (1, 1, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img[0, 0] * 255, [200, 100, 50], atol=LOSSY.get(fmt, 0) + 1e-4)


@pytest.mark.parametrize("fmt, suffix", [("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif")])
def test_animated_or_multi_page_image_gives_its_first_frame(tmp_path, fmt, suffix):
    frames = [Image.new("RGB", (6, 4), colour) for colour in ((250, 10, 10), (10, 250, 10), (10, 10, 250))]
    path = tmp_path / f"anim.{suffix}"
    options = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=40, loop=0, **options)
    with Image.open(path) as im:
        assert getattr(im, "n_frames", 1) == 3
    img = engine.load_image(path)
    assert img.shape == (4, 6, 3)
    np.testing.assert_array_equal(img, as_loaded(np.full((4, 6, 3), (250, 10, 10), np.uint8)))


def test_image_named_with_a_line_break_is_still_one_line(tmp_path, capsys, random_weights):
    """The engine's message holds the name as it is; `tdn` prints it on one line, escaped."""
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_CFG)
    weights = tmp_path / "small.weights"
    engine.write_random_weights(cfg, weights, seed=1)
    bad = tmp_path / "two\nlines.jpg"
    bad.write_text("not a picture")
    code, out, err = run_cli(capsys, "classify", cfg, weights, bad)
    assert code == 1 and out == ""
    escaped = str(bad).replace("\n", "\\n")
    assert err == f"tdn: error: cannot read image {escaped}: not an image file (or a format Pillow cannot read)\n"
