"""The webcam view fed by a video file (a file is a camera too), and cameras that fail."""

from __future__ import annotations

import glob

import cv2
import numpy as np
import pytest
from PIL import Image

from gui_helpers import MODEL_LOAD_MS
from tdn_gui.views import capture


def test_video_file_plays_and_is_classified_live(qtbot, open_window, small_model, video, tmp_path):
    window = open_window([*small_model.argv(), "--camera", video])
    cam = window.webcam_view
    assert window.tabs.currentWidget() is cam and cam.is_running()
    qtbot.waitUntil(lambda: cam.frames_shown >= 20 and cam.results_shown >= 5, timeout=20_000)
    print(f"\ncamera {cam.camera_fps:.1f} fps, inference {cam.inference_fps:.1f} fps, {cam.latency_ms:.1f} ms")
    assert cam.camera_fps > 0 and cam.inference_fps > 0 and cam.latency_ms > 0  # figures to show
    # A 30 fps file is played at its own rate, not flat out (a camera paces itself)
    assert "at 30 fps, looping" in cam.status.text()
    assert cam.capture.frame_period == pytest.approx(1 / 30)
    assert len(cam.bars.rows()) == 5
    # the rates line is refreshed a few times a second with the measured figures
    qtbot.waitUntil(lambda: f"inference {cam.inference_fps:.1f} fps" in cam.stats.text(), timeout=2_000)
    assert "Camera" in cam.stats.text() and "–" not in cam.stats.text()
    # frames arrive scaled (by the capture thread) to the canvas, aspect kept, and are drawn 1:1
    box_w, box_h, _ = cam.canvas.pixel_box()
    shown = cam.canvas.image()
    assert (shown.width(), shown.height()) in {capture.fit_size(160, 120, box_w, box_h), (160, 120)}
    qtbot.waitUntil(
        lambda: (cam.canvas.image().width(), cam.canvas.image().height()) == capture.fit_size(160, 120, box_w, box_h),
        timeout=2_000,
    )
    assert "clip.avi" in cam.status.text() and "160×120" in cam.status.text()

    # The file loops: after its 60 frames (2 s) frames keep coming.
    qtbot.waitUntil(lambda: cam.capture.frames_read > 70, timeout=10_000)

    # Pause freezes the frame and the bars; a snapshot saves the frozen frame.
    cam.pause_button.setChecked(True)
    frozen, bars, shown = cam.canvas.image().cacheKey(), cam.bars.rows(), cam.frames_shown
    read = cam.capture.frames_read
    qtbot.waitUntil(lambda: cam.capture.frames_read >= read + 10, timeout=10_000)  # frames keep coming...
    assert cam.canvas.image().cacheKey() == frozen and cam.bars.rows() == bars  # ...and none is shown
    assert cam.frames_shown == shown
    snap = tmp_path / "snap.png"
    assert cam.save_snapshot(str(snap))
    assert Image.open(snap).size == (160, 120)
    cam.pause_button.setChecked(False)
    shown = cam.frames_shown
    qtbot.waitUntil(lambda: cam.frames_shown > shown + 3, timeout=5_000)

    thread = cam.capture
    cam.stop()
    assert thread.isFinished() and not cam.is_running()
    assert window.settings.camera() == str(video)


def test_switching_models_while_the_camera_runs(qtbot, open_window, small_model, medium_model, video):
    """Both lanes move to the new model; frames keep being classified, none with an error."""
    from tdn_gui.settings import ModelChoice

    window = open_window([*small_model.argv(), "--camera", video])
    cam, worker = window.webcam_view, window.worker
    qtbot.waitUntil(lambda: cam.results_shown >= 3, timeout=20_000)
    errors = []
    cam.result_shown.connect(lambda r: r.error and errors.append(r.error))
    with qtbot.waitSignal(worker.model_loaded, timeout=MODEL_LOAD_MS):
        window.choose_model(
            ModelChoice(cfg=str(medium_model.cfg), weights=str(medium_model.weights), names=str(medium_model.names))
        )
    shown = cam.results_shown
    qtbot.waitUntil(lambda: cam.results_shown >= shown + 5, timeout=20_000)
    assert not errors
    assert "medium" in window.model_label.text()


