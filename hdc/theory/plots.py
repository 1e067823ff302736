"""Figures for :mod:`hdc.theory` measurements: every measured curve drawn with its formula or bound.

Figures use matplotlib's object API with the Agg canvas (no pyplot, no global backend switch). Each ``plot_*``
writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter
from numpy.typing import NDArray

from hdc.theory.angles import AngleCheck, RotationCheck
from hdc.theory.concentration import LayerConcentrationCheck, UnitConcentrationCheck
from hdc.theory.grothendieck import GrothendieckCheck

__all__ = [
    "new_figure",
    "plot_angles",
    "plot_grothendieck",
    "plot_layer_concentration",
    "plot_rademacher_bias",
    "plot_rotation",
    "plot_unit_concentration",
    "save_figure",
]

_COLORS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"]


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


# ============================================================================================ 1. Grothendieck
def plot_grothendieck(check: GrothendieckCheck, path: Path) -> Path:
    """Left: mu_hat at the largest N against (2/pi) arcsin rho. Right: spread across draws vs sqrt((1-mu^2)/N)."""
    fig, (a, b) = new_figure()
    grid = np.linspace(-1, 1, 401)
    a.plot(grid, 2 / np.pi * np.arcsin(grid), "k-", label=r"$(2/\pi)\arcsin\rho$ (Grothendieck)")
    a.plot(grid, grid, ":", color="0.6", label=r"$\rho$ (for contrast)")
    mean_n = np.array(check.mean)[:, -1]
    se = np.array(check.std)[:, -1] / math.sqrt(check.n_draws)
    a.errorbar(
        check.rhos,
        mean_n,
        yerr=2 * se,
        fmt="o",
        color="C3",
        label=f"measured, N={check.dims[-1]}, {check.n_draws} draws of G (±2 se)",
    )
    if check.exact_mean is not None:
        a.plot(
            check.rhos,
            check.exact_mean,
            "s",
            mfc="none",
            color="C2",
            ms=10,
            label="exact Rademacher expectation (enumerated)",
        )
    a.set(
        xlabel=r"$\rho = \langle u, v\rangle$",
        ylabel=r"$\hat\mu$ = mean of sign($g_i u$) sign($g_i v$)",
        title=f"{check.kind} G, {check.layout} vectors, d={check.in_features}",
    )
    a.legend(fontsize=7, loc="upper left")
    dims = np.array(check.dims)
    for i, rho in enumerate(check.rhos):
        c = _COLORS[i % len(_COLORS)]
        b.loglog(dims, check.std[i], "o", color=c, label=f"rho={rho:g}")
        b.loglog(dims, check.theory_std[i], "-", color=c, alpha=0.6)
    b.plot([], [], "k-", alpha=0.6, label=r"theory $\sqrt{(1-\mu^2)/N}$")
    b.set(xlabel="N (rows of G)", ylabel=r"std of $\hat\mu$ across draws of G", title="spread vs exact variance")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def plot_rademacher_bias(dense: GrothendieckCheck, sparse: GrothendieckCheck, path: Path) -> Path:
    """Bias of the Rademacher estimate vs rho: dense (delocalised) vectors against sparse ones."""
    fig, (a,) = new_figure(ncols=1, width=6.0)
    a.axhline(0, color="k", lw=1, label="Gaussian G: unbiased (Grothendieck)")
    se = np.array(dense.bias_se)
    a.errorbar(
        dense.rhos,
        dense.bias,
        yerr=2 * se,
        fmt="o",
        color="C0",
        label=f"Rademacher, dense u,v in R^{dense.in_features} (±2 se)",
    )
    a.plot(sparse.rhos, sparse.bias, "s", color="C3", label="Rademacher, sparse u=e1, v=rho e1+... (measured)")
    exact_bias = np.array(sparse.exact_mean) - np.array(sparse.theory_mean)
    a.plot(sparse.rhos, exact_bias, "x", color="k", ms=10, label="sparse: exact bias (enumerated)")
    a.set(
        xlabel=r"$\rho$",
        ylabel=r"$E\hat\mu - (2/\pi)\arcsin\rho$",
        title="Rademacher G: bias depends on delocalisation",
    )
    a.legend(fontsize=7)
    return save_figure(fig, path)


# ============================================================================================ 2. concentration
def _floor(values: NDArray[np.float64], n_draws: int) -> NDArray[np.float64]:
    # A zero frequency cannot sit on a log axis: draw it at half the detection floor 1/n_draws.
    return np.where(values > 0, values, 0.5 / n_draws)


def plot_unit_concentration(check: UnitConcentrationCheck, path: Path) -> Path:
    """Left: failure frequency vs N per t with Hoeffding (and the exact Binomial tail). Right: std of z_hat."""
    fig, (a, b) = new_figure()
    dims = np.array(check.dims)
    fail = np.array(check.failure)
    for j, t in enumerate(check.ts):
        c = _COLORS[j % len(_COLORS)]
        zero = fail[:, j] == 0
        a.semilogy(dims[~zero], fail[~zero, j], "o", color=c, label=f"measured, t={t:g}")
        a.semilogy(dims[zero], _floor(fail[zero, j], check.n_draws), "v", color=c, mfc="none")
        a.semilogy(dims, np.array(check.hoeffding)[:, j], "--", color=c)
        if check.exact is not None:
            a.semilogy(dims, np.maximum(np.array(check.exact)[:, j], 1e-12), "-", color=c, alpha=0.5)
    a.plot([], [], "k--", label=r"Hoeffding $2e^{-2Nt^2/\pi^2}$")
    if check.exact is not None:
        a.plot([], [], "k-", alpha=0.5, label="exact (Binomial)")
    a.plot([], [], "kv", mfc="none", label=f"none in {check.n_draws} draws")
    a.set_xscale("log")
    a.set_ylim(0.2 / check.n_draws, 1.5)
    a.set(
        xlabel="N",
        ylabel=r"$P(|\hat z - \arcsin\rho| \geq t)$",
        title=f"one unit, {check.kind} G, rho={check.rho:g}, {check.n_draws} draws",
    )
    a.legend(fontsize=7)
    b.loglog(dims, check.zhat_std, "o", label="measured std of z_hat")
    b.loglog(dims, check.theory_std, "k-", label=r"exact $(\pi/2)\sqrt{(1-\mu^2)/N}$")
    b.set(xlabel="N", ylabel="std", title="spread of the unit estimate")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def plot_layer_concentration(check: LayerConcentrationCheck, path: Path) -> Path:
    """Left: any-unit failure vs the union bound, worst unit vs Hoeffding. Right: error size vs N."""
    fig, (a, b) = new_figure()
    dims = np.array(check.dims)
    for values, bound, c, lab, blab in (
        (
            np.array(check.failure_any),
            check.union,
            "C3",
            "measured: any (unit, patch) fails",
            rf"union bound $2mP e^{{-2Nt^2/\pi^2}}$, mP={check.units * check.patches}",
        ),
        (
            np.array(check.failure_unit_mean),
            check.hoeffding,
            "C0",
            "measured: per (unit, patch), mean over cells",
            "per-unit Hoeffding bound",
        ),
    ):
        zero = values == 0
        a.semilogy(dims[~zero], values[~zero], "o-", color=c, label=lab)
        a.semilogy(dims[zero], _floor(values[zero], check.n_draws), "v", color=c, mfc="none")
        a.semilogy(dims, np.maximum(bound, 1e-12), "--", color=c, label=blab)
    a.semilogy(
        dims,
        np.where(np.array(check.failure_unit_max) > 0, check.failure_unit_max, np.nan),
        ".",
        color="C0",
        alpha=0.4,
        label="worst cell (max of mP noisy frequencies)",
    )
    a.axvline(
        check.dim_required,
        color="k",
        lw=1,
        ls=":",
        label=f"N required (t={check.t:g}, delta={check.delta:g}) = {check.dim_required}",
    )
    a.axhline(check.delta, color="0.5", lw=1)
    a.set_xscale("log")
    a.set_ylim(0.2 / check.n_draws, 1.5)
    a.set(
        xlabel="N",
        ylabel="failure frequency",
        title=f"{check.name}: m={check.units} units, P={check.patches}, d={check.in_features}, {check.kind} G shared",
    )
    a.legend(fontsize=7)
    b.loglog(dims, check.error_rms, "o", color="C0", label="measured rms error")
    b.loglog(dims, check.theory_rms, "-", color="C0", alpha=0.6, label=r"exact rms $(\pi/2)\sqrt{(1-\mu^2)/N}$")
    b.loglog(dims, check.max_error_mean, "s", color="C3", label="measured mean of max error")
    b.axhline(check.t, color="C3", ls="--", label=f"t = {check.t:g}")
    b.set(xlabel="N", ylabel=r"$|\hat z - z|$ (radians)", title=f"{check.n_draws} draws of G")
    b.legend(fontsize=7)
    return save_figure(fig, path)


# ============================================================================================ 3. Anderson & Berg
def plot_angles(checks: Sequence[AngleCheck], path: Path) -> Path:
    """Left: mean angle(w, sign w) vs d with limit and delta-method mean. Right: sd vs d with the prediction."""
    fig, (a, b) = new_figure()
    for i, ch in enumerate(checks):
        c = _COLORS[i % len(_COLORS)]
        sizes = np.array(ch.in_features)
        a.semilogx(sizes, np.degrees(ch.mean), "o", color=c, label=f"{ch.distribution}: measured")
        a.semilogx(sizes, np.degrees(ch.pred_mean), ":", color=c)
        a.axhline(
            math.degrees(ch.limit),
            color=c,
            ls="--",
            lw=1,
            label=f"{ch.distribution}: limit {math.degrees(ch.limit):.1f} deg",
        )
        b.loglog(
            sizes,
            np.degrees(ch.sd),
            "o",
            color=c,
            label=f"{ch.distribution}: measured (sd*sqrt(d) -> {ch.sd_constant[-1]:.3f})",
        )
        b.loglog(
            sizes,
            np.degrees(ch.pred_sd),
            "-",
            color=c,
            alpha=0.6,
            label=f"delta method {ch.pred_sd_constant:.4f}/sqrt(d) rad",
        )
    a.plot([], [], "k:", label="2nd-order delta-method mean")
    a.set(xlabel="d", ylabel="angle(w, sign w) [deg]", title=r"$\cos = E|w| / \sqrt{E w^2}$ (Anderson & Berg)")
    a.legend(fontsize=6)
    b.set(xlabel="d", ylabel="sd of angle [deg]", title=f"concentration, {checks[0].n_draws} vectors per d")
    b.legend(fontsize=6)
    return save_figure(fig, path)


def plot_rotation(check: RotationCheck, path: Path) -> Path:
    """Mean angle(x, binarised x) vs the vector length, with and without a random rotation, beside the formulas."""
    fig, (a,) = new_figure(ncols=1, width=6.0)
    sizes = np.array(check.in_features)
    a.semilogx(sizes, np.degrees(check.plain_mean), "o", color="C3", label="measured: sign(x)")
    a.semilogx(
        sizes,
        np.degrees(check.plain_pred),
        "-",
        color="C3",
        alpha=0.6,
        label=r"large-d formula $\arccos(\sqrt{2/\pi}\,\bar s/\mathrm{rms}(s))$",
    )
    a.semilogx(sizes, np.degrees(check.rotated_mean), "o", color="C0", label="measured: R' sign(R x)")
    a.semilogx(
        sizes, np.degrees(check.rotated_pred), "-", color="C0", alpha=0.6, label="isotropic (Gaussian) angle at d"
    )
    a.set(
        xlabel="d",
        ylabel="mean angle(x, binarised x) [deg]",
        title=f"x_i ~ N(0, exp(2*{check.decay:g}(i - d/2))), {check.n_samples} samples",
    )
    a.legend(fontsize=7)
    return save_figure(fig, path)
