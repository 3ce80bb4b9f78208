"""The Teach view's live panel: a preview with its top-k bars, the camera and "Hold to capture".

The preview shows the camera while it runs (frames and results come from the WebcamView, which
keeps classifying while this panel is visible); otherwise the image picked in the thumbnail strip,
decoded off the GUI thread and classified on the shared worker like any other request. Holding the
capture button saves the newest camera frame CAPTURE_FPS times a second into the selected class,
through the project's writer (never the same frame twice).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from ..views.canvas import ImageCanvas
from ..views.top_bars import TopBars
from ..views.webcam_view import WebcamView
from ..worker.qt_decoder import Decoded, Decoder
from ..worker.qt_worker import InferenceWorker
from ..worker.scheduler import Result
from .file_threads import ProjectWriter
from .widgets import plural

CAPTURE_FPS = 4
PREVIEW_HINT = (
    "Start the camera to capture frames into the selected class, or click a thumbnail to see how it is classified."
)
NO_MODEL = "No model loaded yet."
IDLE_HINT = "Click a thumbnail, or start the camera, to see the live classification here."

# The class frames go to now, as (name, folder), or None after reporting why there is none.
CaptureTarget = Callable[[], "tuple[str, Path] | None"]


class LivePanel(QWidget):
    def __init__(
        self,
        worker: InferenceWorker,
        webcam: WebcamView,
        writer: ProjectWriter,
        capture_target: CaptureTarget,
        report: Callable[[str, str], None],
        parent=None,
    ):
        super().__init__(parent)
        self._worker = worker
        self._webcam = webcam
        self._writer = writer
        self._capture_target = capture_target
        self._report = report
        self._model_ready = False
        self._capture_allowed = False
        self._file: str | None = None  # the strip's image to preview when the camera is off
        self._ids = itertools.count()
        self._decode_id = -1  # the decode in flight for the preview
        self._tag = None  # the worker request in flight for it
        self._pixels = None
        self._dropped = False  # another view's request took the worker's slot
        self._last_captured = None  # the Frame captured last
        self._capture_into: tuple[str, Path] | None = None
        self.captured = 0
        self._decoder = Decoder(threads=1, parent=self)
        self._decoder.decoded.connect(self._on_decoded)
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // CAPTURE_FPS)
        self._timer.timeout.connect(self._capture_frame)
        worker.result_ready.connect(self._on_result)
        worker.superseded.connect(self._on_superseded)
        webcam.frame_shown.connect(self._on_camera_frame)
        webcam.result_shown.connect(self._on_camera_result)
        webcam.running_changed.connect(self._on_camera_running)
        webcam.add_viewer(self)
        self._build()

    def _build(self) -> None:
        self.preview = ImageCanvas(PREVIEW_HINT)
        self.preview.setMinimumSize(240, 180)
        self.title = QLabel()
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.bars = TopBars()
        self.bars.set_message(NO_MODEL)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.title)
        side_layout.addWidget(self.bars)
        side_layout.addStretch(1)
        row = QSplitter(Qt.Orientation.Horizontal)
        row.addWidget(self.preview)
        row.addWidget(side)
        row.setStretchFactor(0, 3)
        row.setStretchFactor(1, 2)
        row.setChildrenCollapsible(False)
        self.camera_button = QPushButton("Start camera")
        self.camera_button.setToolTip("The camera (or video file) chosen in the Webcam tab")
        self.camera_button.clicked.connect(self._toggle_camera)
        self.capture_button = QPushButton("Hold to capture")
        self.capture_button.setToolTip(f"While held, {CAPTURE_FPS} frames a second go into the selected class")
        self.capture_button.pressed.connect(self.start_capture)
        self.capture_button.released.connect(self.stop_capture)
        self.capture_label = QLabel()
        controls = QHBoxLayout()
        controls.addWidget(self.camera_button)
        controls.addWidget(self.capture_button)
        controls.addWidget(self.capture_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(row, 1)
        layout.addLayout(controls)
        self._update_buttons()

    # ---- state from the view ---------------------------------------------------------------------
    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        if not ready:
            self.bars.set_message(NO_MODEL)
        elif self._pixels is None and not self._webcam.is_running():
            self.bars.set_message(IDLE_HINT)
        self.reclassify()

    def set_capture_allowed(self, allowed: bool) -> None:
        """Whether there is a class to capture into."""
        self._capture_allowed = allowed
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.capture_button.setEnabled(self._webcam.is_running() and self._capture_allowed)

    # ---- camera and capture ----------------------------------------------------------------------
    def _toggle_camera(self) -> None:
        if self._webcam.is_running():
            self._webcam.stop()
        else:
            self._webcam.start()

    def _on_camera_running(self, running: bool) -> None:
        self.camera_button.setText("Stop camera" if running else "Start camera")
        if not running:
            self.stop_capture()
            self.preview_file(self._file)
        self._update_buttons()

    def _on_camera_frame(self, frame) -> None:
        if self.isVisible():
            self.preview.set_image(frame.image)

    def _on_camera_result(self, result: Result) -> None:
        if self.isVisible():
            self._show_result(result)
            self.title.setText("Camera · " + self._webcam.stats.text())

    def start_capture(self) -> None:
        """Begin saving CAPTURE_FPS frames a second from the camera into the selected class."""
        if not self._webcam.is_running():
            self._report("Start the camera first (Start camera).", "error")
            return
        self._capture_into = self._capture_target()
        if self._capture_into is None:
            return
        self.captured = 0
        self._capture_frame()
        self._timer.start()

    def stop_capture(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            name = self._capture_into[0]
            self.capture_label.setText(f"{plural(self.captured, 'frame')} captured into '{name}'.")

    def _capture_frame(self) -> None:
        frame = self._webcam.latest_frame()
        if frame is None or frame is self._last_captured:
            return
        name, folder = self._capture_into
        if not folder.is_dir():  # the class went away while the button was held
            self.stop_capture()
            return
        self._last_captured = frame
        self.captured += 1
        stem = f"capture-{time.strftime('%Y%m%d-%H%M%S')}-{self.captured:03d}"
        self._writer.save_frame(name, folder, frame.full_image(), stem)
        self.capture_label.setText(f"Capturing into '{name}': {plural(self.captured, 'frame')}")

    # ---- preview of a picked image ---------------------------------------------------------------
    def preview_file(self, path: str | None) -> None:
        """Show (and classify) an image file while the camera is off; None shows the hint."""
        self._file = path
        if self._webcam.is_running():
            return
        if path is None:
            self.preview.set_image(None)
            self.preview.set_placeholder(PREVIEW_HINT)
            self.title.clear()
            self._tag, self._pixels = None, None
            self.set_model_ready(self._model_ready)  # the matching hint in the bars
            return
        self._decode_id = next(self._ids)
        self._decoder.decode(self._decode_id, path)

    def _on_decoded(self, d: Decoded) -> None:
        if d.entry_id != self._decode_id or self._webcam.is_running():
            return
        name = Path(self._file).name
        self.title.setText(name)
        if d.error:
            self.preview.set_image(None)
            self.preview.set_placeholder(f"Cannot show {name}")
            self.bars.set_message(d.error, error=True)
            self._pixels = None
            return
        self.preview.set_image(d.display)
        self._pixels = d.rgb
        self.reclassify()

    def reclassify(self) -> None:
        """Classify the previewed image (again: the live classifier may have changed)."""
        if self._pixels is None or not self._model_ready or self._webcam.is_running():
            return
        self._tag = ("teach", next(self._ids))
        self._dropped = False
        self.bars.set_message("Classifying…")
        self._worker.submit(self._tag, self._pixels)

    def _on_result(self, result: Result) -> None:
        if result.tag == self._tag:
            self._tag = None
            self._show_result(result)
        elif self._dropped and self._tag is not None:
            self.reclassify()  # another view took the slot: ask again now that its answer is in

    def _on_superseded(self, tag) -> None:
        if tag == self._tag:
            self._dropped = True

    def _show_result(self, result: Result) -> None:
        if result.error:
            self.bars.set_message(result.error, error=True)
        else:
            self.bars.set_predictions(result.top)

    def shutdown(self) -> None:
        self.stop_capture()
        self._decoder.shutdown()
