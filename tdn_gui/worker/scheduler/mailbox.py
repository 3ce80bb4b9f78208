"""The mailbox between the GUI and the inference lanes: one pending request, and the newest wins.

`post` overwrites the single pending slot, so a slow model drops frames instead of building a
queue; it hands back the request it replaced, which the scheduler reports as superseded. Every
request is numbered as it is posted. Stream frames (live video) may be classified on two lanes at
once: once a lane has answered frame n, an older frame still in the other lane would only be shown
stale, so its `keep_going` check (asked between layers) turns False and the lane abandons it.

A Mailbox is not locked itself: the scheduler guards it with its condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np


@dataclass(frozen=True)
class Request:
    """One image to classify, as posted."""

    tag: Hashable  # the poster's name for it; the Result carries it back
    image: np.ndarray  # (H, W, 3) RGB, float 0..1 or uint8
    stream: bool  # a frame of live video, which either lane may take
    seq: int  # 1 for the first request posted, then 2, 3, ...
    heatmap: bool = False  # also every class's map over the image (Result.heatmap)


@dataclass(frozen=True)
class Result:
    """What one classify request produced; `error` is a one-line message, or None on success."""

    tag: Hashable
    top: tuple[tuple[int, str, float], ...] = ()
    seconds: float = 0.0
    error: str | None = None
    probs: np.ndarray | None = None  # (classes,) every class's probability
    names: tuple[str, ...] | None = None  # the classes' names (None: "class N")
    heatmap: object = None  # an engine.Heatmap when one was asked for
    heatmap_note: str | None = None  # why there is none, when one was asked for


@dataclass(frozen=True)
class Counts:
    """The mailbox's tally: submitted = processed + dropped + abandoned once all is answered."""

    submitted: int
    processed: int  # answered with a Result
    dropped: int  # replaced by a newer request before any lane took it
    abandoned: int  # stream frames given up mid-pass: a newer frame was answered first
    lane_processed: int  # of `processed`, those the second lane answered


class Mailbox:
    def __init__(self):
        self.pending: Request | None = None
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.abandoned = 0
        self._newest_answered = 0  # seq of the newest stream frame with a Result out

    def post(self, tag: Hashable, image: np.ndarray, stream: bool, heatmap: bool = False) -> Request | None:
        """Make this the pending request; returns the one it replaced, if any."""
        replaced = self.pending
        self.submitted += 1
        self.pending = Request(tag, image, stream, self.submitted, heatmap)
        if replaced is not None:
            self.dropped += 1
        return replaced

    def take(self) -> Request | None:
        request, self.pending = self.pending, None
        return request

    def keep_going(self, request: Request) -> Callable[[], bool] | None:
        """For a stream frame, the check a classifier asks between layers: no newer stream frame
        has been answered meanwhile (by the other lane). None for other requests: they always
        finish. The check reads one int, so it needs no lock."""
        if not request.stream:
            return None
        return lambda: self._newest_answered < request.seq

    def answered(self, request: Request, result: Result | None) -> None:
        """Count a request's outcome; None means its pass was abandoned."""
        if result is None:
            self.abandoned += 1
            return
        self.processed += 1
        if request.stream:
            self._newest_answered = max(self._newest_answered, request.seq)