def test_display_image_scales_to_the_view_and_keeps_colours():
    bgr = np.zeros((120, 160, 3), np.uint8)
    bgr[:, :80] = (0, 0, 255)  # left half red, right half blue (OpenCV's BGR order)
    bgr[:, 80:] = (255, 0, 0)
    same = capture.display_image(bgr, None)
    assert (same.width(), same.height()) == (160, 120)
    big = capture.display_image(bgr, (400, 400, 1.0))
    assert (big.width(), big.height()) == (400, 300)  # fits the width, aspect kept
    assert big.pixelColor(10, 150).getRgb()[:3] == (255, 0, 0)
    assert big.pixelColor(390, 150).getRgb()[:3] == (0, 0, 255)
    tall = capture.display_image(bgr, (100, 400, 1.0))
    assert (tall.width(), tall.height()) == (100, 75)
    hidpi = capture.display_image(bgr, (400, 400, 2.0))  # device pixels on a 2x screen
    assert (hidpi.width(), hidpi.height()) == (400, 300)
    assert hidpi.deviceIndependentSize().toSize().width() == 200


def test_camera_that_does_not_open(qtbot, open_window, small_model):
    window = open_window([*small_model.argv(), "--camera", "99"])
    cam = window.webcam_view
    qtbot.waitUntil(lambda: not cam.is_running(), timeout=10_000)
    assert cam.status.text() == "Could not open camera 99."
    assert cam.bars.is_error()
    assert cam.last_capture.isFinished()


def test_video_file_that_does_not_exist(qtbot, open_window, small_model, tmp_path):
    window = open_window([*small_model.argv(), "--camera", tmp_path / "nope.mp4"])
    cam = window.webcam_view
    qtbot.waitUntil(lambda: not cam.is_running(), timeout=10_000)
    assert "Video file not found" in cam.status.text()
    window.webcam_view.set_source(0)  # the app stays usable: pick something else
    assert cam.current_source() == 0


def test_file_that_is_not_a_video(qtbot, open_window, small_model, tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 1000)
    window = open_window([*small_model.argv(), "--camera", fake])
    cam = window.webcam_view
    qtbot.waitUntil(lambda: not cam.is_running(), timeout=10_000)
    assert "fake.mp4" in cam.status.text()


def test_scan_without_cameras_says_so(qtbot, open_window, small_model):
    if glob.glob("/dev/video*"):
        pytest.skip("this machine has cameras: the scan would find them")
    window = open_window(small_model.argv())
    cam = window.webcam_view
    cam.scan()
    assert not cam.scan_button.isEnabled() and cam.status.text() == "Scanning cameras…"
    qtbot.waitUntil(lambda: cam.scan_button.isEnabled(), timeout=10_000)
    assert cam.status.text() == "No camera found."
    assert cam.source.itemText(0) == "Camera 0 (not found)"


class _VanishingCamera:
    """Stands in for cv2.VideoCapture: a camera that gives a few frames, then is unplugged."""

    def __init__(self, source):
        self.left = 5

    def isOpened(self):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48, cv2.CAP_PROP_FPS: 30}.get(prop, 0)

    def read(self):
        self.left -= 1
        if self.left < 0:
            return False, None
        return True, np.full((48, 64, 3), 80, np.uint8)

    def set(self, prop, value):
        return True

    def release(self):
        pass


def test_camera_that_disappears_mid_stream(qtbot, open_window, small_model, monkeypatch):
    monkeypatch.setattr(capture.cv2, "VideoCapture", _VanishingCamera)
    window = open_window([*small_model.argv(), "--camera", "3"])
    cam = window.webcam_view
    qtbot.waitUntil(lambda: not cam.is_running(), timeout=10_000)
    assert cam.frames_shown >= 1
    assert cam.status.text() == "camera 3 stopped delivering frames."
    assert cam.bars.is_error() and cam.last_capture.isFinished()
    assert cam.start_button.text() == "Start"  # usable: it can be started again
