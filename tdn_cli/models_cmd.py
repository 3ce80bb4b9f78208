"""`tdn download MODEL...` and `tdn models`: fetch pretrained weights and show what is here."""

from __future__ import annotations

import argparse

from engine import registry
from engine.errors import EngineError

from .common import fail


def add_download_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "download",
        help="download pretrained weights and ImageNet class names",
        description=f"Download pretrained weights into {registry.cache_dir()} "
        f"(models: {', '.join(registry.MODELS)}, or all).",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="a model name, or 'all'")
    # A mirror or a test server standing in for pjreddie.com and the darknet data folder.
    p.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run_download)
    return p


def run_download(args) -> int:
    from engine.download import download_model, tqdm_progress  # lazy: `tdn models` needs no urllib

    keys = list(registry.MODELS) if "all" in args.models else list(dict.fromkeys(args.models))
    unknown = [k for k in keys if k not in registry.MODELS]
    if unknown:  # check every name before fetching anything
        return fail(f"unknown model '{unknown[0]}' (known: {', '.join(registry.MODELS)}, all)")
    for key in keys:
        if registry.is_downloaded(key) and registry.find_names() and registry.labels_path().is_file():
            print(f"{key}: already downloaded ({registry.weights_path(key)})")
            continue
        bar = tqdm_progress(key)
        try:
            path = download_model(key, progress=bar, base_url=args.base_url)
        except KeyboardInterrupt:  # download() has already removed its part file
            bar.close()
            return fail(f"download of {key} interrupted", 130)
        except EngineError as e:
            bar.close()
            return fail(str(e))
        print(f"{key}: {path}")
    return 0


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("models", help="list the pretrained models and which are downloaded")
    p.set_defaults(func=run_models)
    return p


def run_models(args) -> int:
    rows = [("MODEL", "TITLE", "DOWNLOADED", "SIZE MB", "EXPECTED BYTES", "PATH")]
    for key, info in registry.MODELS.items():
        w = registry.weights_path(key)
        try:
            expected = str(registry.expected_weights_bytes(key))
        except EngineError:  # our cfg missing or broken: say so instead of failing the listing
            expected = "?"
        size = f"{w.stat().st_size / 1e6:.1f}" if w.is_file() else "-"
        rows.append((key, info.title, "yes" if registry.is_downloaded(key) else "no", size, expected, str(w)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)) + "  " + r[-1])
    cache = registry.cache_dir()
    print(f"\ncache: {cache}")
    print(
        f"no network? download NAME.weights from https://pjreddie.com/media/files/ elsewhere and "
        f"copy it to {cache}, or pass --weights PATH"
    )
    return 0
