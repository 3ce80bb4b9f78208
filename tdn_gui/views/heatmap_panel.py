"""HeatmapPanel: the Heatmap toggle, its opacity, and which class it maps, for one view.

The map comes with a Result (the worker computes it in the same pass as the bars, when the view
asks); this panel turns it into a picture over the view's canvas. It maps the class of the bar the
user clicked, or (until one is clicked, or after clicking it again) the class in the top bar.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

DEFAULT_OPACITY = 60  # percent: the photo stays readable under the hot cells


class HeatmapPanel(QWidget):
    toggled = Signal(bool)  # the user turned heatmaps on or off
    changed = Signal()  # what to draw changed (opacity, or the class mapped)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.selected: int | None = None  # a clicked class, or None: the top bar's
        self.toggle = QCheckBox("Heatmap")
        self.toggle.setToolTip(
            "Colour the picture by where the mapped class is found (hot: most). Click a "
            "bar to map its class; click it again to follow the top class."
        )
        self.toggle.toggled.connect(self._on_toggled)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(10, 100)
        self.opacity_slider.setValue(DEFAULT_OPACITY)
        self.opacity_slider.setToolTip("The heatmap's opacity")
        self.opacity_slider.setEnabled(False)
        self.opacity_slider.valueChanged.connect(lambda _: self.changed.emit())
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: palette(placeholder-text);")
        self.caption.hide()  # shown with something to say (see show)
        row = QHBoxLayout()
        row.addWidget(self.toggle)
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity_slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.caption)

    def enabled(self) -> bool:
        return self.toggle.isChecked()

    def opacity(self) -> float:
        return self.opacity_slider.value() / 100

    def choose(self, index: int) -> None:
        """A bar was clicked: map its class, or back to the top class when it was mapped already."""
        self.selected = None if index == self.selected else index
        self.changed.emit()

    def _on_toggled(self, on: bool) -> None:
        self.opacity_slider.setEnabled(on)
        self.toggled.emit(on)

    def show(self, result, canvas, bars) -> None:
        """Lay `result`'s map over `canvas` and frame its bar (or clear them): result is a worker
        Result, or None when there is nothing to map."""
        index = None
        overlay = None
        text = ""
        if self.enabled() and result is not None and not result.error:
            if result.heatmap_note:
                text = result.heatmap_note
            elif result.heatmap is None:
                text = "The heatmap comes with the next answer…"
            else:
                index = self.selected if self.selected is not None else bars.top_class()
                if index is None or index >= result.heatmap.maps.shape[2]:
                    index = result.top[0][0]
                overlay = rgba_image(result.heatmap.rgba(index))
                name = result.names[index] if result.names and index < len(result.names) else f"class {index}"
                text = f"Heatmap of {name}" + ("" if self.selected is not None else " (the top class)")
        canvas.set_overlay(overlay, self.opacity())
        bars.set_selected(index)
        self.caption.setText(text)
        self.caption.setVisible(bool(text))


def rgba_image(rgba) -> QImage:
    """A (rows, cols, 4) uint8 array as a QImage of its own (the array may go)."""
    rows, cols = rgba.shape[:2]
    return QImage(rgba.data, cols, rows, 4 * cols, QImage.Format.Format_RGBA8888).copy()
