"""The ``gnet`` command: each sub-command lives in its own module exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hdc import prefer_passive_openmp

prefer_passive_openmp()  # before any sub-command imports torch: see hdc.prefer_passive_openmp

# Modules that add sub-commands, in help order.
_COMMAND_MODULES = ("quickstart", "train", "ehd", "verify", "robustness", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnet", description="Train G-Nets, convert them to EHD G-Nets, verify.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"gnet.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"gnet.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:  # bad input, or a file that cannot be read or written: one line, no traceback
        print(f"gnet {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
