"""The main window as a whole: missing weights, download, model menu, settings, responsiveness."""

from __future__ import annotations

import os
import subprocess
import sys

import engine
from engine import registry
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtWidgets import QApplication

from gui_helpers import ANY_IMAGE, MODEL_LOAD_MS, Gate, gated
from tdn_gui.app import main
from tdn_gui.settings import ModelChoice, Settings
from tdn_gui.views import main_window
from tdn_gui.views.main_window import MainWindow
from tdn_gui.worker import qt_download
from tdn_gui.worker.scheduler import models


def put_random_weights(key: str) -> None:
    """Stand-in for a downloaded model: the project's real cfg, seeded random weights."""
    engine.write_random_weights(registry.cfg_path(key), registry.weights_path(key), seed=0)


def test_missing_weights_explain_and_offer_download(qtbot, open_window):
    window = open_window([], wait_model=False)  # default model: Tiny Darknet, not downloaded
    assert window.panel.isVisible()
    assert "Tiny Darknet" in window.panel.title.text()
    assert str(registry.weights_path("tiny")) in window.panel.text.text()
    assert window.panel.download_button.isVisible()
    assert window.panel.download_button.text() == "Download Tiny Darknet (4 MB)"
    assert window.model_label.text() == "No model"
    assert window.image_view.bars.message() == "No model loaded yet."
    assert window.webcam_view.bars.message() == "Waiting for a model…"


def test_download_button_downloads_then_loads(qtbot, open_window, monkeypatch):
    calls = []

    def fake_download(key, progress=None, cancel=None):
        calls.append(key)
        for done in range(0, 4_000_001, 1_000_000):
            progress(done, 4_000_000)
        put_random_weights(key)
        return registry.weights_path(key)

    monkeypatch.setattr(qt_download.download, "download_model", fake_download)
    window = open_window([], wait_model=False)
    with qtbot.waitSignal(window.worker.model_loaded, timeout=MODEL_LOAD_MS):
        qtbot.mouseClick(window.panel.download_button, Qt.MouseButton.LeftButton)
    assert calls == ["tiny"]
    assert not window.panel.isVisible()
    assert "tiny · 224×224" in window.model_label.text()


def test_download_cancel_leaves_the_offer(qtbot, open_window, monkeypatch):
    def fake_download(key, progress=None, cancel=None):
        while not cancel.wait(0.01):
            progress(0, None)
        raise qt_download.download.DownloadCancelled("cancelled")

    monkeypatch.setattr(qt_download.download, "download_model", fake_download)
    window = open_window([], wait_model=False)
    window.download_model("tiny")
    thread = window._download
    thread.cancel.set()  # what the progress dialog's Cancel button does
    qtbot.waitUntil(lambda: window._download is None, timeout=5_000)
    assert thread.isFinished()
    assert window.panel.isVisible() and window.panel.download_button.isEnabled()


def test_model_menu_switches_models(qtbot, open_window, small_model):
    put_random_weights("tiny")
    window = open_window(small_model.argv())
    assert "small · 32×32" in window.model_label.text()
    with qtbot.waitSignal(window.worker.model_loaded, timeout=MODEL_LOAD_MS) as blocker:
        window.model_actions["tiny"].trigger()
    info = blocker.args[0]
    assert info.key == "tiny" and info.input_size == (224, 224) and info.classes == 1000
    assert window.model_label.text().startswith("tiny · 224×224")
    assert f"{info.bflops:.2f} BFLOPs" in window.model_label.text()
    assert window.settings.model() == ModelChoice(key="tiny")
    # A model whose weights are missing: the offer to download, the app still usable.
    window.model_actions["darknet"].trigger()
    assert window.panel.isVisible() and "Darknet Reference" in window.panel.download_button.text()


