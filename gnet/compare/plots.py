"""The comparison's plots: accuracy vs model bits and vs img/s (Pareto fronts marked), accuracy vs flip rate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hdc.io import atomic_write

__all__ = ["pareto_front", "plot_all"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)


def pareto_front(points: list[tuple[float, float]], smaller_x_better: bool) -> list[int]:
    """Indices of the points no other point beats in both coordinates (higher y always better; x better when
    smaller if ``smaller_x_better``, else when larger), sorted by x."""
    sign = 1.0 if smaller_x_better else -1.0
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (sign * x2 <= sign * x and y2 >= y) and (sign * x2 < sign * x or y2 > y)
            for j, (x2, y2) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _scatter(summary: list[dict[str, Any]], xs: list[float | None], xlabel: str, smaller: bool, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts, labels = [], []
    for e, x in zip(summary, xs, strict=True):
        if x is None or e["accuracy"] is None or x <= 0:
            continue
        y = 100 * e["accuracy"][0]
        ax.errorbar(x, y, yerr=100 * e["accuracy"][1], fmt="o", capsize=2, label=f"{e['method']} {e['setting']}")
        pts.append((x, y))
        labels.append(e["method"])
    front = pareto_front(pts, smaller)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, label="Pareto front", zorder=0)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3)
    if pts:
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    _save(plt, fig, path)


def _flips(summary: list[dict[str, Any]], rates: list[str], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for e in summary:
        pts = [(0.0, e["accuracy"])] + [(float(p), e["fault_accuracy"].get(p)) for p in rates]
        pts = [(p, v) for p, v in pts if v is not None]
        if len(pts) < 2:
            continue  # no fault columns (float models, or a family without with_faults)
        ax.errorbar(
            [p for p, _ in pts],
            [100 * v[0] for _, v in pts],
            yerr=[100 * v[1] for _, v in pts],
            marker="o",
            capsize=2,
            label=f"{e['method']} {e['setting']}",
        )
    ax.set_xlabel("bit-flip rate p of the model's codes (exactly round(p * bits) per code)")
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=6, ncol=2)
    _save(plt, fig, path)


def plot_all(result: dict[str, Any], out: str | os.PathLike) -> list[Path]:
    """Write ``accuracy_vs_bits.png``, ``accuracy_vs_speed.png`` and ``accuracy_vs_flips.png`` into ``out``."""
    out = Path(out)
    summary = result["summary"]
    bits = [e["model_bits"][0] if e["model_bits"] else None for e in summary]
    speed = [e["throughput"]["images_per_second"] if e["throughput"] else None for e in summary]
    paths = [out / "accuracy_vs_bits.png", out / "accuracy_vs_speed.png", out / "accuracy_vs_flips.png"]
    _scatter(summary, bits, "model bits as deployed", True, paths[0])
    _scatter(summary, speed, "images per second (batch 256, this machine)", False, paths[1])
    _flips(summary, [str(p) for p in result["config"]["fault_rates"]], paths[2])
    return paths
