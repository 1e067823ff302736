"""``gnet compare``: every binary model of the toolkit side by side on one dataset (see :mod:`gnet.compare`).

Under torchrun with several processes (or ``--distributed``) the work is split over the ranks (training
data-parallel, test items sharded; see :mod:`gnet.compare.run`); rank 0 prints and writes the files.
"""

from __future__ import annotations

import argparse
import shlex

from gnet.compare import METHODS, PRESETS, CompareConfig, redraw_compare, run_compare
from gnet.distributed import distributed_session, is_main
from hdc._validate import check_int, check_number

DEFAULT_METHODS = ("gnet-float", "ehd-paper", "ehd-fast", "centroidhd", "adapthd", "onlinehd", "hdc-on-ehd-codes")


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{flag} must be a comma list of integers, got {text!r}") from None


def _methods(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(METHODS)}")
    return names


def _seeds(text: str) -> tuple[int, ...]:
    """'3' -> seeds 0, 1, 2; '0,5,7' -> those seeds."""
    if "," in text:
        return _int_list(text, "--seeds")
    n = check_int(int(text) if text.strip().isdigit() else text, "--seeds", minimum=1)
    return tuple(range(n))


def _command_line(args: argparse.Namespace) -> str:
    """The command as given (flags in a fixed order, defaults included), for the JSON and the table."""
    words = ["gnet", "compare", "--dataset", args.dataset, "--methods", args.methods, "--seeds", args.seeds]
    words += ["--preset", args.preset]
    for flag, value in (("--dims", args.dims), ("--epochs", args.epochs), ("--limit", args.limit)):
        if value is not None:
            words += [flag, str(value)]
    words += ["--out", str(args.out), "--budget-minutes", f"{args.budget_minutes:g}"]
    if args.remeasure_throughput:
        words.append("--remeasure-throughput")
    return shlex.join(words)


def cmd_compare(args: argparse.Namespace) -> int:
    config = CompareConfig(
        dataset=args.dataset,
        methods=_methods(args.methods),
        seeds=_seeds(args.seeds),
        preset=args.preset,
        dims=_int_list(args.dims, "--dims") if args.dims else None,
        epochs=args.epochs,
        limit=args.limit,
        data_dir=args.data_dir,
    )
    if args.report_only:
        if args.overwrite or args.remeasure_throughput:
            raise ValueError("--report-only measures nothing: it takes neither --overwrite nor --remeasure-throughput")
        redraw_compare(config, args.out)
        print(f"redrew {args.out}/compare.md and 3 plots from its compare.json (nothing measured)")
        return 0
    budget = check_number(args.budget_minutes, "--budget-minutes", minimum=0.0, strict=True)
    command = _command_line(args)
    with distributed_session(args.distributed):
        result = run_compare(
            config,
            args.out,
            budget_minutes=budget,
            overwrite=args.overwrite,
            remeasure_throughput=args.remeasure_throughput,
            progress=not args.quiet,
            command=command,
        )
        if not is_main():
            return 0
    pending = sum(r["status"] == "pending" for r in result["rows"])
    left = f"; {pending} rows left: run the same command again" if pending else ""
    print(f"wrote {args.out}/compare.json, compare.md and 3 plots{left}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="every binary model side by side: accuracy, bits, ops, img/s, bit flips")
    c.add_argument("--dataset", required=True, help="digits, mnist, fashion-mnist, ucr:NAME, ...")
    c.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma list of: {', '.join(METHODS)} (default: %(default)s)",
    )
    c.add_argument("--seeds", default="3", help="number of seeds (0..n-1) or a comma list (default: 3)")
    c.add_argument("--preset", default="paper", choices=PRESETS, help="training recipe preset (default: paper)")
    c.add_argument("--dims", default=None, help="EHD/HDC code lengths, e.g. 1000,5000 (default: preset)")
    c.add_argument("--epochs", type=int, default=None, help="training epochs of every torch method (default: preset)")
    c.add_argument("--limit", type=int, default=None, help="evaluate on the first LIMIT test items only")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--out", required=True, help="output folder (compare.json, compare.md, plots, checkpoints/)")
    c.add_argument("--budget-minutes", type=float, default=60.0, help="wall-clock budget of this run (default: 60)")
    c.add_argument("--overwrite", action="store_true", help="replace a compare.json made with other settings")
    c.add_argument(
        "--remeasure-throughput",
        action="store_true",
        help="measure the img/s column again although no row changed (e.g. on a quieter machine)",
    )
    c.add_argument(
        "--report-only",
        action="store_true",
        help="redraw compare.md and the plots from the folder's compare.json, as it is; train and measure nothing",
    )
    c.add_argument("--quiet", action="store_true", help="no progress bars or per-row lines")
    c.add_argument(
        "--distributed",
        action="store_true",
        help="under torchrun: train data-parallel and split the test items over the ranks (on by itself when "
        "torchrun starts more than one process); rank 0 measures img/s and writes the files; see docs/distributed.md",
    )
    c.set_defaults(func=cmd_compare)
