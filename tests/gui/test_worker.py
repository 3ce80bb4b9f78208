"""The inference worker as the views see it: the scheduler's reports as Qt signals on the GUI
thread, resize modes, errors, jobs, and the second lane arriving with the compiled kernels.
The scheduling itself (latest frame wins, two lanes, abandoning, switches, the job queue, stop)
is tested without Qt in tests/test_scheduler.py."""

from __future__ import annotations

import engine
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from tdn_gui.views.top_bars import format_percent
from tdn_gui.worker.qt_worker import InferenceWorker
from tdn_gui.worker.scheduler import ClassifyFolderRequest, Counts, Result, TeachRequest

from gui_helpers import MODEL_LOAD_MS, Gate, gated, pattern


@pytest.fixture
def worker(qtbot):
    workers = []

    def make(make_classifier=None):
        w = InferenceWorker(make_classifier)
        workers.append(w)
        w.start()
        return w

    yield make
    for w in workers:
        w.stop()
        assert not w.is_running() and not any(t.is_alive() for t in w.scheduler.threads())


def load(qtbot, w, model):
    with qtbot.waitSignal(w.model_loaded, timeout=MODEL_LOAD_MS) as blocker:
        w.load_model(model.cfg, model.weights, model.names)
    return blocker.args[0]


def test_the_loaded_model_describes_the_network(qtbot, worker, small_model):
    info = load(qtbot, worker(), small_model)
    assert info.name == "small"
    assert info.input_size == (32, 32)
    assert info.classes == 10 and info.threads >= 1 and info.params > 0
    assert info.names == str(small_model.names)


def test_the_newest_frame_wins_and_every_report_arrives_on_the_gui_thread(qtbot, worker, small_model, expected_top):
    frames = [pattern(i, 32, 32) for i in range(10)]
    last_expected = expected_top(small_model, frames[-1])  # before the worker runs: one Numba user at a time
    gate = Gate(frames[0])
    w = worker(gated(gate))
    load(qtbot, w, small_model)
    gui_thread = QApplication.instance().thread()
    results: list[Result] = []
    superseded = []
    on_gui_thread = []
    w.result_ready.connect(lambda r: (results.append(r), on_gui_thread.append(QThread.currentThread() is gui_thread)))
    w.superseded.connect(
        lambda tag: (superseded.append(tag), on_gui_thread.append(QThread.currentThread() is gui_thread))
    )
    w.submit(("frame", 0), frames[0])
    assert gate.entered.wait(MODEL_LOAD_MS / 1000)  # the worker is busy with frame 0
    for i in range(1, 10):
        w.submit(("frame", i), frames[i])
    assert w.pending == 1
    qtbot.waitUntil(lambda: len(superseded) == 8, timeout=5_000)
    gate.opened.set()
    qtbot.waitUntil(lambda: len(results) == 2, timeout=10_000)
    assert superseded == [("frame", i) for i in range(1, 9)]
    assert [r.tag for r in results] == [("frame", 0), ("frame", 9)]
    assert [(n, format_percent(p)) for _, n, p in results[-1].top] == last_expected
    assert w.counts() == Counts(submitted=10, processed=2, dropped=8, abandoned=0, lane_processed=0)
    assert w.pending == 0
    assert on_gui_thread and all(on_gui_thread)


def test_stream_frames_have_their_own_resize_mode(qtbot, worker, small_model):
    """Images by the image mode (min), stream frames by the stream mode (letterbox unless set),
    on whichever lane takes them; set_resize(..., stream=True) changes only the frames."""
    frame = pattern(7, 64, 32)  # 2:1, so the three modes give three different inputs
    net = engine.Network.load(small_model.cfg, small_model.weights)
    expected = {mode: engine.Classifier(net, resize=mode).classify(frame).probs for mode in engine.RESIZE_MODES}
    assert not np.allclose(expected["min"], expected["letterbox"])
    assert not np.allclose(expected["letterbox"], expected["stretch"])
    w = worker()
    load(qtbot, w, small_model)
    results: list[Result] = []
    w.result_ready.connect(results.append)

    def classify(tag, stream):
        w.submit(tag, frame, stream=stream)
        qtbot.waitUntil(lambda: bool(results) and results[-1].tag == tag, timeout=5_000)
        return {i: p for i, _, p in results[-1].top}

    def agrees(top, mode):
        return all(abs(p - expected[mode][i]) < 1e-6 for i, p in top.items())

    for i in range(4):  # both lanes, when there are two
        assert agrees(classify(("frame", i), stream=True), "letterbox")
    assert agrees(classify("image", stream=False), "min")
    w.set_resize("stretch", stream=True)
    for i in range(4, 8):
        assert agrees(classify(("frame", i), stream=True), "stretch")
    assert agrees(classify("image again", stream=False), "min")
    with pytest.raises(ValueError, match="unknown resize mode"):
        w.set_resize("squash", stream=True)


class BrokenClassifier(engine.Classifier):
    def __init__(self, net, names, resize):
        super().__init__(net, names=names, resize=resize)

    def classify(self, image, keep_going=None):
        raise RuntimeError("kaboom\nsecond line")


def test_a_classifier_bug_becomes_a_message_and_the_worker_lives(qtbot, worker, small_model):
    w = worker(BrokenClassifier)
    load(qtbot, w, small_model)
    for stream in (False, True, True):
        with qtbot.waitSignal(w.result_ready, timeout=5_000) as blocker:
            w.submit("x", pattern(1, 32, 32), stream=stream)
        assert blocker.args[0].error == "unexpected RuntimeError: kaboom"
    assert w.is_running()


