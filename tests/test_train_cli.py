"""`tdn train` and `tdn partial` as a user runs them: the files they write, resuming, Ctrl+C,
and one line for each bad input with nothing half-written left behind."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import engine
from engine.spec import parse_network
from engine.weights import read_weights
import cfg_builder as cfgs
from support import ROOT, shared_path
from tdn_cli.main import main

CLASSES = ("blue", "green", "red")

# 16x16 colour classifier: small enough to train in well under a second, with batch norm, a
# pool and darknet's augmentation (crops of a 16-20 pixel scale, flips, colour jitter)
TINY_TRAIN_CFG = (
    cfgs.net(
        16,
        16,
        batch=12,
        subdivisions=2,
        learning_rate=0.1,
        momentum=0.9,
        decay=0.0005,
        policy="poly",
        power=2,
        max_batches=40,
        min_crop=16,
        max_crop=20,
        hue=".02",
        saturation=1.2,
        exposure=1.2,
    )
    + cfgs.conv(8)
    + cfgs.maxpool(2, 2)
    + cfgs.conv(3, 1, bn=0, act="linear")
    + cfgs.AVGPOOL
    + cfgs.softmax()
)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_photos(folder, per_class: int = 8, seed: int = 0, size: int = 20) -> None:
    """per_class noisy images a class, each mostly its class's colour."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.uniform(0, 90, (size, size, 3))
            pixels[..., 2 - c] += rng.uniform(120, 165)  # CLASSES is blue, green, red: RGB reversed
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name / f"{i}.png")


@pytest.fixture
def photos(tmp_path):
    write_photos(tmp_path / "train")
    write_photos(tmp_path / "valid", per_class=4, seed=1)
    return tmp_path


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "colours.cfg"
    path.write_text(TINY_TRAIN_CFG)
    return path


