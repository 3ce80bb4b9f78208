"""The webcam view's Smoothing control: the bars show the smoothed top-5, the counters the raw results.

The view runs for real on a test-written video (a file is a camera too). Live results from a
random model say little about smoothing, so most checks hand the view's result slot Results made
here, numbered after any frame the capture can have read: the view then ignores the worker's own
late answers (it never steps back in time) and shows exactly these.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tdn_gui.settings import Settings
from tdn_gui.views.smoothing import SCENE_CUT, BarSmoother
from tdn_gui.views.top_bars import format_percent
from tdn_gui.worker.scheduler import TOP_K, Result

NAMES = ("cat", "dog", "fox", "owl", "bee", "ant")
A_FRAME = np.array([0.60, 0.30, 0.04, 0.03, 0.02, 0.01], np.float32)  # cat ahead
B_FRAME = np.array([0.35, 0.45, 0.08, 0.06, 0.04, 0.02], np.float32)  # dog, a little


def rows_of(probs, names=NAMES) -> list[tuple[str, str]]:
    """The bars' rows for these probabilities as they are: (name, percentage), best first."""
    order = np.argsort(-np.asarray(probs), kind="stable")[:TOP_K]
    return [(names[i] if names and i < len(names) else f"class {i}", format_percent(float(probs[i]))) for i in order]


class Feed:
    """Hands the view Results as the worker would, numbered after every real frame."""

    def __init__(self, view):
        self.view = view
        self.ids = itertools.count(10**9)

    def result(self, probs=None, names=NAMES, seconds=0.010, error=None, top=None) -> Result:
        if top is None and probs is not None:  # the worker's own top-5, as models.answer ranks it
            top = tuple(
                (int(i), names[i] if names else f"class {i}", float(probs[i]))
                for i in np.argsort(-probs, kind="stable")[:TOP_K]
            )
        result = Result(("camera", next(self.ids)), top or (), seconds, error, probs=probs, names=names)
        self.view._on_result(result)
        return result


@pytest.fixture
def running(qtbot, open_window, small_model, video):
    """The real window with its webcam view playing the video, after its first live result."""
    window = open_window([*small_model.argv(), "--camera", video])
    cam = window.webcam_view
    qtbot.waitUntil(lambda: cam.results_shown >= 1, timeout=20_000)
    return window, cam, Feed(cam)


def test_control_sits_under_the_bars_and_says_what_it_does(running):
    window, cam, _ = running
    assert [cam.smoothing.itemText(i) for i in range(cam.smoothing.count())] == ["Off", "Light", "Strong"]
    assert cam.smoothing.currentText() == "Light" and cam.smoothing_level() == "light"  # the default
    tip = cam.smoothing.toolTip()
    assert "Display only" in tip and "scene cut" in tip
    assert cam.smoothing.isVisible()
    # between the bars it steadies and the rates line it leaves alone...
    side = cam.bars.parentWidget()
    assert cam.smoothing.parentWidget() is side
    assert cam.bars.geometry().bottom() < cam.smoothing.geometry().top() < cam.stats.geometry().top()
    # ...and no wider than the bars' own minimum, so the window can be as narrow as before
    row = side.layout().itemAt(1).layout()
    assert row.indexOf(cam.smoothing) >= 0
    assert row.minimumSize().width() <= cam.bars.minimumSizeHint().width()


def test_live_results_show_the_smoothed_top5(qtbot, running):
    """Real frames from the worker: the bars follow an average over every result shown."""
    window, cam, _ = running
    shown = []
    cam.result_shown.connect(lambda r: shown.append((r, cam.bars.rows(), cam.results_shown)))
    cam.set_smoothing("strong")  # a fresh average from the next result on
    qtbot.waitUntil(lambda: len(shown) >= 8, timeout=20_000)
    reference = BarSmoother("strong")
    for result, rows, _ in shown:
        assert result.error is None and result.probs is not None and result.names is not None
        reference.update(result.probs)
        assert rows == [(n, format_percent(p)) for _, n, p in reference.top(TOP_K, result.names)]
    # each result is counted once, smoothed or not
    counts = [n for _, _, n in shown]
    assert counts == list(range(counts[0], counts[0] + len(counts)))


