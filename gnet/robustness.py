"""Bit-fault robustness of EHD G-Nets: faults on weight codes, on data (activation) codes, or both.

Targets (``layers`` picks the code-carrying layers, indices into :attr:`EHDModel.layers`, negatives allowed):

- ``"model"``: the stored weight codes phi(w~_o) of the chosen layers are corrupted once, in a copy of the model.
- ``"data"``: at inference, every data code phi(x_p + b) that a chosen layer computes is corrupted before its
  Hamming step, through the layer's ``data_fault`` hook (packed backend only).
- ``"both"``: both of the above, with the same fault model.

The fault model is :class:`hdc.faults.BitFaults`: exactly ``round(p * N)`` distinct bits of every code by default.

Reproducibility. Weight faults of layer ``l`` come from ``SeedSequence(seed, spawn_key=(0, l))``. Data faults of
layer ``l`` (output unit ``o`` for per-channel projections, else ``o = 0``) use the key of stream ``(1, l, o)``
and a counter-based sampler keyed by the code's global row id: row ``i * P + j`` is patch ``j`` of the ``i``-th
item that went through the faulty model since it was built (or :func:`reset_data_faults`). So an item's faults
depend on the seed and on its position in the evaluated sequence, **not** on the batch size or the internal row
chunking. Because the two targets use disjoint streams, "both" equals "model" composed with "data".

The caller's model is never modified: every function returns a copy whose layers share the caller's (read-only)
projections, so a faulty copy costs no regeneration of G.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gnet.ehd.layers import EHDGLayer
from gnet.ehd.model import EHDModel
from hdc._validate import check_choice, check_int
from hdc.faults import BitFaults, apply_fault_mask, fault_key, row_fault_mask

__all__ = [
    "TARGETS",
    "DataFaultHook",
    "evaluate_with_faults",
    "fault_weights",
    "faulty_model",
    "p_grid",
    "reset_data_faults",
    "resolve_layers",
    "robustness_sweep",
]

TARGETS = ("model", "data", "both")
MAX_RATES = 10_000  # a grid of fault rates longer than this is a typo, not an experiment
_WEIGHT_STREAM = 0
_DATA_STREAM = 1


def resolve_layers(model: EHDModel, layers: Sequence[int] | None) -> list[int]:
    """Sorted, de-duplicated indices into ``model.layers``; ``None`` means every code-carrying layer."""
    n_layers = len(model.layers)
    if layers is None:
        return list(range(n_layers))
    out = set()
    for layer in layers:
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)):
            raise ValueError(f"layers must be integers (indices into model.layers), got {layer!r}")
        if not -n_layers <= layer < n_layers:
            raise ValueError(f"layer index {layer} is out of range; the model has {n_layers} code-carrying layers")
        out.add(int(layer) % n_layers)
    if not out:
        raise ValueError("layers is empty; pass None for every layer")
    return sorted(out)


def _as_faults(faults: BitFaults | float) -> BitFaults:
    return faults if isinstance(faults, BitFaults) else BitFaults(faults)


class DataFaultHook:
    """The ``data_fault`` callable of one layer: ``(words uint64 (rows, W), dim) -> faulty words`` (a new array).

    Rows are numbered in arrival order per output unit; see the module docstring for why this makes an item's
    faults independent of the batch size. ``per_channel`` layers call the hook once per output unit for each
    block of rows (unit 0, 1, ..., out_units - 1, then the next block), so calls are routed to ``units`` counters
    in turn.
    """

    def __init__(self, faults: BitFaults, seed: int | np.random.Generator, layer: int, units: int = 1) -> None:
        if faults.scope != "row":
            raise ValueError("data-code faults are per code: use scope='row' (scope='array' is for model codes)")
        if int(units) < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.faults = faults
        self.layer = int(layer)
        self.keys = [fault_key(seed, (_DATA_STREAM, self.layer, o)) for o in range(int(units))]
        self.reset()

    def reset(self) -> None:
        """Start numbering rows from 0 again (the next item is item 0)."""
        self._next_row = [0] * len(self.keys)
        self._calls = 0

    def fresh(self) -> DataFaultHook:
        """A copy with its own counters, reset."""
        clone = copy.copy(self)
        clone.reset()
        return clone

    def __call__(self, words: np.ndarray, dim: int) -> np.ndarray:
        unit = self._calls % len(self.keys)
        self._calls += 1
        rows = int(words.shape[0])
        start = self._next_row[unit]
        self._next_row[unit] = start + rows
        k = self.faults.count(dim)
        if k == 0:
            return words
        ids = np.arange(start, start + rows, dtype=np.int64)
        mask = row_fault_mask(ids, dim, k, self.keys[unit], replace=self.faults.replace)
        return apply_fault_mask(words, mask, self.faults.kind)


def _copy_layer(layer: EHDGLayer, codes: np.ndarray | None = None) -> EHDGLayer:
    """A copy sharing the projections (no G regenerated), with ``codes`` if given and a fresh copy of the
    original's data-fault hook."""
    clone = layer.copy(codes)
    if isinstance(layer.data_fault, DataFaultHook):
        clone.data_fault = layer.data_fault.fresh()
    else:
        clone.data_fault = layer.data_fault
    return clone


