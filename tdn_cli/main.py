"""Entry point of `tdn`. Subcommands live in their own modules; each registers a parser."""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    from engine.version import version

    from . import (
        bench_cmd,
        classify_cmd,
        compile_cmd,
        export_cmd,
        info_cmd,
        models_cmd,
        summary_cmd,
        teach_cmd,
        train_cmd,
        valid_cmd,
    )

    parser = argparse.ArgumentParser(
        prog="tdn", description="Classify images with darknet's ImageNet models (Tiny Darknet and friends)."
    )
    parser.add_argument(
        "--memory",
        metavar="SIZE",
        help="the most memory a network's buffers may take, e.g. 4G or 512M (default: half of "
        "what is available; or set TDN_MEMORY_BUDGET)",
    )
    parser.add_argument("--version", action="version", version=f"tdn {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    classify_cmd.add_parser(sub)
    summary_cmd.add_parser(sub)
    bench_cmd.add_parser(sub)
    valid_cmd.add_parser(sub)
    teach_cmd.add_parser(sub)
    train_cmd.add_parser(sub)
    export_cmd.add_parser(sub)
    models_cmd.add_download_parser(sub)
    models_cmd.add_models_parser(sub)
    compile_cmd.add_parser(sub)
    info_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from engine.errors import EngineError

    from .common import fail

    try:
        from engine import kernels

        try:
            kernels.check_settings()
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        if args.memory is not None:
            from engine import memory

            try:
                memory.parse_size(args.memory)
            except ValueError as exc:
                raise EngineError(f"--memory: {exc}") from None
            os.environ[memory.ENV] = args.memory
        return args.func(args)
    except EngineError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("tdn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tdn classify ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
