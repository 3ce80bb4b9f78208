"""What the window shows instead of results when there is no usable model, and the download.

The download runs download.download_model on a QThread of its own (it is network I/O, not
inference, so it stays off the inference worker, which may still be busy with frames).
"""
from __future__ import annotations

import threading

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from engine import download


class DownloadThread(QThread):
    progressed = Signal(object, object)   # bytes done, total (None when unknown); may exceed 2**31
    succeeded = Signal(str)               # weights path
    failed = Signal(str)                  # one line; "cancelled" when the user cancelled

    def __init__(self, key: str, parent=None):
        super().__init__(parent)
        self.setObjectName("tdn-download")
        self.key = key
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            path = download.download_model(self.key, progress=self.progressed.emit, cancel=self.cancel)
        except download.DownloadCancelled:
            self.failed.emit("cancelled")
        except (download.DownloadError, OSError) as exc:
            self.failed.emit(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        else:
            self.succeeded.emit(str(path))


class ModelPanel(QFrame):
    """A banner: what is missing, what to do, and the buttons that do it."""

    download_requested = Signal(str)   # registry key
    open_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("modelPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#modelPanel { background: palette(alternate-base); border-radius: 6px; }")
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_button = QPushButton()
        self.download_button.clicked.connect(lambda: self.download_requested.emit(self._key))
        self.open_button = QPushButton("Open cfg + weights…")
        self.open_button.clicked.connect(self.open_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        layout.addLayout(buttons)
        self._key = ""

    def show_problem(self, title: str, text: str, download_key: str | None = None,
                     download_label: str = "") -> None:
        self._key = download_key or ""
        self.title.setText(title)
        self.text.setText(text)
        self.download_button.setVisible(bool(download_key))
        self.download_button.setEnabled(True)
        self.download_button.setText(download_label)
        self.show()