def faulty_model(
    model: EHDModel,
    target: str,
    faults: BitFaults | float,
    seed: int,
    *,
    layers: Sequence[int] | None = None,
) -> EHDModel:
    """A copy of ``model`` with faults on the chosen layers' weight codes and/or data codes.

    Args:
        model: the EHD model; left unchanged.
        target: "model", "data" or "both".
        faults: a :class:`~hdc.faults.BitFaults`, or a rate ``p`` for ``BitFaults(p)`` (exact flips per code).
        seed: non-negative int; weight and data faults use independent streams derived from it.
        layers: indices into ``model.layers`` (negative allowed, -1 is the classifier); None = all.

    Returns:
        a new :class:`EHDModel`. With data faults, run it on the packed backend; its rows are numbered from its
        first forward call (call :func:`reset_data_faults` to replay the same faults).
    """
    check_choice(target, TARGETS, "target")
    faults = _as_faults(faults)
    seed = check_int(seed, "seed", minimum=0)
    chosen = set(resolve_layers(model, layers))
    if target != "model" and faults.scope != "row":
        raise ValueError("data-code faults are per code: use scope='row' (scope='array' is for model codes)")
    stages: list[Any] = []
    index = 0
    for stage in model.stages:
        if not isinstance(stage, EHDGLayer):
            stages.append(stage)
            continue
        codes = None
        if index in chosen and target in ("model", "both"):
            codes = np.ascontiguousarray(faults.apply(stage.codes, stage.dim, int(seed), (_WEIGHT_STREAM, index)))
        clone = _copy_layer(stage, codes)
        if index in chosen and target in ("data", "both"):
            if clone.data_fault is not None:
                raise ValueError(f"layer {index} already has a data_fault hook; data faults do not stack")
            units = stage.geometry.out_units if stage.projection == "per_channel" else 1
            clone.data_fault = DataFaultHook(faults, int(seed), index, units)
        stages.append(clone)
        index += 1
    meta = dict(model.meta)
    meta["faults"] = list(meta.get("faults", [])) + [
        {
            "target": target,
            "p": faults.p,
            "kind": faults.kind,
            "scope": faults.scope,
            "sampling": faults.sampling,
            "seed": int(seed),
            "layers": sorted(chosen),
        }
    ]
    return EHDModel(stages, meta, input_shape=model.input_shape, n_classes=model.n_classes).to(model.device)


def fault_weights(
    model: EHDModel, faults: BitFaults | float, seed: int, *, layers: Sequence[int] | None = None
) -> EHDModel:
    """Shorthand for ``faulty_model(model, "model", faults, seed, layers=layers)``."""
    return faulty_model(model, "model", faults, seed, layers=layers)


def reset_data_faults(model: EHDModel) -> None:
    """Restart the row numbering of every data-fault hook of ``model`` (replays the same data faults)."""
    for layer in model.layers:
        if isinstance(layer.data_fault, DataFaultHook):
            layer.data_fault.reset()


def evaluate_with_faults(
    model: EHDModel,
    x: torch.Tensor,
    y: torch.Tensor,
    target: str,
    faults: BitFaults | float,
    seed: int,
    *,
    layers: Sequence[int] | None = None,
    batch_size: int = 256,
    backend: str | None = None,
) -> tuple[float, torch.Tensor]:
    """Accuracy and predictions (int64 (B,)) of a fresh faulty copy of ``model`` on ``(x, y)``."""
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} items but y has {len(y)}")
    if target != "model":
        if backend not in (None, "packed"):
            raise ValueError("data-code faults need backend='packed'")
        backend = "packed"
    faulty = faulty_model(model, target, faults, seed, layers=layers)
    pred = faulty.predict(x, batch_size=batch_size, backend=backend)
    return (pred == torch.as_tensor(y).cpu()).double().mean().item(), pred


