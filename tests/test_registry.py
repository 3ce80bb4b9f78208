"""engine.registry: model metadata, cache paths, completeness checks and resolve()'s errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine import registry
from engine.errors import EngineError

SHARED_TINY = Path(__file__).resolve().parents[2] / "shared" / "weights" / "tiny.weights"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("TDN_CACHE_DIR", str(d))
    return d


def _writer():
    import engine

    return engine.write_random_weights


def test_models_metadata():
    assert list(registry.MODELS) == ["tiny", "darknet", "darknet19", "extraction", "alexnet", "resnet18"]
    assert registry.MODELS["darknet"].title == "Darknet Reference"
    for key, m in registry.MODELS.items():
        assert m.key == key and m.cfg_name == f"{key}.cfg"
        assert m.weights_url == f"https://pjreddie.com/media/files/{key}.weights"
        assert 50 < m.top1 < m.top5 < 100
        assert registry.cfg_path(key).is_file()  # every model's cfg ships with the project
    assert registry.MODELS["tiny"].sha256 == "f1c3fe6b9bab9af69ae2a090682df3e5b9d83accba69551315f030ce1b37ea81"
    assert [m.key for m in registry.MODELS.values() if m.sha256] == ["tiny"]
    assert registry.NAMES_URL.endswith("/data/imagenet.shortnames.list")
    assert registry.LABELS_URL.endswith("/data/imagenet.labels.list")


def test_cache_paths_follow_env(cache, monkeypatch):
    assert registry.cache_dir() == cache
    assert registry.weights_path("tiny") == cache / "tiny.weights"
    assert registry.names_path() == cache / "imagenet.names"
    assert registry.labels_path() == cache / "imagenet.wnids"
    assert registry.find_names() is None
    cache.mkdir()
    registry.names_path().write_text("kit fox\n")
    assert registry.find_names() == cache / "imagenet.names"
    monkeypatch.delenv("TDN_CACHE_DIR")
    assert registry.cache_dir().parts[-2:] == ("tdn", "models")  # no file access, just the path


def test_unknown_key_is_an_engine_error():
    with pytest.raises(EngineError, match="unknown model 'vgg'.*tiny"):
        registry.weights_path("vgg")


@pytest.mark.parametrize("key", ["tiny", "darknet"])  # the big ones write 50-250 MB
def test_expected_bytes_matches_the_engine_writer(key, tmp_path):
    out = tmp_path / "w"
    _writer()(registry.cfg_path(key), out, seed=0)
    assert out.stat().st_size in registry.accepted_weights_sizes(key)
    assert set(registry.accepted_weights_sizes(key)) == {
        registry.expected_weights_bytes(key),
        registry.expected_weights_bytes(key) + 4,
    }


def test_tiny_size_is_the_published_one():
    assert registry.expected_weights_bytes("tiny") == 4_185_968


def test_is_downloaded_checks_size(cache, tmp_path):
    cache.mkdir()
    w = registry.weights_path("tiny")
    assert not registry.is_downloaded("tiny")
    w.write_bytes(b"\0" * (4_185_968 - 1))
    assert not registry.is_downloaded("tiny")
    w.write_bytes(b"\0" * 4_185_968)
    assert registry.is_downloaded("tiny")
    w.write_bytes(b"\0" * (4_185_968 + 4))  # header 0.2 (64-bit seen): also complete
    assert registry.is_downloaded("tiny")


@pytest.mark.skipif(not SHARED_TINY.is_file(), reason="../shared/weights/tiny.weights not present")
def test_published_tiny_passes_size_and_hash(cache):
    data = SHARED_TINY.read_bytes()
    assert hashlib.sha256(data).hexdigest() == registry.MODELS["tiny"].sha256
    cache.mkdir()
    registry.weights_path("tiny").write_bytes(data)  # a temp cache, not the project
    assert registry.is_downloaded("tiny")
    assert registry.resolve("tiny", None) == (registry.cfg_path("tiny"), registry.weights_path("tiny"))


def test_resolve_names_the_command_to_run(cache):
    with pytest.raises(EngineError, match=r"not downloaded .*run `tdn download darknet19`"):
        registry.resolve("darknet19", None)
    cache.mkdir()
    registry.weights_path("tiny").write_bytes(b"short")
    with pytest.raises(EngineError, match=r"incomplete \(5 bytes, expected 4185968\).*`tdn download tiny`"):
        registry.resolve("tiny", None)


def test_resolve_explicit_weights_and_cfg_paths(cache, tmp_path):
    w = tmp_path / "mine.weights"
    w.write_bytes(b"x")
    assert registry.resolve("tiny", str(w)) == (registry.cfg_path("tiny"), w)
    cfg = str(registry.cfg_path("alexnet"))
    assert registry.resolve(cfg, str(w)) == (Path(cfg), w)
    with pytest.raises(EngineError, match="needs a weights file: pass --weights PATH"):
        registry.resolve(cfg, None)
    with pytest.raises(EngineError, match="does not exist"):
        registry.resolve(cfg, str(tmp_path / "missing.weights"))
    with pytest.raises(EngineError, match="does not exist"):
        registry.resolve(str(tmp_path / "nope.cfg"), str(w))
    with pytest.raises(EngineError, match="unknown model 'tinyy'.*tdn download"):
        registry.resolve("tinyy", None)
