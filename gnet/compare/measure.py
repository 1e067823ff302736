"""The columns of one row: accuracy, cost, accuracy under bit flips, the saved file; and the throughput stage.

Every column is measured through the :class:`gnet.deployed.DeployedModel` interface. A model whose family does not
offer a method yet (e.g. no ``cost()``) gets ``None`` in that column and a note naming the reason; nothing is
skipped silently.

Under a process group every rank calls :func:`accuracy` (and :func:`fault_columns`) alike: each predicts its slice
of the test items and the correct counts are summed (:func:`gnet.distributed.evaluate_sharded`), so the accuracy is
the single-process one exactly. :func:`throughput` times one process: the caller runs it on rank 0 only.
"""

from __future__ import annotations

import inspect
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gnet.compare.training import file_sha256
from gnet.distributed import evaluate_sharded
from hdc.io import ContainerError, peek_format

__all__ = ["THROUGHPUT_BATCH", "accuracy", "cost_columns", "fault_columns", "predict", "save_columns", "throughput"]

THROUGHPUT_BATCH = 256


def predict(model: Any, x: torch.Tensor, batch_size: int = THROUGHPUT_BATCH) -> np.ndarray:
    """Labels (B,) int64 from ``model.predict`` (torch or numpy result), passing ``batch_size`` where the model's
    ``predict`` takes it."""
    if "batch_size" in inspect.signature(model.predict).parameters:
        out = model.predict(x, batch_size=batch_size)
    else:
        out = model.predict(x)
    return np.asarray(out.cpu() if isinstance(out, torch.Tensor) else out).astype(np.int64)


def accuracy(model: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` (B, *input_shape) whose predicted label equals ``y`` (B,); under a process group the items
    are split over the ranks and the correct counts summed (every rank must call it)."""
    return evaluate_sharded(lambda xs: predict(model, xs), x, y).accuracy


def _missing(model: Any, *names: str) -> str | None:
    lacking = [n for n in names if not callable(getattr(model, n, None))]
    if not lacking:
        return None
    return f"{type(model).__name__} has no {', '.join(n + '()' for n in lacking)} yet (gnet.deployed protocol)"


def cost_columns(model: Any) -> tuple[dict[str, Any], list[str]]:
    """``model_bits``, ``bits_by_part``, ``bit_ops_per_image``, ``float_macs_per_image`` from ``model.cost()``
    (None each, with a note, where it is missing or refuses)."""
    empty = {"model_bits": None, "bits_by_part": None, "bit_ops_per_image": None, "float_macs_per_image": None}
    reason = _missing(model, "cost")
    if reason is None:
        try:
            c = model.cost()
        except (ValueError, NotImplementedError) as err:
            reason = f"cost() refused: {err}"
        else:
            return {
                "model_bits": int(c.model_bits),
                "bits_by_part": {k: int(v) for k, v in c.bits_by_part.items()},
                "bit_ops_per_image": int(c.bit_ops_per_image),
                "float_macs_per_image": int(c.float_macs_per_image),
            }, []
    return empty, [f"cost columns n/a: {reason}"]


def fault_columns(
    model: Any, x: torch.Tensor, y: torch.Tensor, rates: tuple[float, ...], seed: int
) -> tuple[str | None, dict[str, float | None], list[str]]:
    """(fault target, accuracy per rate (keys ``str(p)``), notes): ``model.with_faults(p, target, seed)`` on the
    first of ``model.fault_targets()`` at every rate."""
    none: dict[str, float | None] = {str(p): None for p in rates}
    reason = _missing(model, "fault_targets", "with_faults")
    if reason is not None:
        return None, none, [f"fault columns n/a: {reason}"]
    targets = tuple(model.fault_targets())
    if not targets:
        return None, none, [f"fault columns n/a: {type(model).__name__} has no bit-fault model (a float model)"]
    out: dict[str, float | None] = {}
    for p in rates:
        out[str(p)] = accuracy(model.with_faults(float(p), targets[0], seed), x, y)
    return targets[0], out, []


def save_columns(model: Any, path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """Save the deployed model to ``path`` and read back the bits of its arrays: ``{"path", "sha256",
    "array_bits"}`` (``array_bits`` = 8 x the bytes of every array in an :mod:`hdc.io` container but its header;
    None for other files)."""
    reason = _missing(model, "save")
    if reason is not None:
        return None, [f"deployed file n/a: {reason}"]
    saved = Path(model.save(path))
    array_bits = None
    try:
        peek_format(saved)
    except ContainerError:  # not an hdc.io container (a torch checkpoint): no arrays to count
        pass
    else:
        with np.load(saved, allow_pickle=False) as npz:
            array_bits = sum(npz[name].nbytes * 8 for name in npz.files if name != "header")
    return {"path": str(saved), "sha256": file_sha256(saved), "array_bits": array_bits}, []


def _batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """The first ``size`` items of ``x``, repeated from the start where ``x`` has fewer."""
    reps = -(-size // len(x))
    return torch.cat([x] * reps)[:size].contiguous()


def throughput(
    models: dict[str, tuple[Any, torch.Tensor]], rounds: int, deadline: float, progress: bool = False
) -> dict[str, dict[str, Any]]:
    """Images per second of every model at batch :data:`THROUGHPUT_BATCH`, measured in interleaved rounds in this
    process: one untimed warm-up round, then up to ``rounds`` timed rounds, each running every model once (in an
    order rotated every round, so no model always follows the same one). Stops after the round in which
    ``deadline`` (``time.monotonic()``) passes.

    Args:
        models: key -> (deployed model, its test inputs); the batch is their first 256 items (repeated if fewer).

    Returns:
        key -> ``{"images_per_second": median over rounds, "sd": sd over rounds, "rounds": timed rounds}``.
    """
    keys = list(models)
    batches = {k: _batch(models[k][1], THROUGHPUT_BATCH) for k in keys}
    for k in keys:  # warm-up: JIT compilation, caches, first-call library setup
        predict(models[k][0], batches[k])
    rates: dict[str, list[float]] = {k: [] for k in keys}
    for r in tqdm(range(rounds), desc="img/s rounds", disable=not progress, leave=False):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            t0 = time.perf_counter()
            predict(models[k][0], batches[k])
            rates[k].append(THROUGHPUT_BATCH / (time.perf_counter() - t0))
        if time.monotonic() > deadline:
            break
    return {
        k: {
            "images_per_second": statistics.median(v),
            "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
            "rounds": len(v),
        }
        for k, v in rates.items()
    }
