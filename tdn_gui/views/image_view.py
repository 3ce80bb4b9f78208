"""The image view: a strip of images (files, folders, pasted), the selected one large, its top-5.

Images go through a small pipeline, all driven from the GUI thread by signals:
  new --the worker's decode pool--> ready (pixels held) --the worker--> done | error
Only a few images are decoded ahead of the classifier (full-size pixels are big), and only one
request is ever handed to the worker: the next goes when its result comes back.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QSplitter, QStyle, QVBoxLayout, QWidget

from ..qt_image import THUMB_SIDE, rgb_from_qimage
from ..worker.engine_api import IMAGE_SUFFIXES
from ..worker.qt_decoder import Decoded, Decoder, display_and_thumbnail
from ..worker.qt_worker import InferenceWorker
from ..worker.scheduler import Result
from .canvas import ImageCanvas
from .heatmap_panel import HeatmapPanel
from .top_bars import TopBars

LOOKAHEAD = 3  # images decoded (or decoding) but not yet classified
NO_IMAGE = "No image yet."
NO_MODEL = "No model loaded yet."
HINT = "Drop images or folders here, or use File ▸ Open (Ctrl+O) or paste (Ctrl+V)."


def collect_images(paths) -> list[Path]:
    """Files as given (so a wrong file gets a message) plus the image files inside folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(c for c in p.iterdir() if c.is_file() and c.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(p)
    return found


@dataclass
class Entry:
    """One image of the strip. Mutable, GUI thread only."""

    id: int
    label: str
    path: str | None  # None for pasted images
    state: str = "new"  # new, decoding, ready, running, done, error
    pixels: np.ndarray | None = None  # held only while waiting for the classifier
    kept_pixels: np.ndarray | None = None  # pasted images cannot be decoded again
    display: QImage | None = None
    result: Result | None = None
    error: str | None = None


class ImageView(QWidget):
    current_changed = Signal(int)

    def __init__(self, worker: InferenceWorker, parent=None):
        super().__init__(parent)
        self._worker = worker
        self._decoder = Decoder(parent=self)
        self._decoder.decoded.connect(self._on_decoded)
        worker.result_ready.connect(self._on_result)
        worker.superseded.connect(self._on_superseded)
        self._ids = itertools.count()
        self.entries: list[Entry] = []
        self._running: tuple | None = None  # tag of the request the worker has
        self._generation = 0  # bumped by reclassify(): older results are stale
        self._model_ready = False
        self._build()

    def _build(self) -> None:
        self.canvas = ImageCanvas(HINT)
        self.title = QLabel()
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.title.setFont(font)
        self.bars = TopBars()
        self.bars.set_message(NO_IMAGE if self._model_ready else NO_MODEL)
        self.timing = QLabel()
        self.timing.setStyleSheet("color: palette(placeholder-text);")
        self.heatmap = HeatmapPanel()
        self.heatmap.toggled.connect(self._on_heatmap_toggled)
        self.heatmap.changed.connect(lambda: self._show(self.strip.currentRow()))
        self.bars.class_clicked.connect(self.heatmap.choose)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.title)
        side_layout.addWidget(self.bars)
        side_layout.addWidget(self.heatmap)
        side_layout.addWidget(self.timing)
        side_layout.addStretch(1)

        self.strip = QListWidget()
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.strip.setFixedHeight(THUMB_SIDE + 42)
        self.strip.setUniformItemSizes(True)
        self.strip.setGridSize(QSize(THUMB_SIDE + 28, THUMB_SIDE + 26))
        self.strip.currentRowChanged.connect(self._show)
        self.strip.hide()

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.canvas)
        top.addWidget(side)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(top, 1)
        layout.addWidget(self.strip)
        self.setFocusProxy(self.strip)  # arrow keys flip through the strip

    # ---- adding images -------------------------------------------------------------------------
    def add_paths(self, paths) -> int:
        """Add files and folders; returns how many images were added."""
        files = collect_images(paths)
        first = len(self.entries)
        for f in files:
            self._add_entry(Entry(next(self._ids), f.name, str(f)))
        if files:
            self.strip.setCurrentRow(first)
        self._pump()
        return len(files)

    def add_qimage(self, image: QImage, label: str) -> None:
        """Add an image that is already in memory (pasted); it is converted here, it is small work."""
        pixels = rgb_from_qimage(image)
        entry = Entry(next(self._ids), label, None, kept_pixels=pixels)
        self._add_entry(entry)
        self.strip.setCurrentRow(len(self.entries) - 1)
        self._pump()

    def _add_entry(self, entry: Entry) -> None:
        self.entries.append(entry)
        item = QListWidgetItem(self._placeholder_icon(), entry.label)
        item.setToolTip(entry.path or entry.label)
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.strip.addItem(item)
        self.strip.show()

    def clear(self) -> None:
        self.entries.clear()
        self._running = None
        self._generation += 1
        self.strip.clear()
        self.strip.hide()
        self.canvas.set_image(None)
        self.title.clear()
        self.timing.clear()
        self.bars.set_message(NO_IMAGE if self._model_ready else NO_MODEL)
        self.heatmap.show(None, self.canvas, self.bars)

    # ---- model state ---------------------------------------------------------------------------
    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        if not self.entries:
            self.bars.set_message(NO_IMAGE if ready else NO_MODEL)
        elif ready:
            self.reclassify()
        else:
            self._show(self.strip.currentRow())

    def reclassify(self) -> None:
        """Run every image again (new model or resize mode); failed decodes stay failed."""
        self._generation += 1
        self._running = None
        for e in self.entries:
            if e.state in ("running", "done", "ready") or (e.state == "error" and e.display is not None):
                e.state = "ready" if e.pixels is not None else "new"
                e.result, e.error = None, None
        self._show(self.strip.currentRow())
        self._pump()

    # ---- the pipeline --------------------------------------------------------------------------
    def _pump(self) -> None:
        in_hand = sum(e.state in ("decoding", "ready") for e in self.entries)
        for e in self.entries:
            if in_hand >= LOOKAHEAD:
                break
            if e.state == "new":
                in_hand += 1
                if e.kept_pixels is not None:
                    self._on_decoded(display_and_thumbnail(e.id, e.kept_pixels))
                else:
                    e.state = "decoding"
                    self._decoder.decode(e.id, e.path)
        if self._running is None and self._model_ready:
            nxt = next((e for e in self.entries if e.state == "ready"), None)
            if nxt is not None:
                nxt.state = "running"
                self._running = ("image", nxt.id, self._generation)
                self._worker.submit(self._running, nxt.pixels, heatmap=self.heatmap.enabled())

    def _on_decoded(self, d: Decoded) -> None:
        row, e = self._find(d.entry_id)
        if e is None:
            return
        if d.error is not None:
            e.state, e.error = "error", d.error
            self.strip.item(row).setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        else:
            e.state, e.pixels, e.display = "ready", d.rgb, d.display
            self.strip.item(row).setIcon(QIcon(QPixmap.fromImage(d.thumb)))
        if row == self.strip.currentRow():
            self._show(row)
        self._pump()

    def _on_result(self, result: Result) -> None:
        if result.tag != self._running:
            return  # another view's, or stale (the model changed while it ran)
        self._running = None
        row, e = self._find(result.tag[1])
        if e is not None and e.state == "running" and self._lacks_heatmap(result):
            e.state = "ready"  # asked before the Heatmap toggle went on: once more, with the map
        elif e is not None and e.state == "running":
            e.pixels = None  # decoded again if the model changes; memory matters more
            e.state = "error" if result.error else "done"
            e.result, e.error = result, result.error
            if row == self.strip.currentRow():
                self._show(row)
        self._pump()

    def _on_superseded(self, tag) -> None:
        # Another view's frame took the worker's slot: ask again with the same pixels.
        if tag == self._running:
            row, e = self._find(tag[1])
            self._running = None
            if e is not None and e.state == "running":
                e.state = "ready"
            self._pump()

    def _find(self, entry_id: int) -> tuple[int, Entry | None]:
        for row, e in enumerate(self.entries):
            if e.id == entry_id:
                return row, e
        return -1, None

    # ---- showing -------------------------------------------------------------------------------
    def current_index(self) -> int:
        return self.strip.currentRow()

    def select(self, row: int) -> None:
        self.strip.setCurrentRow(row)

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.entries):
            return
        e = self.entries[row]
        self.title.setText(e.label)
        self.title.setToolTip(e.path or "")
        self.canvas.set_image(e.display)
        self.canvas.set_placeholder("" if e.display else (f"Cannot show {e.label}" if e.error else "Loading…"))
        self.timing.clear()
        self.heatmap.show(None, self.canvas, self.bars)
        if e.error:
            self.bars.set_message(e.error, error=True)
        elif e.result is not None:
            self.bars.set_predictions(e.result.top)
            self.heatmap.show(e.result, self.canvas, self.bars)
            self.timing.setText(f"Classified in {e.result.seconds * 1000:.1f} ms")
        elif not self._model_ready:
            self.bars.set_message(NO_MODEL)
        else:
            self.bars.set_message("Classifying…")
        self.current_changed.emit(row)

    def _lacks_heatmap(self, result: Result | None) -> bool:
        """A result without the map the Heatmap toggle asks for (and no reason why there is none)."""
        return (
            self.heatmap.enabled()
            and result is not None
            and not result.error
            and result.heatmap is None
            and not result.heatmap_note
        )

    def _on_heatmap_toggled(self, on: bool) -> None:
        """On: images classified without their maps run again (the maps come from the same pass)."""
        if any(self._lacks_heatmap(e.result) for e in self.entries):
            self.reclassify()
        else:
            self._show(self.strip.currentRow())

    def _placeholder_icon(self) -> QIcon:
        pm = QPixmap(THUMB_SIDE, THUMB_SIDE)
        pm.fill(Qt.GlobalColor.darkGray)
        return QIcon(pm)

    def shutdown(self) -> None:
        self._decoder.shutdown()


def image_files_filter() -> str:
    """The file-dialog filter for the image formats we look for in folders."""
    return "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
