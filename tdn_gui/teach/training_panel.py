"""The Teach view's training column: the base model to build on, Train / Cancel, progress, the
cross-validation chart, the result, which classifier runs live (the taught classes or the loaded
model), and Export.

Training and export are jobs on the shared inference worker (worker.scheduler.jobs); this panel
starts them, shows their reports and keeps the taught model, which it only ever hands back to the
worker. The Teach view decides *whether* to train (and which project); messages go to its banner;
result_text words the outcome.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..settings import Settings
from ..worker.engine_api import MODELS, TaughtModel, TeachResult, is_downloaded
from ..worker.qt_worker import InferenceWorker
from ..worker.scheduler import ExportRequest, JobDone, JobProgress, LoadedModel, TeachRequest
from .export_dialog import ExportDialog, suggest_name
from .result_text import describe_result, few_warnings, skipped_warning
from .training_plot import TrainingPlot
from .widgets import heading, plural

Report = Callable[[str, str], None]  # (text, level): the view's message banner
RADIO_TEXT_WIDTH = 200  # pixels: the column stays narrow enough for a 1100-pixel window


class TrainingPanel(QWidget):
    trained = Signal(object)  # TeachResult
    exported = Signal(object)  # ExportPaths
    # the registry key of the model the user picked to build on: the window loads it (the loaded
    # model is the base of every training), then calls set_base_model
    base_model_requested = Signal(str)

    def __init__(
        self, worker: InferenceWorker, settings: Settings, report: Report, export_name: Callable[[], str], parent=None
    ):
        super().__init__(parent)
        self._worker = worker
        self._settings = settings
        self._report = report
        self._export_name = export_name  # a default model name for the Export dialog
        self.taught: TaughtModel | None = None
        self.result: TeachResult | None = None
        self.last_train_seconds: float | None = None
        self._job = None
        self._job_kind = ""
        self._train_started = 0.0
        self._base: LoadedModel | None = None
        self._loading_base = False  # the model picked in Build on is loading
        worker.job_progress.connect(self._on_job_progress)
        worker.job_finished.connect(self._on_job_finished)
        worker.classifier_changed.connect(lambda info: self._set_live_choice(taught=info.taught))
        self._build()
        self._update_buttons()

    def _build(self) -> None:
        self.base_combo = QComboBox()
        self.base_combo.setToolTip(
            "The network whose features the taught classes build on; loading another one also makes it "
            "the live classifier. Models not on this computer are in the Model menu, to download."
        )
        self.base_combo.activated.connect(self._on_base_chosen)
        base_row = QHBoxLayout()
        base_row.addWidget(QLabel("Build on"))
        base_row.addWidget(self.base_combo, 1)
        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        train_row = QHBoxLayout()
        train_row.addWidget(self.train_button, 1)
        train_row.addWidget(self.cancel_button)
        self.fine_tune_box = QCheckBox("Fine-tune the last layers too")
        self.fine_tune_box.setChecked(True)
        self.fine_tune_box.setToolTip(
            "Also train the network's last layers with the new head on varied crops of the photos "
            "(tens of seconds more); the result keeps them only when cross-validation says they "
            "do better than the head alone. Training again from the Mistakes window trains the head only."
        )
        # a bar per phase of a training: the images' features, the cross-validation (each head's
        # folds and the final fit on every image), the fine-tuning
        self.features_bar = _phase_bar("Features")
        self.cv_bar = _phase_bar("Cross-validation")
        self.tune_bar = _phase_bar("Fine-tuning")
        self.status = QLabel("Not trained yet.")
        self.status.setWordWrap(True)
        self.plot = TrainingPlot()
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.mistakes_button = QPushButton("Mistakes…")
        self.mistakes_button.setToolTip(
            "The cross-validated predictions: a confusion matrix, each class's "
            "recall and precision, and the photos to move or remove"
        )
        self.base_radio = QRadioButton()
        self.taught_radio = QRadioButton("Taught classes (train first)")
        self.base_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.base_radio)
        group.addButton(self.taught_radio)
        self.taught_radio.toggled.connect(self._on_live_choice)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write NAME.cfg, NAME.weights and NAME.names and add the model to the Model menu")
        self.export_button.clicked.connect(self._ask_export)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(heading("Training"))
        layout.addLayout(base_row)
        layout.addLayout(train_row)
        layout.addWidget(self.fine_tune_box)
        # two rows: the column's height goes to the chart and the result, and its width stays the
        # window's (three bars in a row would widen it past the window at its smallest)
        phases = QGridLayout()
        phases.addWidget(self.features_bar, 0, 0)
        phases.addWidget(self.cv_bar, 0, 1)
        phases.addWidget(self.tune_bar, 1, 0, 1, 2)
        layout.addLayout(phases)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        # the result scrolls rather than pushing the buttons under it off a small window
        self.result_scroll = QScrollArea()
        self.result_scroll.setWidget(self.result_label)
        self.result_scroll.setWidgetResizable(True)
        self.result_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.result_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addWidget(self.result_scroll, 1)
        layout.addWidget(self.mistakes_button)
        layout.addWidget(heading("Live classification"))
        layout.addWidget(self.taught_radio)
        layout.addWidget(self.base_radio)
        layout.addWidget(self.export_button)

    # ---- jobs ------------------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self._job is not None

    def is_teaching(self) -> bool:
        return self._job is not None and self._job_kind == "teach"

    def start(self, project: Path, counts: dict[str, int], fine_tune: bool | None = None) -> None:
        """Read the project, extract features and train a head, all on the worker (the view has
        checked the project; `counts` are its images per class, as the view lists them).
        fine_tune: None for the check box's choice."""
        fine = self.fine_tune_box.isChecked() if fine_tune is None else fine_tune
        self._start_job(TeachRequest(str(project), fine_tune=fine), "teach")
        self._train_started = time.monotonic()
        self.plot.clear()
        self.result_label.clear()
        images = sum(counts.values())
        _show_phase(self.features_bar, "Features %v/%m", 0, images)
        _show_phase(self.cv_bar, "Cross-validation", 0, 1)
        _show_phase(self.tune_bar, "Fine-tuning" if fine else "No fine-tuning", 0, 1)
        listed = ", ".join(f"{name} ({count})" for name, count in counts.items())
        self.status.setText(f"Reading features of {plural(images, 'image')}: {listed}")

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.status.setText("Cancelling…")

    def _start_job(self, request, kind: str) -> None:
        self._job = self._worker.start_job(request)
        self._job_kind = kind
        self._update_buttons()

    def _on_job_progress(self, p: JobProgress) -> None:
        if self._job is None or p.job != self._job.id:
            return
        if p.stage == "features":
            _show_phase(self.features_bar, "Features %v/%m", p.done, p.total)
            if p.done == p.total:
                self.status.setText("Cross-validating the heads…")
        elif p.stage == "training":
            self.features_bar.setValue(self.features_bar.maximum())  # every feature was cached
            _show_phase(self.cv_bar, "Cross-validating %v/%m", p.done, p.total)
            folds = p.total - 1  # the last step is the final fit on every image
            if p.done < folds:
                self.status.setText(f"Cross-validating the heads: fold {p.done + 1} of {folds}")
            else:
                self.status.setText("Training the chosen head on every image…")
        elif p.stage == "fine-tuning":
            self.cv_bar.setValue(self.cv_bar.maximum())
            _show_phase(self.tune_bar, "Fine-tuning %p%", p.done, p.total)
            self.status.setText(
                "Fine-tuning the last layers with the head, on crops of the photos (Cancel keeps the previous model)…"
            )

    def _on_job_finished(self, done: JobDone) -> None:
        if self._job is None or done.job != self._job.id:
            return
        kind, self._job, self._job_kind = self._job_kind, None, ""
        if kind == "teach":
            self._teach_finished(done)
        else:
            self._export_finished(done)
        self._update_buttons()

    def _teach_finished(self, done: JobDone) -> None:
        if done.value is not None:
            _show_phase(self.cv_bar, "Done", 1, 1)
            if done.value.fine_tuning is not None:
                _show_phase(self.tune_bar, "Done", 1, 1)
        if done.cancelled:
            self.status.setText("Training cancelled.")
            return
        if done.error:
            self.status.setText("Training failed.")
            self._report(done.error, "error")
            return
        result: TeachResult = done.value
        self.last_train_seconds = time.monotonic() - self._train_started
        self.result, self.taught = result, result.model
        self.status.setText(f"Trained in {self.last_train_seconds:.1f} s.")
        self.plot.show_result(result)
        self.result_label.setText(describe_result(result))
        warnings = [*skipped_warning(result.features), *few_warnings(result)]
        if warnings:
            self._report(" ".join(warnings), "warning")
        self._name_taught_radio(result.classes)
        if self.taught_radio.isChecked():
            self._worker.set_taught(self.taught)
        else:
            self.taught_radio.setChecked(True)  # -> _on_live_choice
        self.trained.emit(result)

    # ---- live classifier -------------------------------------------------------------------------
    def _name_taught_radio(self, classes) -> None:
        """'Taught classes: cat, fish, …': a radio button does not wrap, and a long list of classes
        would widen the whole column past the window; the tooltip has them all."""
        full = f"Taught classes: {', '.join(classes)}"
        metrics = self.taught_radio.fontMetrics()
        self.taught_radio.setText(metrics.elidedText(full, Qt.TextElideMode.ElideRight, RADIO_TEXT_WIDTH))
        self.taught_radio.setToolTip(full)

    def set_base_model(self, info: LoadedModel) -> None:
        """A model was loaded: it is the live classifier again and what the next training builds on."""
        self._base = info
        self.base_radio.setText(f"Base model: {info.name} ({info.classes} classes)")
        self._set_live_choice(taught=False)
        self.refresh_base_models()
        if self._loading_base:
            self._loading_base = False
            self.status.setText(f"{info.name} is loaded: Train builds on it.")

    def refresh_base_models(self, loaded: bool = True) -> None:
        """List the known models (those not downloaded greyed out) and the loaded one, selected;
        a cfg + weights of the user's is listed by its name. loaded=False: none is (it failed)."""
        if not loaded:
            self._base = None
            if self._loading_base:
                self._loading_base = False
                self.status.setText("That model could not be loaded: choose another to build on.")
        combo = self.base_combo
        combo.blockSignals(True)
        combo.clear()
        for key, info in MODELS.items():
            here = is_downloaded(key)
            combo.addItem(info.title if here else f"{info.title} (not downloaded)", key)
            item = combo.model().item(combo.count() - 1)
            item.setEnabled(here)
            if not here:
                item.setToolTip("Download it from the Model menu")
        base = self._base
        if base is not None and base.key is None:
            combo.addItem(f"{base.name} ({Path(base.cfg).name})", "")
            combo.setItemData(combo.count() - 1, base.cfg, Qt.ItemDataRole.ToolTipRole)
        index = combo.findData(base.key or "") if base is not None else -1
        combo.setCurrentIndex(index)
        combo.blockSignals(False)

    def _on_base_chosen(self, index: int) -> None:
        key = self.base_combo.itemData(index)
        if key and (self._base is None or key != self._base.key):
            self.status.setText(f"Loading {MODELS[key].title} to build on…")
            self._loading_base = True
            self.base_model_requested.emit(key)

    def use_taught(self, taught: bool) -> None:
        """Classify live with the taught classes (True) or the loaded model (False)."""
        (self.taught_radio if taught else self.base_radio).setChecked(True)

    def _set_live_choice(self, taught: bool) -> None:
        """Show the choice without acting on it (the worker already did)."""
        for radio in (self.base_radio, self.taught_radio):
            radio.blockSignals(True)
        (self.taught_radio if taught else self.base_radio).setChecked(True)
        for radio in (self.base_radio, self.taught_radio):
            radio.blockSignals(False)

    def _on_live_choice(self) -> None:
        if self.taught_radio.isChecked() and self.taught is None:
            self._set_live_choice(taught=False)
            return
        self._worker.set_taught(self.taught if self.taught_radio.isChecked() else None)

    # ---- export ----------------------------------------------------------------------------------
    def export_model(self, folder: str, name: str) -> bool:
        """Write NAME.cfg/.weights/.names into folder on the worker (all three or none)."""
        if self.taught is None:
            self._report("Train first: there is no taught model to export.", "error")
            return False
        if self._job is not None or self._worker.busy:
            self._report("The model is busy with another job: wait for it to finish.", "error")
            return False
        self._start_job(ExportRequest(self.taught, folder, name), "export")
        self._report(f"Exporting {name}…", "info")
        return True

    def _ask_export(self) -> None:
        folder = self._settings.export_folder() or str(Path.home())
        dialog = ExportDialog(folder, suggest_name(self._export_name()), self)
        if dialog.exec() != ExportDialog.DialogCode.Accepted:
            return
        folder, name = dialog.values()
        existing = [p for p in (Path(folder) / f"{name}{s}" for s in (".cfg", ".weights", ".names")) if p.exists()]
        if existing:
            answer = QMessageBox.question(
                self,
                "Replace files?",
                "Replace " + ", ".join(p.name for p in existing) + f" in {folder}?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.export_model(folder, name)

    def _export_finished(self, done: JobDone) -> None:
        if done.error:
            self._report(f"Nothing was exported: {done.error}", "error")
            return
        paths = done.value
        self._settings.set_export_folder(str(paths.cfg.parent))
        self._report(
            f"Exported {paths.cfg.stem} to {paths.cfg.parent} ({paths.cfg.name}, "
            f"{paths.weights.name}, {paths.names.name}); it is in the Model menu now.",
            "info",
        )
        self.exported.emit(paths)

    def _update_buttons(self) -> None:
        busy = self._job is not None
        self.base_combo.setEnabled(not busy)
        self.train_button.setEnabled(not busy)
        self.cancel_button.setEnabled(self.is_teaching())
        self.taught_radio.setEnabled(self.taught is not None)
        self.export_button.setEnabled(self.taught is not None and not busy)
        self.mistakes_button.setEnabled(self.result is not None and self.result.cv is not None)


def _phase_bar(name: str) -> QProgressBar:
    bar = QProgressBar()
    _show_phase(bar, name, 0, 1)
    return bar


def _show_phase(bar: QProgressBar, text: str, done: int, total: int) -> None:
    bar.setRange(0, max(1, total))
    bar.setValue(done)
    bar.setFormat(text)
