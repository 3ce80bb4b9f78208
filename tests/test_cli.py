"""The `tdn` command: darknet's output format, JSON, summaries, bench and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import engine
from support import CFG_DIR, ROOT, SMALL_CFG, shared_path
from tdn_cli.main import main

TINY = str(CFG_DIR / "tiny.cfg")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_prints_darknets_format(capsys, tiny_weights, imagenet_names):
    dog = shared_path("darknet", "data", "dog.jpg")
    code, out, err = run(capsys, "classify", TINY, tiny_weights, dog, "--names", imagenet_names)
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(rf"{re.escape(str(dog))}: Predicted in \d+\.\d{{6}} seconds\.", lines[0])
    net = engine.Network.load(TINY, tiny_weights)
    expected = engine.Classifier(net, engine.load_names(imagenet_names, 1000)).classify(engine.load_image(dog))
    assert lines[1:] == [f"{p * 100:5.2f}%: {n}" for _, n, p in expected.top(5)]
    assert lines[1].endswith(": malamute")


def test_classify_json_and_top(capsys, random_weights):
    weights = random_weights("tiny")
    image = shared_path("darknet", "data", "eagle.png")
    code, out, _ = run(
        capsys, "classify", TINY, weights, image, image, "--json", "--top", "1000", "--resize", "letterbox"
    )
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 2
    top = records[0]["top"]
    assert len(top) == 1000 and top[0]["name"] == f"class {top[0]['index']}"
    probs = np.array([t["prob"] for t in top])
    assert np.all(np.diff(probs) <= 0) and abs(probs.sum() - 1) < 1e-4
    net = engine.Network.load(TINY, weights)
    x = engine.letterbox(engine.load_image(image), 224, 224)
    assert top[0]["index"] == int(np.argmax(net.predict(x)))


def test_bad_image_is_one_line_and_others_still_run(capsys, tmp_path, random_weights):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    good = shared_path("darknet", "data", "dog.png")
    code, out, err = run(capsys, "classify", TINY, random_weights("tiny"), bad, good)
    assert code == 1
    assert err.strip() == f"tdn: error: cannot read image {bad}: not an image file (or a format Pillow cannot read)"
    assert "dog.png: Predicted in" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["classify", TINY, "missing.weights", "x.jpg"], "weights file missing.weights does not exist"),
        (["classify", "nosuchmodel", "x.jpg"], "unknown model 'nosuchmodel'"),
        (["summary", "nowhere.cfg"], "nowhere.cfg: cannot read cfg"),
        (["bench", "tiny", "--runs", "0"], "--runs and --batch must be at least 1"),
    ],
)
def test_user_errors_are_one_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.setenv("TDN_CACHE_DIR", str(tmp_path))
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_weights_that_do_not_fit_exit_cleanly_as_a_process(tmp_path, random_weights):
    """A real process: one line on stderr, status 1, no traceback."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tdn_cli.main",
            "classify",
            str(CFG_DIR / "darknet.cfg"),
            str(random_weights("tiny")),
            "x.jpg",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("tdn: error: ") and result.stderr.count("\n") == 1
    assert "bytes left over" in result.stderr or "ends inside" in result.stderr


def test_summary_totals_line(capsys):
    code, out, _ = run(capsys, "summary", "tiny")
    assert code == 0
    assert "total: 0.983 BFLOPs, 1,046,488 parameters, weights file 4,185,968 bytes (4.0 MB)" in out
    assert len([line for line in out.splitlines() if re.match(r"\s+\d+ ", line)]) == 22


def test_summary_at_another_size(capsys):
    code, out, _ = run(capsys, "summary", TINY, "--size", "448x448")
    assert code == 0 and "total: 3.932 BFLOPs" in out


def test_bench_reports_latency_throughput_and_layers(capsys, tmp_path):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_CFG)
    code, out, _ = run(capsys, "bench", cfg, "--runs", "3", "--batch", "4")
    assert code == 0
    assert "latency, batch 1: median" in out and "throughput, batch 4:" in out
    assert re.search(r"threads: \d+ \((omp|tbb|workqueue) layer\)", out)
    assert len(re.findall(r"^\s+\d+ (conv|max|avg|softmax)", out, re.M)) == 5


def test_valid_help_names_its_folder(capsys):
    with pytest.raises(SystemExit):
        main(["valid", "--help"])
    usage = capsys.readouterr().out.splitlines()[0]
    assert usage == "usage: tdn valid [options] MODEL|CFG [WEIGHTS] FOLDER"
