"""Every figure of :mod:`gnet`: EHD accuracy against dim (one run or the paper-style panels), accuracy under bit
faults, and training curves.

matplotlib is imported inside each function (Agg backend), so importing this module costs nothing.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["plot_accuracy_vs_dim", "plot_learning_curve", "plot_robustness", "plot_sweep"]


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
    """ "dim=1024" (every layer alike), "dim=6000/15000/..." per layer, or "D=..." for an HDC classifier entry."""
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
        (line,) = ax.plot(
            ps, mean, marker="o", ms=4, ls=entry.get("linestyle", "-"), label=f"{entry['label']} ({_size_text(entry)})"
        )
        low = [m - s for m, s in zip(mean, std, strict=True)]
        high = [m + s for m, s in zip(mean, std, strict=True)]
        ax.fill_between(ps, low, high, color=line.get_color(), alpha=0.25)
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
    ax.set_title(
        title or f"{result['dataset']}: faults on {what} ({len(first['seeds'])} seeds, {first['n_test']} test items)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_accuracy_vs_dim(panels: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """One panel per entry of ``panels``, in the style of the paper's accuracy-vs-N figures.

    Each panel is a dict with ``title``, ``float_accuracy`` (or None) and ``curves``: a list of dicts with
    ``label``, ``xs`` (mean dim, or D for a baseline), ``mean`` and ``std`` (accuracies in [0, 1]), ``color``,
    ``marker`` and optionally ``linestyle`` and ``alpha``. Bands are +-0.5 std, the paper's gamma for accuracy plots.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.3), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=False):
        for curve in panel["curves"]:
            mu = [100 * m for m in curve["mean"]]
            band = [50 * s for s in curve["std"]]
            ax.plot(
                curve["xs"],
                mu,
                marker=curve["marker"],
                ms=4,
                ls=curve.get("linestyle", "-"),
                color=curve["color"],
                label=curve["label"],
            )
            low = [m - b for m, b in zip(mu, band, strict=True)]
            high = [m + b for m, b in zip(mu, band, strict=True)]
            ax.fill_between(curve["xs"], low, high, color=curve["color"], alpha=curve.get("alpha", 0.2))
        if panel.get("float_accuracy") is not None:
            acc = 100 * panel["float_accuracy"]
            ax.axhline(acc, ls="--", color="k", label=f"float G-Net ({acc:.2f}%)")
        ax.set_xlabel("hyperdimension: mean dim (the paper's N) over layers (baselines: D)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(panel["title"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curve(
    history: list[dict[str, Any]],
    path: str | os.PathLike,
    *,
    best_epoch: int | None = None,
    test_accuracy: float | None = None,
    reference: tuple[str, float] | None = None,
    title: str | None = None,
) -> None:
    """Training and validation accuracy (left) and loss (right) per epoch, from ``TrainResult.history`` records.

    ``best_epoch`` (1-based) and ``test_accuracy`` mark the test accuracy of the kept checkpoint; ``reference``
    (label, accuracy) draws a dashed line, e.g. the paper's test accuracy.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    ep = [h["epoch"] for h in history]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_acc.plot(ep, [100 * h["train_accuracy"] for h in history], "o-", label="train")
    ax_acc.plot(ep, [100 * h["val_accuracy"] for h in history], "s-", label="validation")
    values = [100 * h["val_accuracy"] for h in history] + [100 * h["train_accuracy"] for h in history]
    if best_epoch is not None and test_accuracy is not None:
        test = 100 * test_accuracy
        values.append(test)
        ax_acc.plot([best_epoch], [test], "r*", markersize=14, label=f"test, best-val epoch {best_epoch}: {test:.2f}%")
    if reference is not None:
        ax_acc.axhline(100 * reference[1], ls="--", color="gray", label=f"{reference[0]}: {100 * reference[1]:.2f}%")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_ylim(max(min(values) - 0.3, 90.0), 100.1)
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="lower right")
    ax_loss.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(ep, [h["val_loss"] for h in history], "s-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
