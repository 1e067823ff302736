"""``compare.json`` (every row, resumable) and ``compare.md`` (the table): reading, checking, summarising, writing.

The JSON holds the command, the machine, the configuration (:meth:`CompareConfig.identity`), the checkpoints'
SHA-256, one row per (method, setting, seed), the throughput of every (method, setting), and the summary (mean and
sample standard deviation over seeds). It is written atomically after every row, so an interrupted run loses at most
the row in progress.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "VERSION", "load_result", "markdown", "row_key", "summarize"]

FORMAT = "gnet-compare"
VERSION = 1


def row_key(method: str, setting: str, seed: int) -> str:
    """The key of one row: method, setting label and seed."""
    return f"{method}|{setting}|seed={seed}"


def load_result(path: Path, identity: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The earlier result at ``path`` to resume, or None to start afresh (no file, or ``overwrite``).

    Raises:
        ValueError: the file is damaged, of another format, or made with another configuration (and not
            ``overwrite``): a user's result is never replaced unasked.
    """
    if overwrite or not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is damaged ({err}); pass --overwrite to start over") from None
    if not isinstance(old, dict) or old.get("format") != FORMAT or old.get("version") != VERSION:
        raise ValueError(f"{path} is not a {FORMAT} v{VERSION} result; pass --overwrite to replace it")
    before = old.get("config") or {}
    if before != identity:
        if _extends(before, identity):  # more methods or seeds: every finished row still belongs to the table
            return {**old, "config": identity}
        changed = sorted(k for k in set(identity) | set(before) if before.get(k) != identity.get(k))
        raise ValueError(
            f"{path} was made with another configuration (differs in: {', '.join(changed)}); pass --overwrite to "
            "replace it, or another --out (adding methods or seeds to it is allowed)"
        )
    return old


def _extends(before: dict[str, Any], identity: dict[str, Any]) -> bool:
    """Whether ``identity`` is ``before`` with methods and/or seeds added (none removed, nothing else changed): a
    table filled over several runs may grow, and its finished rows are kept."""
    grown = ("methods", "seeds")
    if {k: v for k, v in before.items() if k not in grown} != {k: v for k, v in identity.items() if k not in grown}:
        return False
    return all(isinstance(before.get(k), list) and set(before[k]) <= set(identity[k]) for k in grown)


def row_counts(result: dict[str, Any]) -> tuple[int, int]:
    """(finished, planned) rows of a result: finished = done, or failed with its reason (neither is redone by a
    resumed run); planned from ``n_rows_planned`` (files written before it existed: the rows they hold)."""
    finished = sum(r["status"] != "pending" for r in result["rows"])
    return finished, int(result.get("n_rows_planned", len(result["rows"])))


def _mean_sd(values: list[Any]) -> list[float] | None:
    """[mean, sample sd] of the non-None values (sd 0 for one value); None if every value is None."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return [statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0]


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (method, setting) over its finished rows, in row order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in result["rows"]:
        if row["status"] == "done":
            groups.setdefault((row["method"], row["setting_label"]), []).append(row)
    out = []
    for (method, label), rows in groups.items():
        rates = list(rows[0]["fault_accuracy"])
        entry = {
            "method": method,
            "setting": label,
            "family": rows[0]["family"],
            "seeds": [r["seed"] for r in rows],
            "throughput": result.get("throughput", {}).get(f"{method}|{label}"),
            "fault_target": rows[0]["fault_target"],
            "fault_accuracy": {p: _mean_sd([r["fault_accuracy"][p] for r in rows]) for p in rates},
            "notes": sorted({n for r in rows for n in r["notes"]}),
        }
        for col in ("accuracy", "model_bits", "bit_ops_per_image", "float_macs_per_image", "train_seconds"):
            entry[col] = _mean_sd([r[col] for r in rows])
        out.append(entry)
    return out


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e4 or v != int(v) else str(int(v))


class _Notes:
    """Footnotes: each distinct reason gets a number, cells show ``n/a [k]``."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def na(self, entry: dict[str, Any], prefix: str) -> str:
        reasons = [n for n in entry["notes"] if n.startswith(prefix)] or [f"{prefix}: not measured"]
        marks = []
        for reason in reasons:
            if reason not in self.reasons:
                self.reasons.append(reason)
            marks.append(str(self.reasons.index(reason) + 1))
        return f"n/a [{','.join(marks)}]"


def _cell(value: list[float] | None, notes: _Notes, entry: dict[str, Any], prefix: str, pct: bool = False) -> str:
    if value is None:
        return notes.na(entry, prefix)
    mean, sd = value
    if pct:  # one seed has no spread to show (a "± 0.00" would claim one)
        return f"{100 * mean:.2f}" if len(entry["seeds"]) < 2 else f"{100 * mean:.2f} ± {100 * sd:.2f}"
    return _num(mean) if sd == 0 else f"{_num(mean)} ± {_num(sd)}"


def markdown(result: dict[str, Any]) -> str:
    """The table of ``result["summary"]`` with the command, machine and footnotes."""
    cfg = result["config"]
    rates = [str(p) for p in cfg["fault_rates"]]
    head = ["method", "setting", "seeds", "accuracy %", "model bits", "bit ops/img", "float MACs/img"]
    head += ["img/s (batch 256)", "train s", *(f"acc % p={p}" for p in rates)]
    lines = [
        f"# Comparison on {cfg['dataset']}",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {result['machine'].get('model_name', '?')}, {result['machine'].get('n_cores', '?')} cores, "
        f"load average {result['machine'].get('load_average')}. Mean ± sample sd over seeds; img/s: median ± sd "
        "over interleaved rounds, one seed's model per setting. Columns are defined in docs/compare.md.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    finished, planned = row_counts(result)
    if finished < planned:  # a table still being filled says so before it is read as the whole comparison
        lines[4:4] = [f"**{finished} of {planned} rows done**: run the command again to continue.", ""]
    notes = _Notes()
    for e in result["summary"]:
        tp = e["throughput"]
        speed = f"{_num(round(tp['images_per_second']))} ± {_num(round(tp['sd']))}" if tp else notes.na(e, "img/s")
        cells = [e["method"], e["setting"], str(len(e["seeds"])), _cell(e["accuracy"], notes, e, "accuracy", True)]
        cells += [_cell(e[c], notes, e, "cost columns") for c in ("model_bits", "bit_ops_per_image")]
        cells += [_cell(e["float_macs_per_image"], notes, e, "cost columns"), speed]
        cells += [_cell(e["train_seconds"], notes, e, "train")]
        cells += [_cell(e["fault_accuracy"][p], notes, e, "fault columns", True) for p in rates]
        lines.append("| " + " | ".join(cells) + " |")
    if notes.reasons:
        lines += ["", *(f"[{i + 1}] {r}" for i, r in enumerate(notes.reasons))]
    for status, what in (("pending", "cut short by the time budget: run the command again to continue"),
                         ("failed", "failed (not retried on resume; --overwrite retries)")):  # fmt: skip
        rows = [r for r in result["rows"] if r["status"] == status]
        if rows:
            lines += ["", f"{len(rows)} rows {what}:"]
            lines += [f"- {r['method']} {r['setting_label']} seed {r['seed']}: {'; '.join(r['notes'])}" for r in rows]
    lines += ["", "![accuracy vs model bits](accuracy_vs_bits.png) ![accuracy vs img/s](accuracy_vs_speed.png)"]
    lines += ["![accuracy vs flip rate](accuracy_vs_flips.png)", ""]
    return "\n".join(lines)
