"""Steadier live bars: an exponential moving average of each class's probability over recent frames.

Display only: the webcam view averages what it paints, never what it counts, so the rates line
(camera fps, inference fps, latency, results shown) reads the same whatever the level.

Plain numpy, no Qt, so the numbers are tested without a window.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Level -> N, the frames the average spans; alpha = 2 / (N + 1). That is the usual "span" of an
# EMA: its weights have the same mean age, (N - 1) / 2 frames, as a plain average of the last N
# frames, so "light" lags like a 4-frame average (alpha 0.4) and "strong" like a 10-frame one
# (alpha 2/11 = 0.18). Counted in results, not seconds: at the webcam's usual 30 results/s that
# is about 0.13 s and 0.33 s of history; a slow model gets fewer results and so a longer one.
SMOOTHING = {"off": 1, "light": 4, "strong": 10}

# Level -> K: a scene cut is K results in a row whose raw top-1 is one same class that is not the
# smoothed top-1; the average then restarts from the current result, so a new object is shown
# at once instead of fading in. K must be longer than a flicker run (two classes trading places
# give runs of 1 or 2, hence at least 3) and short next to the window, or the cut adds nothing to
# what the average does by itself. Light: 3 (after 3 results the average alone still keeps
# 0.6^3 = 22 % of the old scene). Strong: 5, since whoever picks it wants longer runs ignored;
# the average alone would still keep 0.82^5 = 37 % of the old scene.
SCENE_CUT = {"off": 0, "light": 3, "strong": 5}

LEVELS = tuple(SMOOTHING)  # in menu order
DEFAULT_LEVEL = "light"


def alpha(level: str) -> float:
    return 2.0 / (SMOOTHING[level] + 1)


class BarSmoother:
    """The running average for one stream of results; `update` each result, in order."""

    def __init__(self, level: str = DEFAULT_LEVEL):
        if level not in SMOOTHING:
            raise ValueError(f"unknown smoothing level {level!r}: one of {', '.join(LEVELS)}")
        self.level = level
        self.alpha = alpha(level)
        self.scene_cut = SCENE_CUT[level]
        self.cuts = 0  # scene cuts so far (the tests read it)
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next result is shown as it is."""
        self._avg: np.ndarray | None = None
        self._run_class = -1  # the raw top-1 the current disagreement run is about
        self._run = 0  # how many results in a row it has lasted

    def update(self, probs: np.ndarray) -> np.ndarray:
        """The probabilities to show for this result; read them, do not write them (the average
        itself, until the next update). "off" hands `probs` back untouched."""
        probs = np.asarray(probs)
        if self.level == "off":
            self._avg = probs  # kept for `top`, never written
            return probs
        if self._avg is None or self._avg.shape != probs.shape:
            # first result, or a classifier with other classes: nothing to average with
            self.reset()
            self._avg = probs.astype(np.float64)  # a copy: the caller's array stays theirs
            return self._avg
        # In place: avg += alpha * (p - avg) is avg = (1 - alpha) * avg + alpha * p
        self._avg += self.alpha * (probs - self._avg)
        # The cut compares this result's winner with the winner the bars are about to show.
        raw_top = int(np.argmax(probs))
        if raw_top == int(np.argmax(self._avg)):
            self._run = 0
        else:
            self._run = self._run + 1 if raw_top == self._run_class else 1
            self._run_class = raw_top
            if self._run >= self.scene_cut:
                self.cuts += 1
                self.reset()
                self._avg = probs.astype(np.float64)
        return self._avg

    def top(self, k: int, names: Sequence[str] | None) -> tuple[tuple[int, str, float], ...]:
        """(index, name, probability) of the k best smoothed classes, best first, ties in index
        order: the shape of Result.top, and the engine's own ordering and "class N" fallback."""
        if self._avg is None:
            return ()
        order = np.argsort(-self._avg, kind="stable")[:k]
        return tuple(
            (int(i), names[i] if names and i < len(names) else f"class {i}", float(self._avg[i])) for i in order
        )
