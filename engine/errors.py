"""Errors the engine raises. Every message is one line that names the file, line or layer."""


class EngineError(Exception):
    """Base of every error the engine raises; str() is one clear line."""


class CfgError(EngineError):
    """A .cfg file that cannot describe a network (syntax, option or shape)."""


class WeightsError(EngineError):
    """A .weights file that does not fit its cfg."""


class ShapeError(EngineError):
    """An input the network cannot take (wrong size or channel count)."""


def one_line(exc: BaseException) -> str:
    """An exception as the one line a user sees: its first line, or its type when it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
