"""The webcam view: live preview from a CaptureThread, live top-5 from the shared worker.

Every frame is shown (at the camera's rate) and submitted to the worker, whose mailbox keeps only
the newest: inference runs as fast as the model allows and simply skips the frames it cannot
take. The two rates are reported separately.

The bars may be smoothed (Smoothing: off / light / strong, see smoothing.py): an average over the
last few results steadies them when two classes trade places frame to frame. It is display only:
the rates and counters are the raw results'.
"""

from __future__ import annotations

import collections
import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from ..qt_image import png_bytes
from ..worker.engine_api import replacing
from ..worker.qt_worker import InferenceWorker
from ..worker.scheduler import TOP_K, Result
from .canvas import ImageCanvas
from .capture import SCAN_INDICES, CameraInfo, CameraScan, CaptureThread, describe, parse_source, rate
from .heatmap_panel import HeatmapPanel
from .smoothing import DEFAULT_LEVEL, LEVELS, SMOOTHING, BarSmoother
from .top_bars import TopBars

# The rates line is refreshed this often, not per frame: readable, and a label whose text changes
# 90 times a second re-lays out its column and repaints the bars beside it each time.
STATS_INTERVAL_MS = 250

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.mjpg);;All files (*)"


class WebcamView(QWidget):
    source_changed = Signal(str)  # the camera index or video path, for the settings
    running_changed = Signal(bool)
    frame_shown = Signal(object)  # the Frame now on screen (the Teach view previews it)
    result_shown = Signal(object)  # the Result now in the bars (raw: smoothing is the bars' only)
    smoothing_changed = Signal(str)  # a smoothing.LEVELS key, for the settings

    def __init__(self, worker: InferenceWorker, parent=None):
        super().__init__(parent)
        self._worker = worker
        worker.result_ready.connect(self._on_result)
        self.capture: CaptureThread | None = None
        self.last_capture: CaptureThread | None = None  # the stopped one, for tests to inspect
        self._scan: CameraScan | None = None
        self._model_ready = False
        self._shown = None  # the Frame on screen (what a snapshot saves)
        self._viewers: list[QWidget] = []  # other widgets that show this camera live
        self._results = collections.deque(maxlen=20)  # arrival times, for the rate
        self._latencies = collections.deque(maxlen=20)  # seconds, averaged for a steady read-out
        self.camera_fps = 0.0
        self.inference_fps = 0.0
        self.latency_ms = 0.0
        self.frames_shown = 0
        self.results_shown = 0
        self._newest_result = 0  # frame id of the result in the bars
        self._last_result: Result | None = None  # the result in the bars (its heatmap is shown)
        self._smoother = BarSmoother(DEFAULT_LEVEL)
        self._smoothed_names = None  # the names of the classes being averaged
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_INTERVAL_MS)
        self._stats_timer.timeout.connect(self._update_stats)
        self._build()

    def _build(self) -> None:
        self.source = QComboBox()
        self.source.setEditable(False)
        self.source.setToolTip("Camera index, or a video file played in a loop as if it were a camera")
        for i in SCAN_INDICES:
            self.source.addItem(f"Camera {i}", i)
        self.scan_button = QPushButton("Scan")
        self.scan_button.setToolTip(f"Try camera indices {SCAN_INDICES.start}..{SCAN_INDICES.stop - 1}")
        self.scan_button.clicked.connect(self.scan)
        self.file_button = QPushButton("Video file…")
        self.file_button.clicked.connect(self._choose_file)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self._toggle)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setEnabled(False)
        self.pause_button.toggled.connect(self._on_pause)
        self.snapshot_button = QPushButton("Snapshot…")
        self.snapshot_button.setEnabled(False)
        self.snapshot_button.clicked.connect(self._choose_snapshot)
        self.smoothing = QComboBox()
        for level in LEVELS:
            self.smoothing.addItem(level.capitalize(), level)
        self.smoothing.setCurrentIndex(LEVELS.index(DEFAULT_LEVEL))
        self.smoothing.setToolTip(
            "Steadies the top-5 bars: each bar is an average over about the last "
            f"{SMOOTHING['light']} (Light) or {SMOOTHING['strong']} (Strong) results.\n"
            "Display only: the camera and inference rates are not affected.\n"
            "Starts over on a scene cut (a new top class for a few results in a row)."
        )
        self.smoothing.currentIndexChanged.connect(self._on_smoothing)
        controls = QHBoxLayout()
        for w in (
            self.source,
            self.scan_button,
            self.file_button,
            self.start_button,
            self.pause_button,
            self.snapshot_button,
        ):
            controls.addWidget(w)
        controls.addStretch(1)
        # Under the bars it steadies, not in the row above: there it widened the window's minimum
        # width by 146 px (557 -> 703 with the tests' offscreen font); the bars' column is wider
        # than it anyway.
        smoothing_row = QHBoxLayout()
        smoothing_label = QLabel("Smoothing")
        smoothing_label.setBuddy(self.smoothing)
        smoothing_row.addWidget(smoothing_label)
        smoothing_row.addWidget(self.smoothing)
        smoothing_row.addStretch(1)

        self.canvas = ImageCanvas("Choose a camera (or a video file) and press Start.")
        self.bars = TopBars()
        self.bars.set_message("Not running.")
        self.stats = QLabel("Camera – fps · inference – fps")
        self.status = QLabel()
        self.status.setWordWrap(True)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        self.heatmap = HeatmapPanel()
        self.heatmap.changed.connect(lambda: self.heatmap.show(self._last_result, self.canvas, self.bars))
        self.heatmap.toggled.connect(lambda _: self.heatmap.show(self._last_result, self.canvas, self.bars))
        self.bars.class_clicked.connect(self.heatmap.choose)
        side_layout.addWidget(self.bars)
        side_layout.addLayout(smoothing_row)
        side_layout.addWidget(self.heatmap)
        side_layout.addWidget(self.stats)
        side_layout.addWidget(self.status)
        side_layout.addStretch(1)
        split = QSplitter()
        split.addWidget(self.canvas)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(split, 1)

    # ---- source ------------------------------------------------------------------------------
    def set_source(self, source) -> None:
        """Select a camera index or a video file in the combo (adding the file if new)."""
        source = parse_source(source)
        row = self.source.findData(source)
        if row < 0:
            self.source.addItem(describe(source), source)
            row = self.source.count() - 1
            self.source.setItemData(row, str(source), Qt.ItemDataRole.ToolTipRole)
        self.source.setCurrentIndex(row)

    def current_source(self):
        return self.source.currentData()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video file", "", VIDEO_FILTER)
        if path:
            self.set_source(path)
            self.start()

    def scan(self) -> None:
        if self._scan is not None and self._scan.isRunning():
            return
        self.scan_button.setEnabled(False)
        self.status.setText("Scanning cameras…")
        self._scan = CameraScan(self)
        self._scan.scanned.connect(self._on_scanned)
        self._scan.start()

    def _on_scanned(self, found: list) -> None:
        self.scan_button.setEnabled(True)
        for i in SCAN_INDICES:
            row = self.source.findData(i)
            self.source.setItemText(row, f"Camera {i}" + (" ✓" if i in found else " (not found)"))
        if found:
            self.status.setText("Found: " + ", ".join(f"camera {i}" for i in found) + ".")
            if self.current_source() not in found and isinstance(self.current_source(), int):
                self.set_source(found[0])
        else:
            self.status.setText("No camera found.")

    # ---- running -----------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.capture is not None

    def start(self) -> None:
        self.stop()
        source = self.current_source()
        self.capture = CaptureThread(source, self.canvas.pixel_box)
        self.capture.opened.connect(self._on_opened)
        self.capture.failed.connect(self._on_failed)
        self.capture.frame_ready.connect(self._on_frame)
        self._results.clear()
        self._latencies.clear()
        self._newest_result = 0
        self._last_result = None
        self.canvas.set_overlay(None)
        self._smoother.reset()
        self.camera_fps = self.inference_fps = self.latency_ms = 0.0
        self.status.setText(f"Opening {describe(source)}…")
        self.start_button.setText("Stop")
        self.pause_button.setEnabled(True)
        self.capture.start()
        self._stats_timer.start()
        self.source_changed.emit(str(source))
        self.running_changed.emit(True)

    def stop(self) -> None:
        if self.capture is None:
            return
        capture, self.capture = self.capture, None
        capture.stop()  # joins the thread: it only ever waits on short reads
        self._stats_timer.stop()
        self._update_stats()
        self.last_capture = capture  # no parent, no deleteLater: freed when replaced
        self.start_button.setText("Start")
        self.pause_button.setChecked(False)
        self.pause_button.setEnabled(False)
        self.running_changed.emit(False)

    def _toggle(self) -> None:
        if self.is_running():
            self.stop()
        else:
            self.start()

    def _on_opened(self, info: CameraInfo) -> None:
        fps = f" at {info.fps:.0f} fps" if info.fps else ""
        loop = ", looping" if info.is_file else ""
        self.status.setText(f"{describe(info.source)}: {info.width}×{info.height}{fps}{loop}.")
        self.bars.set_message("Waiting for a model…" if not self._model_ready else "Classifying…")

    def _on_failed(self, message: str) -> None:
        if self.sender() is not self.capture:
            return  # a thread we already stopped
        self.stop()
        self.status.setText(message)
        self.bars.set_message(message, error=True)
        if self._shown is None:
            self.canvas.set_placeholder(message)

    def _on_frame(self) -> None:
        if self.capture is None or self.sender() is not self.capture:
            return
        frame = self.capture.take_frame()
        if frame is None or self.pause_button.isChecked():
            return
        self._shown = frame
        self.canvas.set_image(frame.image)
        self.frames_shown += 1
        self.snapshot_button.setEnabled(True)
        self.camera_fps = frame.camera_fps
        self.frame_shown.emit(frame)
        # Only a visible view feeds the shared worker, so the image view is never starved.
        if self._model_ready and (self.isVisible() or any(v.isVisible() for v in self._viewers)):
            self._worker.submit(("camera", frame.id), frame.rgb, stream=True, heatmap=self.heatmap.enabled())

    def add_viewer(self, widget: QWidget) -> None:
        """While `widget` is visible the camera's frames are classified as if this view were."""
        self._viewers.append(widget)

    def latest_frame(self):
        """The Frame on screen, or None before the first one."""
        return self._shown

    def _on_result(self, result: Result) -> None:
        if not (isinstance(result.tag, tuple) and result.tag[0] == "camera"):
            return
        if self.capture is None or self.pause_button.isChecked():
            return  # late result after stop or pause: keep what is on screen
        if result.tag[1] < self._newest_result:
            return  # the worker's two lanes can finish out of order: never step back in time
        self._newest_result = result.tag[1]
        self._results.append(time.monotonic())
        self.inference_fps = rate(self._results)
        self._latencies.append(result.seconds)
        self.latency_ms = 1000 * sum(self._latencies) / len(self._latencies)
        self.results_shown += 1
        if result.error:
            self._smoother.reset()  # the bars were interrupted: start again from real results
            self.bars.set_message(result.error, error=True)
        else:
            self.bars.set_predictions(self._bar_predictions(result))
        self._last_result = result
        self.heatmap.show(result, self.canvas, self.bars)
        self.result_shown.emit(result)

    def _bar_predictions(self, result: Result) -> tuple:
        """The (index, name, prob) rows to show: smoothed when the result carries every class's
        probability, as the worker ranked them otherwise (and when smoothing is off)."""
        if result.probs is None or self._smoother.level == "off":
            self._smoother.reset()
            return result.top
        names = result.names
        if names is not self._smoothed_names and names != self._smoothed_names:
            # other classes (a taught head with as many classes as the model): a new average
            self._smoother.reset()
            self._smoothed_names = names
        self._smoother.update(result.probs)  # resets itself when the class count changes
        return self._smoother.top(TOP_K, names)

    # ---- smoothing ---------------------------------------------------------------------------
    def smoothing_level(self) -> str:
        return self._smoother.level

    def set_smoothing(self, level: str) -> None:
        """Choose a smoothing.LEVELS key (the combo follows); an unknown one is ignored."""
        if level in LEVELS:
            self.smoothing.setCurrentIndex(LEVELS.index(level))

    def _on_smoothing(self, row: int) -> None:
        level = self.smoothing.itemData(row)
        if level != self._smoother.level:
            self._smoother = BarSmoother(level)  # a fresh average: the next result is shown as is
            self.smoothing_changed.emit(level)

    def _update_stats(self) -> None:
        self.stats.setText(
            f"Camera {self.camera_fps:.1f} fps · inference {self.inference_fps:.1f} fps · {self.latency_ms:.1f} ms"
        )

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self._smoother.reset()  # the scene may be another one on resume

    # ---- snapshot ----------------------------------------------------------------------------
    def save_snapshot(self, path: str) -> bool:
        """Save the frame on screen as PNG, whole or not at all; False if there is none or the
        write fails."""
        if self._shown is None:
            return False
        try:
            data = png_bytes(self._shown.full_image())
            with replacing(path) as f:
                f.write(data)
        except OSError:
            return False
        return True

    def _choose_snapshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", "snapshot.png", "PNG image (*.png)")
        if path and not self.save_snapshot(path):
            self.status.setText(f"Could not save {path}.")

    # ---- model & lifetime --------------------------------------------------------------------
    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        self._smoother.reset()
        if not ready:
            self.bars.set_message("Waiting for a model…")

    def shutdown(self) -> None:
        self.stop()
        if self._scan is not None:
            self._scan.wait()  # a scan is a handful of short open() calls