def test_broken_cfg_reports_model_failed(qtbot, worker, tmp_path, small_model):
    bad = tmp_path / "bad.cfg"
    bad.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=zero\n")
    w = worker()
    with qtbot.waitSignal(w.model_failed, timeout=10_000) as blocker:
        w.load_model(bad, small_model.weights)
    assert "\n" not in blocker.args[0] and blocker.args[0]


def test_weights_that_do_not_fit_report_model_failed(qtbot, worker, small_model, medium_model):
    w = worker()
    with qtbot.waitSignal(w.model_failed, timeout=10_000) as blocker:
        w.load_model(small_model.cfg, medium_model.weights)
    assert blocker.args[0]


def test_without_a_model_a_result_says_so(qtbot, worker):
    w = worker()
    with qtbot.waitSignal(w.result_ready, timeout=5_000) as blocker:
        w.submit("x", np.zeros((8, 8, 3), np.uint8))
    assert blocker.args[0].error == "no model is loaded"


def test_stop_without_start_and_twice(qtbot):
    w = InferenceWorker()
    w.stop()
    w.start()
    w.stop()
    w.stop()
    assert not w.is_running()


def test_one_job_at_a_time_and_each_ends_with_job_finished(qtbot, worker, small_model, tmp_path):
    # Queued before the thread starts, so the first job cannot have finished (it fails at once)
    # by the time the second is offered.
    w = InferenceWorker()
    try:
        w.load_model(small_model.cfg, small_model.weights, small_model.names)  # runs first
        job = w.start_job(ClassifyFolderRequest(str(tmp_path / "missing")))
        assert w.busy
        with pytest.raises(RuntimeError):
            w.start_job(ClassifyFolderRequest(str(tmp_path)))
        with qtbot.waitSignal(w.job_finished, timeout=MODEL_LOAD_MS) as done:  # the load runs first
            w.start()
        assert done.args[0].job == job.id and "is not a folder" in done.args[0].error
        assert not w.busy
    finally:
        w.stop()

    w = worker()
    load(qtbot, w, small_model)

    # A project whose files are not images: every one skipped, a class has none left: one line.
    project = tmp_path / "unreadable"
    for name in ("a", "b"):
        (project / name).mkdir(parents=True)
        (project / name / f"{name}.png").write_text("not a picture\n")
    with qtbot.waitSignal(w.job_finished, timeout=60_000) as done:
        w.start_job(TeachRequest(str(project)))
    assert done.args[0].value is None and "no readable images" in done.args[0].error
    assert "\n" not in done.args[0].error


def test_teaching_also_sees_the_images_as_the_webcam_prepares_them(qtbot, worker, small_model, tmp_path):
    """Images by min, webcam frames by letterbox (the defaults): the features of each training
    image are taken both ways, so the taught classes work in both views."""
    folder = tmp_path / "classes"
    for name, seed in (("a", 1), ("b", 2)):
        (folder / name).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(pattern(seed * 10 + k, 48, 32)).save(folder / name / f"{k}.png")
    w = worker()
    load(qtbot, w, small_model)

    def teach_variants():
        with qtbot.waitSignal(w.job_finished, timeout=60_000) as done:
            w.start_job(TeachRequest(str(folder), augment=("flip",)))
        assert done.args[0].error is None
        return done.args[0].value.features.variants

    assert teach_variants() == ("original", "flip", "resize-letterbox")
    w.set_resize("min", stream=True)
    assert teach_variants() == ("original", "flip")


def test_a_job_cancelled_before_it_starts_reports_cancelled(qtbot, small_model, tmp_path):
    folder = tmp_path / "classes"
    for name, seed in (("a", 1), ("b", 2)):
        (folder / name).mkdir(parents=True)
        Image.fromarray(pattern(seed)).save(folder / name / "x.png")
    w = InferenceWorker()  # not started yet: the job is queued and cancelled before it runs
    try:
        w.load_model(small_model.cfg, small_model.weights, small_model.names)
        job = w.start_job(TeachRequest(str(folder)))
        job.cancel()
        with qtbot.waitSignal(w.job_finished, timeout=MODEL_LOAD_MS) as done:  # the load runs first
            w.start()
        assert done.args[0].cancelled and done.args[0].value is None and not w.busy
    finally:
        w.stop()
    assert not w.is_running()


def test_the_second_lane_starts_once_compiled_kernels_have_run(qtbot, worker, small_model, compiled_cache):
    """The portable kernels classify on one lane; when the compiled ones take over (a fresh
    install's compile finishing), the next stream frame runs on them and the second lane starts
    where Numba's threading layer allows it."""
    from engine import kernels
    from engine.parallel import concurrent_ok, max_threads

    w = worker()
    load(qtbot, w, small_model)
    assert w.lanes == 1
    changes = []
    w.kernels_changed.connect(changes.append)
    kernels.use("compiled")
    try:
        w.submit(("cam", 0), pattern(0, 32, 32), stream=True)
        qtbot.waitUntil(lambda: bool(changes) and changes[-1].path == "compiled", timeout=10_000)
        if not (concurrent_ok() and max_threads() >= 2):
            pytest.skip("one lane only: Numba's threading layer cannot run kernels on two threads at once")
        w.submit(("cam", 1), pattern(1, 32, 32), stream=True)
        qtbot.waitUntil(lambda: w.lanes == 2, timeout=10_000)
    finally:
        kernels.use("portable")
