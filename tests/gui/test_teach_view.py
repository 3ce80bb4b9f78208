"""The Teach view: classes, drops, training, live classification with the taught classes, saving and
reopening a project, export to the Model menu, capture from the camera, and every bad input."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import engine
import numpy as np
import pytest
from engine import teach
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

import cfg_builder as cfg
from gui_helpers import drop_files, pattern
from tdn_gui.settings import ModelChoice, Settings
from tdn_gui.teach import class_list, live_panel, result_text
from tdn_gui.worker.scheduler import jobs

# PySide marks QDragEnterEvent's only constructor deprecated; it is still what Qt sends on a drag.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WAIT = 60_000  # a stall bound, not a speed requirement


def write_images(folder: Path, seeds, size=(48, 40)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"img{seed:02d}.png"
        Image.fromarray(pattern(seed, *size)).save(path)
        paths.append(path)
    return paths


def drop_on_class(view, name: str, paths) -> bool:
    item = view.tree.item_for(name)
    pos = view.tree.visualItemRect(item).center()
    return drop_files(view.tree.viewport(), paths, pos)


def wait_written(qtbot, view) -> None:
    qtbot.waitUntil(lambda: view.writer.pending == 0, timeout=WAIT)


def train(qtbot, window):
    """Click Train; wait for the taught classifier to be live. Returns the TeachResult."""
    view = window.teach_view
    with qtbot.waitSignal(window.worker.classifier_changed, timeout=WAIT, check_params_cb=lambda info: info.taught):
        qtbot.mouseClick(view.training.train_button, Qt.MouseButton.LeftButton)
    return view.training.result


@pytest.fixture
def teach_window(qtbot, open_window, small_model):
    window = open_window(small_model.argv())
    window.tabs.setCurrentWidget(window.teach_view)
    return window


@pytest.fixture
def photos(tmp_path):
    """Two folders of distinct pictures to drop, and one picture to classify afterwards."""
    root = tmp_path / "photos"
    return {
        "dark": write_images(root / "dark", range(0, 5)),
        "light": write_images(root / "light", range(10, 15), size=(40, 48)),
        "probe": write_images(root / "probe", [99])[0],
    }


def make_classes(qtbot, view, photos) -> None:
    """Two classes with the photos dropped on them: files on one, a folder on the other."""
    assert view.classes.add_class("dark") and view.classes.add_class("light")
    assert drop_on_class(view, "dark", photos["dark"])
    assert drop_on_class(view, "light", [photos["light"][0].parent])
    wait_written(qtbot, view)


def test_classes_drop_train_and_classify_with_the_taught_classes(qtbot, teach_window, photos, monkeypatch, small_model):
    window, view = teach_window, teach_window.teach_view
    monkeypatch.setattr(class_list.QInputDialog, "getText", lambda *a, **k: ("dark", True))
    qtbot.mouseClick(view.add_button, Qt.MouseButton.LeftButton)  # the Add… button's path
    assert view.classes.add_class("light")
    assert view.classes.names() == ["dark", "light"]
    assert drop_on_class(view, "dark", photos["dark"])
    assert drop_on_class(view, "light", [photos["light"][0].parent])  # a folder
    wait_written(qtbot, view)
    assert view.classes.counts() == {"dark": 5, "light": 5}
    assert view.message_text() == "Added 10 images."
    folder = view.classes.project.folder
    assert sorted(p.name for p in (folder / "dark").iterdir()) == [p.name for p in photos["dark"]]
    assert view.tree.item_for("light").text(1) == "5"
    view.classes.select("light")
    assert len(view.images.strip_paths()) == 5

    shown = []  # (done, total, the bar's text, the status) after the panel handled each report
    features = []  # (done, total, the features bar's text) for each report of that phase
    training = view.training
    window.worker.job_progress.connect(
        lambda p: (
            shown.append((p.done, p.total, training.cv_bar.text(), training.status.text()))
            if p.stage == "training"
            else features.append((p.done, p.total, training.features_bar.text()))
        )
    )
    result = train(qtbot, window)
    # a bar per phase: the features image by image, then the cross-validation
    done, total, text = features[-1]  # (a pass per image and variant)
    assert done == total >= 10 and text == f"Features {total}/{total}" and training.features_bar.value() == total
    assert training.cv_bar.text() == "Done" and training.cv_bar.value() == training.cv_bar.maximum()
    assert result.classes == ("dark", "light") and view.training.taught is result.model
    heads = result.model.backbone.heads
    assert result.folds == teach.DEFAULT_FOLDS and result.images == 10 and result.cv.count == 10
    # Progress: every fold of every head, then the final fit on all images.
    steps = len(heads) * result.folds
    assert [(done, total) for done, total, _, _ in shown] == [(n, steps + 1) for n in range(1, steps + 2)]
    assert shown[0][2] == f"Cross-validating 1/{steps + 1}"
    assert shown[0][3] == f"Cross-validating the heads: fold 2 of {steps}"
    assert shown[-1][3] == "Training the chosen head on every image…"
    assert view.training.status.text().startswith("Trained in ")
    # The chart: every head at every l2 of the grid, the chosen one marked.
    plot = view.training.plot
    assert plot.trials == result.trials and plot.chosen == (result.head, result.l2)
    assert plot.heads() == list(heads) and plot.l2_values() == sorted(teach.L2_GRID)
    chosen_at = plot.point_of(result.head, result.l2).toPoint()
    assert plot.grab().toImage().pixelColor(chosen_at) == plot.color_of(result.head)  # the filled dot
    # The result: the cross-validated accuracy and what it counts, the head, the training set.
    text = view.training.result_label.text()
    correct = int(result.cv.confusion.trace())
    assert f"Cross-validated accuracy <b>{100 * result.cv.accuracy:.1f}%</b> ({correct} of 10 images)" in text
    assert f"by {result.folds}-fold cross-validation" in text
    assert result.head.describe(result.features.backbone.spec) in text and f"l2 {result.l2:g}" in text
    variants = result.features.variants
    assert variants[:2] == ("original", "flip")
    assert f"trained on all 10 images (× {len(variants)}: {', '.join(variants)})" in text
    assert view.training.taught_radio.isChecked() and view.training.export_button.isEnabled()
    assert window.live_info.taught and "taught" in window.model_label.text()
    # Per class: the cross-validated accuracy, in the class list.
    for k, name in enumerate(result.classes):
        assert view.classes.accuracy[name] == pytest.approx(result.cv.per_class[k])
        assert view.tree.item_for(name).text(2) == f"{100 * result.cv.per_class[k]:.0f}%"
    assert result.few == () and view.message_text() == ""  # 5 images each: nothing to warn about

    # The dropped image in the Images tab: bars with the taught classes, the model's probabilities.
    window.tabs.setCurrentWidget(window.image_view)
    window.add_paths([photos["probe"]])
    qtbot.waitUntil(lambda: window.image_view.entries[-1].state == "done", timeout=WAIT)
    shown = window.image_view.entries[-1].result.top
    assert {name for _, name, _ in shown} == {"dark", "light"}
    assert [name for name, _ in window.image_view.bars.rows()] == [name for _, name, _ in shown]
    expected = result.model.classify(engine.load_image(photos["probe"]))  # the worker is idle now
    for index, name, prob in shown:
        assert name == expected.names[index]
        assert prob == pytest.approx(float(expected.probs[index]), abs=1e-5)

    # Back to the base model: the same image gets the base model's classes again.
    with qtbot.waitSignal(window.worker.classifier_changed, timeout=WAIT, check_params_cb=lambda info: not info.taught):
        view.training.use_taught(False)
    qtbot.waitUntil(lambda: window.image_view.entries[-1].state == "done", timeout=WAIT)
    assert {name for name, _ in window.image_view.bars.rows()} <= set(small_model.names_list())


def test_save_and_reopen_round_trip_the_clis_folder(qtbot, teach_window, photos, tmp_path, open_window, small_model):
    view = teach_window.teach_view
    make_classes(qtbot, view, photos)
    untitled = view.classes.project.folder
    assert view.classes.project.untitled and untitled.is_dir()
    saved = tmp_path / "saved project"
    assert view.classes.save_project_as(str(saved))
    assert view.classes.project.folder == saved and not view.classes.project.untitled
    assert not untitled.exists()  # the temporary folder went with the save
    layout = {d.name: sorted(f.name for f in d.iterdir()) for d in saved.iterdir()}
    assert layout == {"dark": [p.name for p in photos["dark"]], "light": [p.name for p in photos["light"]]}
    dataset = teach.scan_dataset(saved)  # what `tdn teach saved` reads
    assert dataset.classes == ("dark", "light") and dataset.counts() == [5, 5]

    # Changes after the save go to the saved folder.
    assert view.classes.rename_class("light", "bright")
    assert (saved / "bright").is_dir() and not (saved / "light").exists()
    view.classes.new_project()
    assert view.classes.names() == [] and saved.is_dir()  # a saved project is never discarded
    assert view.classes.open_project(str(saved))
    assert view.classes.counts() == {"bright": 5, "dark": 5}

    # The next run reopens the last project.
    teach_window.close()
    assert Settings().teach_project() == str(saved)
    again = open_window(small_model.argv())
    assert again.teach_view.classes.counts() == {"bright": 5, "dark": 5}


def test_export_writes_three_files_and_adds_the_model_menu_entry(
    qtbot, teach_window, photos, tmp_path, open_window, small_model
):
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    result = train(qtbot, window)
    out = tmp_path / "models"
    with qtbot.waitSignal(view.training.exported, timeout=WAIT) as blocker:
        assert view.training.export_model(str(out), "shades")
    paths = blocker.args[0]
    assert sorted(p.name for p in out.iterdir()) == ["shades.cfg", "shades.names", "shades.weights"]
    assert paths.names.read_text().splitlines() == list(result.classes)
    net = engine.Network.load(paths.cfg, paths.weights)  # the worker is idle
    assert net.classes == 2
    action = window.taught_actions[str(paths.cfg)]
    assert action.text() == "shades (taught)" and action in window._model_menu.actions()
    assert Settings().taught_models() == [
        ModelChoice(cfg=str(paths.cfg), weights=str(paths.weights), names=str(paths.names))
    ]
    with qtbot.waitSignal(window.worker.model_loaded, timeout=WAIT) as loaded:
        action.trigger()
    assert loaded.args[0].name == "shades" and loaded.args[0].classes == 2 and action.isChecked()
    # Remembered: a new window lists it too.
    window.close()
    again = open_window(small_model.argv())
    assert "shades (taught)" in [a.text() for a in again.taught_actions.values()]


def test_bad_inputs_give_a_message_and_start_nothing(qtbot, teach_window, photos):
    window, view = teach_window, teach_window.teach_view
    qtbot.mouseClick(view.training.train_button, Qt.MouseButton.LeftButton)
    assert "at least two classes" in view.message_text() and view.message_level() == "error"
    view.classes.add_class("dark")
    view.train()
    assert "'dark' is the only one" in view.message_text()
    view.classes.add_class("light")
    drop_on_class(view, "dark", photos["dark"])
    wait_written(qtbot, view)
    assert not view.train()
    assert "'light' has no images" in view.message_text()
    assert not window.worker.busy and view.training.taught is None
    assert view.training.plot.trials == () and view.training.plot.chosen is None
    assert "appears here after training" in view.training.plot.placeholder
    # Names that cannot be folders, and duplicates
    assert not view.classes.add_class("a/b") and "cannot be a class name" in view.message_text()
    assert not view.classes.add_class("Dark") and "already a class 'dark'" in view.message_text()
    assert not view.classes.rename_class("dark", "light") and view.classes.names() == ["dark", "light"]


def test_a_file_that_cannot_be_copied_leaves_nothing_behind(qtbot, teach_window, photos, tmp_path):
    view = teach_window.teach_view
    view.classes.add_class("dark")
    gone = tmp_path / "gone.png"  # dropped, then deleted before the copy
    assert view.images.drop_paths("dark", [photos["dark"][0], gone]) == 2
    wait_written(qtbot, view)
    assert view.message_level() == "warning"
    assert view.message_text() == "Added 1 image. Not added: gone.png: No such file or directory."
    folder = view.classes.project.class_folder("dark")
    assert [p.name for p in folder.iterdir()] == [photos["dark"][0].name]  # no half-written file either
    assert view.classes.counts() == {"dark": 1}


def test_unreadable_images_are_skipped_and_counted(qtbot, teach_window, photos, media):
    window, view = teach_window, teach_window.teach_view
    view.classes.add_class("dark")
    view.classes.add_class("light")
    drop_on_class(view, "dark", [*photos["dark"], media.truncated])
    drop_on_class(view, "light", photos["light"])
    wait_written(qtbot, view)
    assert view.classes.counts() == {"dark": 6, "light": 5}
    result = train(qtbot, window)
    assert len(result.features.skipped) == 1
    assert view.message_level() == "warning"
    assert "1 file could not be read and was skipped: truncated.jpg" in view.message_text()
    assert result.images == 10 and result.cv.count == 10
    assert "of 10 images" in view.training.result_label.text()


def test_a_class_with_few_images_gets_a_warning(qtbot, teach_window, photos):
    window, view = teach_window, teach_window.teach_view
    view.classes.add_class("dark")
    view.classes.add_class("light")
    drop_on_class(view, "dark", photos["dark"])
    drop_on_class(view, "light", photos["light"][:3])
    wait_written(qtbot, view)
    result = train(qtbot, window)
    assert result.few == ("light",) and result.images == 8
    assert view.message_level() == "warning"
    assert not view.message.isHidden()
    assert view.message_text() == (
        f"Class 'light' has only 3 images: too few to trust its figures; {teach.MIN_TRUSTED} or more would be better."
    )
    assert "of 8 images" in view.training.result_label.text()
    # Its accuracy is still shown, from the cross-validation (three images: thirds).
    assert view.classes.accuracy["light"] == pytest.approx(result.cv.per_class[1])
    assert round(3 * view.classes.accuracy["light"]) == pytest.approx(3 * view.classes.accuracy["light"])


def test_without_cross_validation_the_panel_says_so(qtbot, teach_window, photos):
    """Too few images to cross-validate (a result the engine gives for fewer than two images):
    the training accuracy, said to be that, and the chart's placeholder instead of lines."""
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    result = train(qtbot, window)
    panel = view.training
    uncrossed = dataclasses.replace(result, cv=None, folds=0, trials=())
    panel.plot.show_result(uncrossed)
    assert panel.plot.trials == () and panel.plot.chosen == (result.head, result.l2)
    assert panel.plot.placeholder.startswith("Too few images to cross-validate")
    assert not panel.plot.grab().isNull()
    text = result_text.describe_result(uncrossed)
    assert f"Training accuracy <b>{100 * result.train.accuracy:.1f}%</b>" in text
    assert f"of {result.train.count} training examples" in text and "too few images" in text
    assert result_text.per_class_accuracy(uncrossed) == pytest.approx(
        dict(zip(result.classes, map(float, result.train.per_class)))
    )


