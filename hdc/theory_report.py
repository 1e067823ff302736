"""Plots and markdown/JSON reports for :mod:`hdc.theory` measurements.

Every figure draws a measured curve with the formula or bound it is checked against on the same axes.
Figures use matplotlib's object API with the Agg canvas (no pyplot, no global backend switch).

Run the synthetic suite from the command line::

    python -m hdc.theory_report --out results/verify/synthetic        # under a minute on CPU
    python -m hdc.theory_report --out /tmp/verify --quick              # a few seconds, smaller Monte Carlo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

from hdc import theory as T

__all__ = [
    "Report",
    "fmt",
    "new_figure",
    "save_figure",
    "Verdict",
    "angle_verdict",
    "grothendieck_verdict",
    "layer_verdict",
    "plot_angles",
    "plot_grothendieck",
    "plot_layer_concentration",
    "plot_rademacher_bias",
    "plot_rotation",
    "plot_unit_concentration",
    "rotation_verdict",
    "run_synthetic",
    "to_jsonable",
    "unit_verdict",
]

Z_TOL = 4.0  # report verdicts: a measurement "agrees" when within 4 Monte Carlo standard errors
_COLORS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"]


# ============================================================================================ report container
@dataclasses.dataclass
class Verdict:
    """One row of a report's summary table. ``ok`` is None for a measurement that is reported beside its formula
    without a pass/fail tolerance (where no tolerance can be derived, e.g. trained weights are not i.i.d.)."""

    claim: str
    measured: str
    theory: str
    ok: bool | None
    note: str = ""


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars/arrays and non-finite floats -> strict-JSON values (NaN/inf become None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


class Report:
    """Collects sections (markdown, figures, verdicts, raw data) and writes ``report.md`` + ``report.json``."""

    def __init__(self, out_dir: str | Path, title: str, intro: str = "") -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.intro = intro
        self.sections: list[dict[str, Any]] = []
        self.verdicts: list[Verdict] = []
        self.meta: dict[str, Any] = {}

    def figure_path(self, name: str) -> Path:
        return self.out_dir / f"{name}.png"

    def add(
        self,
        key: str,
        heading: str,
        text: str,
        figures: Sequence[Path] = (),
        data: Any = None,
        verdicts: Sequence[Verdict] = (),
        seconds: float | None = None,
    ) -> None:
        self.sections.append(
            {"key": key, "heading": heading, "text": text, "figures": [Path(f).name for f in figures],
             "data": data, "seconds": seconds}
        )
        self.verdicts.extend(verdicts)

    def write(self) -> tuple[Path, Path]:
        lines = [f"# {self.title}", ""]
        if self.intro:
            lines += [self.intro, ""]
        if self.verdicts:
            lines += ["| claim | measured | theory | agrees |", "|---|---|---|---|"]
            for v in self.verdicts:
                mark = "reported" if v.ok is None else ("yes" if v.ok else "**no**")
                note = f" ({v.note})" if v.note else ""
                lines.append(f"| {v.claim} | {v.measured} | {v.theory} | {mark}{note} |")
            lines.append("")
        for sec in self.sections:
            lines += [f"## {sec['heading']}", "", sec["text"].strip(), ""]
            for fig in sec["figures"]:
                lines += [f"![{sec['key']}]({fig})", ""]
            if sec["seconds"] is not None:
                lines += [f"_Measured in {sec['seconds']:.1f} s._", ""]
        md = self.out_dir / "report.md"
        md.write_text("\n".join(lines))
        payload = {
            "title": self.title,
            "meta": self.meta,
            "verdicts": [dataclasses.asdict(v) for v in self.verdicts],
            "sections": {s["key"]: {"figures": s["figures"], "seconds": s["seconds"], "data": s["data"]}
                         for s in self.sections},
        }
        js = self.out_dir / "report.json"
        js.write_text(json.dumps(to_jsonable(payload), indent=1, allow_nan=False))
        return md, js


def new_figure(ncols: int = 2, width: float = 5.2, height: float = 4.0) -> tuple[Figure, Any]:
    """A 1 x ncols figure on the Agg canvas with fixed margins; returns (figure, array of axes)."""
    fig = Figure(figsize=(width * ncols, height), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    # Fixed margins: a layout engine doubles the time to save (it draws the figure twice).
    fig.subplots_adjust(left=0.09 if ncols > 1 else 0.13, right=0.98, bottom=0.12, top=0.92, wspace=0.25)
    return fig, np.atleast_1d(axes)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` (log axes get readable tick labels first)."""
    # Log axes spanning less than a decade otherwise label every minor tick, and the labels collide.
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                lo, hi = sorted(axis.get_view_interval())
                if lo > 0 and hi / lo < 100:
                    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                    axis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
                axis.set_minor_formatter(NullFormatter())
    fig.savefig(path)
    return path


