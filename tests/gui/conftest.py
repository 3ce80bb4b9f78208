"""GUI test setup: offscreen Qt, throwaway settings and model cache, small random models, media."""

from __future__ import annotations

import os
import tempfile

# Before anything imports Qt: no display needed, and the choice is the caller's if they set one.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings

import engine

from gui_helpers import MODEL_LOAD_MS, pattern
from support import SMALL_CFG


@pytest.fixture(autouse=True)
def isolated_user_state(tmp_path, monkeypatch):
    """Every test gets its own empty model cache and its own settings file."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TDN_CACHE_DIR", str(cache))
    settings_dir = tmp_path / "settings"
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(settings_dir))
    temp = tmp_path / "temp"  # where the Teach view's untitled projects go
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return cache


@dataclass(frozen=True)
class Model:
    cfg: Path
    weights: Path
    names: Path

    def argv(self) -> list[str]:
        return ["--model", str(self.cfg), "--weights", str(self.weights), "--names", str(self.names)]

    def names_list(self) -> list[str]:
        return self.names.read_text().splitlines()


# Big enough that one forward takes a noticeable slice of time: the responsiveness test wants
# the worker busy, not idle between frames.
MEDIUM_CFG = """[net]
width=160
height=160
channels=3

[convolutional]
filters=32
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=64
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky

[convolutional]
filters=10
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
"""

NAMES = ["apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "honeydew", "kiwi", "lemon"]


def _write_model(folder: Path, name: str, cfg_text: str, seed: int) -> Model:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / f"{name}.cfg"
    cfg.write_text(cfg_text)
    weights = folder / f"{name}.weights"
    engine.write_random_weights(cfg, weights, seed=seed)
    names = folder / "fruit.names"
    names.write_text("\n".join(NAMES) + "\n")
    return Model(cfg, weights, names)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Model:
    return _write_model(tmp_path_factory.mktemp("small"), "small", SMALL_CFG, seed=1)


@pytest.fixture(scope="session")
def medium_model(tmp_path_factory) -> Model:
    return _write_model(tmp_path_factory.mktemp("medium"), "medium", MEDIUM_CFG, seed=2)


@dataclass(frozen=True)
class Media:
    good: list[Path]  # images that decode, in the order the view lists them
    not_image: Path
    truncated: Path
    folder: Path  # holds two of the good images
    drop: list[Path]  # what a test drops: files, the bad ones and the folder


@pytest.fixture
def media(tmp_path) -> Media:
    root = tmp_path / "media"
    folder = root / "more"
    folder.mkdir(parents=True)
    a, b = root / "a.png", root / "b.png"
    Image.fromarray(pattern(1)).save(a)
    Image.fromarray(pattern(2, 64, 30)).save(b)
    not_image = root / "notes.txt"
    not_image.write_text("not a picture\n")
    full = root / "full.jpg"
    Image.fromarray(pattern(3, 200, 150)).save(full, quality=90)
    truncated = root / "truncated.jpg"
    truncated.write_bytes(full.read_bytes()[:700])
    full.unlink()
    c, d = folder / "c.png", folder / "d.jpg"
    Image.fromarray(pattern(4)).save(c)
    Image.fromarray(pattern(5, 40, 60)).save(d, quality=95)
    (folder / "readme.txt").write_text("skipped: folders contribute their images only\n")
    drop = [a, not_image, b, truncated, folder]
    return Media([a, b, c, d], not_image, truncated, folder, drop)


@pytest.fixture(scope="session")
def video(tmp_path_factory) -> Path:
    """60 frames of 160x120 MJPG at 30 fps: a bright square moving over a gradient."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for i in range(60):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:, :, 0] = np.linspace(0, 255, 160, dtype=np.uint8)[None, :]
        frame[:, :, 1] = (i * 4) % 256
        x = (i * 2) % 120
        frame[40:80, x : x + 40] = (255, 255, 255)
        writer.write(frame)
    writer.release()
    return path


def _expected_top(model: Model, image: np.ndarray, resize: str = "min") -> list[tuple[str, str]]:
    from tdn_gui.views.top_bars import format_percent

    net = engine.Network.load(model.cfg, model.weights)
    clf = engine.Classifier(net, names=model.names_list(), resize=resize)
    return [(name, format_percent(p)) for _, name, p in clf.classify(image).top(5)]


@pytest.fixture
def expected_top():
    """The engine's own answer, as the bars should show it: [(name, percentage text)] best first.

    Call it only while no worker thread is classifying: Numba's parallel kernels must not run on
    two threads at once (the rule the app itself follows).
    """
    return _expected_top


@pytest.fixture
def open_window(qtbot):
    """open_window(argv) -> the window built as `tdn-gui argv` would, after its model loaded.

    At teardown every window is closed and its threads must have finished.
    """
    from tdn_gui.app import build_window

    windows = []

    def open_(argv, wait_model=True):
        window = build_window([str(a) for a in argv])
        windows.append(window)
        if wait_model:
            qtbot.waitUntil(lambda: window.model_info is not None, timeout=MODEL_LOAD_MS)
        return window

    yield open_
    for window in windows:
        window.close()
        assert not window.worker.is_running()
        assert not any(t.is_alive() for t in window.worker.scheduler.threads())
        capture = window.webcam_view.last_capture
        assert capture is None or capture.isFinished()
        assert window.webcam_view.capture is None
