"""tdn's icon: resources/tdn.svg, drawn at the sizes desktops use (the window, the launcher)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from .worker.engine_api import resources_dir

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)  # hicolor's usual sizes, title bar to task switcher


def svg_path() -> Path:
    return resources_dir() / "tdn.svg"


def render(size: int) -> QImage:
    """The icon as a size × size image with a transparent background. Needs no QApplication:
    `tdn-gui --install-launcher` draws the PNGs without opening a display."""
    renderer = QSvgRenderer(str(svg_path()))
    if not renderer.isValid():
        raise OSError(f"cannot read the icon {svg_path()}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def app_icon() -> QIcon:
    """The window's icon: one pixmap drawn per size, so each size is sharp and availableSizes()
    lists them (a QIcon made from the SVG file lists none)."""
    icon = QIcon()
    for size in ICON_SIZES:
        icon.addPixmap(QPixmap.fromImage(render(size)))
    return icon