def test_train_writes_darknet_files_that_classify(capsys, photos, cfg):
    out = photos / "run"
    code, stdout, err = run(
        capsys, "train", cfg, "--data", photos / "train", "--valid", photos / "valid", "--out", out, "--json"
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["batches"] == 40 and result["images"] == 40 * 12
    assert result["images_per_second"] > 0 and result["seconds"] > 0 and result["skipped_images"] == 0
    assert result["top1"] >= 0.9 and result["top5"] == 1.0  # 3 classes: top-5 holds them all
    assert result["final_loss"] < 0.6
    for ext in ("weights", "cfg", "names", "csv", "png"):
        assert (out / f"colours.{ext}").is_file(), ext
    assert (out / "colours.names").read_text().split() == list(CLASSES)
    assert (out / "colours.cfg").read_text() == TINY_TRAIN_CFG
    header, _ = read_weights(out / "colours.weights", parse_network(out / "colours.cfg"))
    assert header.seen == 40 * 12
    rows = list(csv.DictReader((out / "colours.csv").open()))
    assert len(rows) == 40 and float(rows[-1]["loss"]) == pytest.approx(result["final_loss"], rel=1e-4)
    assert Image.open(out / "colours.png").size[0] > 100
    # the weights classify with the engine's inference and with `tdn classify`
    net = engine.Network.load(out / "colours.cfg", out / "colours.weights")
    red = photos / "valid" / "red" / "0.png"
    code, stdout, err = run(
        capsys,
        "classify",
        out / "colours.cfg",
        out / "colours.weights",
        red,
        "--names",
        out / "colours.names",
        "--json",
        "--top",
        "1",
    )
    assert code == 0, err
    assert json.loads(stdout)["top"][0]["name"] == "red"
    assert net.predict(engine.resize(engine.load_image(red), 16, 16)).argmax() == 2


def test_resume_continues_the_schedule_and_clear_restarts_it(capsys, photos, cfg):
    first, second = photos / "first", photos / "second"
    assert run(capsys, "train", cfg, "--data", photos / "train", "--out", first, "--batches", "5")[0] == 0
    weights = first / "colours.weights"
    assert read_weights(weights, parse_network(cfg))[0].seen == 5 * 12
    code, _, err = run(
        capsys, "train", cfg, "--data", photos / "train", "--out", second, "--weights", weights, "--batches", "3"
    )
    assert code == 0, err
    assert read_weights(second / "colours.weights", parse_network(cfg))[0].seen == 8 * 12
    rows = list(csv.DictReader((second / "colours.csv").open()))
    assert [int(r["update"]) for r in rows] == [6, 7, 8]
    code, _, err = run(
        capsys,
        "train",
        cfg,
        "--data",
        photos / "train",
        "--out",
        second,
        "--weights",
        weights,
        "--batches",
        "2",
        "--clear",
    )
    assert code == 0, err
    assert read_weights(second / "colours.weights", parse_network(cfg))[0].seen == 2 * 12


def test_a_finished_schedule_asks_for_clear(capsys, photos, cfg):
    done = photos / "done"
    assert run(capsys, "train", cfg, "--data", photos / "train", "--out", done)[0] == 0
    code, _, err = run(
        capsys, "train", cfg, "--data", photos / "train", "--out", done, "--weights", done / "colours.weights"
    )
    assert code == 1
    assert "already had 40 updates" in err and "--clear" in err and len(err.strip().splitlines()) == 1


def test_partial_base_fine_tunes_a_new_head(capsys, photos, cfg, tmp_path):
    """darknet's recipe: partial keeps the first layers (seen 0); a cfg with a new head trains
    from it, starting from the base's layers and random ones after them."""
    trained = photos / "trained"
    assert run(capsys, "train", cfg, "--data", photos / "train", "--out", trained, "--batches", "10")[0] == 0
    base = tmp_path / "base.weights"
    code, stdout, err = run(capsys, "partial", cfg, trained / "colours.weights", base, 2)
    assert code == 0, err
    spec = parse_network(cfg)
    header, full = read_weights(trained / "colours.weights", spec)
    conv_floats = sum(a.size for a in full[0].values())
    assert base.stat().st_size == header.size + 4 * conv_floats and f"{conv_floats} weights" in stdout
    new_cfg = tmp_path / "two.cfg"
    new_cfg.write_text(
        TINY_TRAIN_CFG.replace("filters=3\n", "filters=2\n").replace("learning_rate=0.1", "learning_rate=0")
    )
    (photos / "two").mkdir()
    for name in ("blue", "red"):
        (photos / "two" / name).symlink_to(photos / "train" / name)
    code, _, err = run(
        capsys,
        "train",
        new_cfg,
        "--data",
        photos / "two",
        "--weights",
        base,
        "--out",
        photos / "tuned",
        "--batches",
        "1",
    )
    assert code == 0, err
    assert "the first 2 of 5 layers" in err
    _, tuned = read_weights(photos / "tuned" / "two.weights", parse_network(new_cfg))
    for name in ("weights", "biases", "scales"):  # a rate of 0 changes only the rolling statistics
        np.testing.assert_array_equal(tuned[0][name], full[0][name])


def test_in_order_without_augmentation_reproduces_darknets_run(capsys, tmp_path):
    """The shared oracle through the command: a .data list in darknet's order."""
    root = shared_path("darknet-train-oracle")
    oracle = json.loads((root / "oracle.json").read_text())
    images = tmp_path / "images"
    images.symlink_to(root / "images")
    order = [images / path for call in oracle["batches"] for path, _ in call]
    (tmp_path / "train.list").write_text("".join(f"{p}\n" for p in order))
    names = sorted(p.name for p in (root / "images").iterdir())
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n")
    data = tmp_path / "oracle.data"
    data.write_text(f"classes={len(names)}\ntrain=train.list\nlabels=labels.txt\n")
    code, _, err = run(
        capsys,
        "train",
        root / "net.cfg",
        "--data",
        data,
        "--weights",
        root / "start.weights",
        "--in-order",
        "--no-augment",
        "--batches",
        "4",
        "--out",
        tmp_path / "run",
    )
    assert code == 0, err
    spec = parse_network(root / "net.cfg")
    header, mine = read_weights(tmp_path / "run" / "net.weights", spec)
    darknet_header, darknet = read_weights(root / "trained.weights", spec)
    assert header.seen == darknet_header.seen
    for i, (a, b) in enumerate(zip(mine, darknet)):
        for name in b:
            assert (np.abs(a[name] - b[name]) <= 1e-5 + 1e-4 * np.abs(b[name])).all(), f"layer {i} {name}"


def test_unreadable_images_are_skipped_and_counted(capsys, photos, cfg):
    (photos / "train" / "red" / "broken.png").write_bytes(b"not a png")
    code, stdout, err = run(
        capsys, "train", cfg, "--data", photos / "train", "--out", photos / "run", "--batches", "6", "--json"
    )
    assert code == 0, err
    assert json.loads(stdout)["skipped_images"] == 1


def bad_input(tmp_path, kind: str):
    """(arguments, words the one-line error must contain) for a bad input of this kind."""
    cfg = tmp_path / "colours.cfg"
    cfg.write_text(TINY_TRAIN_CFG)
    if kind == "empty base":
        write_photos(tmp_path / "data")
        base = tmp_path / "base.weights"
        base.write_bytes(np.array([0, 2, 0, 0, 0], "<i4").tobytes())  # a version 0.2 header, nothing else
        return [cfg, "--data", tmp_path / "data", "--weights", base], [str(base), "holds no layer's weights"]
    if kind == "empty class folder":
        write_photos(tmp_path / "data")
        (tmp_path / "data" / "yellow").mkdir()
        return [cfg, "--data", tmp_path / "data"], [str(tmp_path / "data" / "yellow"), "has no images"]
    if kind in ("no label", "two labels"):
        write_photos(tmp_path / "data")
        odd = (
            tmp_path
            / "data"
            / ("other" if kind == "no label" else "red")
            / ("sky.png" if kind == "no label" else "blue.png")
        )
        odd.parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 16)).save(odd)
        (tmp_path / "list.txt").write_text(f"{tmp_path / 'data' / 'red' / '0.png'}\n{odd}\n")
        (tmp_path / "labels.txt").write_text("blue\ngreen\nred\n")
        (tmp_path / "set.data").write_text("train=list.txt\nlabels=labels.txt\n")
        words = ["names no label"] if kind == "no label" else ["two labels", "blue", "red"]
        return [cfg, "--data", tmp_path / "set.data"], [f"{tmp_path / 'list.txt'}:2", *words]
    if kind == "class count":
        write_photos(tmp_path / "data")
        cfg.write_text(TINY_TRAIN_CFG.replace("filters=3\n", "filters=4\n"))
        return [cfg, "--data", tmp_path / "data"], ["3 classes", "4 outputs"]
    if kind == "untrainable layer":
        write_photos(tmp_path / "data")
        cfg.write_text(TINY_TRAIN_CFG + "\n[cost]\ntype=wgan\n")
        return [cfg, "--data", tmp_path / "data"], [f"{cfg}:", "type=wgan cannot train"]
    if kind == "memory":
        write_photos(tmp_path / "data")
        return ["--memory", "64K", cfg, "--data", tmp_path / "data"], ["over the memory budget"]
    if kind == "diverges":
        write_photos(tmp_path / "data")
        cfg.write_text(TINY_TRAIN_CFG.replace("learning_rate=0.1", "learning_rate=1e30"))
        return [cfg, "--data", tmp_path / "data"], ["diverged", "no checkpoint had been written yet"]
    raise AssertionError(kind)


