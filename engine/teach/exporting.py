"""Exporting a taught model: NAME.cfg, NAME.weights and NAME.names, all three or none."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..files import publish, stage
from ..spec import parse_network
from ..weights import read_weights, weights_bytes
from .errors import TeachError
from .model import TaughtModel


@dataclass(frozen=True)
class ExportPaths:
    cfg: Path
    weights: Path
    names: Path


def check_output(out_dir: str | Path, name: str) -> Path:
    """Fail early (before any work) when NAME or the output folder cannot be used."""
    if not name or name in (".", "..") or any(ch in name for ch in "/\\\0\r\n") or name.startswith("."):
        raise TeachError(f"'{name}' cannot be a model name: use letters, digits, '-' or '_' (no folders)")
    out = Path(out_dir)
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = out if probe == out else probe
        raise TeachError(f"cannot write to {out}: {what} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tdn-write-check-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise TeachError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def export(model: TaughtModel, out_dir: str | Path, name: str) -> ExportPaths:
    """Write NAME.cfg, NAME.weights (darknet's current 0.2 header, the base's `seen`) and NAME.names.
    Each is written to a temporary file and checked by loading it back; only then are the three
    renamed into place. On any failure none of them (and no folder this call made) is left."""
    out = check_output(out_dir, name)
    paths = ExportPaths(out / f"{name}.cfg", out / f"{name}.weights", out / f"{name}.names")
    text = model.cfg_text(name)
    spec = parse_network(paths.cfg, text)
    params = list(model.backbone.params[: model.head.last + 1]) + model.head_params()
    header = model.backbone.header
    made = [p for p in reversed([out, *out.parents]) if not p.exists()]
    temps: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        temps[paths.cfg] = stage(paths.cfg, text.encode("utf-8"))
        temps[paths.weights] = stage(paths.weights, weights_bytes(spec, params, seen=header.seen if header else 0))
        temps[paths.names] = stage(paths.names, ("\n".join(model.classes) + "\n").encode("utf-8"))
        check_spec = parse_network(temps[paths.cfg])
        read_weights(temps[paths.weights], check_spec)  # every byte accounted for
        for final, tmp in temps.items():
            publish(tmp, final)
            placed.append(final)
    except BaseException as exc:
        for path in [*temps.values(), *placed]:
            path.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise TeachError(f"cannot write to {out}: {exc.strerror or exc}") from None
        raise
    return paths
