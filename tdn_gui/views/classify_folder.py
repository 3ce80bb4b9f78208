"""File ▸ Classify folder…: `tdn valid` in a dialog — progress, Cancel, the summary, Save CSV.

The run is a job on the inference worker (it runs the network's kernels), and so is writing the
CSV; the dialog only shows their reports. Closing the dialog while the run goes on cancels it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..worker.engine_api import Validation
from ..worker.qt_worker import InferenceWorker
from ..worker.scheduler import ClassifyFolderRequest, JobDone, JobProgress, WriteCsvRequest

SKIPPED_SHOWN = 200  # lines of the skipped list; the CSV has every classified image


def summary_text(result: Validation, cancelled: bool = False) -> str:
    """What the dialog says when the run ends (rich text)."""
    lines = []
    if cancelled:
        lines.append(f"<b>Cancelled</b> after {result.images} images.")
    if result.images:
        rate = result.images / result.seconds if result.seconds else 0.0
        lines.append(
            f"Top-1 accuracy <b>{100 * result.top1:.1f}%</b> "
            f"({sum(r.correct1 for r in result.rows)} of {result.images}), "
            f"top-5 <b>{100 * result.top5:.1f}%</b>."
        )
        lines.append(f"{result.images} images classified in {result.seconds:.1f} s ({rate:.1f} images/s).")
    elif not cancelled:
        lines.append(
            "No labelled images: a label is a WordNet id (n01440764) starting the file name or "
            "naming its folder, or a folder named after one of the model's classes."
        )
    if result.skipped:
        lines.append(f"{len(result.skipped)} files skipped (unreadable, or no label): see below.")
    return "<br>".join(lines)


class ClassifyFolderDialog(QDialog):
    def __init__(self, worker: InferenceWorker, folder: str, labels: str | None, model_name: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Classify {Path(folder).name}")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self._worker = worker
        self.folder = folder
        self.result: Validation | None = None
        self.saving = None  # the CSV job in hand
        self.cancelled = False
        self.error: str | None = None
        heading = QLabel(
            f"Classifying every image under <b>{folder}</b> with {model_name}; "
            "labels come from WordNet ids in file or folder names, or class-named folders."
        )
        heading.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy until the first report gives the total
        self.status = QLabel("Looking for images…")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.skipped = QPlainTextEdit()
        self.skipped.setReadOnly(True)
        self.skipped.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QPushButton("Save CSV…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._ask_save_csv)
        self.close_button = QPushButton("Close")
        self.close_button.setEnabled(False)
        self.close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.save_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.summary)
        layout.addWidget(self.skipped, 1)
        layout.addLayout(buttons)
        self.resize(560, 240)
        worker.job_progress.connect(self._on_progress)
        worker.job_finished.connect(self._on_finished)
        self.job = worker.start_job(ClassifyFolderRequest(folder, labels))

    def is_running(self) -> bool:
        return self.job is not None

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling after the batch in hand…")
            self.cancel_button.setEnabled(False)

    def reject(self) -> None:  # Escape or the window's close button
        self.cancel()
        super().reject()

    def _on_progress(self, p: JobProgress) -> None:
        if self.job is None or p.job != self.job.id:
            return
        self.progress.setRange(0, max(1, p.total))
        self.progress.setValue(p.done)
        top1, top5 = p.detail
        self.status.setText(f"{p.done} of {p.total} images · top-1 {100 * top1:.1f}% · top-5 {100 * top5:.1f}%")

    def _on_finished(self, done: JobDone) -> None:
        if self.saving is not None and done.job == self.saving.id:
            self._csv_written(done)
            return
        if self.job is None or done.job != self.job.id:
            return
        self.job = None
        self.cancel_button.setEnabled(False)
        self.close_button.setEnabled(True)
        self.close_button.setDefault(True)
        self.progress.setRange(0, 1)
        self.cancelled = done.cancelled
        if done.error:
            self.error = done.error
            self.progress.setValue(0)
            self.status.setText("")
            self.summary.setText(f"<span style='color:#c0392b'>{done.error}</span>")
            return
        self.result = done.value
        self.progress.setValue(1)
        self.status.setText("")
        self.summary.setText(summary_text(self.result, done.cancelled))
        self.save_button.setEnabled(bool(self.result.rows))
        if self.result.skipped:
            self.skipped.setPlainText(
                "\n".join(f"{p}: {why}" for p, why in self.result.skipped[:SKIPPED_SHOWN])
                + (
                    f"\n… and {len(self.result.skipped) - SKIPPED_SHOWN} more"
                    if len(self.result.skipped) > SKIPPED_SHOWN
                    else ""
                )
            )
            self.skipped.show()

    def save_csv(self, path: str) -> bool:
        """One row per classified image, as `tdn valid --csv` writes it, written on the worker;
        False (with the reason in the status line) when it cannot start."""
        if self.saving is not None:
            return False
        try:
            self.saving = self._worker.start_job(WriteCsvRequest(self.result, path))
        except RuntimeError:
            self.status.setText("The model is busy with another job: save again when it has finished.")
            return False
        self.save_button.setEnabled(False)
        self.status.setText(f"Saving {path}…")
        return True

    def _csv_written(self, done: JobDone) -> None:
        path, self.saving = self.saving.request.path, None
        self.save_button.setEnabled(True)
        self.status.setText(f"Could not save {path}: {done.error}" if done.error else f"Saved {path}.")

    def _ask_save_csv(self) -> None:
        default = str(Path(self.folder).with_name(Path(self.folder).name + "-classified.csv"))
        path, _ = QFileDialog.getSaveFileName(self, "Save results as CSV", default, "CSV (*.csv)")
        if path:
            self.save_csv(path)