BAD_INPUTS = [
    "empty base",
    "empty class folder",
    "no label",
    "two labels",
    "class count",
    "untrainable layer",
    "memory",
    "diverges",
]


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_is_one_line_and_leaves_nothing(capsys, tmp_path, monkeypatch, kind):
    monkeypatch.setenv("TDN_MEMORY_BUDGET", "")  # --memory sets it for the process: put back after
    args, words = bad_input(tmp_path, kind)
    out = tmp_path / "out"
    argv = [*args[:2], "train", *args[2:]] if args[0] == "--memory" else ["train", *args]
    code, _, err = run(capsys, *argv, "--out", out)
    assert code == 1
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    for word in words:
        assert word in line, line
    leftovers = [p.name for p in out.iterdir()] if out.exists() else []
    assert not [name for name in leftovers if name.endswith((".weights", ".backup"))], leftovers
    if kind != "diverges":  # refused before any work
        assert leftovers == []


def test_ctrl_c_saves_a_backup_and_says_how_to_resume(photos, cfg):
    """SIGINT from outside, as a terminal's Ctrl+C: exit 130, one line, a whole .backup."""
    out = photos / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tdn_cli.main",
            "train",
            str(cfg),
            "--data",
            str(photos / "train"),
            "--out",
            str(out),
            "--batches",
            "1000000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not (out / "colours.names").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # some updates in
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    backup = out / "colours.backup"
    assert stderr.strip() == (
        f"tdn: error: interrupted at update {stderr.split('update ')[1].split(':')[0]}: "
        f"saved {backup}; resume with --weights {backup}"
    )
    header, _ = read_weights(backup, parse_network(cfg))
    assert header.seen > 0 and header.seen % 12 == 0
    assert not list(out.glob("*.tmp*")) and not (out / "colours.weights").exists()


def test_divergence_keeps_the_last_good_checkpoint(capsys, photos, tmp_path, monkeypatch):
    """The rate jumps a billionfold after update 100: the run stops with one line, and the
    backup written at update 100 is whole and finite."""
    cfg = tmp_path / "jump.cfg"
    cfg.write_text(
        TINY_TRAIN_CFG.replace(
            "policy=poly\npower=2\nmax_batches=40", "policy=steps\nsteps=101\nscales=1e9\nmax_batches=200"
        )
    )
    out = photos / "run"
    code, _, err = run(capsys, "train", cfg, "--data", photos / "train", "--out", out)
    assert code == 1
    assert "training diverged at update 10" in err and "the last good checkpoint is" in err
    assert f"{out / 'jump.backup'} (update 100)" in err and len(err.strip().splitlines()) == 1
    header, params = read_weights(out / "jump.backup", parse_network(cfg))
    assert header.seen == 100 * 12
    assert all(np.isfinite(a).all() for p in params for a in p.values())
    assert not (out / "jump.weights").exists()


def test_validation_as_it_goes(capsys, photos, cfg):
    argv = ["train", cfg, "--data", photos / "train", "--valid", photos / "valid", "--valid-every", "15"]
    code, _, err = run(capsys, *argv, "--out", photos / "run")
    assert code == 0, err
    reported = re.findall(r"update (\d+): top-1 ([\d.]+)%, top-5 100.0% on 12 images", err)
    assert [int(u) for u, _ in reported] == [15, 30]
    code, out, err = run(capsys, *argv, "--out", photos / "run", "--json")
    assert [v["update"] for v in json.loads(out)["validations"]] == [15, 30, 40]
