"""Run a comparison: every (method, setting, seed) row, then the throughput stage, then the table and plots.

Time bound: rows start only while the budget lasts, training stops between epochs when it runs out (``last.pt``
kept), and the throughput rounds stop after the round in which it runs out; the table and plots are always written.
Resuming: a finished row (``done``, or ``failed`` with its error) in ``compare.json`` is not redone while its method's
recipe is unchanged (:func:`gnet.compare.methods.recipe_fingerprint`); a row cut short (``pending``) or measured with
an earlier recipe is, and its training continues from (or, for a changed recipe, starts beside) the checkpoint
cache.

Several processes (``torchrun``): every rank runs the same rows in the same order. Torch training is data-parallel
(:func:`gnet.train.train`), every accuracy (clean and under faults) is split over the test items, the HDC
classifiers are fitted on every rank alike (seeded, so identically), and each finished row is rank 0's. Rank 0
alone reads ``compare.json``, measures img/s (one process: the others wait), and writes every file; rank 0's
reading and rank 0's clock decide for all ranks, so no rank takes a path the others do not (a collective that one
rank skips would hang the others).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gnet.compare.config import CompareConfig
from gnet.compare.context import Context
from gnet.compare.measure import accuracy, cost_columns, fault_columns, save_columns, throughput
from gnet.compare.methods import METHODS, Method, check_batches, recipe_fingerprint, setting_label, settings_of
from gnet.compare.plots import plot_all
from gnet.compare.report import FORMAT, VERSION, load_result, markdown, row_counts, row_key, summarize
from gnet.compare.training import OutOfTime, file_sha256, from_rank0
from gnet.deployed import load_deployed
from gnet.distributed import is_main, world_size
from hdc import cpu
from hdc.io import atomic_write_text

__all__ = ["machine_info", "redraw_compare", "run_compare"]

# Each method family's deployed-file extension. .gitignore keeps the binary ones (.ehd, .bnn, .logic) in git and
# leaves the others out, so a family without an entry is refused rather than saved under a name neither rule covers.
FAMILY_EXTENSIONS = {"ehd": ".ehd", "bnn": ".bnn", "logic": ".logic", "hdc": ".hdcz", "float": ".pt"}


def _deployed_extension(family: str) -> str:
    """The extension of ``family``'s deployed file; ValueError for a family :data:`FAMILY_EXTENSIONS` lacks."""
    try:
        return FAMILY_EXTENSIONS[family]
    except KeyError:
        raise ValueError(
            f"method family {family!r} has no deployed-file extension: add one to FAMILY_EXTENSIONS "
            "and a matching rule to .gitignore"
        ) from None