def test_bars_follow_the_average_at_each_level(running):
    window, cam, feed = running
    cam.set_smoothing("off")
    feed.result(A_FRAME)
    assert cam.bars.rows() == rows_of(A_FRAME)
    feed.result(B_FRAME)
    assert cam.bars.rows() == rows_of(B_FRAME)  # off: the raw flicker

    cam.smoothing.setCurrentIndex(1)  # Light, alpha 0.4, as a user picks it
    assert cam.smoothing_level() == "light"
    feed.result(A_FRAME)
    assert cam.bars.rows() == rows_of(A_FRAME)  # a new level starts from the next result
    feed.result(B_FRAME)
    # 0.6 * A + 0.4 * B, worked out by hand
    assert cam.bars.rows()[:3] == [("cat", "50.0%"), ("dog", "36.0%"), ("fox", "5.6%")]
    for _ in range(5):
        feed.result(A_FRAME)
        assert cam.bars.rows()[0][0] == "cat"
        feed.result(B_FRAME)
        assert cam.bars.rows()[0][0] == "cat"  # the flicker is gone from the top row

    cam.set_smoothing("strong")
    feed.result(A_FRAME)
    feed.result(B_FRAME)
    # (9 * A + 2 * B) / 11
    assert cam.bars.rows()[:2] == [
        ("cat", format_percent((9 * 0.60 + 2 * 0.35) / 11)),
        ("dog", format_percent((9 * 0.30 + 2 * 0.45) / 11)),
    ]


def test_counters_are_the_raw_results_whatever_the_level(qtbot, running):
    window, cam, feed = running
    figures = {}
    for level in ("off", "strong"):
        cam.set_smoothing(level)
        before = cam.results_shown
        for i in range(20):  # the latency window: 20 results of 8 ms, whatever is shown
            feed.result(A_FRAME if i % 2 else B_FRAME, seconds=0.008)
        figures[level] = (cam.results_shown - before, cam.latency_ms)
        assert cam.inference_fps > 0
    assert figures["off"] == figures["strong"] == (20, pytest.approx(8.0))
    qtbot.waitUntil(lambda: "8.0 ms" in cam.stats.text(), timeout=5_000)  # the rates line says so


def test_a_scene_cut_shows_the_new_object_within_k_results(running):
    window, cam, feed = running
    cam.set_smoothing("strong")
    old = np.array([0.90, 0.02, 0.02, 0.02, 0.02, 0.02], np.float32)
    new = np.array([0.20, 0.05, 0.05, 0.35, 0.20, 0.15], np.float32)  # an owl, unsure
    for _ in range(20):
        feed.result(old)
    tops = []
    for _ in range(SCENE_CUT["strong"]):
        feed.result(new)
        tops.append(cam.bars.rows()[0][0])
    assert tops == ["cat"] * (SCENE_CUT["strong"] - 1) + ["owl"]
    assert cam.bars.rows() == rows_of(new)  # started over from this very result


def test_what_starts_the_average_over(running):
    window, cam, feed = running
    cam.set_smoothing("strong")

    def primed():
        for _ in range(5):
            feed.result(A_FRAME)

    # other classes (a taught model): a different class count, or the same count named otherwise
    primed()
    three = np.array([0.1, 0.7, 0.2], np.float32)
    feed.result(three, names=("red", "green", "blue"))
    assert cam.bars.rows() == rows_of(three, ("red", "green", "blue"))
    primed()
    other_names = tuple(n.upper() for n in NAMES)
    feed.result(B_FRAME, names=other_names)
    assert cam.bars.rows() == rows_of(B_FRAME, other_names)
    # no names: "class N", as the worker names them
    primed()
    feed.result(B_FRAME, names=None)
    assert cam.bars.rows() == rows_of(B_FRAME, None) and cam.bars.rows()[0][0] == "class 1"

    # a model change
    primed()
    cam.set_model_ready(False)
    cam.set_model_ready(True)
    feed.result(B_FRAME)
    assert cam.bars.rows() == rows_of(B_FRAME)

    # an error is shown as before, and the bars start over after it
    primed()
    feed.result(error="no model is loaded")
    assert cam.bars.is_error() and cam.bars.message() == "no model is loaded"
    feed.result(B_FRAME)
    assert cam.bars.rows() == rows_of(B_FRAME)

    # a result without every class's probabilities: the worker's own top-5
    primed()
    feed.result(None, top=((4, "bee", 0.5), (0, "cat", 0.25)))
    assert cam.bars.rows() == [("bee", "50.0%"), ("cat", "25.0%")]

    # restarting the camera
    primed()
    cam.start()
    feed.result(B_FRAME)
    assert cam.bars.rows() == rows_of(B_FRAME)

    # pause and resume: the scene may be another one
    primed()
    before = cam.bars.rows()
    cam.pause_button.setChecked(True)
    feed.result(B_FRAME)  # ignored while paused, as before
    assert cam.bars.rows() == before
    cam.pause_button.setChecked(False)
    feed.result(B_FRAME)
    assert cam.bars.rows() == rows_of(B_FRAME)


def test_the_level_is_remembered(qtbot, open_window, small_model):
    window = open_window(small_model.argv())
    assert window.webcam_view.smoothing_level() == "light"
    window.webcam_view.smoothing.setCurrentIndex(2)
    assert Settings().smoothing() == "strong"
    window.close()
    again = open_window(small_model.argv())
    assert again.webcam_view.smoothing_level() == "strong"
    assert again.webcam_view.smoothing.currentText() == "Strong"