def fmt(x: float | None, digits: int = 3) -> str:
    """A compact number for report tables ("n/a" for None or non-finite)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


# ============================================================================================ 1. Grothendieck
def plot_grothendieck(check: T.GrothendieckCheck, path: Path) -> Path:
    """Left: mu_hat at the largest N against (2/pi) arcsin rho. Right: spread across draws vs sqrt((1-mu^2)/N)."""
    fig, (a, b) = new_figure()
    grid = np.linspace(-1, 1, 401)
    a.plot(grid, 2 / np.pi * np.arcsin(grid), "k-", label=r"$(2/\pi)\arcsin\rho$ (Grothendieck)")
    a.plot(grid, grid, ":", color="0.6", label=r"$\rho$ (for contrast)")
    mean_n = np.array(check.mean)[:, -1]
    se = np.array(check.std)[:, -1] / math.sqrt(check.n_draws)
    a.errorbar(check.rhos, mean_n, yerr=2 * se, fmt="o", color="C3",
               label=f"measured, N={check.ns[-1]}, {check.n_draws} draws of G (±2 se)")
    if check.exact_mean is not None:
        a.plot(check.rhos, check.exact_mean, "s", mfc="none", color="C2", ms=10,
               label="exact Rademacher expectation (enumerated)")
    a.set(xlabel=r"$\rho = \langle u, v\rangle$", ylabel=r"$\hat\mu$ = mean of sign($g_i u$) sign($g_i v$)",
          title=f"{check.kind} G, {check.layout} vectors, d={check.dim}")
    a.legend(fontsize=7, loc="upper left")
    ns = np.array(check.ns)
    for i, rho in enumerate(check.rhos):
        c = _COLORS[i % len(_COLORS)]
        b.loglog(ns, check.std[i], "o", color=c, label=f"rho={rho:g}")
        b.loglog(ns, check.theory_std[i], "-", color=c, alpha=0.6)
    b.plot([], [], "k-", alpha=0.6, label=r"theory $\sqrt{(1-\mu^2)/N}$")
    b.set(xlabel="N (rows of G)", ylabel=r"std of $\hat\mu$ across draws of G", title="spread vs exact variance")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def grothendieck_verdict(check: T.GrothendieckCheck) -> list[Verdict]:
    """Mean (vs identity, or vs the exact Rademacher expectation) and spread (vs exact variance)."""
    mean_n = np.array(check.mean)[:, -1]
    se = np.array(check.theory_std)[:, -1] / math.sqrt(check.n_draws)
    label = f"{check.kind} G, {check.layout} vectors"
    out = []
    if check.exact_mean is not None:
        z = np.abs(mean_n - np.array(check.exact_mean)) / np.maximum(se, 1e-12)
        out.append(Verdict(f"Rademacher, sparse: mean = exact enumerated value ({label})",
                           f"max |meas - exact| = {fmt(np.max(np.abs(mean_n - check.exact_mean)))}",
                           f"within {Z_TOL:g} se", bool(z.max() <= Z_TOL),
                           f"bias vs (2/pi) arcsin rho up to {fmt(np.max(np.abs(check.bias)))}"))
    else:
        allowance = 0.0 if check.kind == "gaussian" else np.array(check.delocalisation)
        ok = np.abs(check.bias) <= Z_TOL * se + allowance
        out.append(Verdict(f"E sign(gu)sign(gv) = (2/pi) arcsin rho ({label})",
                           f"max |bias| = {fmt(np.max(np.abs(check.bias)))} at N={check.ns[-1]}",
                           f"0 (± {Z_TOL:g} se = {fmt(Z_TOL * se.max())})"
                           + ("" if check.kind == "gaussian" else " + sum u_i^4 allowance"),
                           bool(ok.all())))
    ratio = np.array(check.std) / np.array(check.theory_std)
    tol = Z_TOL * math.sqrt(1.0 / (2 * (check.n_draws - 1)))  # sd of a sample-sd ratio ~ 1/sqrt(2(D-1))
    valid = np.array(check.theory_std) > 0
    out.append(Verdict(f"Var = (1 - mu^2)/N ({label})",
                       f"std ratio meas/theory in [{fmt(ratio[valid].min())}, {fmt(ratio[valid].max())}]",
                       f"1 ± {fmt(tol)}", bool((np.abs(ratio[valid] - 1) <= tol).all()),
                       "" if check.exact_mean is None else "sparse Rademacher: terms are not Grothendieck's"))
    return out


def plot_rademacher_bias(dense: T.GrothendieckCheck, sparse: T.GrothendieckCheck, path: Path) -> Path:
    """Bias of the Rademacher estimate vs rho: dense (delocalised) vectors against sparse ones."""
    fig, (a,) = new_figure(ncols=1, width=6.0)
    a.axhline(0, color="k", lw=1, label="Gaussian G: unbiased (Grothendieck)")
    se = np.array(dense.bias_se)
    a.errorbar(dense.rhos, dense.bias, yerr=2 * se, fmt="o", color="C0",
               label=f"Rademacher, dense u,v in R^{dense.dim} (±2 se)")
    a.plot(sparse.rhos, sparse.bias, "s", color="C3", label="Rademacher, sparse u=e1, v=rho e1+... (measured)")
    exact_bias = np.array(sparse.exact_mean) - np.array(sparse.theory_mean)
    a.plot(sparse.rhos, exact_bias, "x", color="k", ms=10, label="sparse: exact bias (enumerated)")
    a.set(xlabel=r"$\rho$", ylabel=r"$E\hat\mu - (2/\pi)\arcsin\rho$",
          title="Rademacher G: bias depends on delocalisation")
    a.legend(fontsize=7)
    return save_figure(fig, path)


# ============================================================================================ 2. concentration
def _floor(values: np.ndarray, n_draws: int) -> np.ndarray:
    # A zero frequency cannot sit on a log axis: draw it at half the detection floor 1/n_draws.
    return np.where(values > 0, values, 0.5 / n_draws)


def plot_unit_concentration(check: T.UnitConcentrationCheck, path: Path) -> Path:
    """Left: failure frequency vs N per t with Hoeffding (and the exact Binomial tail). Right: std of z_hat."""
    fig, (a, b) = new_figure()
    ns = np.array(check.ns)
    fail = np.array(check.failure)
    for j, t in enumerate(check.ts):
        c = _COLORS[j % len(_COLORS)]
        zero = fail[:, j] == 0
        a.semilogy(ns[~zero], fail[~zero, j], "o", color=c, label=f"measured, t={t:g}")
        a.semilogy(ns[zero], _floor(fail[zero, j], check.n_draws), "v", color=c, mfc="none")
        a.semilogy(ns, np.array(check.hoeffding)[:, j], "--", color=c)
        if check.exact is not None:
            a.semilogy(ns, np.maximum(np.array(check.exact)[:, j], 1e-12), "-", color=c, alpha=0.5)
    a.plot([], [], "k--", label=r"Hoeffding $2e^{-2Nt^2/\pi^2}$")
    if check.exact is not None:
        a.plot([], [], "k-", alpha=0.5, label="exact (Binomial)")
    a.plot([], [], "kv", mfc="none", label=f"none in {check.n_draws} draws")
    a.set_xscale("log")
    a.set_ylim(0.2 / check.n_draws, 1.5)
    a.set(xlabel="N", ylabel=r"$P(|\hat z - \arcsin\rho| \geq t)$",
          title=f"one unit, {check.kind} G, rho={check.rho:g}, {check.n_draws} draws")
    a.legend(fontsize=7)
    b.loglog(ns, check.zhat_std, "o", label="measured std of z_hat")
    b.loglog(ns, check.theory_std, "k-", label=r"exact $(\pi/2)\sqrt{(1-\mu^2)/N}$")
    b.set(xlabel="N", ylabel="std", title="spread of the unit estimate")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def _bound_summary(measured: np.ndarray, bound: np.ndarray, se: np.ndarray) -> tuple[bool, str]:
    """Whether every measured frequency is at most its bound (+3 se), and a one-line summary."""
    above = measured > bound + 3 * se
    informative = (bound < 1) & (measured > 0)
    ratio = float(np.min(bound[informative] / measured[informative])) if informative.any() else float("nan")
    return bool(not above.any()), f"{int(above.sum())} of {above.size} cells above; tightest bound/meas = {fmt(ratio)}"


def unit_verdict(check: T.UnitConcentrationCheck) -> list[Verdict]:
    fail, se = np.array(check.failure), np.array(check.failure_se)
    ok, summary = _bound_summary(fail, np.array(check.hoeffding), se)
    out = [Verdict(f"per-unit Hoeffding bound ({check.kind} G, rho={check.rho:g})", summary,
                   "2 exp(-2 N t^2 / pi^2)", ok)]
    if check.exact is not None:
        z = np.abs(fail - np.array(check.exact)) / np.maximum(se, 1.0 / check.n_draws)
        out.append(Verdict("failure frequency = exact Binomial tail (Gaussian G)",
                           f"max |z| = {fmt(float(z.max()))}", f"<= {Z_TOL:g}", bool(z.max() <= Z_TOL)))
    return out


def plot_layer_concentration(check: T.LayerConcentrationCheck, path: Path) -> Path:
    """Left: any-unit failure vs the union bound, worst unit vs Hoeffding. Right: error size vs N."""
    fig, (a, b) = new_figure()
    ns = np.array(check.ns)
    for values, bound, c, lab, blab in (
        (np.array(check.failure_any), check.union, "C3", "measured: any (unit, patch) fails",
         rf"union bound $2mP e^{{-2Nt^2/\pi^2}}$, mP={check.units * check.patches}"),
        (np.array(check.failure_unit_mean), check.hoeffding, "C0", "measured: per (unit, patch), mean over cells",
         "per-unit Hoeffding bound"),
    ):
        zero = values == 0
        a.semilogy(ns[~zero], values[~zero], "o-", color=c, label=lab)
        a.semilogy(ns[zero], _floor(values[zero], check.n_draws), "v", color=c, mfc="none")
        a.semilogy(ns, np.maximum(bound, 1e-12), "--", color=c, label=blab)
    a.semilogy(ns, np.where(np.array(check.failure_unit_max) > 0, check.failure_unit_max, np.nan), ".", color="C0",
               alpha=0.4, label="worst cell (max of mP noisy frequencies)")
    a.axvline(check.n_required, color="k", lw=1, ls=":",
              label=f"N required (t={check.t:g}, delta={check.delta:g}) = {check.n_required}")
    a.axhline(check.delta, color="0.5", lw=1)
    a.set_xscale("log")
    a.set_ylim(0.2 / check.n_draws, 1.5)
    a.set(xlabel="N", ylabel="failure frequency", title=f"{check.name}: m={check.units} units, P={check.patches}, "
          f"d={check.features}, {check.kind} G shared")
    a.legend(fontsize=7)
    b.loglog(ns, check.error_rms, "o", color="C0", label="measured rms error")
    b.loglog(ns, check.theory_rms, "-", color="C0", alpha=0.6, label=r"exact rms $(\pi/2)\sqrt{(1-\mu^2)/N}$")
    b.loglog(ns, check.max_error_mean, "s", color="C3", label="measured mean of max error")
    b.axhline(check.t, color="C3", ls="--", label=f"t = {check.t:g}")
    b.set(xlabel="N", ylabel=r"$|\hat z - z|$ (radians)", title=f"{check.n_draws} draws of G")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def layer_verdict(check: T.LayerConcentrationCheck) -> list[Verdict]:
    fa, union = np.array(check.failure_any), np.array(check.union)
    se = np.sqrt(fa * (1 - fa) / check.n_draws)
    ok_union, union_summary = _bound_summary(fa, union, se)
    fu, hoeff = np.array(check.failure_unit_mean), np.array(check.hoeffding)
    # The mean over cells averages m P correlated frequencies; its se is at most that of a single cell.
    ok_unit, unit_summary = _bound_summary(fu, hoeff, np.sqrt(fu * (1 - fu) / check.n_draws))
    at_req = [f for n, f in zip(check.ns, check.failure_any) if n >= check.n_required]
    rms_ratio = np.array(check.error_rms) / np.array(check.theory_rms)
    # Cells of one draw share G; the draw's mean squared error is still no noisier than one cell's, whose relative
    # sd is ~sqrt(2) (near-normal error). Over D draws: relative sd <= sqrt(2/D), halved by the square root.
    rms_tol = Z_TOL * math.sqrt(2.0 / check.n_draws) / 2.0
    return [
        Verdict(f"layer union bound ({check.name})", union_summary, "2 m P exp(-2 N t^2 / pi^2)", ok_union),
        Verdict(f"per-unit bound inside the layer ({check.name})", unit_summary, "2 exp(-2 N t^2 / pi^2)",
                ok_unit, "mean over cells; G shared across units leaves each marginal unchanged"),
        Verdict(f"N-required calculator ({check.name}: t={check.t:g}, delta={check.delta:g}, "
                f"mP={check.units * check.patches})",
                f"failure at N>={check.n_required}: {fmt(at_req[0]) if at_req else 'not run'}",
                f"<= delta = {check.delta:g}", bool(at_req) and at_req[0] <= check.delta + 3 * math.sqrt(
                    check.delta * (1 - check.delta) / check.n_draws)),
        Verdict(f"rms error = exact std ({check.name})",
                f"ratio in [{fmt(rms_ratio.min())}, {fmt(rms_ratio.max())}]", f"1 ± {fmt(rms_tol)}",
                bool((np.abs(rms_ratio - 1) <= rms_tol).all()), "worst case: all cells of a draw correlated"),
    ]


def required_n_table(ts: Sequence[float], deltas: Sequence[float], mps: Sequence[int]) -> str:
    """Markdown table of :func:`hdc.theory.required_n` for every (t, delta) and m P."""
    head = "| t | delta | " + " | ".join(f"mP={mp:,}" for mp in mps) + " |"
    lines = [head, "|---|---|" + "---|" * len(mps)]
    for t in ts:
        for d in deltas:
            lines.append(f"| {t:g} | {d:g} | " + " | ".join(f"{T.required_n(t, d, mp):,}" for mp in mps) + " |")
    return "\n".join(lines)


# ============================================================================================ 3. Anderson & Berg
def plot_angles(checks: Sequence[T.AngleCheck], path: Path) -> Path:
    """Left: mean angle(w, sign w) vs d with limit and delta-method mean. Right: sd vs d with the prediction."""
    fig, (a, b) = new_figure()
    for i, ch in enumerate(checks):
        c = _COLORS[i % len(_COLORS)]
        dims = np.array(ch.dims)
        a.semilogx(dims, np.degrees(ch.mean), "o", color=c, label=f"{ch.distribution}: measured")
        a.semilogx(dims, np.degrees(ch.pred_mean), ":", color=c)
        a.axhline(math.degrees(ch.limit), color=c, ls="--", lw=1,
                  label=f"{ch.distribution}: limit {math.degrees(ch.limit):.1f} deg")
        b.loglog(dims, np.degrees(ch.sd), "o", color=c,
                 label=f"{ch.distribution}: measured (sd*sqrt(d) -> {ch.sd_constant[-1]:.3f})")
        b.loglog(dims, np.degrees(ch.pred_sd), "-", color=c, alpha=0.6,
                 label=f"delta method {ch.pred_sd_constant:.4f}/sqrt(d) rad")
    a.plot([], [], "k:", label="2nd-order delta-method mean")
    a.set(xlabel="d", ylabel="angle(w, sign w) [deg]", title=r"$\cos = E|w| / \sqrt{E w^2}$ (Anderson & Berg)")
    a.legend(fontsize=6)
    b.set(xlabel="d", ylabel="sd of angle [deg]", title=f"concentration, {checks[0].n_draws} vectors per d")
    b.legend(fontsize=6)
    return save_figure(fig, path)


def angle_verdict(check: T.AngleCheck, min_dim_mean: int = 100, min_dim_sd: int = 1000) -> list[Verdict]:
    """Mean vs the 2nd-order delta method for d >= min_dim_mean; sd vs the 1st-order one for d >= min_dim_sd.

    The sd needs larger d: the delta method's relative error is O(1/d) with a constant that grows with the
    tails (measured about 0.92 of the prediction for Laplace at d = 100).
    """
    dims = np.array(check.dims)
    sel = dims >= min(min_dim_mean, dims[-1])
    mean, pred = np.array(check.mean)[sel], np.array(check.pred_mean)[sel]
    se = np.array(check.sd)[sel] / math.sqrt(check.n_draws)
    z = np.abs(mean - pred) / se
    sel_sd = dims >= min(min_dim_sd, dims[-1])
    ratio = np.array(check.sd)[sel_sd] / np.array(check.pred_sd)[sel_sd]
    # sample-sd noise ~ 1/sqrt(2(D-1)) for near-normal angles, plus the O(1/d) delta-method error (10/d covers
    # the deviations measured for all three distributions at d >= 300)
    tol = Z_TOL / math.sqrt(2 * (check.n_draws - 1)) + 10.0 / int(dims[sel_sd][0])
    d_last = int(dims[-1])
    return [
        Verdict(f"angle(w, sign w), {check.distribution}",
                f"{math.degrees(check.mean[-1]):.2f} deg at d={d_last}",
                f"{math.degrees(check.limit):.2f} deg (finite-d {math.degrees(check.pred_mean[-1]):.2f})",
                bool(z.max() <= Z_TOL), f"d >= {int(dims[sel][0])}: max |z| = {z.max():.2f}"),
        Verdict(f"angle sd, {check.distribution}", f"sd*sqrt(d) = {check.sd_constant[-1]:.4f} rad at d={d_last}",
                f"{check.pred_sd_constant:.4f} rad (delta method)", bool((np.abs(ratio - 1) <= tol).all()),
                f"d >= {int(dims[sel_sd][0])}: ratio in [{ratio.min():.3f}, {ratio.max():.3f}], tol {tol:.3f}"),
    ]


def plot_rotation(check: T.RotationCheck, path: Path) -> Path:
    fig, (a,) = new_figure(ncols=1, width=6.0)
    dims = np.array(check.dims)
    a.semilogx(dims, np.degrees(check.plain_mean), "o", color="C3", label="measured: sign(x)")
    a.semilogx(dims, np.degrees(check.plain_pred), "-", color="C3", alpha=0.6,
               label=r"large-d formula $\arccos(\sqrt{2/\pi}\,\bar s/\mathrm{rms}(s))$")
    a.semilogx(dims, np.degrees(check.rotated_mean), "o", color="C0", label="measured: R' sign(R x)")
    a.semilogx(dims, np.degrees(check.rotated_pred), "-", color="C0", alpha=0.6,
               label="isotropic (Gaussian) angle at d")
    a.set(xlabel="d", ylabel="mean angle(x, binarised x) [deg]",
          title=f"x_i ~ N(0, exp(2*{check.decay:g}(i - d/2))), {check.n_samples} samples")
    a.legend(fontsize=7)
    return save_figure(fig, path)


def rotation_verdict(check: T.RotationCheck) -> list[Verdict]:
    """Rotated mean angle vs the Gaussian-weight angle at d (exact when averaged over Haar R).

    Samples sharing one R are dependent, but the mean of a group has variance at most that of one sample, so
    se <= sd(one angle) / sqrt(n_rotations), with sd(one angle) from the delta method.
    """
    _, sd_one = T.angle_delta_method(T.distribution_moments("gaussian"), np.array(check.dims, dtype=float))
    se = sd_one / math.sqrt(check.n_rotations)
    z = np.abs(np.array(check.rotated_mean) - np.array(check.rotated_pred)) / se
    return [Verdict("random rotation before sign restores the isotropic angle",
                    f"rotated {math.degrees(check.rotated_mean[-1]):.1f} deg vs plain "
                    f"{math.degrees(check.plain_mean[-1]):.1f} deg at d={check.dims[-1]}",
                    f"{math.degrees(check.rotated_pred[-1]):.1f} deg", bool(z.max() <= Z_TOL),
                    f"{check.n_rotations} Haar R per d; max |z| = {z.max():.2f}")]


# ============================================================================================ the synthetic suite
def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def synthetic_sizes(quick: bool) -> dict[str, Any]:
    """Monte Carlo sizes; ``quick`` keeps the whole suite to a few seconds (for tests and smoke runs)."""
    if quick:
        return dict(groth_ns=(64, 256, 1024), groth_dim=64, groth_draws=8, unit_draws=400, unit_draws_rad=200,
                    unit_ns=(16, 64, 256, 1024), layer_units=16, layer_patches=32, layer_draws=20,
                    angle_dims=(3, 30, 300), angle_draws=500, rot_dims=(10, 100), rot_samples=100, rot_rotations=10)
    return dict(groth_ns=(64, 256, 1024, 4096, 16384), groth_dim=256, groth_draws=32, unit_draws=4000,
                unit_draws_rad=1000, unit_ns=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096), layer_units=64,
                layer_patches=128, layer_draws=200, angle_dims=(3, 10, 27, 100, 300, 1000, 3000),
                angle_draws=4000, rot_dims=(10, 30, 100, 300, 500), rot_samples=500, rot_rotations=20)


def synthetic_layer(units: int, patches: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random weights (units, dim) and patches (patches, dim) whose correlations span roughly [-0.9, 0.9]."""
    rng = np.random.default_rng([seed, 5])
    w = rng.standard_normal((units, dim))
    # Each patch leans towards one unit with a random signed strength, so z covers most of (-pi/2, pi/2).
    lean = rng.uniform(-3.0, 3.0, (patches, 1))
    x = rng.standard_normal((patches, dim)) + lean * w[rng.integers(0, units, patches)]
    return w, x