def _lscpu_flags() -> list[str]:
    """The ``Flags:`` of ``lscpu`` (else of /proc/cpuinfo; empty where neither is readable)."""
    if shutil.which("lscpu"):
        try:
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        for line in text.splitlines():
            if line.startswith("Flags:"):
                return sorted(line.split(":", 1)[1].split())
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return sorted(cpu.parse_cpuinfo_flags(fh.read())[0])
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """CPU model, cores, flags, :func:`hdc.cpu.as_dict` capabilities, load average and library versions."""
    caps = cpu.as_dict(measure=True)
    return {
        "model_name": caps.get("model_name", ""),
        "n_cores": caps.get("n_cores"),
        "cpu_flags": _lscpu_flags(),
        "capabilities": caps,
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _relative(path: Path, out: Path) -> str:
    """``path`` relative to the output folder where it lies inside it (so a committed result names no home
    folder), else as given."""
    try:
        return str(Path(path).resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)


def _measure_row(ctx: Context, method: Method, setting: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    """Deploy one (method, setting, seed) and measure every column of its row; ``row_seconds`` is the row's whole
    wall time (training or loading it, conversion, every accuracy, the deployed file), what a plan of runs needs."""
    started = time.perf_counter()
    label = setting_label(setting)
    d = method.deploy(ctx, setting, seed)
    model = d.model
    x, y = ctx.test_set(d.scaling)
    row: dict[str, Any] = {
        "method": method.name,
        "family": str(getattr(model, "family", method.family)),
        "setting": setting,
        "setting_label": label,
        "seed": seed,
        "status": "done",
        "n_test": len(y),
        "accuracy": accuracy(model, x, y),
        "train_seconds": d.train_seconds,
        "deploy_seconds": d.deploy_seconds,
        "checkpoint": None,
    }
    cost, notes = cost_columns(model)
    target, faults, fault_notes = fault_columns(model, x, y, ctx.config.fault_rates, seed)
    row.update(cost, fault_target=target, fault_accuracy=faults, notes=notes + fault_notes, deployed_file=None)
    if d.checkpoint is not None:
        t = d.checkpoint
        row["checkpoint"] = {"path": _relative(t.path, out), "sha256": t.sha256, "reused": t.reused}
    if is_main():
        # Every seed's file: the img/s stage, on a machine without this one's checkpoint cache, times one of them.
        stem = method.name if label == "-" else f"{method.name}-{label}"
        file = out / "deployed" / f"seed-{seed}" / (stem + _deployed_extension(row["family"]))
        row["deployed_file"], save_notes = save_columns(model, file)
        if row["deployed_file"] is not None:
            row["deployed_file"].update(path=_relative(Path(row["deployed_file"]["path"]), out), scaling=d.scaling)
        row["notes"] += save_notes
        ctx.deployed.setdefault((method.name, label), (seed, model, x))  # one img/s model per (method, setting)
    row["row_seconds"] = time.perf_counter() - started
    return row


def _plan(config: CompareConfig) -> list[tuple[int, Method, dict[str, Any]]]:
    """Rows in run order: seed by seed, so a run cut short has every method at the first seeds."""
    recipe = config.recipe
    return [(s, METHODS[n], st) for s in config.seeds for n in config.methods for st in settings_of(METHODS[n], recipe)]


def _rows_stage(ctx: Context, result: dict[str, Any], out: Path, write: Any) -> int:
    """Measure every unfinished row; returns how many rows were measured now."""
    recipes = {name: recipe_fingerprint(METHODS[name], ctx.config.recipe) for name in ctx.config.methods}
    finished, stale = {}, []
    for r in result["rows"]:
        key = row_key(r["method"], r["setting_label"], r["seed"])
        if r["status"] == "pending":
            continue
        if r.get("recipe") != recipes.get(r["method"]):  # trained by an earlier recipe (or a file without one)
            stale.append(key)
            continue
        finished[key] = r
    if stale:
        ctx.log(f"{len(stale)} rows were measured with an earlier training recipe and are redone: {', '.join(stale)}")
    current = dict(finished)
    plan = [(row_key(m.name, setting_label(st), s), s, m, st) for s, m, st in _plan(ctx.config)]
    measured = 0
    for key, seed, method, setting in tqdm(plan, desc="compare rows", disable=not ctx.progress):
        if key in finished:
            continue
        base = {"method": method.name, "setting": setting, "setting_label": setting_label(setting), "seed": seed}
        try:
            if ctx.out_of_time():
                raise OutOfTime("time budget spent before this row started")
            row = _measure_row(ctx, method, setting, seed, out)
        except OutOfTime as err:
            row = {**base, "status": "pending", "notes": [str(err)]}
        except Exception as err:  # a method that cannot run here: recorded with its reason, the others go on
            row = {**base, "status": "failed", "notes": [f"{type(err).__name__}: {err}"]}
            ctx.log(f"{key}: failed: {type(err).__name__}: {err}")
        row["recipe"] = recipes[method.name]
        row = from_rank0(row)  # the row rank 0 measured (its deployed file, its timings) is the row of every rank
        measured += row["status"] == "done"
        if row["status"] != "pending":
            result["runs"][-1]["rows_measured"].append(key)
        current[key] = row
        result["rows"] = [current[k] for k, *_ in plan if k in current]
        if row.get("checkpoint"):
            result["checkpoints"][row["checkpoint"]["path"]] = row["checkpoint"]["sha256"]
        write(result)
        if row["status"] == "done":
            ctx.log(f"{key}: accuracy {100 * row['accuracy']:.2f} %")
    result["rows"] = [current[k] for k, *_ in plan if k in current]
    return measured


def _throughput_stage(
    ctx: Context, result: dict[str, Any], out: Path, measured_now: int, remeasure: bool = False
) -> None:
    """img/s of one seed's model of every finished (method, setting), measured together on rank 0; skipped when a
    resumed run added no row and every group already has its figure (unless ``remeasure``), and while a row is
    pending.

    The column is one measurement of all models side by side, so a table filled over several runs (and machines,
    whose checkpoint caches are not carried over) measures it once, when its last row is done. The work per image
    is fixed by the recipe's shapes, so each (method, setting) is timed on whichever seed's model is cheapest to
    have: one this run deployed, else one whose deployed file loads (:func:`_load_deployed_row`), else one whose
    checkpoint is in the cache, else the first seed's, trained again. ``throughput[key]["seed"]`` says which."""
    pending = sum(r["status"] == "pending" for r in result["rows"])
    if pending:
        ctx.log(f"{pending} rows are pending: img/s is measured once every row is done")
        return
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in result["rows"]:
        if r["status"] == "done":
            groups.setdefault((r["method"], r["setting_label"]), []).append(r)
    keys = [f"{m}|{s}" for m, s in groups]
    if not keys or (not remeasure and measured_now == 0 and all(k in result.get("throughput", {}) for k in keys)):
        return
    at_hand = dict(ctx.deployed)
    if is_main():
        for group, rows in groups.items():
            if group not in at_hand:
                loaded = next(filter(None, (_load_deployed_row(ctx, r, out) for r in rows)), None)
                if loaded is not None:
                    at_hand[group] = loaded
    # Rebuilding a model may train (data-parallel), so every rank rebuilds what rank 0 lacks.
    to_build = [(*g, _seed_to_rebuild(rows, out)) for g, rows in groups.items() if g not in at_hand]
    for method, label, seed in from_rank0(to_build):
        if ctx.out_of_time():
            ctx.log("no time left to rebuild models for the img/s stage; run again to measure it")
            return
        ctx.log(f"img/s stage: rebuilding {method} {label} seed {seed}")
        setting = next(st for st in settings_of(METHODS[method], ctx.recipe) if setting_label(st) == label)
        d = METHODS[method].deploy(ctx, setting, seed)
        at_hand[(method, label)] = (seed, d.model, ctx.test_set(d.scaling)[0])
    measured = None
    if is_main():  # timing is one process's: the other ranks wait in the gather below
        models = {f"{m}|{label}": at_hand[(m, label)][1:] for m, label in groups}
        speeds = throughput(models, ctx.config.throughput_rounds, ctx.deadline, ctx.progress)
        for m, label in groups:
            speeds[f"{m}|{label}"]["seed"] = at_hand[(m, label)][0]
        measured = (speeds, [round(v, 2) for v in os.getloadavg()])
    result["throughput"], result["machine"]["load_average_throughput"] = from_rank0(measured)
    result["runs"][-1]["load_average_throughput"] = result["machine"]["load_average_throughput"]


def _load_deployed_row(ctx: Context, row: dict[str, Any], out: Path) -> tuple[int, Any, torch.Tensor] | None:
    """``(seed, model, test inputs)`` from the row's deployed file where it lies in ``out`` with the recorded
    SHA-256, records its input scaling and is a format :func:`gnet.deployed.load_deployed` reads; else None."""
    record = row.get("deployed_file") or {}
    path = out / str(record.get("path", ""))
    if "scaling" not in record or not path.is_file() or file_sha256(path) != record.get("sha256"):
        return None
    try:
        model = load_deployed(path)
    except ValueError:  # a format without a loader (a float network's .pt, an HDC classifier's .hdcz)
        return None
    return row["seed"], model, ctx.test_set(record["scaling"])[0]


def _seed_to_rebuild(rows: list[dict[str, Any]], out: Path) -> int:
    """The seed of the first row whose training checkpoint is in the cache (deploying it loads, not trains), else
    the first row's."""
    for r in rows:
        if r.get("checkpoint") and (out / r["checkpoint"]["path"]).is_file():
            return int(r["seed"])
    return int(rows[0]["seed"])


def run_compare(
    config: CompareConfig,
    out: str | os.PathLike,
    *,
    budget_minutes: float = 60.0,
    overwrite: bool = False,
    remeasure_throughput: bool = False,
    progress: bool = True,
    command: str = "",
    log: Any = None,
) -> dict[str, Any]:
    """Run (or resume) the comparison ``config`` into ``out``; returns the result written to ``compare.json``.

    Args:
        out: output folder: ``compare.json``, ``compare.md``, three plots, ``checkpoints/`` (training cache) and
            ``deployed/seed-<k>/`` (every row's deployed model).
        budget_minutes: wall-clock budget of this call (rows, then img/s rounds; the report is always written).
        overwrite: replace a ``compare.json`` made with another configuration (else ValueError).
        remeasure_throughput: measure the img/s column again even if no row changed (say, on a quieter machine:
            the column is one side-by-side measurement, and a busy machine skews it).
        command: the command line, recorded in the JSON and the table.
        log: called with one line per finished row (default: ``tqdm.write`` when ``progress``, else nothing).

    Under a process group (``torchrun``) every rank calls it alike (see the module docstring); it returns the same
    result on every rank, and rank 0 writes the files.

    Raises:
        ValueError: a bad budget, a ``compare.json`` of other settings (without ``overwrite``), or, on several ranks,
            a training batch the number of ranks does not divide.
    """
    if not budget_minutes > 0:
        raise ValueError(f"budget_minutes must be > 0, got {budget_minutes}")
    check_batches(config.methods, config.recipe, world_size())
    deadline = time.monotonic() + 60 * budget_minutes
    out = Path(out)
    path = out / "compare.json"
    result = _start(path, config, overwrite)
    result.update(command=command, machine=result.pop("machine"))  # the key order of a single-process file
    _record_run(result, command)
    progress = progress and is_main()
    say = (log or (tqdm.write if progress else (lambda _line: None))) if is_main() else (lambda _line: None)
    ctx = Context(config, out / "checkpoints", deadline, progress, say)

    def write(res: dict[str, Any], final: bool = False) -> None:
        """The JSON and the table after every row, so a killed run leaves both current (the plots, slower to
        draw, come at the end); ``complete`` only once the throughput stage has run."""
        if not is_main():
            return
        res["summary"] = summarize(res)
        res["complete"] = final and _is_complete(res)
        atomic_write_text(path, json.dumps(res, indent=1))
        atomic_write_text(out / "compare.md", markdown(res))

    result["n_rows_planned"] = len(_plan(config))
    measured = _rows_stage(ctx, result, out, write)
    _throughput_stage(ctx, result, out, measured, remeasure_throughput)
    write(result, final=True)
    if is_main():
        plot_all(result, out)
    return result


def redraw_compare(config: CompareConfig, out: str | os.PathLike) -> dict[str, Any]:
    """Rewrite ``compare.md`` and the three plots of ``out`` from its ``compare.json``, as they are: nothing is
    trained or measured, no run is recorded and ``compare.json`` is left untouched. For a partial table whose
    plots (drawn at the end of a run) are older than its rows, or after a change to the report's layout.

    Raises:
        ValueError: no ``compare.json`` in ``out``, a damaged one, or one made with another configuration (one
            with fewer methods or seeds included: adding them is what a run, not a redraw, does).
    """
    out = Path(out)
    path = out / "compare.json"
    if not path.is_file():
        raise ValueError(f"{path} does not exist: nothing to redraw (run the comparison without report-only first)")
    result = load_result(path, config.identity(), overwrite=False)
    assert result is not None  # the file exists and overwrite is off
    if row_counts(result)[1] != len(_plan(config)):  # the file's configuration extended by this one
        raise ValueError(
            f"{path} was made with fewer methods or seeds than asked: a redraw measures nothing, so run the "
            "comparison (without report-only) to add them"
        )
    result["summary"] = summarize(result)
    if is_main():
        atomic_write_text(out / "compare.md", markdown(result))
        plot_all(result, out)
    return result


def _record_run(result: dict[str, Any], command: str) -> None:
    """Append this run to ``result["runs"]`` (its command, start, machine and, as they finish, the rows it
    measured; the load average of its img/s stage if it measured the column): a table filled over several runs
    keeps the machine and load of each, which ``machine`` (the latest run's) alone would lose."""
    machine = result["machine"]
    brief = {k: machine.get(k) for k in ("model_name", "n_cores", "load_average", "torch_threads", "ranks")}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run = {"command": command, "started": started, "machine": brief, "rows_measured": []}
    result.setdefault("runs", []).append(run)


def _is_complete(result: dict[str, Any]) -> bool:
    """Every planned row finished (done or failed) and the img/s column measured."""
    finished, planned = row_counts(result)
    return finished == planned and bool(result.get("throughput"))


def _start(path: Path, config: CompareConfig, overwrite: bool) -> dict[str, Any]:
    """The result to continue (rank 0's reading of ``path``) with rank 0's machine description, on every rank; a
    refusal (another configuration, a damaged file) is raised on every rank."""
    identity = config.identity()
    start: tuple[str, Any] = ("ok", None)
    if is_main():
        try:
            old = load_result(path, identity, overwrite)
            if old is None:
                old = {"format": FORMAT, "version": VERSION, "config": identity, "checkpoints": {}, "rows": []}
            machine = {**machine_info(), "ranks": world_size()}
            if "load_average_throughput" in old.get("machine", {}):  # the img/s column's, kept until re-measured
                machine["load_average_throughput"] = old["machine"]["load_average_throughput"]
            start = ("ok", {**old, "machine": machine})
        except ValueError as err:
            start = ("error", str(err))
    status, value = from_rank0(start)
    if status == "error":
        raise ValueError(value)
    return dict(value)
