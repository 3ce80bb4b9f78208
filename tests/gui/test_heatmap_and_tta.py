"""Heatmaps and test-time augmentation in the real window: the toggle, the bar that picks the
class, the picture over the canvas, the line for a network without maps, the webcam live, and
Resize ▸ Test-time augmentation for images and for the webcam."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

import engine
from gui_helpers import MODEL_LOAD_MS
from tdn_gui.views.top_bars import MARGIN, ROW_HEIGHT, format_percent

# SMALL_CFG's classifier with a [connected] layer instead of the 1x1 conv + avgpool
CONNECTED_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[connected]
output=10
activation=linear

[softmax]
"""


def wait_done(qtbot, view, heatmap=None):
    """Until every image is classified (and, heatmap=True, carries its map or the reason why not)."""

    def done():
        if not view.entries or not all(e.state in ("done", "error") for e in view.entries):
            return False
        return heatmap is None or all(
            e.result is not None and (e.result.heatmap is not None or e.result.heatmap_note) for e in view.entries
        )

    qtbot.waitUntil(done, timeout=30_000)


def click_row(qtbot, bars, row: int) -> None:
    qtbot.mouseClick(bars, Qt.MouseButton.LeftButton, pos=QPoint(40, MARGIN + row * ROW_HEIGHT + 10))


def overlay_pixels(canvas) -> np.ndarray:
    """The canvas's overlay picture as (rows, cols, 4) uint8."""
    image = canvas.overlay()
    ptr = image.constBits()
    return (
        np.frombuffer(ptr, np.uint8, image.sizeInBytes())
        .reshape(image.height(), image.bytesPerLine())[:, : 4 * image.width()]
        .reshape(image.height(), image.width(), 4)
    )


def test_the_heatmap_covers_the_photo_and_follows_the_clicked_bar(qtbot, open_window, small_model, media):
    window = open_window([*small_model.argv(), media.good[1]])  # 64x30
    view = window.image_view
    wait_done(qtbot, view)
    assert view.entries[0].result.heatmap is None and view.canvas.overlay() is None
    view.heatmap.toggle.setChecked(True)  # classified again, with maps
    wait_done(qtbot, view, heatmap=True)
    result = view.entries[0].result
    top = result.top[0][0]
    assert view.bars.selected() == top
    assert view.heatmap.caption.text() == f"Heatmap of {result.names[top]} (the top class)"
    np.testing.assert_array_equal(overlay_pixels(view.canvas), result.heatmap.rgba(top))
    # the map over the 64x30 photo: min mode gives a 68x32 input, its 1x1 conv's 34x16 map
    assert result.heatmap.shape == (16, 34)

    click_row(qtbot, view.bars, 2)
    third = result.top[2][0]
    assert view.bars.selected() == third
    assert view.heatmap.caption.text() == f"Heatmap of {result.names[third]}"
    np.testing.assert_array_equal(overlay_pixels(view.canvas), result.heatmap.rgba(third))
    click_row(qtbot, view.bars, 2)  # again: back to the top class
    assert view.bars.selected() == top

    view.heatmap.opacity_slider.setValue(30)
    assert view.canvas.overlay_opacity() == pytest.approx(0.3)
    view.heatmap.toggle.setChecked(False)
    assert view.canvas.overlay() is None and view.bars.selected() is None
    assert not view.heatmap.caption.isVisible()


def test_a_network_without_maps_says_why_and_draws_nothing(qtbot, open_window, small_model, media, tmp_path):
    cfg = tmp_path / "connected.cfg"
    cfg.write_text(CONNECTED_CFG)
    weights = tmp_path / "connected.weights"
    engine.write_random_weights(cfg, weights, seed=4)
    window = open_window(["--model", cfg, "--weights", weights, "--names", small_model.names, media.good[0]])
    view = window.image_view
    view.heatmap.toggle.setChecked(True)
    wait_done(qtbot, view, heatmap=True)
    note = view.entries[0].result.heatmap_note
    assert "[connected]" in note and "no heatmap" in note and "\n" not in note
    assert view.heatmap.caption.text() == note
    assert view.canvas.overlay() is None
    assert len(view.bars.rows()) == 5  # the answer is still shown


def test_the_webcam_heatmap_comes_with_every_answer(qtbot, open_window, small_model, video):
    window = open_window([*small_model.argv(), "--camera", video])
    cam = window.webcam_view
    qtbot.waitUntil(lambda: cam.results_shown >= 1, timeout=20_000)
    cam.heatmap.toggle.setChecked(True)
    mapped = []
    cam.result_shown.connect(lambda r: mapped.append(r.heatmap is not None))
    qtbot.waitUntil(lambda: mapped.count(True) >= 10, timeout=20_000)
    first = mapped.index(True)
    assert all(mapped[first:])  # once asked for, every answer brings its map
    shown = cam._last_result
    index = cam.bars.top_class()
    np.testing.assert_array_equal(overlay_pixels(cam.canvas), shown.heatmap.rgba(index))


def test_test_time_augmentation_for_images_is_a_menu_choice_and_remembered(qtbot, open_window, small_model, media):
    path = media.good[1]
    window = open_window([*small_model.argv(), path])
    view = window.image_view
    wait_done(qtbot, view)
    before = view.bars.rows()
    window.tta_action.trigger()
    assert window.tta_action.isChecked() and window.settings.tta() and not window.settings.tta(stream=True)
    qtbot.waitUntil(lambda: view.entries[0].state == "done" and view.bars.rows() != before, timeout=30_000)
    net = engine.Network.load(small_model.cfg, small_model.weights)
    expected = engine.Classifier(net, small_model.names_list(), tta="flip,scales").classify(engine.load_image(path))
    assert view.bars.rows() == [(n, format_percent(p)) for _, n, p in expected.top(5)]
    window.close()
    again = open_window([*small_model.argv()])
    assert again.tta_action.isChecked() and not again.webcam_tta_action.isChecked()


def test_test_time_augmentation_for_the_webcam_alone(qtbot, open_window, small_model, video):
    window = open_window([*small_model.argv(), "--camera", video])
    cam = window.webcam_view
    qtbot.waitUntil(lambda: cam.results_shown >= 1, timeout=20_000)
    window.webcam_tta_action.trigger()
    assert window.settings.tta(stream=True) and not window.settings.tta()
    models = window.worker.scheduler._models
    qtbot.waitUntil(
        lambda: models.stream_classifier is not None and models.stream_classifier.tta == ("flip", "scales"),
        timeout=MODEL_LOAD_MS,
    )
    assert models.classifier.tta == ()
    count = cam.results_shown
    qtbot.waitUntil(lambda: cam.results_shown >= count + 5, timeout=20_000)  # still live
