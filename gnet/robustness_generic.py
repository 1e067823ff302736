"""Bit-fault robustness of any deployed model, through the :class:`gnet.deployed.DeployedModel` interface.

:func:`deployed_sweep` evaluates ``model.with_faults(p, target, seed, kind)`` for every rate, seed and target the
model offers (:meth:`~gnet.deployed.DeployedModel.fault_targets`: ``("weights", "activations")`` for a packed BNN,
``("gate_outputs", "inputs", "gate_ids")`` for a logic circuit, ...). Every family counts faults the same way
(:class:`hdc.faults.BitFaults`: exactly ``round(p * bits)`` distinct bits per row, seeded, independent of the batch
size), so curves of different families compare directly. :mod:`gnet.robustness` keeps the EHD-specific sweep
(layers, scope, sampling); ``gnet robustness`` uses this one for the other families.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gnet.deployed import DeployedModel
from hdc._validate import check_choice, check_int
from hdc.faults import FAULT_KINDS

__all__ = ["check_targets", "deployed_sweep", "plot_deployed_robustness"]


def check_targets(model: DeployedModel, targets: str | Sequence[str] | None) -> list[str]:
    """The fault targets to sweep: None or ``"all"`` = every target of ``model``; a name or a list of names, each
    one of ``model.fault_targets()`` (else ValueError naming the valid ones)."""
    valid = tuple(model.fault_targets())
    if targets is None or targets == "all":
        return list(valid)
    names = [targets] if isinstance(targets, str) else list(targets)
    if not names:
        raise ValueError("targets is empty; pass None for every target")
    for name in names:
        if name not in valid:
            raise ValueError(
                f"target {name!r} is not a fault target of this {model.family} model; valid: {', '.join(valid)} "
                "(or all)"
            )
    return list(dict.fromkeys(names))


def _accuracy(model: DeployedModel, x: Any, y: np.ndarray, batch_size: int) -> float:
    return float((np.asarray(model.predict(x, batch_size=batch_size)) == y).mean())


def _cost(model: DeployedModel) -> dict[str, Any] | None:
    try:
        return asdict(model.cost())
    except ValueError:  # shapes unknown: the sweep does not need them
        return None


def deployed_sweep(
    model: DeployedModel,
    x: Any,
    y: Any,
    ps: Sequence[float],
    seeds: Sequence[int],
    *,
    targets: str | Sequence[str] | None = None,
    kind: str = "flip",
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Accuracy under faults for every rate in ``ps``, seed in ``seeds`` and target in ``targets``.

    Args:
        model: a deployed model (left unchanged: each point evaluates a faulty copy).
        x: inputs (N, *input_shape) float32; y: labels (N,) int.
        ps: fault rates in [0, 1]; a rate of 0 is evaluated once (the clean model) and counted for every seed.
        seeds: non-negative ints.
        targets: see :func:`check_targets`.
        kind: ``"flip"``, ``"stuck0"`` or ``"stuck1"``.

    Returns:
        a JSON-serialisable dict: ``family``, ``kind``, ``seeds``, ``n_test``, ``clean_accuracy``, ``cost`` (the
        model's :class:`gnet.deployed.ModelCost` as a dict, or None) and ``targets``: per target a list of rows with
        ``p``, ``accuracies`` (one per seed), ``accuracy_mean``, ``accuracy_std`` (population sd) and ``seconds``.
    """
    chosen = check_targets(model, targets)
    check_choice(kind, FAULT_KINDS, "kind")
    check_int(batch_size, "batch_size", minimum=1)
    if not len(ps):
        raise ValueError("ps is empty")
    if not len(seeds):
        raise ValueError("seeds is empty")
    seeds = [check_int(s, "seed", minimum=0) for s in seeds]
    y_np = torch.as_tensor(y).cpu().numpy() if not isinstance(y, np.ndarray) else y
    if len(x) != len(y_np):
        raise ValueError(f"x has {len(x)} items but y has {len(y_np)}")
    clean = _accuracy(model, x, y_np, batch_size)
    out: dict[str, list[dict[str, Any]]] = {}
    bar = tqdm(total=len(chosen) * len(ps) * len(seeds), desc="faults", disable=not progress, leave=False)
    for target in chosen:
        rows = []
        for p in ps:
            t0 = time.perf_counter()
            if p == 0:
                accs = [clean] * len(seeds)
            else:
                accs = [_accuracy(model.with_faults(p, target, seed, kind), x, y_np, batch_size) for seed in seeds]
            bar.update(len(seeds))
            rows.append(
                {
                    "p": float(p),
                    "accuracies": accs,
                    "accuracy_mean": statistics.mean(accs),
                    "accuracy_std": statistics.pstdev(accs),
                    "seconds": time.perf_counter() - t0,
                }
            )
            bar.set_postfix(target=target, p=p, acc=f"{statistics.mean(accs):.3f}")
        out[target] = rows
    bar.close()
    return {
        "family": model.family,
        "kind": kind,
        "seeds": list(seeds),
        "n_test": len(x),
        "clean_accuracy": clean,
        "cost": _cost(model),
        "targets": out,
    }


def plot_deployed_robustness(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Accuracy (mean +- sd over seeds, shaded) against p: one curve per model and target of ``result["models"]``
    (each a :func:`deployed_sweep` dict with a ``label``), chance level dotted."""
    from hdc.theory.plots import new_figure, save_figure

    fig, (ax,) = new_figure(1)
    kind = {"flip": "flipped", "stuck0": "stuck at 0", "stuck1": "stuck at 1"}
    for entry in result["models"]:
        for target, rows in entry["targets"].items():
            ps = [r["p"] for r in rows]
            mean = np.array([100 * r["accuracy_mean"] for r in rows])
            sd = np.array([100 * r["accuracy_std"] for r in rows])
            (line,) = ax.plot(ps, mean, marker="o", ms=4, label=f"{entry['label']}: {target.replace('_', ' ')}")
            ax.fill_between(ps, mean - sd, mean + sd, color=line.get_color(), alpha=0.25)
    if result.get("n_classes"):
        ax.axhline(100 / result["n_classes"], ls=":", color="gray", label="chance")
    first = result["models"][0]
    ax.set(
        xlabel=f"p: fraction of bits {kind[first['kind']]} (exactly round(p * bits) per row)",
        ylabel="test accuracy (%)",
        title=f"{result['dataset']}: bit faults ({len(first['seeds'])} seeds, {first['n_test']} test items)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, Path(path))