def test_export_into_a_folder_that_cannot_be_written(qtbot, teach_window, photos, tmp_path):
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    train(qtbot, window)
    blocker = tmp_path / "in-the-way"
    blocker.write_text("a file where the folder should be\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    with qtbot.waitSignal(window.worker.job_finished, timeout=WAIT) as done:
        view.training.export_model(str(blocker / "models"), "shades")
    assert done.args[0].error
    assert view.message_level() == "error" and view.message_text().startswith("Nothing was exported")
    assert "is a file" in view.message_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == before and blocker.is_file()
    assert window.taught_actions == {} and Settings().taught_models() == []


def test_hold_to_capture_from_the_webcam(qtbot, open_window, small_model, video):
    window = open_window([*small_model.argv(), "--camera", video])
    view = window.teach_view
    window.tabs.setCurrentWidget(view)
    view.classes.add_class("square")
    cam = window.webcam_view
    qtbot.waitUntil(lambda: cam.frames_shown >= 3 and view.live.capture_button.isEnabled(), timeout=WAIT)
    assert view.live.camera_button.text() == "Stop camera"
    qtbot.waitUntil(lambda: view.live.preview.image() is not None, timeout=WAIT)  # the live preview
    qtbot.mousePress(view.live.capture_button, Qt.MouseButton.LeftButton)
    assert view.live.captured >= 1  # the press itself takes one
    qtbot.waitUntil(lambda: view.live.captured >= 4, timeout=WAIT)
    qtbot.mouseRelease(view.live.capture_button, Qt.MouseButton.LeftButton)
    taken = view.live.captured
    shown = cam.frames_shown  # released: frames go on, none is captured
    qtbot.waitUntil(lambda: cam.frames_shown >= shown + 3 * 30 // live_panel.CAPTURE_FPS, timeout=WAIT)
    assert view.live.captured == taken
    wait_written(qtbot, view)
    files = sorted((view.classes.project.folder / "square").iterdir())
    assert len(files) == taken and all(f.suffix == ".png" for f in files)
    assert Image.open(files[0]).size == (160, 120)
    assert view.classes.counts() == {"square": taken} and len(view.images.strip_paths()) == taken
    assert f"{taken} frames captured into 'square'" in view.live.capture_label.text()
    assert len({f.read_bytes() for f in files}) == taken  # never the same frame twice


@pytest.fixture
def gated_extraction(monkeypatch):
    """Feature extraction that, after its first image, waits until the job is cancelled."""
    started = threading.Event()
    real = teach.extract_features

    def extract(backbone, dataset, augment, cache, progress=None, cancel=None):
        def gate(done, total):
            progress(done, total)
            started.set()
            cancel.wait(WAIT / 1000)

        return real(backbone, dataset, augment, cache, progress=gate, cancel=cancel)

    monkeypatch.setattr(jobs.teach, "extract_features", extract)
    return started


def test_cancel_training(qtbot, teach_window, photos, gated_extraction):
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    assert view.train()
    assert gated_extraction.wait(WAIT / 1000)
    assert view.training.cancel_button.isEnabled() and not view.training.train_button.isEnabled()
    with qtbot.waitSignal(window.worker.job_finished, timeout=WAIT) as done:
        qtbot.mouseClick(view.training.cancel_button, Qt.MouseButton.LeftButton)
    assert done.args[0].cancelled
    assert view.training.status.text() == "Training cancelled." and view.training.taught is None
    assert view.training.train_button.isEnabled() and not window.worker.busy


def test_cancelling_a_second_training_keeps_the_first_model_live(qtbot, teach_window, photos, monkeypatch):
    """Cancel during the cross-validation stops the job and leaves the taught model that was live
    before it (the result, the Export, the live classifier)."""
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    first = train(qtbot, window)
    started = threading.Event()
    real = teach.train_head

    def gated(features, *args, cancel=None, **kwargs):
        started.set()
        cancel.wait(WAIT / 1000)
        return real(features, *args, cancel=cancel, **kwargs)

    monkeypatch.setattr(jobs.teach, "train_head", gated)
    assert view.train()
    assert started.wait(WAIT / 1000)
    with qtbot.waitSignal(window.worker.job_finished, timeout=WAIT) as done:
        qtbot.mouseClick(view.training.cancel_button, Qt.MouseButton.LeftButton)
    assert done.args[0].cancelled
    assert view.training.taught is first.model and view.training.result is first
    assert window.live_info.taught and view.training.taught_radio.isChecked()


def test_closing_the_window_while_training(qtbot, teach_window, photos, gated_extraction):
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    assert view.train()
    assert gated_extraction.wait(WAIT / 1000)
    window.close()  # cancels the job; the fixture checks every thread has finished
    assert not window.worker.is_running()


def test_mistakes_window_moves_a_photo_and_the_next_training_counts_it_there(qtbot, teach_window, photos, monkeypatch):
    """Mistakes…: the matrix is the cross-validation's, a clicked cell lists its photos with the
    class predicted; a photo moved from there lands in the other class's folder, the view trains
    again on its own, and the new result counts the photo in its new class. Removing deletes."""
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    result = train(qtbot, window)
    assert result.fine_tuning is not None  # Train follows the check box (on)
    assert view.training.mistakes_button.isEnabled()
    qtbot.mouseClick(view.training.mistakes_button, Qt.MouseButton.LeftButton)
    mistakes = view.mistakes
    assert mistakes is not None and mistakes.isVisible()
    k = len(result.classes)
    assert [
        [int(mistakes.matrix.item(t, p).text()) for p in range(k)] for t in range(k)
    ] == result.cv.confusion.tolist()
    for c in range(k):
        assert mistakes.figures.item(c, 0).text() == str(int(result.cv.counts[c]))
        assert mistakes.figures.item(c, 1).text() == f"{100 * result.cv.recall[c]:.0f}%"

    # click the cell of dark photos predicted as dark (or as light, whichever holds photos)
    dark = result.classes.index("dark")
    predicted = int(np.argmax(result.cv.confusion[dark]))
    rect = mistakes.matrix.visualItemRect(mistakes.matrix.item(dark, predicted))
    qtbot.mouseClick(mistakes.matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert mistakes.cell == (dark, predicted)
    listed = mistakes.listed_paths()
    assert len(listed) == result.cv.confusion[dark, predicted] and all(Path(p).parent.name == "dark" for p in listed)
    expected_text = [
        f"{result.classes[j.predicted]} {100 * j.probabilities[j.predicted]:.0f}%"
        for j in result.judged()
        if str(j.path) in listed
    ]
    assert sorted(mistakes.photos.item(i).text() for i in range(mistakes.photos.count())) == sorted(expected_text)

    # move the first listed photo to "light": the file moves, training runs again by itself
    moving = Path(listed[0])
    mistakes.photos.item(0).setSelected(True)
    mistakes.target.setCurrentText("light")
    with qtbot.waitSignal(view.training.trained, timeout=WAIT) as retrained:
        qtbot.mouseClick(mistakes.move_button, Qt.MouseButton.LeftButton)
    new = retrained.args[0]
    assert new.fine_tuning is None  # from the mistakes window: the head only, on cached features
    folder = view.classes.project.folder
    assert not moving.exists() and (folder / "light" / moving.name).exists()
    assert view.classes.counts() == {"dark": 4, "light": 6}
    moved_at = new.features.paths.index(folder / "light" / moving.name)
    assert new.classes[new.features.image_labels[moved_at]] == "light"
    assert int(new.cv.counts[new.classes.index("light")]) == 6
    qtbot.waitUntil(lambda: mistakes.status.text() == "", timeout=WAIT)
    assert [[int(mistakes.matrix.item(t, p).text()) for p in range(k)] for t in range(k)] == new.cv.confusion.tolist()

    # remove one photo of the listed cell: deleted from the project, trained again
    mistakes.select_cell(dark, int(np.argmax(new.cv.confusion[dark])))
    doomed = Path(mistakes.listed_paths()[0])
    mistakes.photos.item(0).setSelected(True)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(view.training.trained, timeout=WAIT):
        qtbot.mouseClick(mistakes.remove_button, Qt.MouseButton.LeftButton)
    assert not doomed.exists() and view.classes.counts() == {"dark": 3, "light": 6}


def test_moving_onto_a_taken_name_keeps_both_photos(tmp_path):
    from tdn_gui.teach.project_folder import Project, ProjectError

    for name in ("a", "b"):
        write_images(tmp_path / "p" / name, [1])
    project = Project.open(tmp_path / "p")
    source = tmp_path / "p" / "a" / "img01.png"
    moved = project.move_files("a", "b", [source])
    assert moved == [tmp_path / "p" / "b" / "img01-2.png"] and moved[0].exists() and not source.exists()
    assert project.get("b").files == sorted([tmp_path / "p" / "b" / "img01.png", moved[0]])
    assert project.get("a").files == []
    with pytest.raises(ProjectError, match="is not in class 'a' any more"):
        project.move_files("a", "b", [source])


def test_a_photo_that_cannot_move_is_one_message_and_no_training(qtbot, teach_window, photos):
    window, view = teach_window, teach_window.teach_view
    make_classes(qtbot, view, photos)
    train(qtbot, window)
    gone = view.classes.project.class_folder("dark") / photos["dark"][0].name
    gone.unlink()  # deleted behind the app's back
    view.classes.project.get("dark").files.remove(gone)
    assert not view.move_photos([str(gone)], "dark", "light")
    assert view.message_level() == "error" and "is not in class 'dark' any more" in view.message_text()
    assert not view.training.is_busy()


def test_the_base_model_is_chosen_in_the_teach_view_and_training_builds_on_it(qtbot, open_window, photos):
    """Build on: the known models, those not on this computer greyed out; picking another loads it
    (it becomes the live classifier too) and the next training's features come from it."""
    from engine.registry import MODELS, cfg_path, weights_path

    for key in ("tiny", "darknet"):  # "downloaded": seeded weights where the registry keeps them
        weights_path(key).parent.mkdir(parents=True, exist_ok=True)
        engine.write_random_weights(cfg_path(key), weights_path(key), seed=1)
    window = open_window(["--model", "tiny"])
    window.tabs.setCurrentWidget(window.teach_view)
    view = window.teach_view
    combo = view.training.base_combo
    listed = [combo.itemData(i) for i in range(combo.count())]
    assert listed == list(MODELS)
    enabled = {combo.itemData(i): combo.model().item(i).isEnabled() for i in range(combo.count())}
    assert enabled == {key: key in ("tiny", "darknet") for key in MODELS}
    assert combo.currentData() == "tiny" and combo.currentText() == MODELS["tiny"].title
    assert combo.itemText(listed.index("alexnet")).endswith("(not downloaded)")

    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # the user picks the next one: Darknet Reference
    qtbot.waitUntil(lambda: window.model_info is not None and window.model_info.key == "darknet", timeout=WAIT)
    assert combo.currentData() == "darknet"
    assert window.live_info.key == "darknet"
    assert view.training.status.text() == f"{window.model_info.name} is loaded: Train builds on it."

    make_classes(qtbot, view, photos)
    view.training.fine_tune_box.setChecked(False)  # the head is what this test is about: seconds, not tens
    result = train(qtbot, window)
    assert result.features.backbone.cfg_path.name == "darknet.cfg"
    assert result.model.backbone.spec.width == 256  # Darknet Reference's input, not Tiny's 224


# 32x32: conv 8, conv 16, conv 8 (1x1), the classifier (1x1 conv 10): the last layers can be cut
FINE_TUNABLE_CFG = (
    cfg.net(32, 32) + cfg.conv(8) + cfg.conv(16) + cfg.conv(8, size=1) + cfg.conv(10, size=1, bn=0, act="linear")
    + cfg.AVGPOOL + cfg.softmax()
)  # fmt: skip


def fine_tunable_window(open_window, folder):
    cfg_path, weights = folder / "tunable.cfg", folder / "tunable.weights"
    cfg_path.write_text(FINE_TUNABLE_CFG)
    engine.write_random_weights(cfg_path, weights, seed=3)
    window = open_window(["--model", cfg_path, "--weights", weights])
    window.tabs.setCurrentWidget(window.teach_view)
    return window


def test_fine_tuning_follows_the_check_box_with_a_bar_of_its_own(qtbot, open_window, photos, tmp_path):
    window = fine_tunable_window(open_window, tmp_path)
    view, panel = window.teach_view, window.teach_view.training
    make_classes(qtbot, view, photos)
    assert panel.fine_tune_box.isChecked()
    stages = []
    window.worker.job_progress.connect(lambda p: stages.append(p.stage))
    result = train(qtbot, window)
    assert stages.index("features") < stages.index("training") < stages.index("fine-tuning")
    report = result.fine_tuning
    assert report is not None and [t.cut.trained[-1] for t in report.trials] == [max(result.head.layers)]
    assert panel.tune_bar.format() == "Done" and panel.tune_bar.value() == panel.tune_bar.maximum()
    assert f"Fine-tuning: tried {report.trials[0].cut.describe()} (" in panel.result_label.text()
    if report.chosen is not None:
        assert "fine-tuned" in result.how and result.model.tuned_layers == report.chosen.cut.trained

    panel.fine_tune_box.setChecked(False)
    with qtbot.waitSignal(panel.trained, timeout=WAIT) as again:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
        assert panel.tune_bar.format() == "No fine-tuning"
    assert again.args[0].fine_tuning is None and "Fine-tuning" not in panel.result_label.text()


def test_cancel_during_fine_tuning_keeps_the_previous_model(qtbot, open_window, photos, tmp_path, monkeypatch):
    """Cancel while fine-tuning trains: the job stops at its next step (fine_tune's own check)
    and the model taught before stays the result and the live classifier."""
    window = fine_tunable_window(open_window, tmp_path)
    view = window.teach_view
    make_classes(qtbot, view, photos)
    first = train(qtbot, window)
    started = threading.Event()
    real = teach.fine_tune

    def gated(result, *args, progress=None, cancel=None, **kwargs):
        def gate(done, total):
            progress(done, total)
            started.set()
            cancel.wait(WAIT / 1000)  # held at its first step until Cancel

        return real(result, *args, progress=gate, cancel=cancel, **kwargs)

    monkeypatch.setattr(jobs.teach, "fine_tune", gated)
    assert view.train()
    assert started.wait(WAIT / 1000)
    with qtbot.waitSignal(window.worker.job_finished, timeout=WAIT) as done:
        qtbot.mouseClick(view.training.cancel_button, Qt.MouseButton.LeftButton)
    assert done.args[0].cancelled and done.args[0].value is None
    assert view.training.result is first and view.training.taught is first.model
    assert view.training.status.text() == "Training cancelled." and window.live_info.taught
