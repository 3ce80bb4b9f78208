"""The inference worker on its own: mailbox semantics, model requests, clean stop."""
from __future__ import annotations

import time

import engine
import numpy as np
import pytest
from engine import teach
from PIL import Image

from tdn_gui.jobs import ClassifyFolderRequest, TeachRequest
from tdn_gui.top_bars import format_percent
from tdn_gui.worker import InferenceWorker, Result

from gui_helpers import MODEL_LOAD_MS, pattern

SLOW_SECONDS = 0.05


class SlowClassifier:
    """A real Classifier that takes at least 50 ms per image: the worker must drop frames.

    Sleeping is fine here, it happens on the worker thread (never on the GUI thread).
    """

    def __init__(self, net, names, resize):
        self._inner = engine.Classifier(net, names=names, resize=resize)

    def classify(self, image, keep_going=None):
        time.sleep(SLOW_SECONDS)
        return self._inner.classify(image, keep_going)


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
        assert w.isFinished()


def load(qtbot, w, model):
    with qtbot.waitSignal(w.model_loaded, timeout=MODEL_LOAD_MS) as blocker:
        w.load_model(model.cfg, model.weights, model.names)
    return blocker.args[0]


def test_model_info_describes_the_network(qtbot, worker, small_model):
    info = load(qtbot, worker(), small_model)
    assert info.name == "small"
    assert info.input_size == (32, 32)
    assert info.classes == 10 and info.threads >= 1 and info.params > 0
    assert info.names == str(small_model.names)


def test_latest_frame_wins(qtbot, worker, small_model, expected_top):
    frames = [pattern(i, 32, 32) for i in range(200)]
    last_expected = expected_top(small_model, frames[-1])   # before the worker runs: one Numba user at a time
    w = worker(SlowClassifier)
    load(qtbot, w, small_model)
    results: list[Result] = []
    w.result_ready.connect(results.append)
    for i, frame in enumerate(frames):   # ~2 ms apart: far faster than the 50 ms model
        w.submit(("frame", i), frame)
        qtbot.wait(2)
    qtbot.waitUntil(lambda: results and results[-1].tag == ("frame", 199), timeout=10_000)
    qtbot.wait(3 * int(SLOW_SECONDS * 1000))   # nothing else may arrive after the last frame
    print(f"\nsubmitted {w.submitted}, processed {w.processed}, dropped {w.dropped}, max pending {w.max_pending}")
    assert w.submitted == 200
    assert w.processed < 200 / 4
    assert w.max_pending <= 1
    assert w.processed + w.dropped == w.submitted
    assert results[-1].tag == ("frame", 199)
    assert [(n, format_percent(p)) for _, n, p in results[-1].top] == last_expected
    assert [r.tag[1] for r in results] == sorted(r.tag[1] for r in results)   # never out of order


def test_stream_frames_share_two_lanes(qtbot, worker, small_model, expected_top, compiled_kernels):
    """Video frames (stream=True) go to whichever of the two lanes is free; other requests only
    to the worker thread. Every result is the right one for its frame."""
    from engine.parallel import concurrent_ok, max_threads
    frames = [pattern(i, 32, 32) for i in range(6)]
    expected = [expected_top(small_model, f) for f in frames]
    w = worker(SlowClassifier)
    load(qtbot, w, small_model)
    if not (concurrent_ok() and max_threads() >= 2):
        pytest.skip("one lane only: Numba's threading layer cannot run kernels on two threads at once")
    assert w.lanes == 2
    results: list[Result] = []
    w.result_ready.connect(results.append)
    for i in range(60):                  # 10 ms apart, each takes 50 ms: both lanes stay busy
        w.submit(("cam", i), frames[i % 6], stream=True)
        qtbot.wait(10)
    qtbot.waitUntil(lambda: w.processed + w.dropped + w.abandoned == w.submitted, timeout=10_000)
    lane = w._lane.processed
    print(f"\nsubmitted {w.submitted}, processed {w.processed} ({lane} by the second lane)")
    assert lane > 0 and w.processed - lane > 0
    assert w.processed > 600 / 1000 / SLOW_SECONDS      # more than one lane could have done
    for r in results:
        assert [(n, format_percent(p)) for _, n, p in r.top] == expected[r.tag[1] % 6]

    for i in range(5):                   # single images stay on the worker thread
        w.submit(("image", i), frames[i])
        qtbot.waitUntil(lambda: results[-1].tag == ("image", i), timeout=5_000)
    assert w._lane.processed == lane


