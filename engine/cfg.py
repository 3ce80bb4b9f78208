"""Reading darknet .cfg text into sections of options, each remembering its file and line.

darknet's own reader strips every space from a line, skips lines starting with '#' or ';',
and starts a section at '['. We accept the same text, and also a trailing '# comment',
but unlike darknet we never guess: a malformed value or an option nobody reads is an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CfgError

# What darknet's atoi/atof read as a whole number: ASCII digits only. Python's int() and float()
# also take "1_0", non-ASCII digits, "nan" and "inf", which darknet reads otherwise (or as 0).
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass
class Section:
    """One [type] block of a cfg file; get_* calls record which options were read."""

    kind: str  # "convolutional", "net", ...
    path: str
    line: int  # line of the [header]
    options: dict[str, tuple[str, int]] = field(default_factory=dict)  # key → (value, line)
    used: set[str] = field(default_factory=set)

    def where(self, key: str | None = None) -> str:
        line = self.options[key][1] if key in self.options else self.line
        return f"{self.path}:{line}"

    def error(self, message: str, key: str | None = None) -> CfgError:
        return CfgError(f"{self.where(key)}: [{self.kind}] {message}")

    def _raw(self, key: str) -> str | None:
        self.used.add(key)
        entry = self.options.get(key)
        return None if entry is None else entry[0]

    def get_int(self, key: str, default: int | None = None) -> int:
        raw = self._raw(key)
        if raw is None:
            if default is None:
                raise self.error(f"needs option '{key}'")
            return default
        return self._int(key, raw)

    def _int(self, key: str, raw: str) -> int:
        if not _INT.fullmatch(raw):
            raise self.error(f"option '{key}={raw}' is not an integer", key)
        if len(raw.lstrip("+-")) > 18:  # past int64 (and int() refuses 4300 digits)
            shown = raw if len(raw) <= 24 else raw[:24] + "..."
            raise self.error(f"option '{key}={shown}' is out of range", key)
        return int(raw)

    def get_flag(self, key: str, default: int = 0) -> bool:
        """A 0/1 option (pad, batch_normalize): darknet treats any other integer as 1; we refuse it."""
        value = self.get_int(key, default)
        if value not in (0, 1):
            raise self.error(f"option '{key}={value}' must be 0 or 1", key)
        return bool(value)

    def get_float(self, key: str, default: float) -> float:
        raw = self._raw(key)
        if raw is None:
            return default
        value = float(raw) if _FLOAT.fullmatch(raw) else math.nan
        if not math.isfinite(value):
            raise self.error(f"option '{key}={raw}' is not a finite number", key)
        return value

    def get_str(self, key: str, default: str | None = None) -> str:
        raw = self._raw(key)
        if raw is None:
            if default is None:
                raise self.error(f"needs option '{key}'")
            return default
        return raw

    def get_int_list(self, key: str) -> list[int]:
        raw = self.get_str(key)
        parts = [part for part in raw.split(",") if part != ""]
        if not all(_INT.fullmatch(part) for part in parts):
            raise self.error(f"option '{key}={raw}' is not a comma-separated list of integers", key)
        return [self._int(key, part) for part in parts]

    def ignore(self, *keys: str) -> None:
        """Mark options that only matter for training as read."""
        self.used.update(keys)

    def check_all_used(self) -> None:
        unused = [k for k in self.options if k not in self.used]
        if unused:
            key = unused[0]
            raise self.error(f"unknown option '{key}'", key)


def read_sections(path: str | Path, text: str | None = None) -> list[Section]:
    """Split cfg text into sections. `text` overrides reading `path` (path still names errors)."""
    path = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise CfgError(f"{path}: cannot read cfg: {exc.strerror or exc}") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    sections: list[Section] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = "".join(raw_line.split())  # darknet strips all whitespace
        if not line or line[0] in "#;":
            continue
        if "#" in line:
            line = line.split("#", 1)[0]
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"{path}:{number}: malformed section header '{raw_line.strip()}'")
            sections.append(Section(kind=line[1:-1].lower(), path=path, line=number))
            continue
        if not sections:
            raise CfgError(f"{path}:{number}: option '{raw_line.strip()}' before any [section]")
        key, sep, value = line.partition("=")
        if not sep or not key or not value:
            raise CfgError(f"{path}:{number}: malformed option '{raw_line.strip()}' (expected key=value)")
        section = sections[-1]
        if key in section.options:
            raise CfgError(
                f"{path}:{number}: option '{key}' given twice in [{section.kind}] "
                f"(first at line {section.options[key][1]})"
            )
        section.options[key] = (value, number)
    if not sections:
        raise CfgError(f"{path}: no sections: not a darknet cfg file")
    return sections
