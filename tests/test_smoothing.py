"""The webcam bars' smoothing (tdn_gui/views/smoothing.py): the numbers, without Qt."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tdn_gui.views.smoothing import LEVELS, SCENE_CUT, SMOOTHING, BarSmoother, alpha

# Two classes trading the top place: A is ahead on average (0.475 vs 0.375), yet B wins the
# frames where it is seen a little better. What a webcam on one object between two classes gives.
A_FRAME = np.array([0.60, 0.30, 0.05, 0.05], np.float32)
B_FRAME = np.array([0.35, 0.45, 0.10, 0.10], np.float32)


def top1_per_frame(level: str, frames) -> list[int]:
    smoother = BarSmoother(level)
    return [int(np.argmax(smoother.update(p))) for p in frames]


def test_levels_and_their_constants():
    assert LEVELS == ("off", "light", "strong")
    assert alpha("off") == 1.0
    assert alpha("light") == pytest.approx(0.4)
    assert alpha("strong") == pytest.approx(2 / 11)
    # a cut needs a run longer than two classes trading places, and shorter than the window
    assert SCENE_CUT["light"] == 3 and SCENE_CUT["strong"] == 5
    assert all(3 <= SCENE_CUT[k] <= SMOOTHING[k] for k in ("light", "strong"))
    with pytest.raises(ValueError, match="medium"):
        BarSmoother("medium")


def test_ema_matches_a_hand_computed_reference():
    frames = [np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([0.5, 0.5, 0.0])]
    light = BarSmoother("light")  # alpha 0.4
    out = [light.update(p).copy() for p in frames]
    np.testing.assert_allclose(out[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(out[1], [0.6, 0.4, 0.0])  # 0.6 * 1 + 0.4 * 0
    np.testing.assert_allclose(out[2], [0.56, 0.44, 0.0])  # 0.6 * 0.6 + 0.4 * 0.5
    strong = BarSmoother("strong")  # alpha 2/11
    strong.update(frames[0])
    np.testing.assert_allclose(strong.update(frames[1]), [9 / 11, 2 / 11, 0.0])
    assert light.cuts == strong.cuts == 0


def test_ema_matches_a_plain_loop_over_a_longer_sequence():
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(40):  # class 2 always well ahead: no scene cut can happen
        p = rng.uniform(0, 0.1, 6)
        p[2] = 0.6
        frames.append((p / p.sum()).astype(np.float32))
    for level in ("light", "strong"):
        a = 2 / (SMOOTHING[level] + 1)
        expected = [float(v) for v in frames[0]]
        smoother = BarSmoother(level)
        smoother.update(frames[0])
        for p in frames[1:]:
            expected = [(1 - a) * e + a * float(v) for e, v in zip(expected, p)]
            got = smoother.update(p)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert smoother.cuts == 0


def test_flicker_between_two_classes_is_steadied():
    alternating = [A_FRAME, B_FRAME] * 10
    assert top1_per_frame("off", alternating) == [0, 1] * 10
    assert top1_per_frame("light", alternating) == [0] * 20
    assert top1_per_frame("strong", alternating) == [0] * 20
    # Runs of two B frames: light lets a few through, strong none; neither counts as a scene cut.
    runs = [A_FRAME, B_FRAME, B_FRAME, A_FRAME, A_FRAME, B_FRAME] * 4
    off, light, strong = (top1_per_frame(level, runs) for level in LEVELS)
    assert off.count(1) == 12
    assert 0 < light.count(1) < off.count(1)
    assert strong == [0] * 24
    smoother = BarSmoother("light")
    for p in runs:
        smoother.update(p)
    assert smoother.cuts == 0


@pytest.mark.parametrize("level", ["light", "strong"])
def test_a_scene_cut_restarts_the_average_within_k_frames(level):
    old = np.array([0.90, 0.02, 0.02, 0.02, 0.04])
    new = np.array([0.20, 0.35, 0.15, 0.15, 0.15])  # a new object, seen without much confidence
    k = SCENE_CUT[level]
    smoother = BarSmoother(level)
    for _ in range(30):
        smoother.update(old)
    shown = [smoother.update(new).copy() for _ in range(k + 2)]
    # the first k - 1 frames could be flicker: the old scene stays on top
    assert all(int(np.argmax(s)) == 0 for s in shown[: k - 1])
    # the k-th starts over from that very frame, and the average goes on from there
    np.testing.assert_array_equal(shown[k - 1], new)
    np.testing.assert_allclose(shown[k], new)
    assert smoother.cuts == 1
    # without the cut the average alone would still show the old scene on top at frame k
    w = (1 - alpha(level)) ** k
    assert w * old[0] + (1 - w) * new[0] > w * old[1] + (1 - w) * new[1]


def test_a_disagreement_that_keeps_changing_class_is_not_a_scene_cut():
    """The run counts one new class: noise that puts a different runner-up on top each frame
    does not throw the average away."""
    base = np.array([0.60, 0.10, 0.10, 0.20])
    b = np.array([0.34, 0.36, 0.15, 0.15])
    c = np.array([0.34, 0.15, 0.36, 0.15])
    smoother = BarSmoother("light")
    for _ in range(10):
        smoother.update(base)
    shown = [int(np.argmax(smoother.update(p))) for p in [b, c] * 5]
    assert shown == [0] * 10 and smoother.cuts == 0  # ten disagreements in a row, no cut
    shown = [int(np.argmax(smoother.update(b))) for _ in range(SCENE_CUT["light"])]
    assert shown == [0, 0, 1] and smoother.cuts == 1  # the same new class 3 times in a row


def test_off_returns_the_input_unchanged():
    smoother = BarSmoother("off")
    for p in (A_FRAME, B_FRAME, np.array([0.1, 0.9])):
        before = p.copy()
        assert smoother.update(p) is p
        np.testing.assert_array_equal(p, before)
    assert smoother.top(5, ["x", "y"]) == ((1, "y", pytest.approx(0.9)), (0, "x", pytest.approx(0.1)))


def test_the_callers_array_is_never_written():
    first = A_FRAME.copy()
    smoother = BarSmoother("strong")
    smoother.update(first)
    smoother.update(B_FRAME)
    np.testing.assert_array_equal(first, A_FRAME)


def test_a_different_class_count_starts_over():
    smoother = BarSmoother("strong")
    for _ in range(5):
        smoother.update(A_FRAME)
    three = np.array([0.2, 0.3, 0.5])
    np.testing.assert_array_equal(smoother.update(three), three)  # 4 classes -> 3: as is
    assert smoother.top(3, None)[0] == (2, "class 2", pytest.approx(0.5))
    np.testing.assert_allclose(
        smoother.update(np.array([0.5, 0.3, 0.2])), [0.2 + alpha("strong") * 0.3, 0.3, 0.5 - alpha("strong") * 0.3]
    )
    smoother.reset()
    assert smoother.top(5, None) == ()
    np.testing.assert_array_equal(smoother.update(A_FRAME), A_FRAME)


def test_top_ranks_names_and_ties_like_the_engine():
    smoother = BarSmoother("light")
    smoother.update(np.array([0.1, 0.3, 0.3, 0.05, 0.2, 0.05]))
    top = smoother.top(5, ("a", "b", "c"))  # fewer names than classes
    assert [i for i, _, _ in top] == [1, 2, 4, 0, 3]  # ties: lower index first
    assert [n for _, n, _ in top] == ["b", "c", "class 4", "a", "class 3"]
    assert all(isinstance(p, float) for _, _, p in top)
    assert len(smoother.top(10, None)) == 6


def test_smoothing_imports_neither_qt_nor_the_engine():
    code = (
        "import sys, tdn_gui.views.smoothing; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'PySide6', 'engine', 'numba'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
