"""Fetching model files: atomic, size/hash-checked, cancellable, with a progress callback.

Why stdlib urllib and not pooch: pooch (1.x) has no way to cancel between chunks (only by
raising from a fake progress bar), no size check (hash only, and we have no hashes for five
of the six models), no fsync, reports progress only to tqdm-like objects, raises requests'
exceptions that would need translating anyway, and pulls in requests. A 40-line chunk loop
over urllib does every one of those things directly and adds no dependency.
"""

from __future__ import annotations

import hashlib
import http.client
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from pathlib import Path

from engine import files, registry
from engine.errors import EngineError

Progress = Callable[[int, "int | None"], None]
_CHUNK = 64 * 1024


class DownloadError(EngineError):
    """A file could not be fetched; nothing was left behind at the destination."""


class DownloadCancelled(DownloadError):
    """The caller's cancel Event was set; nothing was left behind."""


def download(
    url: str,
    dest: Path,
    *,
    expected_size: int | Collection[int] | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 30,
    hint: str | None = None,
) -> Path:
    """Fetch `url` to `dest` unless a complete copy is already there.

    `expected_size` may list several sizes (a weights file has two valid header lengths).
    `hint` replaces the default "how to place the file by hand" advice in error messages.
    With neither size nor hash given, any existing `dest` counts as complete.
    """
    dest = Path(dest)
    sizes = {expected_size} if isinstance(expected_size, int) else set(expected_size or ())
    if _complete(dest, sizes, sha256):
        return dest
    hint = hint or f"download it elsewhere and copy it to {dest}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"could not create the folder {dest.parent}: {e.strerror or e}") from None
    # files.replacing: a part file of its own beside dest (two downloads of one file never share
    # one), fsynced and renamed over dest at the end, removed on any failure (KeyboardInterrupt too)
    try:
        with files.replacing(dest) as f:
            _fetch(url, f, sizes, sha256, progress, cancel, timeout, hint)
    except OSError as e:
        raise DownloadError(f"could not write {dest}: {e.strerror or e}") from None
    return dest


def _complete(path: Path, sizes: set[int], sha256: str | None) -> bool:
    if not path.is_file() or (sizes and path.stat().st_size not in sizes):
        return False
    return sha256 is None or _sha256_file(path) == sha256.lower()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url, f, sizes, sha256, progress, cancel, timeout, hint) -> None:
    """Stream url into the open file f, checking size and hash; network failures are
    DownloadErrors, disk failures OSErrors."""

    def remote(what: str) -> DownloadError:
        return DownloadError(f"could not download {url}: {what}; {hint}")

    _check_cancel(cancel, url)
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "tdn"}), timeout=timeout)
    except urllib.error.HTTPError as e:
        raise remote(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise remote(f"{e.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise remote(f"{type(e).__name__}: {e}") from None
    with resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and sizes and total not in sizes:  # fail before fetching it all
            raise remote(f"the server sends {total} bytes, expected {_fmt(sizes)}")
        h, done = hashlib.sha256(), 0
        if progress:
            progress(0, total)
        while True:
            _check_cancel(cancel, url)
            try:
                # read1 returns what one socket read brings, so a cancel on a slow link
                # waits for the next packet, not for a whole 64 KiB chunk.
                chunk = resp.read1(_CHUNK)
            except TimeoutError:
                raise remote(f"no data for {timeout:g} s after {done} bytes") from None
            except (OSError, http.client.HTTPException) as e:
                raise remote(f"connection lost after {done} bytes ({type(e).__name__})") from None
            if not chunk:
                break
            f.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total is not None and done != total:
        raise remote(f"connection closed after {done} of {total} bytes")
    if sizes and done not in sizes:
        raise remote(f"got {done} bytes, expected {_fmt(sizes)}")
    if sha256 and h.hexdigest() != sha256.lower():
        raise remote(f"sha256 {h.hexdigest()} does not match the pinned {sha256}")


def _check_cancel(cancel: threading.Event | None, url: str) -> None:
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled(f"download of {url} cancelled")


def _fmt(sizes: Collection[int]) -> str:
    return " or ".join(str(s) for s in sorted(sizes))


def download_model(
    key: str, *, progress: Progress | None = None, cancel: threading.Event | None = None, base_url: str | None = None
) -> Path:
    """Weights for `key`, then the class names and WordNet ids if missing; returns the weights path.

    `progress` reports the weights only (the lists are ~200 KB). `base_url` stands in for both
    pjreddie.com/media/files and the darknet data folder (tests, mirrors).
    """
    info = registry.MODELS.get(key)
    if info is None:
        raise DownloadError(f"unknown model '{key}' (known: {', '.join(registry.MODELS)})")
    dest = registry.weights_path(key)
    url = info.weights_url
    if base_url:
        url = f"{base_url.rstrip('/')}/{url.rsplit('/', 1)[1]}"
    try:
        sizes = registry.accepted_weights_sizes(key)
    except EngineError as e:  # our own cfg is missing or broken: callers expect DownloadError
        raise DownloadError(f"cannot check {key}.weights: {e}") from None
    download(
        url,
        dest,
        expected_size=sizes,
        sha256=info.sha256,
        progress=progress,
        cancel=cancel,
        hint=f"download it elsewhere and copy it to {dest}, or pass --weights PATH",
    )
    for list_url, list_dest in (
        (registry.NAMES_URL, registry.names_path()),
        (registry.LABELS_URL, registry.labels_path()),
    ):
        if base_url:
            list_url = f"{base_url.rstrip('/')}/{list_url.rsplit('/', 1)[1]}"
        _download_list(list_url, list_dest, cancel)
    return dest


def _download_list(url: str, dest: Path, cancel) -> None:
    """darknet's lists hold 21842 lines; keep the first 1000 (ImageNet-1k, in weight order)."""
    n = registry.NUM_CLASSES
    if dest.is_file() and len(dest.read_text("utf-8", "replace").splitlines()) == n:
        return
    full = dest.with_name(f"{dest.name}.full-{secrets.token_hex(4)}")
    try:
        download(url, full, cancel=cancel, hint=f"download it elsewhere and copy its first {n} lines to {dest}")
        try:
            lines = full.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise DownloadError(f"{url} is not a UTF-8 text list") from None
        if len(lines) < n:
            raise DownloadError(
                f"{url} has {len(lines)} lines, expected at least {n}: "
                f"download it elsewhere and copy its first {n} lines to {dest}"
            )
        try:
            files.write_atomic(dest, ("\n".join(lines[:n]) + "\n").encode("utf-8"))
        except OSError as e:
            raise DownloadError(f"could not write {dest}: {e.strerror or e}") from None
    finally:
        full.unlink(missing_ok=True)


def tqdm_progress(desc: str) -> Progress:
    """A progress callback drawing a tqdm bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm  # only the CLI draws bars

    bar, last = None, 0

    def update(done: int, total: int | None) -> None:
        nonlocal bar, last
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=None, leave=True)
        bar.update(done - last)  # tqdm counts increments; we are told running totals
        last = done
        if total is not None and done >= total:
            bar.close()

    def close() -> None:  # for the caller after a failure, so the error starts on a fresh line
        if bar is not None:
            bar.close()

    update.close = close
    return update
