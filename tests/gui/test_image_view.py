"""The image view through the window: drops, the strip, arrow keys, paste, broken files."""

from __future__ import annotations

import engine
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from gui_helpers import pattern
from tdn_gui.qt_image import qimage_from_rgb, rgb_from_qimage


def drop_files(window, paths) -> bool:
    """A real drag-enter + drop of file URLs, as a file manager would send them."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(
        pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    return enter.isAccepted() and drop.isAccepted()


def wait_batch(qtbot, view, timeout=30_000):
    qtbot.waitUntil(lambda: view.entries and all(e.state in ("done", "error") for e in view.entries), timeout=timeout)


# PySide marks QDragEnterEvent's only constructor deprecated; it is still what Qt sends on a drag.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_drop_files_and_folder_then_flip_with_arrow_keys(qtbot, open_window, small_model, media, expected_top):
    # The expected answers come first, while no worker exists (one Numba user at a time).
    order = [media.good[0], media.not_image, media.good[1], media.truncated, *media.good[2:]]
    expected = {p.name: expected_top(small_model, engine.load_image(p)) for p in media.good}
    window = open_window(small_model.argv())
    view = window.image_view

    assert drop_files(window, media.drop)
    wait_batch(qtbot, view)
    assert [e.label for e in view.entries] == [p.name for p in order]
    shown = []
    for row, path in enumerate(order):
        view.select(row)
        entry = view.entries[row]
        if path.name in expected:
            assert entry.error is None, entry.error
            assert view.bars.rows() == expected[path.name]
            assert view.canvas.image() is not None
            assert view.timing.text().endswith(" ms")
        else:
            assert view.bars.is_error()
            assert path.name in view.bars.message()  # the message names the file
            assert view.bars.rows() == []
        shown.append(view.bars.rows())
    assert len({tuple(r) for r in shown if r}) > 1, "different images gave identical bars"

    # Arrow keys in the strip flip through the images, image and bars together.
    view.select(0)
    view.setFocus()
    first_image = view.canvas.image()
    qtbot.keyClick(view.strip, Qt.Key.Key_Right)
    assert view.current_index() == 1 and view.bars.is_error()  # notes.txt
    qtbot.keyClick(view.strip, Qt.Key.Key_Right)
    assert view.current_index() == 2
    assert view.bars.rows() == expected[order[2].name]
    assert view.canvas.image().cacheKey() != first_image.cacheKey()
    qtbot.keyClick(view.strip, Qt.Key.Key_Left)
    qtbot.keyClick(view.strip, Qt.Key.Key_Left)
    assert view.current_index() == 0
    assert view.bars.rows() == expected[order[0].name]


def test_images_on_the_command_line(qtbot, open_window, small_model, media):
    window = open_window([*small_model.argv(), media.good[0], media.folder])
    wait_batch(qtbot, window.image_view)
    assert [e.label for e in window.image_view.entries] == ["a.png", "c.png", "d.jpg"]
    assert all(e.state == "done" for e in window.image_view.entries)


def test_paste_image_data_from_the_clipboard(qtbot, open_window, small_model, expected_top):
    pixels = pattern(7, 50, 36)
    expected = expected_top(small_model, pixels)
    window = open_window(small_model.argv())
    QGuiApplication.clipboard().setImage(qimage_from_rgb(pixels))
    window.paste()
    wait_batch(qtbot, window.image_view)
    entry = window.image_view.entries[-1]
    assert entry.label == "Pasted image 1" and entry.state == "done"
    assert window.image_view.bars.rows() == expected


def test_resize_mode_change_reclassifies(qtbot, open_window, small_model, media, expected_top):
    path = media.good[1]  # 64x30: min, letterbox and stretch differ
    expected = expected_top(small_model, engine.load_image(path), resize="stretch")
    window = open_window([*small_model.argv(), path])
    wait_batch(qtbot, window.image_view)
    window.resize_actions["stretch"].trigger()
    wait_batch(qtbot, window.image_view)
    assert window.image_view.bars.rows() == expected
    assert window.settings.resize(engine.RESIZE_MODES) == "stretch"


def test_only_bad_files(qtbot, open_window, small_model, media):
    window = open_window([*small_model.argv(), media.truncated])
    wait_batch(qtbot, window.image_view)
    assert window.image_view.bars.is_error()
    assert "truncated.jpg" in window.image_view.bars.message()
    assert window.image_view.canvas.image() is None


def test_qimage_round_trip_keeps_pixels_and_owns_memory():
    pixels = pattern(3, 33, 17)  # odd width: rows are not 4-byte aligned
    image = qimage_from_rgb(pixels)
    del pixels
    again = rgb_from_qimage(image)
    assert again.shape == (17, 33, 3) and again.flags.owndata
    assert np.array_equal(again, pattern(3, 33, 17))
    assert rgb_from_qimage(image.convertToFormat(QImage.Format.Format_ARGB32)).tobytes() == again.tobytes()
