"""What teaching raises: TeachError for input it cannot use, Cancelled when the caller's cancel
(a callable returning True, or a threading.Event) asks to stop; stop_check reads that cancel."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import EngineError


class TeachError(EngineError):
    """A dataset, layer or output folder that teaching cannot use."""


class Cancelled(EngineError):
    """The caller's cancel callable (or Event) asked to stop."""


def stop_check(cancel) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    return cancel.is_set if hasattr(cancel, "is_set") else cancel
