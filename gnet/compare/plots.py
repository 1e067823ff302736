"""The comparison's plots: accuracy vs model bits and vs img/s (Pareto fronts marked), accuracy vs flip rate.

One colour per method and one marker per family, the settings of a method (its dims) joined by a line and labelled
at their points, the legend beside the axes: a table of a dozen methods and two dozen settings stays readable.
Accuracy is drawn on a logit scale, which spreads 99 % from 99.5 % as far as 50 % from 90 %, so the top of the
table (where the families differ by tenths of a point) is not squeezed into one line by a model at chance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hdc.io import atomic_write

__all__ = ["pareto_front", "plot_all"]

_MARKERS = {"float": "o", "ehd": "D", "bnn": "s", "logic": "^", "hdc": "v"}
_EXTRA_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")  # dark, after tab10's ten
# Accuracy ticks (fractions) on the logit scale: the ones inside the drawn range are shown.
_ACCURACY_TICKS = (0.1, 0.2, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> None:
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120, bbox_inches="tight"))
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


def _styles(summary: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Colour (by method, in table order) and marker (by family) of every method."""
    plt = _pyplot()
    names = list(dict.fromkeys(e["method"] for e in summary))
    colours = [*plt.get_cmap("tab10").colors, *_EXTRA_COLOURS]
    families = {e["method"]: e["family"] for e in summary}
    return {
        n: {"color": colours[i % len(colours)], "marker": _MARKERS.get(families[n], "o")} for i, n in enumerate(names)
    }


def _short_setting(label: str) -> str:
    """``dim=10000`` -> ``10k`` (a point's label beside it); other labels as given."""
    value = label.removeprefix("dim=")
    if value.isdigit() and int(value) >= 1000 and int(value) % 1000 == 0:
        return f"{int(value) // 1000}k"
    return value


class _Accuracy:
    """Accuracy fractions on the logit scale, kept inside (0, 1): 100 % (or 0 %) is drawn half a test item from it,
    where the logit is finite, and the plot says so."""

    def __init__(self, n_test: int) -> None:
        self.margin = 0.5 / max(n_test, 1)
        self.clipped = False

    def __call__(self, value: float) -> float:
        clipped = min(max(value, self.margin), 1.0 - self.margin)
        self.clipped |= clipped != value
        return clipped

    def finish(self, ax: Any) -> None:
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

        ax.set_yscale("logit")
        ax.yaxis.set_major_locator(FixedLocator(_ACCURACY_TICKS))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{100 * v:.6g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        label = "test accuracy % (logit scale)"
        if self.clipped:
            label += "\n100 % drawn half a test item below"
        ax.set_ylabel(label)


def _n_test(result: dict[str, Any]) -> int:
    return max((int(r.get("n_test") or 0) for r in result["rows"] if r["status"] == "done"), default=1)


def _scatter(result: dict[str, Any], xs: list[float | None], xlabel: str, smaller: bool, path: Path) -> None:
    plt = _pyplot()
    summary, styles, acc = result["summary"], _styles(result["summary"]), _Accuracy(_n_test(result))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    pts: list[tuple[float, float]] = []
    for method, style in styles.items():
        mine: list[tuple[float, dict[str, Any]]] = [
            (x, e)
            for e, x in zip(summary, xs, strict=True)
            if e["method"] == method and x is not None and x > 0 and e["accuracy"] is not None
        ]
        mine.sort(key=lambda point: point[0])  # the line joins a method's settings from left to right
        if not mine:
            continue
        x = [x for x, _ in mine]
        y = [acc(e["accuracy"][0]) for _, e in mine]
        low = [y_ - acc(e["accuracy"][0] - e["accuracy"][1]) for y_, (_, e) in zip(y, mine, strict=True)]
        high = [acc(e["accuracy"][0] + e["accuracy"][1]) - y_ for y_, (_, e) in zip(y, mine, strict=True)]
        ax.errorbar(x, y, yerr=[low, high], capsize=2, ms=5, lw=1, label=method, **style)
        if len(mine) > 1:
            for x_, y_, (_, e) in zip(x, y, mine, strict=True):
                ax.annotate(_short_setting(e["setting"]), (x_, y_), xytext=(3, 3), textcoords="offset points",
                            fontsize=6, color=style["color"])  # fmt: skip
        pts += list(zip(x, y, strict=True))
    front = pareto_front(pts, smaller)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=0.8, label="Pareto front", zorder=0)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    acc.finish(ax)
    ax.grid(alpha=0.3, which="both")
    if pts:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _save(plt, fig, path)


def _flips(result: dict[str, Any], rates: list[str], path: Path) -> None:
    plt = _pyplot()
    styles = _styles(result["summary"])
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    settings_seen: dict[str, int] = {}
    for e in result["summary"]:
        pts = [(0.0, e["accuracy"])] + [(float(p), e["fault_accuracy"].get(p)) for p in rates]
        pts = [(p, v) for p, v in pts if v is not None]
        if len(pts) < 2:
            continue  # no fault columns (float models, or a family without with_faults)
        k = settings_seen[e["method"]] = settings_seen.get(e["method"], -1) + 1
        label = e["method"] if e["setting"] == "-" else f"{e['method']} {_short_setting(e['setting'])}"
        ax.errorbar(
            [p for p, _ in pts],
            [100 * v[0] for _, v in pts],
            yerr=[100 * v[1] for _, v in pts],
            capsize=2,
            ms=4,
            lw=1,
            ls=("-", "--", ":", "-.")[k % 4],
            label=label,
            **styles[e["method"]],
        )
    ax.set_xlabel("bit-flip rate p of the stored model (exactly round(p * bits) per code)")
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, ncol=2)
    _save(plt, fig, path)


def plot_all(result: dict[str, Any], out: str | os.PathLike) -> list[Path]:
    """Write ``accuracy_vs_bits.png``, ``accuracy_vs_speed.png`` and ``accuracy_vs_flips.png`` into ``out``."""
    out = Path(out)
    summary = result["summary"]
    bits = [e["model_bits"][0] if e["model_bits"] else None for e in summary]
    speed = [e["throughput"]["images_per_second"] if e["throughput"] else None for e in summary]
    paths = [out / "accuracy_vs_bits.png", out / "accuracy_vs_speed.png", out / "accuracy_vs_flips.png"]
    _scatter(result, bits, "model bits as deployed (log scale)", True, paths[0])
    _scatter(result, speed, "images per second (batch 256, this machine; log scale)", False, paths[1])
    _flips(result, [str(p) for p in result["config"]["fault_rates"]], paths[2])
    return paths
