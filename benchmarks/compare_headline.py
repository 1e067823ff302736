"""The README's comparison table: one line per method (its settings side by side), from a ``compare.json``.

``gnet compare`` writes the full table (``compare.md``: every setting, mean ± sd, every flip rate); the front page
wants one screen. This script condenses the ``summary`` of a committed ``compare.json`` and keeps the README's
copy between two markers current:

    python3 benchmarks/compare_headline.py results/compare/mnist/compare.json             # print the table
    python3 benchmarks/compare_headline.py results/compare/mnist/compare.json --write README.md
    python3 benchmarks/compare_headline.py results/compare/mnist/compare.json --check README.md

``--check`` exits 1 when the README's table differs from what the JSON gives (a test runs it), so the front page
cannot drift from the committed results. The markers are ``<!-- compare-headline: PATH -->`` and
``<!-- /compare-headline -->``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gnet.compare.report import row_counts
from hdc.io import atomic_write_text

END = "<!-- /compare-headline -->"
HEAD = ["method", "dim", "seeds", "accuracy %", "model bits", "bit ops/img", "float MACs/img", "img/s"]
REFERENCE_RATE = "0.1"  # the flip rate shown: where the families part (the full table has every rate)


def start_marker(json_path: str) -> str:
    return f"<!-- compare-headline: {json_path} -->"


def _sci(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) < 1e4:
        return f"{value:.0f}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"  # 1.3e6: short enough for a table of one screen


def _joined(entries: list[dict[str, Any]], cell: Any) -> str:
    """The cells of one method's settings, joined with " / " (one value when they all agree)."""
    cells = [cell(e) for e in entries]
    return cells[0] if len(set(cells)) == 1 else " / ".join(cells)


def _accuracy(entry: dict[str, Any]) -> str:
    mean, sd = entry["accuracy"]
    return f"{100 * mean:.2f}" if len(entry["seeds"]) < 2 else f"{100 * mean:.2f} ± {100 * sd:.2f}"


def _mean(entry: dict[str, Any], column: str) -> float | None:
    value = entry[column]
    return None if value is None else value[0]


def _flips(entry: dict[str, Any]) -> str:
    value = entry["fault_accuracy"].get(REFERENCE_RATE)
    return "n/a" if value is None else f"{100 * value[0]:.1f}"


def _speed(entry: dict[str, Any]) -> str:
    return "n/a" if entry["throughput"] is None else _sci(entry["throughput"]["images_per_second"])


def headline(result: dict[str, Any]) -> str:
    """The condensed markdown table of ``result["summary"]``: one line per method, settings joined by " / "."""
    by_method: dict[str, list[dict[str, Any]]] = {}
    for entry in result["summary"]:
        by_method.setdefault(entry["method"], []).append(entry)
    head = [*HEAD, f"acc % at p={REFERENCE_RATE}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    finished, planned = row_counts(result)
    # img/s is one side-by-side measurement of every model, taken when the last row is done: a partial table's
    # figures would come from another run (other models, another load), so they are not shown beside its rows.
    speed = _speed if finished == planned else (lambda _entry: "pending")
    for method, entries in by_method.items():
        dims = _joined(entries, lambda e: e["setting"].removeprefix("dim="))
        cells = [f"`{method}`", dims, _joined(entries, lambda e: str(len(e["seeds"]))), _joined(entries, _accuracy)]
        for column in ("model_bits", "bit_ops_per_image", "float_macs_per_image"):
            cells.append(_joined(entries, lambda e, c=column: _sci(_mean(e, c))))
        cells += [_joined(entries, speed), _joined(entries, _flips)]
        lines.append("| " + " | ".join(cells) + " |")
    if finished < planned:
        lines += ["", f"Partial: {finished} of {planned} rows measured so far (a row: one method, setting and seed)."]
    return "\n".join(lines)


def replace_block(text: str, json_path: str, table: str) -> str:
    """``text`` with the block after ``start_marker(json_path)`` replaced by ``table`` (ValueError without it)."""
    start = start_marker(json_path)
    if text.count(start) != 1 or END not in text.split(start, 1)[1]:
        raise ValueError(f"expected one {start!r} ... {END!r} block")
    before, rest = text.split(start, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{start}\n{table}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compare_json", help="a compare.json written by gnet compare (path as the README names it)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="MARKDOWN", help="replace the marked block of this file")
    group.add_argument("--check", metavar="MARKDOWN", help="exit 1 if the marked block of this file is stale")
    args = parser.parse_args(argv)
    with open(args.compare_json, encoding="utf-8") as fh:
        result = json.load(fh)
    if not isinstance(result, dict) or not isinstance(result.get("summary"), list):
        parser.error(f"{args.compare_json} has no summary: not a compare.json of gnet compare")
    table = headline(result)
    if not (args.write or args.check):
        print(table)
        return 0
    target = Path(args.write or args.check)
    text = target.read_text(encoding="utf-8")
    try:
        new = replace_block(text, args.compare_json, table)
    except ValueError as err:
        parser.error(f"{target}: {err}")
    if args.check:
        if new != text:
            print(f"{target}: the table of {args.compare_json} is stale; run with --write {target}", file=sys.stderr)
            return 1
        return 0
    if new != text:
        atomic_write_text(target, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
