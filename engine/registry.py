"""The pretrained classifiers tdn knows, and where their files live on this machine.

No network and no Qt here: engine.download fetches the files, this module only names them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from engine import paths
from engine.errors import EngineError

_PJREDDIE = "https://pjreddie.com/media/files"
_DARKNET_DATA = "https://raw.githubusercontent.com/pjreddie/darknet/master/data"
NAMES_URL = f"{_DARKNET_DATA}/imagenet.shortnames.list"
LABELS_URL = f"{_DARKNET_DATA}/imagenet.labels.list"
NUM_CLASSES = 1000  # the lists hold 21842 lines; the first 1000 are ImageNet-1k in weight order

# darknet's .weights header ends with `seen`: int32 in format 0.1 (pjreddie's published
# files), int64 from 0.2 on (what darknet writes today). A file of either size is complete.
_VERSIONS = ((0, 1), (0, 2))


@dataclass(frozen=True)
class ModelInfo:
    key: str
    title: str
    cfg_name: str  # a file in the project's cfg folder (engine.paths.cfg_dir())
    weights_url: str
    sha256: str | None  # pinned where we have seen the published file
    top1: float | None  # published ImageNet accuracy (darknet's site), for display only
    top5: float | None


def _model(key, title, top1, top5, sha256=None) -> ModelInfo:
    return ModelInfo(key, title, f"{key}.cfg", f"{_PJREDDIE}/{key}.weights", sha256, top1, top5)


MODELS: dict[str, ModelInfo] = {
    m.key: m
    for m in (
        _model(
            "tiny",
            "Tiny Darknet",
            58.7,
            81.7,
            sha256="f1c3fe6b9bab9af69ae2a090682df3e5b9d83accba69551315f030ce1b37ea81",
        ),
        _model("darknet", "Darknet Reference", 61.1, 83.0),
        _model("darknet19", "Darknet19", 72.9, 91.2),
        _model("extraction", "Extraction", 72.5, 90.8),
        _model("alexnet", "AlexNet", 57.0, 80.3),
        _model("resnet18", "ResNet 18", 70.7, 89.9),
    )
}


class RegistryError(EngineError):
    """An unknown model name, or a model whose files are not on this machine."""


def _info(key: str) -> ModelInfo:
    try:
        return MODELS[key]
    except KeyError:
        raise RegistryError(f"unknown model '{key}' (known: {', '.join(MODELS)})") from None


def cache_dir() -> Path:
    """Where downloaded weights and label lists go; TDN_CACHE_DIR overrides (tests, portable use)."""
    env = os.environ.get("TDN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs  # only needed for the real per-user location

    return Path(platformdirs.user_cache_dir("tdn")) / "models"


def cfg_path(key: str) -> Path:
    return paths.cfg_dir() / _info(key).cfg_name


def weights_path(key: str) -> Path:
    return cache_dir() / f"{_info(key).key}.weights"


def names_path() -> Path:
    return cache_dir() / "imagenet.names"


def labels_path() -> Path:
    return cache_dir() / "imagenet.wnids"


def expected_weights_bytes(key: str, version: tuple[int, int] = (0, 1)) -> int:
    """Size of a complete weights file for `key` (the published files are version 0.1)."""
    from engine.weights import expected_weights_bytes as from_cfg  # lazy: parses the cfg

    return from_cfg(cfg_path(key), version=version)


def accepted_weights_sizes(key: str) -> tuple[int, ...]:
    """The sizes of a complete file in either header format (16 or 20 bytes of header)."""
    return tuple(expected_weights_bytes(key, v) for v in _VERSIONS)


def is_downloaded(key: str) -> bool:
    w = weights_path(key)
    try:
        return w.is_file() and w.stat().st_size in accepted_weights_sizes(key)
    except EngineError:  # our cfg is missing or broken: the weights cannot be checked, so not usable
        return False


def check_pinned_hash(key: str, path: Path) -> None:
    """Reject a file that differs from the published one, before anything uses it."""
    pinned = _info(key).sha256
    if pinned is None:
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != pinned:
        raise RegistryError(
            f"model '{key}': {path} is not the published {key}.weights (sha256 {digest[:12]}…, "
            f"expected {pinned[:12]}…): delete it and run `tdn download {key}`, "
            "or pass your own file with --weights PATH"
        )


def find_labels() -> Path | None:
    p = labels_path()
    return p if p.is_file() else None


def find_names() -> Path | None:
    p = names_path()
    return p if p.is_file() else None


def resolve(model_or_cfg: str, weights: str | None = None) -> tuple[Path, Path]:
    """A model key ("tiny") or a .cfg path (with weights) → (cfg, weights), both existing."""
    if model_or_cfg in MODELS:
        key = model_or_cfg
        cfg = cfg_path(key)
        if not cfg.is_file():
            raise RegistryError(f"model '{key}': its cfg {cfg} is missing from this installation")
        if weights is not None:
            return cfg, _existing(weights, "weights")
        w = weights_path(key)
        if not w.is_file():
            raise RegistryError(
                f"model '{key}' is not downloaded ({w} does not exist): "
                f"run `tdn download {key}`, or pass --weights PATH"
            )
        if not is_downloaded(key):
            raise RegistryError(
                f"model '{key}': {w} is incomplete ({w.stat().st_size} bytes, "
                f"expected {expected_weights_bytes(key)}): run `tdn download {key}`"
            )
        check_pinned_hash(key, w)
        return cfg, w
    if model_or_cfg.endswith(".cfg") or os.sep in model_or_cfg or "/" in model_or_cfg:
        cfg = _existing(model_or_cfg, "cfg")
        if weights is None:
            raise RegistryError(
                f"{cfg} needs a weights file: pass --weights PATH (or give a model name: {', '.join(MODELS)})"
            )
        return cfg, _existing(weights, "weights")
    raise RegistryError(
        f"unknown model '{model_or_cfg}': give one of {', '.join(MODELS)} "
        f"(fetched by `tdn download NAME`) or a .cfg path with --weights PATH"
    )


def _existing(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise RegistryError(f"{what} file {p} does not exist")
    return p
