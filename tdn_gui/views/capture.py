"""Camera (or video file) capture on its own thread.

cv2.VideoCapture.read() blocks until the camera has a frame, so it must not run on the GUI
thread; nor on the inference worker, whose frame rate is the model's, not the camera's. Frames are
handed over through a one-frame slot: the thread only signals when the GUI has taken the previous
frame, so a busy GUI skips frames instead of queueing them.

A video file is played at its own frame rate and loops at the end (a looping file makes a
convenient stand-in camera for demos and tests).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from ..qt_image import qimage_from_rgb
from .canvas import fit_size

# OpenCV prints a warning per failed open; we report failures in the window instead.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _forget_opencv_qt_plugins() -> None:
    """opencv-python's Linux wheels point QT_QPA_PLATFORM_PLUGIN_PATH (and QT_QPA_FONTDIR) at
    the Qt they bundle for cv2.imshow. PySide6 would then load that Qt's xcb plugin and abort
    ("could not load the Qt platform plugin"). Our QApplication must use PySide6's own plugins."""
    cv2_dir = os.path.dirname(os.path.abspath(cv2.__file__))
    for var in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        if os.environ.get(var, "").startswith(cv2_dir):
            del os.environ[var]


_forget_opencv_qt_plugins()

SCAN_INDICES = range(5)
MAX_READ_FAILURES = 30  # consecutive failed reads before a camera counts as gone (~1 s)


def parse_source(text: str | int) -> int | str:
    """'2' -> camera index 2; anything else is a video file path."""
    if isinstance(text, int):
        return text
    return int(text) if text.strip().isdigit() else text


def describe(source: int | str) -> str:
    return f"camera {source}" if isinstance(source, int) else Path(source).name


@dataclass(frozen=True)
class CameraInfo:
    source: int | str
    width: int
    height: int
    fps: float  # what the device or file claims; 0 when unknown
    is_file: bool


@dataclass(frozen=True)
class Frame:
    id: int
    rgb: np.ndarray  # (H, W, 3) uint8 at the camera's resolution, owned by this frame
    image: QImage  # the same picture for the screen: already scaled to the view if it asked
    camera_fps: float  # measured over the last frames

    def full_image(self) -> QImage:
        """The frame at the camera's resolution (for snapshots and saved training images)."""
        return qimage_from_rgb(self.rgb)


def frame_period(info: CameraInfo) -> float:
    """Seconds between frames: a file plays at its own rate; a camera (or a file that states no
    usable rate) paces itself, 0."""
    return 1.0 / info.fps if info.is_file and 0 < info.fps < 1000 else 0.0


def display_image(bgr: np.ndarray, pixel_box: tuple[int, int, float] | None) -> QImage:
    """A BGR frame as a QImage for the screen, scaled (aspect kept) to fit pixel_box =
    (width, height, device pixel ratio) when given. OpenCV scales here, on the capture
    thread, so the GUI thread only blits; and BGRA bytes are Format_RGB32 on little-endian
    machines, so no further conversion is needed when painting."""
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    ratio = 1.0
    if pixel_box is not None and pixel_box[0] > 0 and pixel_box[1] > 0:
        box_w, box_h, ratio = pixel_box
        h, w = bgra.shape[:2]
        size = fit_size(w, h, box_w, box_h)
        if size != (w, h) and min(size) > 0:
            # bilinear both ways: INTER_AREA's nicer shrink costs 5x more (3.5 vs 0.7 ms
            # for 640x480 -> 480x360, measured), and a frame lasts 17 ms at 60 fps
            bgra = cv2.resize(bgra, size, interpolation=cv2.INTER_LINEAR)
    h, w = bgra.shape[:2]
    image = QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_RGB32).copy()  # owns its pixels
    image.setDevicePixelRatio(ratio)
    return image


class CaptureThread(QThread):
    opened = Signal(object)  # CameraInfo
    failed = Signal(str)  # could not open, or stopped delivering frames
    frame_ready = Signal()  # call take_frame()

    def __init__(self, source: int | str, pixel_box=None, parent=None):
        """pixel_box: optional callable giving the view's (width, height, pixel ratio), read
        from this thread for each frame (see display_image)."""
        super().__init__(parent)
        self.setObjectName("tdn-capture")
        self.source = parse_source(source)
        self._pixel_box = pixel_box
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._slot: Frame | None = None
        self.frames_read = 0
        self.frame_period = 0.0  # set when the source opens: see frame_period()

    def take_frame(self) -> Frame | None:
        with self._lock:
            frame, self._slot = self._slot, None
        return frame

    def stop(self) -> None:
        self._stop.set()
        if self.isRunning():
            self.wait()

    def run(self) -> None:
        is_file = isinstance(self.source, str)
        if is_file and not Path(self.source).is_file():
            self.failed.emit(f"Video file not found: {self.source}")
            return
        # OpenCV's own thread pool would parallelise a 640x480 decode and colour conversion and
        # fight the engine's threads for the cores: a 30 fps capture loop beside classify()
        # cost it +9 ms per frame with OpenCV's 2 threads, +1 ms with one (measured).
        cv2.setNumThreads(1)
        cap = cv2.VideoCapture(self.source)
        try:
            if not cap.isOpened():
                self.failed.emit(f"Could not open {describe(self.source)}.")
                return
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            info = CameraInfo(
                self.source,
                int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                fps,
                is_file,
            )
            self.frame_period = frame_period(info)
            self.opened.emit(info)
            self._loop(cap, info)
        finally:
            cap.release()

    def _loop(self, cap: cv2.VideoCapture, info: CameraInfo) -> None:
        period = self.frame_period
        stamps: collections.deque[float] = collections.deque(maxlen=30)
        failures = 0
        due = time.monotonic()
        while not self._stop.is_set():
            ok, bgr = cap.read()
            if not ok or bgr is None:
                failures += 1
                if info.is_file and failures == 1 and self.frames_read > 0:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # end of file: loop
                    continue
                if failures >= MAX_READ_FAILURES or info.is_file:
                    self.failed.emit(f"{describe(self.source)} stopped delivering frames.")
                    return
                self._stop.wait(0.03)
                continue
            failures = 0
            if period:  # play a file at its own rate; a camera paces itself
                due += period
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    due = time.monotonic()  # behind: don't rush to catch up
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            stamps.append(time.monotonic())
            self.frames_read += 1
            image = display_image(bgr, self._pixel_box() if self._pixel_box else None)
            frame = Frame(self.frames_read, rgb, image, rate(stamps))
            with self._lock:
                was_empty = self._slot is None
                self._slot = frame
            if was_empty:
                self.frame_ready.emit()


def rate(stamps) -> float:
    """Events per second over a window of monotonic time stamps (0 until there are two)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def scan_cameras(indices=SCAN_INDICES) -> list[int]:
    """Camera indices that open and deliver a frame. Blocking: call it off the GUI thread."""
    found = []
    for i in indices:
        cap = cv2.VideoCapture(i)
        try:
            if cap.isOpened() and cap.read()[0]:
                found.append(i)
        finally:
            cap.release()
    return found


class CameraScan(QThread):
    """Runs scan_cameras on a thread of its own; a real camera can take a second to open."""

    scanned = Signal(list)

    def run(self) -> None:
        self.scanned.emit(scan_cameras())