def test_settings_are_remembered(qtbot, open_window, small_model, video):
    window = open_window([*small_model.argv(), "--camera", video])
    assert window.webcam_resize_mode == "letterbox"  # the first run's default for frames
    window.set_resize("letterbox")
    window.webcam_resize_actions["stretch"].trigger()
    assert window.resize_actions["letterbox"].isChecked() and window.webcam_resize_actions["stretch"].isChecked()
    window.resize(700, 500)
    window.close()
    settings = Settings()
    assert settings.model() == ModelChoice(
        cfg=str(small_model.cfg), weights=str(small_model.weights), names=str(small_model.names)
    )
    assert settings.resize(engine.RESIZE_MODES) == "letterbox"
    assert settings.webcam_resize(engine.RESIZE_MODES) == "stretch"
    assert settings.camera() == str(video)
    again = open_window([])  # no arguments: the remembered model, resize mode and camera
    assert again.model_info.name == "small"
    assert again.resize_mode == "letterbox" and again.webcam_resize_mode == "stretch"
    assert again.webcam_view.current_source() == str(video)
    assert again.size() == QSize(700, 500)


def test_the_gui_never_waits_for_inference(qtbot, open_window, medium_model, video, monkeypatch):
    """While the worker is held in the middle of a frame, the window goes on: camera frames are
    shown and timers fire; when the worker comes free, results come again."""
    gate = Gate(ANY_IMAGE)
    monkeypatch.setattr(models, "engine_classifier", gated(gate))
    window = open_window([*medium_model.argv(), "--camera", video])
    cam = window.webcam_view
    qtbot.waitUntil(gate.entered.is_set, timeout=MODEL_LOAD_MS)  # the worker holds a frame
    shown, results = cam.frames_shown, cam.results_shown
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(None))
    timer.start()
    qtbot.waitUntil(lambda: cam.frames_shown >= shown + 20 and len(ticks) >= 20, timeout=20_000)
    timer.stop()
    assert cam.results_shown == results and not gate.opened.is_set()  # all that while
    gate.opened.set()
    qtbot.waitUntil(lambda: cam.results_shown >= results + 5, timeout=30_000)


def test_close_while_everything_runs(qtbot, open_window, small_model, video, media):
    window = open_window([*small_model.argv(), "--camera", video, *media.good])
    qtbot.waitUntil(lambda: window.webcam_view.frames_shown > 3, timeout=10_000)
    window.close()
    assert not window.worker.is_running() and window.webcam_view.last_capture.isFinished()


def test_main_runs_and_exits_when_the_window_closes(qtbot, small_model):
    def close_all():
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible():
                widget.close()

    QTimer.singleShot(1_000, close_all)
    assert main(small_model.argv()) == 0


def test_open_cfg_and_weights_with_the_file_dialogs(qtbot, open_window, small_model, medium_model, monkeypatch):
    answers = iter([(str(medium_model.cfg), ""), (str(medium_model.weights), "")])
    monkeypatch.setattr(main_window.QFileDialog, "getOpenFileName", lambda *a, **k: next(answers))
    window = open_window(small_model.argv())
    with qtbot.waitSignal(window.worker.model_loaded, timeout=MODEL_LOAD_MS) as blocker:
        window.open_model_action.trigger()
    assert blocker.args[0].name == "medium" and blocker.args[0].names is None  # no names downloaded
    assert window.model_label.text().startswith("medium · 160×160")
    assert not any(a.isChecked() for a in window.model_actions.values())


def test_help_needs_no_display():
    """`tdn-gui --help` answers on a machine without a display (Qt is not started for it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"  # the platform a desktop would use, and cannot here
    done = subprocess.run(
        [sys.executable, "-m", "tdn_gui", "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--webcam-resize" in done.stdout and "letterbox at first" in done.stdout


def test_an_unknown_engine_setting_is_one_line_and_no_window(monkeypatch, capsys):
    for variable, value in (("TDN_SIMD", "avx9"), ("TDN_KERNELS", "fastest")):
        monkeypatch.setenv(variable, value)
        before = set(QApplication.topLevelWidgets())  # (earlier tests' closed windows may linger)
        assert main([]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"tdn-gui: {variable}='{value}': choose one of ") and "\n" not in err
        assert not any(isinstance(w, MainWindow) for w in set(QApplication.topLevelWidgets()) - before)
        monkeypatch.delenv(variable)
