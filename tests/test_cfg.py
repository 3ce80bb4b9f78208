"""cfg parsing: darknet's syntax, our cfg files against darknet's, and clear errors."""

from __future__ import annotations

import pytest

import engine
from support import CFG_DIR, MODEL_CFGS, shared_path
from engine.summary import summarize


def layer_table(path):
    """(type, filters, size, input, output) per layer: what darknet prints when it loads a cfg."""
    s = summarize(engine.parse_network(path))
    return [(r.kind, r.filters, r.size, r.input, r.output) for r in s.rows]


@pytest.mark.parametrize("name", MODEL_CFGS)
def test_our_cfg_describes_darknets_network(name):
    theirs = shared_path("darknet", "cfg", f"{name}.cfg")
    assert layer_table(CFG_DIR / f"{name}.cfg") == layer_table(theirs)


@pytest.mark.parametrize(
    "name, bflops, megabytes", [("tiny", 0.98, 4.0), ("alexnet", 2.27, 238.0), ("darknet", 0.96, 27.9)]
)
def test_summary_totals(name, bflops, megabytes):
    s = summarize(engine.parse_network(CFG_DIR / f"{name}.cfg"))
    assert round(s.bflops, 2) == bflops
    assert round(s.weights_mb, 1) == megabytes


def test_tiny_shapes_and_padding_rules():
    spec = engine.parse_network(CFG_DIR / "tiny.cfg")
    assert spec.shapes[0] == (224, 224, 16)
    assert spec.shapes[1] == (112, 112, 16)  # maxpool: (224 + 1 - 2) // 2 + 1
    assert spec.layers[4].padding == 0  # 1x1 with pad=1 → padding size//2 = 0
    assert spec.layers[5].padding == 1
    assert spec.shapes[-1] == (1, 1, 1000)
    assert spec.any_size


def parse(tmp_path, text):
    path = tmp_path / "net.cfg"
    path.write_text(text)
    return engine.parse_network(path)


NET = "[net]\nwidth=8\nheight=8\nchannels=3\n"


def test_darknet_syntax_spaces_comments_and_aliases(tmp_path):
    spec = parse(
        tmp_path,
        "# a comment\n[net]\n width = 8\nheight=8 # trailing\n; other\nchannels=3\n"
        "batch=64\n\n[conv]\nfilters = 4\nsize=3\npad=1\nactivation=LEAKY\n[max]\n"
        "[avg]\n[soft]\n",
    )
    assert [layer.kind for layer in spec.layers] == ["convolutional", "maxpool", "avgpool", "softmax"]
    assert spec.shapes[0] == (8, 8, 4)
    assert spec.layers[1].size == 1 and spec.layers[1].stride == 1  # maxpool size defaults to stride
    assert spec.layers[0].activation_name == "leaky"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            NET + "[convolutional]\nfilters=4\nsize=3\nfliters=2\n",
            r"net\.cfg:8: \[convolutional\] unknown option 'fliters'",
        ),
        (NET + "[convolutional]\nfilters=four\n", r"net\.cfg:6: .*'filters=four' is not an integer"),
        (NET + "[yolo]\n", r"net\.cfg:5: \[yolo\] unknown or unsupported section"),
        (NET + "[convolutional]\nactivation=swish\n", r"net\.cfg:6: .*unknown activation 'swish'"),
        (NET + "[convolutional]\nsize=9\n", r"net\.cfg:5: .*does not fit a 8x8 input"),
        (NET + "[route]\nlayers=-3\n", r"net\.cfg:6: .*layers=-3 refers to layer -3"),
        (NET + "[shortcut]\nfrom=-1\n", r"net\.cfg:6: .*from=-1 refers to layer -1"),
        (NET + "[convolutional]\nfilters=4\nfilters=5\n", r"net\.cfg:7: option 'filters' given twice"),
        (NET + "[convolutional]\nfilters\n", r"net\.cfg:6: malformed option 'filters'"),
        ("[net]\nwidth=8\nheight=8\n[convolutional]\n", r"net\.cfg:1: \[net\] needs a positive 'channels'"),
        ("[convolutional]\nfilters=1\n", r"net\.cfg:1: \[convolutional\] the first section must be \[net\]"),
        ("width=3\n", r"net\.cfg:1: option 'width=3' before any \[section\]"),
        (NET, r"net\.cfg: the cfg has a \[net\] but no layers"),
        (NET + "[convolutional]\nfilters=4\ngroups=3\n", r"net\.cfg:6: .*filters=4 is not divisible by groups=3"),
        (
            NET + "[convolutional]\nfilters=4\n[convolutional]\nfilters=2\n[route]\nlayers=-1,-2\n"
            "[convolutional]\nstride=2\nfilters=2\n[route]\nlayers=-1,-2\n",
            r"net\.cfg:14: layer 4 \[route\]: layer 2 is 8x8 but layer 3 is 4x4; route needs equal sizes",
        ),
    ],
)
def test_malformed_cfg_names_file_and_line(tmp_path, text, message):
    with pytest.raises(engine.CfgError, match=message):
        parse(tmp_path, text)


def test_missing_cfg_file_is_a_clear_error(tmp_path):
    with pytest.raises(engine.CfgError, match="nope.cfg: cannot read cfg"):
        engine.parse_network(tmp_path / "nope.cfg")


def test_route_and_shortcut_shapes(tmp_path):
    spec = parse(
        tmp_path,
        NET + "[convolutional]\nfilters=4\nsize=1\n[convolutional]\nfilters=6\nsize=1\n"
        "[route]\nlayers=-1,0\n[shortcut]\nfrom=1\nactivation=leaky\n",
    )
    assert spec.shapes[2] == (8, 8, 10)
    assert spec.shapes[3] == (8, 8, 10)
