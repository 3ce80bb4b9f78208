"""ExportDialog: where a taught model goes (a folder) and what it is called (NAME.cfg/.weights/.names)."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)


def suggest_name(text: str) -> str:
    """A file-name-safe model name from a project title ("My pets!" -> "my-pets")."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", text.strip().lower()).strip("-")
    return name or "taught"


class ExportDialog(QDialog):
    def __init__(self, folder: str, name: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export taught model")
        self.name_edit = QLineEdit(name)
        self.folder_edit = QLineEdit(folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QWidget()
        row = QHBoxLayout(folder_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        self.files_label = QLabel()
        self.files_label.setStyleSheet("color: palette(placeholder-text);")
        self.name_edit.textChanged.connect(self._update_files)
        form = QFormLayout(self)
        form.addRow("Name:", self.name_edit)
        form.addRow("Folder:", folder_row)
        form.addRow("", self.files_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._update_files()
        self.resize(520, self.sizeHint().height())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def _update_files(self) -> None:
        name = self.name_edit.text().strip() or "NAME"
        self.files_label.setText(f"Writes {name}.cfg, {name}.weights and {name}.names")

    def values(self) -> tuple[str, str]:
        return str(Path(self.folder_edit.text().strip()).expanduser()), self.name_edit.text().strip()
