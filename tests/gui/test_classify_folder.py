"""File ▸ Classify folder…: `tdn valid` in a dialog — progress, summary with accuracy, CSV, Cancel."""

from __future__ import annotations

import csv
import threading

import engine
import pytest
from engine.validate import Labeler, validate
from PIL import Image
from PySide6.QtCore import Qt

from gui_helpers import pattern
from tdn_gui.views import classify_folder, main_window
from tdn_gui.worker.scheduler import models

WAIT = 60_000  # a stall bound, not a speed requirement


def labelled_folder(root, per_class: int, classes=("apple", "banana", "cherry")):
    """Class-named folders (the small model's names) of distinct pictures, and one broken file."""
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(pattern(100 * k + i, 40, 40)).save(folder / f"{name}{i:02d}.png")
    broken = root / classes[0] / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root, broken


def test_classify_folder_summary_and_csv(qtbot, open_window, small_model, tmp_path, monkeypatch):
    folder, broken = labelled_folder(tmp_path / "fruit", per_class=3)
    # The engine's own answer first, while no worker exists (one Numba user at a time).
    net = engine.Network.load(small_model.cfg, small_model.weights)
    names = small_model.names_list()
    expected = validate(engine.Classifier(net, names), folder, Labeler(None, names))
    assert expected.images == 9 and len(expected.skipped) == 1

    window = open_window(small_model.argv())
    reports = []
    window.worker.job_progress.connect(reports.append)
    monkeypatch.setattr(main_window.QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    window.classify_folder_action.trigger()
    dialog = window.classify_dialog
    assert dialog.isVisible() and dialog.is_running()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=WAIT)

    # 10 labelled files, of which 9 could be read and classified
    assert reports and (reports[-1].done, reports[-1].total, reports[-1].stage) == (9, 10, "classifying")
    assert dialog.progress.value() == dialog.progress.maximum()
    result = dialog.result
    assert result.images == 9 and [p for p, _ in result.skipped] == [broken]
    assert result.top1 == expected.top1 and result.top5 == expected.top5
    summary = dialog.summary.text()
    assert f"Top-1 accuracy <b>{100 * expected.top1:.1f}%</b>" in summary
    assert f"top-5 <b>{100 * expected.top5:.1f}%</b>" in summary
    assert "1 files skipped" in summary and "broken.jpg" in dialog.skipped.toPlainText()
    assert dialog.save_button.isEnabled() and dialog.close_button.isEnabled()
    assert not dialog.cancel_button.isEnabled()

    out = tmp_path / "results.csv"
    monkeypatch.setattr(classify_folder.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)  # a job on the worker
    qtbot.waitUntil(lambda: dialog.status.text() == f"Saved {out}.", timeout=WAIT)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9
    assert sorted(r["file"] for r in rows) == sorted(str(r.path) for r in expected.rows)
    by_file = {str(r.path): r for r in expected.rows}
    for row in rows:
        want = by_file[row["file"]]
        assert int(row["label"]) == want.label and row["top5_names"] == "|".join(n for _, n, _ in want.top)
        assert int(row["correct1"]) == int(want.correct1)
    nowhere = tmp_path / "no such folder" / "results.csv"
    assert dialog.save_csv(str(nowhere))
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Could not save"), timeout=WAIT)
    assert dialog.status.text() == f"Could not save {nowhere}: No such file or directory"
    assert not nowhere.parent.exists() and dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_classify_folder_without_labels_says_so(qtbot, open_window, small_model, tmp_path):
    folder = tmp_path / "holiday"
    folder.mkdir()
    Image.fromarray(pattern(1)).save(folder / "beach.png")
    window = open_window(small_model.argv())
    dialog = window.classify_folder(str(folder))
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=WAIT)
    assert dialog.result.images == 0 and "No labelled images" in dialog.summary.text()
    assert not dialog.save_button.isEnabled()


class GatedClassifier(engine.Classifier):
    """A real classifier whose batches wait for the test (on the worker thread, never the GUI's)."""

    entered = threading.Event()
    gate = threading.Event()

    def classify_batch(self, inputs):
        GatedClassifier.entered.set()
        GatedClassifier.gate.wait(WAIT / 1000)
        return super().classify_batch(inputs)


def test_cancel_stops_after_the_batch_in_hand(qtbot, open_window, small_model, tmp_path, monkeypatch):
    folder, _ = labelled_folder(tmp_path / "fruit", per_class=20)  # 60 images: 4 batches of 16
    GatedClassifier.entered.clear()
    GatedClassifier.gate.clear()
    monkeypatch.setattr(models, "engine_classifier", lambda net, names, resize: GatedClassifier(net, names, resize))
    window = open_window(small_model.argv())
    dialog = window.classify_folder(str(folder))
    assert GatedClassifier.entered.wait(WAIT / 1000)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert "Cancelling" in dialog.status.text()
    GatedClassifier.gate.set()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=WAIT)
    assert dialog.cancelled and dialog.result.images == 16
    assert "Cancelled</b> after 16 images" in dialog.summary.text()
    assert not window.worker.busy


def test_needs_a_model(qtbot, open_window, monkeypatch):
    shown = []
    monkeypatch.setattr(main_window.QMessageBox, "information", lambda *a: shown.append(a[2]))
    window = open_window([], wait_model=False)  # tiny is not downloaded here
    assert window.classify_folder("/") is None
    assert shown == ["Load a model first (Model menu)."]


@pytest.fixture(autouse=True)
def _no_dialog_left(qtbot):
    yield
    GatedClassifier.gate.set()  # never leave a worker waiting