def test_stream_frames_have_their_own_resize_mode(qtbot, worker, small_model):
    """Images by the image mode (min), stream frames by the stream mode (letterbox unless set),
    on whichever lane takes them; set_resize(..., stream=True) changes only the frames."""
    frame = pattern(7, 64, 32)           # 2:1, so the three modes give three different inputs
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

    for i in range(4):                   # both lanes, when there are two
        assert agrees(classify(("frame", i), stream=True), "letterbox")
    assert agrees(classify("image", stream=False), "min")
    w.set_resize("stretch", stream=True)
    for i in range(4, 8):
        assert agrees(classify(("frame", i), stream=True), "stretch")
    assert agrees(classify("image again", stream=False), "min")
    with pytest.raises(ValueError, match="unknown resize mode"):
        w.set_resize("squash", stream=True)


def test_a_frame_overtaken_by_a_newer_answer_is_abandoned(qtbot, worker, small_model, compiled_kernels):
    """Two lanes: while one is on frame 0, the other answers frame 1. Frame 0's answer would be
    stale, so its pass stops at the next layer and it is reported as superseded, not answered."""
    slow, fast = pattern(1, 32, 32), pattern(2, 32, 32)

    class WaitsOnSlowFrame(SlowClassifier):
        def classify(self, image, keep_going=None):
            deadline = time.monotonic() + 10
            while image is slow and keep_going is not None and keep_going() and time.monotonic() < deadline:
                time.sleep(0.005)       # stands in for a long pass: layer after layer
            return self._inner.classify(image, keep_going)

    w = worker(WaitsOnSlowFrame)
    load(qtbot, w, small_model)
    if w.lanes != 2:
        pytest.skip("one lane only: frames are answered in order and none is abandoned")
    results: list[Result] = []
    superseded = []
    w.result_ready.connect(results.append)
    w.superseded.connect(superseded.append)
    w.submit(("cam", 0), slow, stream=True)
    qtbot.waitUntil(lambda: w.pending == 0, timeout=5_000)      # a lane has taken it
    w.submit(("cam", 1), fast, stream=True)
    qtbot.waitUntil(lambda: superseded == [("cam", 0)], timeout=5_000)
    assert [r.tag for r in results] == [("cam", 1)]
    assert (w.processed, w.abandoned, w.dropped) == (1, 1, 0)
    w.submit("image", slow)             # not a stream frame: never abandoned
    qtbot.waitUntil(lambda: results[-1].tag == "image", timeout=5_000)
    assert w.abandoned == 1 and superseded == [("cam", 0)]


class BrokenClassifier(SlowClassifier):
    def classify(self, image, keep_going=None):
        raise RuntimeError("kaboom\nsecond line")


def test_a_classifier_bug_becomes_a_message_and_the_worker_lives(qtbot, worker, small_model):
    w = worker(BrokenClassifier)
    load(qtbot, w, small_model)
    for stream in (False, True, True):
        with qtbot.waitSignal(w.result_ready, timeout=5_000) as blocker:
            w.submit("x", pattern(1, 32, 32), stream=stream)
        assert blocker.args[0].error == "unexpected RuntimeError: kaboom"
    assert w.isRunning()


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
    assert w.isFinished()



def test_one_job_at_a_time_and_each_ends_with_job_finished(qtbot, worker, small_model, tmp_path):
    # Queued before the thread starts, so the first job cannot have finished (it fails at once)
    # by the time the second is offered.
    w = InferenceWorker()
    try:
        w.load_model(small_model.cfg, small_model.weights, small_model.names)   # runs first
        job = w.start_job(ClassifyFolderRequest(str(tmp_path / "missing")))
        assert w.busy
        with pytest.raises(RuntimeError):
            w.start_job(ClassifyFolderRequest(str(tmp_path)))
        with qtbot.waitSignal(w.job_finished, timeout=MODEL_LOAD_MS) as done:   # the load runs first
            w.start()
        assert done.args[0].job == job.id and "is not a folder" in done.args[0].error
        assert not w.busy
    finally:
        w.stop()

    w = worker()
    load(qtbot, w, small_model)

    # A dataset whose files are gone: every image skipped, a class has none left: one line.
    dataset = teach.Dataset(("a", "b"), ((tmp_path / "a.png", 0), (tmp_path / "b.png", 1)))
    with qtbot.waitSignal(w.job_finished, timeout=60_000) as done:
        w.start_job(TeachRequest(dataset))
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
            w.start_job(TeachRequest(teach.scan_dataset(folder), augment=("flip",)))
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
    w = InferenceWorker()            # not started yet: the job is queued and cancelled before it runs
    try:
        w.load_model(small_model.cfg, small_model.weights, small_model.names)
        job = w.start_job(TeachRequest(teach.scan_dataset(folder)))
        job.cancel()
        with qtbot.waitSignal(w.job_finished, timeout=MODEL_LOAD_MS) as done:   # the load runs first
            w.start()
        assert done.args[0].cancelled and done.args[0].value is None and not w.busy
    finally:
        w.stop()
    assert w.isFinished()


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
