"""Every figure of :mod:`gnet`: EHD accuracy against dim, and accuracy under bit faults.

matplotlib is imported inside each function (Agg backend), so importing this module costs nothing.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["plot_robustness", "plot_sweep"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_dim(row: dict[str, Any]) -> float:
    return row["mean_dim"] if "mean_dim" in row else row["mean_n"]  # sweep.json files written before "dim"


def plot_sweep(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Accuracy (mean +- std over seeds) against mean dim, with the float model as a dashed line.

    ``result``: a :meth:`gnet.ehd.SweepResult.to_dict` plus ``dataset`` (and ``float_accuracy`` if known).
    """
    plt = _pyplot()
    rows = result["rows"]
    xs = [_mean_dim(r) for r in rows]
    mean = [100 * r["accuracy_mean"] for r in rows]
    std = [100 * r["accuracy_std"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=f"EHD G-Net ({result['embedding']})")
    if result.get("float_accuracy") is not None:
        ax.axhline(100 * result["float_accuracy"], ls="--", color="k", label="float G-Net")
    ax.set_xlabel("hyperdimension dim (mean over layers)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['dataset']}: accuracy vs dim ({len(result['seeds'])} seeds, {result['n_test']} test items)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _size_text(entry: dict[str, Any]) -> str:
    """"dim=1024" (every layer alike), "dim=6000/15000/..." per layer, or "D=..." for an HDC classifier entry."""
    per_layer = entry.get("dim_per_layer", entry.get("n_per_layer"))
    if per_layer is None:
        return f"D={entry['dim']}"
    return "dim=" + (str(per_layer[0]) if len(set(per_layer)) == 1 else "/".join(map(str, per_layer)))


def plot_robustness(result: dict[str, Any], path: str | os.PathLike, title: str | None = None) -> None:
    """Accuracy (mean +- std over seeds, shaded) against the fault rate p, one curve per entry of
    ``result["models"]`` (each with ``label``, ``rows``, ``dim_per_layer`` (or ``dim``), ``target``, ``kind``,
    ``sampling``, ``hits_unit``, ``seeds``, ``n_test``, optionally ``linestyle``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for entry in result["models"]:
        rows = entry["rows"]
        ps = [r["p"] for r in rows]
        mean = [100 * r["accuracy_mean"] for r in rows]
        std = [100 * r["accuracy_std"] for r in rows]
        (line,) = ax.plot(ps, mean, marker="o", ms=4, ls=entry.get("linestyle", "-"),
                          label=f"{entry['label']} ({_size_text(entry)})")
        ax.fill_between(ps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=line.get_color(), alpha=0.25)
    if result.get("n_classes"):
        ax.axhline(100 / result["n_classes"], ls=":", color="gray", label="chance")
    first = result["models"][0]
    names = {"model": "weight codes", "data": "data codes", "both": "weight + data codes", "prototypes": "prototypes"}
    targets = {m["target"] for m in result["models"]}
    what = names.get(first["target"], first["target"]) if len(targets) == 1 else "codes"
    hits = "hit per code" if first["hits_unit"] == "per code" else "hit per layer"
    kind = {"flip": "flipped", "stuck0": "stuck at 0", "stuck1": "stuck at 1"}[first["kind"]]
    ax.set_xlabel(f"p: fraction of bits {kind} ({hits}, {first['sampling'].replace('_', ' ')})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or f"{result['dataset']}: faults on {what} ({len(first['seeds'])} seeds, "
                 f"{first['n_test']} test items)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
