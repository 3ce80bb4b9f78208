"""Help ▸ About tdn and Help ▸ Keyboard shortcuts on the real window, and the window's icon."""

from __future__ import annotations

import re

import engine
from engine import registry
from engine.kernels import KernelStatus
from engine.version import version
from PySide6.QtCore import QSize
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from tdn_gui.icon import ICON_SIZES
from tdn_gui.views import help_menu


def menu_texts(window) -> list[str]:
    return [a.text() for a in window.menuBar().actions()]


def test_help_menu_is_last_with_its_two_entries(open_window, small_model):
    window = open_window(small_model.argv())
    assert menu_texts(window)[-1] == "&Help"
    help_ = window.menuBar().actions()[-1].menu()
    assert [help_menu.plain(a.text()) for a in help_.actions()] == ["Keyboard shortcuts", "About tdn"]


def test_about_names_version_model_engine_and_licence(open_window):
    engine.write_random_weights(registry.cfg_path("tiny"), registry.weights_path("tiny"), seed=0)
    window = open_window([])  # Tiny Darknet from the model cache
    window.worker.kernels_changed.emit(KernelStatus("auto", 10, 10, False, 1.0))
    text = help_menu.about_text(window)
    assert f"<h3>tdn {version()}</h3>" in text
    info = window.model_info
    assert f"{info.name} · 224×224 (any size) · {info.bflops:.2f} BFLOPs" in text
    assert f"compiled kernels (Numba), {info.threads} threads" in text
    assert "Tiny Darknet's, as published with darknet" in text and "Darknet is public domain" in text

    box = help_menu.show_about(window)  # opened without blocking
    assert box.isVisible() and box.windowTitle() == "About tdn" and box.text() == text
    assert not box.iconPixmap().isNull()
    box.done(QMessageBox.StandardButton.Close)
    assert not box.isVisible()


def test_about_with_own_files_and_no_model(open_window, small_model):
    window = open_window(small_model.argv())
    text = help_menu.about_text(window)
    assert "your own files: " + str(small_model.weights) in text
    assert "Portable kernels" in text or "portable kernels" in text
    window.model_info = window.live_info = None  # as after a model that failed to load
    assert "<b>Model</b>&nbsp;&nbsp;</td><td>none loaded" in help_menu.about_text(window)


def test_shortcuts_are_read_off_the_actions(open_window, small_model):
    window = open_window(small_model.argv())
    rows = help_menu.shortcut_rows(window)
    native = QKeySequence.SequenceFormat.NativeText
    assert ("File ▸ Open images…", QKeySequence(QKeySequence.StandardKey.Open).toString(native)) in rows
    assert ("File ▸ Open images…", "Ctrl+O") in rows
    assert ("File ▸ Classify folder…", "Ctrl+Shift+O") in rows
    assert ("Remove from class…", "Del") in rows  # the Teach view's thumbnails
    # Every action with a shortcut is there once, as the action itself says, and nothing else
    expected = sorted(
        (re.sub(r"&(.)", r"\1", a.text()), ", ".join(s.toString(native) for s in a.shortcuts()))
        for a in window.findChildren(QAction)
        if a.shortcuts()
    )
    assert sorted((where.rsplit(" ▸ ", 1)[-1], keys) for where, keys in rows) == expected

    dialog = help_menu.show_shortcuts(window)
    table = dialog.findChild(help_menu.QTableWidget)
    shown = [(table.item(i, 0).text(), table.item(i, 1).text()) for i in range(table.rowCount())]
    assert shown == rows
    dialog.close()


def test_window_icon_has_every_size(open_window, small_model):
    window = open_window(small_model.argv())
    icon = window.windowIcon()
    assert not icon.isNull()
    assert sorted(s.width() for s in icon.availableSizes()) == list(ICON_SIZES)
    assert all(s.width() == s.height() for s in icon.availableSizes())
    image = icon.pixmap(QSize(48, 48)).toImage()
    corner, middle = image.pixelColor(0, 0), image.pixelColor(24, 24)
    assert corner.alpha() == 0 and middle.alpha() == 255  # a rounded tile on transparency
