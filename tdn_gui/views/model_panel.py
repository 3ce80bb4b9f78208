"""The model as the window shows it: the status bar's line for the live model, and the banner
shown instead of results when there is no usable model (what is missing, what to do: download it,
or open a cfg + weights pair). The download itself runs on worker.qt_download's thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..worker.scheduler import LoadedModel


def model_summary(info: LoadedModel) -> str:
    """The status bar's line for a loaded model (model_details has the rest)."""
    w, h = info.input_size
    size = f"{w}×{h}" + (" (any size)" if info.any_size else "")
    return f"{info.name} · {size} · {info.bflops:.2f} BFLOPs"


def model_details(info: LoadedModel) -> str:
    """The same model in full, for the status bar's tooltip."""
    names = "taught" if info.taught else Path(info.names).name if info.names else "no names"
    files = "" if info.taught else f"\n{info.cfg}\n{info.weights}"
    return (
        f"{model_summary(info)} · {info.params:,} params · {info.classes} classes ({names}) · "
        f"{info.threads} threads{files}"
    )


class ModelPanel(QFrame):
    """A banner: what is missing, what to do, and the buttons that do it."""

    download_requested = Signal(str)  # registry key
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

    def show_problem(self, title: str, text: str, download_key: str | None = None, download_label: str = "") -> None:
        self._key = download_key or ""
        self.title.setText(title)
        self.text.setText(text)
        self.download_button.setVisible(bool(download_key))
        self.download_button.setEnabled(True)
        self.download_button.setText(download_label)
        self.show()