def _r_tol(d: T.DotProductCheck) -> float:
    # sd of a sample correlation ~ (1 - r^2)/sqrt(S); the mean over m units has it / sqrt(m).
    return Z_TOL * (1.0 - d.isotropic**2) / math.sqrt(d.samples * d.units)


def run_synthetic(
    out_dir: str | Path, seed: int = 0, quick: bool = False, progress: bool = True
) -> Report:
    """Run every synthetic check, write ``report.md``, ``report.json`` and PNG plots into ``out_dir``."""
    sz = synthetic_sizes(quick)
    rep = Report(
        out_dir,
        "Theory verification: synthetic vectors",
        f"Every claim is measured at fixed seeds (seed={seed}) and drawn beside its formula or bound. "
        f"{'Quick (reduced) Monte Carlo sizes.' if quick else 'Full Monte Carlo sizes.'} "
        "A verdict 'agrees' means within the stated tolerance (Monte Carlo standard errors, 'se').",
    )
    rep.meta = {"seed": seed, "quick": quick, "sizes": sz}

    # 1. Grothendieck, via the project's RandomProjection.
    checks = {}
    for kind in T.KINDS:
        checks[kind], secs = _timed(lambda k=kind: T.check_grothendieck(
            ns=sz["groth_ns"], kind=k, dim=sz["groth_dim"], n_draws=sz["groth_draws"], seed=seed,
            progress=progress))
        fig = plot_grothendieck(checks[kind], rep.figure_path(f"grothendieck_{kind}"))
        ch = checks[kind]
        rows = "\n".join(
            f"| {r:g} | {ch.theory_mean[i]:.4f} | {ch.mean[i][-1]:.4f} | {ch.bias[i]:+.4f} ± {ch.bias_se[i]:.4f} | "
            f"{ch.std[i][0]:.4f} / {ch.theory_std[i][0]:.4f} | {ch.std[i][-1]:.5f} / {ch.theory_std[i][-1]:.5f} |"
            for i, r in enumerate(ch.rhos))
        rep.add(
            f"grothendieck_{kind}", f"1. Grothendieck's identity, {kind} G",
            f"mu_hat = (1/N) sum_i sign(g_i.u) sign(g_i.v) from `hdc.projection.RandomProjection` "
            f"(d={ch.dim}, dense unit vectors, {ch.n_draws} independent G, nested N). "
            f"Packed path (encode + hamming_distance) agrees with the float sums: {ch.packed_agrees}.\n\n"
            f"| rho | (2/pi) arcsin rho | measured mean (N={ch.ns[-1]}) | bias ± se | std/theory N={ch.ns[0]} "
            f"| std/theory N={ch.ns[-1]} |\n|---|---|---|---|---|---|\n{rows}",
            [fig], ch, grothendieck_verdict(ch), secs)
    sparse, secs = _timed(lambda: T.check_grothendieck(
        ns=sz["groth_ns"], kind="rademacher", dim=sz["groth_dim"], n_draws=sz["groth_draws"], seed=seed,
        layout="sparse", check_packed=False, progress=progress))
    fig = plot_rademacher_bias(checks["rademacher"], sparse, rep.figure_path("rademacher_bias"))
    rows = "\n".join(f"| {r:g} | {sparse.theory_mean[i]:.4f} | {sparse.exact_mean[i]:.4f} | {sparse.mean[i][-1]:.4f} "
                     f"| {checks['rademacher'].bias[i]:+.4f} |" for i, r in enumerate(sparse.rhos))
    rep.add("rademacher_bias", "1b. Rademacher G: the bias is measured, not assumed",
            "Grothendieck's identity needs Gaussian rows. With Rademacher rows it holds approximately for dense "
            "(delocalised) vectors, and can fail badly for sparse ones: for u = e1, v = rho e1 + sqrt(1-rho^2) e2 "
            "the products take only the values sign(rho +- sqrt(1-rho^2)), and the exact expectation (enumerating "
            "all sign patterns) is drawn beside the measurement.\n\n"
            "| rho | (2/pi) arcsin rho | sparse: exact | sparse: measured | dense: bias |\n|---|---|---|---|---|\n"
            + rows, [fig], sparse, grothendieck_verdict(sparse)[:1], secs)

    # 2. Concentration.
    for kind in T.KINDS:
        unit, secs = _timed(lambda k=kind: T.check_unit_concentration(
            ns=sz["unit_ns"], kind=k, n_draws=sz["unit_draws"] if k == "gaussian" else sz["unit_draws_rad"],
            seed=seed, progress=progress))
        fig = plot_unit_concentration(unit, rep.figure_path(f"concentration_unit_{kind}"))
        rep.add(f"concentration_unit_{kind}", f"2. Per-unit concentration, {kind} G",
                f"Failure frequency of one unit (rho={unit.rho:g}, z = arcsin rho = {unit.z:.4f}) over "
                f"{unit.n_draws} draws of G, against Hoeffding's 2 exp(-2 N t^2 / pi^2)"
                + (" and the exact Binomial tail (Gaussian G: the number of agreeing signs is "
                   "Binomial(N, 1/2 + z/pi))." if kind == "gaussian" else ".")
                + " Hoeffding ignores the variance (1 - mu^2), so it is loose by orders of magnitude in the tail.",
                [fig], unit, unit_verdict(unit), secs)
    w, x = synthetic_layer(sz["layer_units"], sz["layer_patches"], 64, seed)
    layer, secs = _timed(lambda: T.check_layer_concentration(
        w, x, t=0.15, delta=0.05, n_draws=sz["layer_draws"], seed=seed, name="synthetic layer", progress=progress))
    fig = plot_layer_concentration(layer, rep.figure_path("concentration_layer"))
    rep.add("concentration_layer", "2b. Layer-level union bound and the N-required calculator",
            f"One G (N x {layer.features}) shared by m={layer.units} units and P={layer.patches} input patches; "
            f"z ranges over [{layer.z_range[0]:.2f}, {layer.z_range[1]:.2f}]. The union bound uses only the "
            "per-unit marginals, so sharing G across units does not weaken it. "
            f"`required_n(t={layer.t:g}, delta={layer.delta:g}, units={layer.units}, patches={layer.patches})` "
            f"= {layer.n_required}.\n\nN required, N >= pi^2/(2 t^2) log(2 m P / delta):\n\n"
            + required_n_table((0.05, 0.1, 0.2), (0.01, 0.05), (1, 512, 512 * 196, 10**7)),
            [fig], layer, layer_verdict(layer), secs)

    # 3. Anderson & Berg.
    angles, secs = _timed(lambda: [T.check_binarization_angle(d, dims=sz["angle_dims"],
                                                               n_draws=sz["angle_draws"], seed=seed)
                                   for d in T.DISTRIBUTIONS])
    fig = plot_angles(angles, rep.figure_path("binarization_angle"))
    rows = "\n".join(
        f"| {a.distribution} | {math.degrees(a.limit):.2f} | {math.degrees(a.mean[-1]):.2f} | "
        f"{a.pred_sd_constant:.4f} | {a.sd_constant[-1]:.4f} |" for a in angles)
    rep.add("binarization_angle", "3. Angle between w and sign(w) (Anderson & Berg)",
            "cos angle(w, sign w) = ||w||_1 / (sqrt(d) ||w||_2) -> E|w| / sqrt(E w^2). The spread comes from the "
            "delta method on (mean|w|, mean w^2) (`angle_delta_method`); for Gaussian w it gives "
            "sqrt(1 - 3/pi)/sqrt(1 - 2/pi) = 0.3522 rad / sqrt(d). The mean is biased low at small d; the dotted "
            "curves are the second-order delta-method mean.\n\n"
            f"| distribution | limit [deg] | measured at d={angles[0].dims[-1]} [deg] | predicted sd*sqrt(d) [rad] "
            f"| measured sd*sqrt(d) |\n|---|---|---|---|---|\n" + rows,
            [fig], angles, [v for a in angles for v in angle_verdict(a)], secs)
    rot, secs = _timed(lambda: T.check_rotation(dims=sz["rot_dims"], n_samples=sz["rot_samples"], seed=seed,
                                                n_rotations=sz["rot_rotations"]))
    fig = plot_rotation(rot, rep.figure_path("rotation"))
    rep.add("rotation", "3b. Random rotation before binarising",
            "Binarisation is not rotation-invariant: for anisotropic x (exponentially decaying scales) sign(x) "
            "keeps only the few large coordinates. Binarising R x for a random rotation R spreads the energy over "
            "all coordinates and brings the angle back to the isotropic value.",
            [fig], rot, rotation_verdict(rot), secs)
    rng = np.random.default_rng([seed, 6])
    dots = [T.dot_product_correlation(T.sample_weights(dist, (32, 256), rng), rng.standard_normal((500, 256)),
                                      seed=rng, name=dist) for dist in T.DISTRIBUTIONS]
    rows = "\n".join(f"| {d.name} | {d.r_unit_mean:.4f} | {d.isotropic:.4f} | {d.r:.4f} | {d.r_permuted:.4f} |"
                     for d in dots)
    rep.add("dot_products", "3c. Dot-product proportionality on isotropic activations",
            "For isotropic activations a, corr_a(a.w, a.sign(w)) = cos angle(w, sign w) exactly, so the per-unit "
            "correlation should equal the cosine (the baseline a trained model's real activations are compared "
            "with).\n\n| weights | per-unit r | cos angle(w, sign w) | pooled r | pooled r, permuted a |\n"
            "|---|---|---|---|---|\n" + rows, [], dots,
            [Verdict(f"corr(a.w, a.sign w) = cos angle, isotropic a, {d.name} w", f"{d.r_unit_mean:.4f}",
                     f"{d.isotropic:.4f}", abs(d.r_unit_mean - d.isotropic) <= _r_tol(d),
                     f"tolerance {_r_tol(d):.4f}") for d in dots])
    rep.write()
    return rep


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdc.theory_report", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory for report.md, report.json and PNGs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small Monte Carlo sizes (seconds)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    rep = run_synthetic(args.out, seed=args.seed, quick=args.quick, progress=not args.no_progress)
    bad = [v for v in rep.verdicts if v.ok is False]
    print(f"wrote {rep.out_dir / 'report.md'}: {len(rep.verdicts) - len(bad)}/{len(rep.verdicts)} claims agree")
    for v in bad:
        print(f"  DISAGREES: {v.claim}: measured {v.measured}, theory {v.theory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
