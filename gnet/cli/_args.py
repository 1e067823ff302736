"""Flag helpers shared by the sub-commands: ``--dim`` with its deprecated spelling ``--n``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_dim_argument(parser: argparse.ArgumentParser, default: Any, help: str, **kwargs: Any) -> None:
    """Add ``--dim`` and the deprecated ``--n`` (same value, hidden from --help) to ``parser``."""
    parser.add_argument("--dim", default=None, help=f"{help} (default: {default})", **kwargs)
    parser.add_argument("--n", dest="n_deprecated", default=None, help=argparse.SUPPRESS, **kwargs)
    parser.set_defaults(dim_default=default)


def dim_value(args: argparse.Namespace) -> Any:
    """The value of ``--dim``; a given ``--n`` is used instead when ``--dim`` is absent, with a deprecation line on
    stderr. Both at once is an error."""
    if args.n_deprecated is not None:
        if args.dim is not None:
            raise ValueError("pass --dim only (--n is its deprecated name)")
        print("gnet: warning: --n is deprecated and will be removed; use --dim", file=sys.stderr)
        return args.n_deprecated
    return args.dim if args.dim is not None else args.dim_default
