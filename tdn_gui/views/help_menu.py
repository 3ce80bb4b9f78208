"""The main window's Help menu: About tdn, and the keyboard shortcuts read off the window's actions.

The texts are built by functions of their own (about_text, shortcut_rows), which the dialogs show
and the tests read, so nothing here has to be clicked through a modal dialog to be checked.
"""

from __future__ import annotations

import html
import re

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..worker.engine_api import MODELS, version
from .model_panel import model_summary

# darknet's LICENSE (pjreddie/darknet) reads, after a joke preamble: "0. Darknet is public domain.
# 1. Do whatever you want with it. 2. Stop emailing me about it!"
DARKNET_LICENCE = (
    "The Model menu's weights are those pjreddie published with darknet, which is public "
    "domain: darknet's LICENSE says “Darknet is public domain. Do whatever you want with it.”"
)


def add_help_menu(window: QMainWindow) -> QMenu:
    menu = window.menuBar().addMenu("&Help")
    keys = menu.addAction("&Keyboard shortcuts")
    keys.triggered.connect(lambda: show_shortcuts(window))
    about = menu.addAction("&About tdn")
    about.setMenuRole(QAction.MenuRole.AboutRole)
    about.triggered.connect(lambda: show_about(window))
    return menu


def about_text(window) -> str:
    """Help ▸ About's text (Qt rich text): the version, the model, the kernels and threads, licences."""
    info, live = window.model_info, window.live_info
    if info is None:
        model = "none loaded"
        weights = ""
    else:
        model = html.escape(model_summary(info))
        if live is not None and live.taught:
            model += " (classifying with the classes taught in the Teach view)"
        weights = (
            f"{html.escape(MODELS[info.key].title)}'s, as published with darknet"
            if info.key in MODELS
            else f"your own files: {html.escape(info.weights)}"
        )
    status = window.kernel_label.status
    kernels = status.describe() if status is not None else "not known yet"
    threads = f", {info.threads} threads" if info is not None else ""
    rows = [("Model", model), ("Weights", weights), ("Engine", f"{html.escape(kernels)}{threads}")]
    table = "".join(f"<tr><td><b>{name}</b>&nbsp;&nbsp;</td><td>{value}</td></tr>" for name, value in rows if value)
    return (
        f"<h3>tdn {html.escape(version())}</h3>"
        "<p>Tiny Darknet on the desktop: darknet's ImageNet classifiers run by a numpy + Numba engine.</p>"
        f"<table>{table}</table>"
        f"<p>{html.escape(DARKNET_LICENCE)}</p>"
    )


def show_about(window) -> QMessageBox:
    """Help ▸ About tdn, opened without blocking (returned, so that a caller may close it)."""
    box = QMessageBox(window)
    box.setWindowTitle("About tdn")
    box.setText(about_text(window))
    box.setIconPixmap(window.windowIcon().pixmap(64, 64))
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 26em; }")  # else wrapped to a narrow column
    box.open()
    return box


def plain(text: str) -> str:
    """A menu text as read: the mnemonic's '&' gone ('&&' is a literal '&')."""
    return re.sub(r"&(.)", r"\1", text)


def shortcut_rows(window) -> list[tuple[str, str]]:
    """(where the action is, its shortcuts) for every action in the window that has a shortcut:
    the menus' in menu order ("File ▸ Open images…"), then any others (context menus)."""
    rows, seen = [], set()

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            seen.add(action)
            if action.menu() is not None:
                walk(action.menu(), f"{path} ▸ {plain(action.text())}")
            elif action.shortcuts():
                rows.append((f"{path} ▸ {plain(action.text())}", keys(action)))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), plain(top.text()))
    for action in window.findChildren(QAction):
        if action not in seen and action.shortcuts():
            rows.append((plain(action.text()), keys(action)))
    return rows


def keys(action: QAction) -> str:
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())


def show_shortcuts(window) -> QDialog:
    """Help ▸ Keyboard shortcuts: a table of shortcut_rows, opened without blocking."""
    dialog = QDialog(window)
    dialog.setWindowTitle("Keyboard shortcuts")
    rows = shortcut_rows(window)
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Command", "Shortcut"])
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    for i, (where, shortcut) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(where))
        table.setItem(i, 1, QTableWidgetItem(shortcut))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    layout.addWidget(QLabel("In the image strip, the arrow keys move from image to image."))
    layout.addWidget(buttons)
    dialog.resize(460, 360)
    dialog.open()
    return dialog
