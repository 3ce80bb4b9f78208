"""DownloadThread: a registry model's weights (and the names lists) fetched on a thread of its own.

It is network I/O, not inference, so it stays off the inference thread, which may still be busy
with frames. Cancel by setting `cancel`; the thread ends with `succeeded` or `failed`.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread, Signal

import engine
from engine import download


class DownloadThread(QThread):
    progressed = Signal(object, object)  # bytes done, total (None when unknown); may exceed 2**31
    succeeded = Signal(str)  # weights path
    failed = Signal(str)  # one line; "cancelled" when the user cancelled

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
            self.failed.emit(engine.one_line(exc))
        else:
            self.succeeded.emit(str(path))