def _accuracy(model: EHDModel, x: torch.Tensor, y: torch.Tensor, batch_size: int, backend: str | None) -> float:
    pred = model.predict(x, batch_size=batch_size, backend=backend)
    return (pred == torch.as_tensor(y).cpu()).double().mean().item()


def p_grid(text: str) -> list[float]:
    """Parse "start:stop:step" (stop included when on the grid) or a comma list "0,0.1,0.35" into rates."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(v) for v in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if not (0.0 <= start <= stop <= 1.0 and 0.0 < step <= 1.0):
                raise ValueError(f"--p range {text!r} needs 0 <= start <= stop <= 1 and 0 < step <= 1")
            count = math.floor((stop - start) / step + 1e-9) + 1
            if count > MAX_RATES:
                raise ValueError(f"--p range {text!r} gives {count} rates; at most {MAX_RATES} are allowed")
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(v) for v in text.split(",")]
    except ValueError as err:
        if str(err).startswith("--p"):
            raise
        raise ValueError(f"--p must be 'start:stop:step' or a comma list of rates, got {text!r}") from None
    for v in values:
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"--p rates must lie in [0, 1], got {v}")
    if not values:
        raise ValueError("--p gives no rates")
    return values


def _hits(model: EHDModel, faults: BitFaults, layers: list[int], target: str) -> list[int]:
    """Hits per code (row scope) or per layer (array scope) for each chosen layer."""
    out = []
    for i in layers:
        layer = model.layers[i]
        if faults.scope == "row" or target != "model":
            out.append(faults.count(layer.dim))
        else:
            out.append(faults.count(layer.codes.shape[0] * layer.dim))
    return out


def robustness_sweep(
    model: EHDModel,
    x: torch.Tensor,
    y: torch.Tensor,
    ps: Sequence[float],
    seeds: Sequence[int],
    *,
    target: str = "model",
    layers: Sequence[int] | None = None,
    kind: str = "flip",
    scope: str = "row",
    sampling: str = "without_replacement",
    batch_size: int = 256,
    backend: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Accuracy under faults for every rate in ``ps`` and seed in ``seeds``.

    A rate that hits no bit of any chosen layer (p = 0) is evaluated once and counted for every seed: without
    faults every seed gives the same model.

    Returns:
        a JSON-serialisable dict: settings, ``clean_accuracy`` and ``rows`` with, per rate, ``p``, ``hits``
        (per code for scope "row", per layer for "array"), ``accuracies`` (one per seed), ``accuracy_mean``,
        ``accuracy_std`` (population std over seeds) and ``seconds``.
    """
    check_choice(target, TARGETS, "target")
    if not len(ps):
        raise ValueError("ps is empty")
    if not len(seeds):
        raise ValueError("seeds is empty")
    chosen = resolve_layers(model, layers)
    fault_models = [BitFaults(p, kind, scope, sampling) for p in ps]
    x = torch.as_tensor(x)
    rows = []
    clean: float | None = None
    bar = tqdm(total=len(ps) * len(seeds), desc=f"faults on {target}", disable=not progress, leave=False)
    for faults in fault_models:
        hits = _hits(model, faults, chosen, target)
        t0 = time.perf_counter()
        if not any(hits):
            if clean is None:
                clean = _accuracy(model, x, y, batch_size, backend)
            accs = [clean] * len(seeds)
            bar.update(len(seeds))
        else:
            accs = []
            for seed in seeds:
                acc, _ = evaluate_with_faults(
                    model, x, y, target, faults, int(seed), layers=chosen, batch_size=batch_size, backend=backend
                )
                accs.append(acc)
                bar.update()
        seconds = time.perf_counter() - t0
        rows.append(
            {
                "p": faults.p,
                "hits": hits,
                "accuracies": accs,
                "accuracy_mean": statistics.mean(accs),
                "accuracy_std": statistics.pstdev(accs),
                "seconds": seconds,
            }
        )
        bar.set_postfix(p=faults.p, acc=f"{statistics.mean(accs):.3f}")
    bar.close()
    if clean is None:
        clean = _accuracy(model, x, y, batch_size, backend)
    return {
        "target": target,
        "layers": chosen,
        "kind": kind,
        "scope": scope,
        "sampling": sampling,
        "hits_unit": "per code" if scope == "row" or target != "model" else "per layer",
        "seeds": [int(s) for s in seeds],
        "n_test": len(x),
        "dim_per_layer": model.dim_per_layer,
        "clean_accuracy": clean,
        "rows": rows,
    }
