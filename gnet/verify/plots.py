"""Figures of the model-level report (:mod:`gnet.verify`): each measured curve beside its formula or bound.

Matplotlib's object API on the Agg canvas, through :func:`hdc.theory.plots.new_figure` / ``save_figure``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gnet.bnn.geometry import GAUSSIAN_ANGLE_DEG, LayerGeometry
from gnet.verify.measure import (
    EHDLayerErrors,
    LayerAngles,
    LayerData,
    NetworkCheck,
    nonzero_rows,
    sample_rows,
)
from hdc.theory import binarization_cosine_limit
from hdc.theory.plots import new_figure, save_figure
from hdc.theory.report import fmt

__all__ = [
    "plot_bnn_angles",
    "plot_bnn_dots",
    "plot_dot_scatter",
    "plot_ehd_layers",
    "plot_layer_angles",
    "plot_network",
]


def plot_ehd_layers(layers: Sequence[EHDLayerErrors], path: Path) -> Path:
    """Left: per-layer rms error of the real EHD layers vs N with the exact std.
    Right: failure fraction vs Hoeffding."""
    fig, (a, b) = new_figure()
    for k, le in enumerate(layers):
        c = f"C{k % 10}"
        dims = np.array(le.dims)
        rms = np.array(le.rms)
        a.loglog(dims, rms.mean(axis=1), "o", color=c, label=f"{le.name}")
        a.loglog(dims, le.theory_rms, "-", color=c, alpha=0.6)
        frac = np.array(le.frac_fail).mean(axis=1)
        b.semilogy(dims[frac > 0], frac[frac > 0], "o-", color=c, label=le.name)
    a.plot([], [], "k-", alpha=0.6, label=r"exact $(\pi/2)\sqrt{\overline{1-\mu^2}/N}$")
    a.set(xlabel="N", ylabel=r"rms of $\hat z - z$ (rad)", title="EHD layers on real inputs (teacher-forced)")
    a.legend(fontsize=7)
    b.semilogy(layers[0].dims, layers[0].hoeffding, "k--", label=rf"Hoeffding $2e^{{-2Nt^2/\pi^2}}$, t={layers[0].t:g}")
    b.set_xscale("log")
    b.set(xlabel="N", ylabel=r"fraction of cells with $|\hat z - z| \geq t$", title="per-unit failure fraction")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def plot_network(net: NetworkCheck, path: Path) -> Path:
    """Left: EHD accuracy vs N beside the float accuracy. Right: logit deviation vs N with the classifier floor."""
    fig, (a, b) = new_figure()
    dims = np.array(net.dims)
    acc = np.array(net.accuracy)
    a.semilogx(
        dims, acc.mean(axis=1), "o-", color="C0", label=f"EHD ({net.embedding} G), mean of {len(net.seeds)} seeds"
    )
    if acc.shape[1] > 1:
        a.fill_between(dims, acc.min(axis=1), acc.max(axis=1), color="C0", alpha=0.2, label="range over seeds")
    a.semilogx(dims, np.array(net.agreement).mean(axis=1), "s:", color="C2", label="agreement with float predictions")
    a.axhline(net.float_accuracy, color="k", ls="--", label=f"float G-Net {net.float_accuracy:.4f}")
    a.set(xlabel="N (every layer)", ylabel="accuracy", title=f"network level, {net.n_items} test items")
    a.legend(fontsize=7)
    rms = np.array(net.logit_rms).mean(axis=1)
    b.loglog(dims, rms, "o", color="C3", label="measured rms of logit z_hat - z")
    b.loglog(
        dims, net.classifier_rms, "-", color="C3", alpha=0.6, label="classifier alone (exact), earlier layers exact"
    )
    fit = math.exp(np.mean(np.log(rms) + 0.5 * np.log(dims)))  # least squares for c in c / sqrt(N)
    b.loglog(dims, fit / np.sqrt(dims), ":", color="k", label=f"fit {fit:.2f}/sqrt(N)")
    b.set(xlabel="N (every layer)", ylabel="rms deviation (rad)", title="logit deviation from the float network")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def plot_layer_angles(angles: Sequence[LayerAngles], path: Path) -> Path:
    """Left: per-layer angle(w~, sign w~) with its moment-based prediction and the reference limits.
    Right: correlation of continuous and binarised dot products on real activations."""
    fig, (a, b) = new_figure()
    idx = np.arange(len(angles))
    a.errorbar(
        idx,
        [g.mean_deg for g in angles],
        yerr=[g.sd_deg for g in angles],
        fmt="o",
        color="C3",
        capsize=3,
        label="measured mean ± sd over units",
    )
    a.errorbar(
        idx + 0.15,
        [g.pred_mean_deg for g in angles],
        yerr=[g.pred_sd_deg for g in angles],
        fmt="s",
        mfc="none",
        color="k",
        capsize=3,
        label="delta method from the layer's own moments",
    )
    for name, c in (("gaussian", "C0"), ("uniform", "C1"), ("laplace", "C2")):
        lim = math.degrees(math.acos(binarization_cosine_limit(name)))
        a.axhline(lim, color=c, ls="--", lw=1, label=f"{name} limit {lim:.1f} deg")
    a.set_xticks(idx, [g.name.split(" ", 1)[0] for g in angles])
    a.set(ylabel="angle(w, sign w) [deg]", title="trained weights vs their binarisation")
    a.legend(fontsize=6)
    w = 0.2
    b.bar(idx - 1.5 * w, [g.dot.r for g in angles], w, label="corr(a.w, a.sign w), real a")
    b.bar(idx - 0.5 * w, [g.dot.r_permuted for g in angles], w, label="same, permuted a (control)")
    b.bar(idx + 0.5 * w, [g.dot.isotropic for g in angles], w, label="isotropic prediction cos angle")
    if angles[0].dot.r_rotated is not None:
        b.bar(idx + 1.5 * w, [g.dot.r_rotated for g in angles], w, label="rotated binarisation R' sign(R w)")
    b.set_xticks(idx, [g.name.split(" ", 1)[0] for g in angles])
    b.set_ylim(min(0.5, min(g.dot.r_permuted for g in angles) - 0.05), 1.0)
    b.set(ylabel="Pearson r", title="dot-product proportionality")
    b.legend(fontsize=6, loc="lower right")
    return save_figure(fig, path)


def plot_dot_scatter(layer_data: Sequence[LayerData], path: Path, max_points: int = 4000, seed: int = 0) -> Path:
    """Anderson & Berg's 2-D histogram per layer: a . w~ against a . sign(w~) on real activations."""
    fig, axes = new_figure(ncols=len(layer_data), width=3.2, height=3.2)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.17, top=0.9, wspace=0.4)
    rng = np.random.default_rng([seed, 9])
    for ax, data in zip(axes, layer_data, strict=False):
        rows = nonzero_rows(data.patches())
        acts = rows[sample_rows(len(rows), 500, rng)]
        cont = (acts @ data.weights.T).ravel()
        binw = (acts @ np.where(data.weights >= 0, 1.0, -1.0).T).ravel()
        pick = sample_rows(len(cont), max_points, rng)
        ax.hexbin(cont[pick], binw[pick], gridsize=30, bins="log", cmap="viridis")
        r = np.corrcoef(cont, binw)[0, 1]
        ax.set(title=f"{data.name.split(' ', 1)[0]}: r = {r:.3f}", xlabel="a . w", ylabel="a . sign(w)")
    return save_figure(fig, path)


def plot_bnn_angles(layers: Sequence[LayerGeometry], path: Path) -> Path:
    """Left: per binary layer, angle(w, sign w) (mean +- sd over units) with the predictions drawn beside it: the
    Gaussian 37.07 deg +- 20.18 / sqrt(d), arccos(E|w| / sqrt(E w^2)) of the layer's own weights and its delta-method
    sd. Right: the dot-product correlations of Anderson & Berg with the permuted-activation control."""
    fig, (a, b) = new_figure()
    idx = np.arange(len(layers))
    names = [f"{g.index}: {g.layer.replace('Binary', '')}\nd={g.fan_in}" for g in layers]
    fig.subplots_adjust(bottom=0.17)
    a.errorbar(
        idx,
        [g.angle_mean_deg for g in layers],
        yerr=[g.angle_sd_deg for g in layers],
        fmt="o",
        color="C3",
        capsize=3,
        label="measured mean ± sd over units",
    )
    own_sd = [g.angle_delta_sd_deg or 0.0 for g in layers]
    a.errorbar(
        idx + 0.15,
        [g.angle_predicted_deg for g in layers],
        yerr=own_sd,
        fmt="s",
        mfc="none",
        color="k",
        capsize=3,
        label="arccos(E|w|/sqrt(E w²)) of the layer, delta-method sd",
    )
    a.errorbar(
        idx - 0.15,
        [g.angle_gaussian_deg for g in layers],
        yerr=[g.angle_sd_gaussian_deg for g in layers],
        fmt="^",
        mfc="none",
        color="C0",
        capsize=3,
        label="Gaussian 37.07° ± 20.18°/sqrt(d)",
    )
    a.axhline(GAUSSIAN_ANGLE_DEG, color="C0", ls="--", lw=1)
    a.set_xticks(idx, names, fontsize=8)
    a.set(xlabel="binary layer (module index)", ylabel="angle(w, sign w) [deg]", title="latent weights vs their sign")
    a.legend(fontsize=6)
    width = 0.2
    series = (
        ("corr_real", "A real: corr(A.w, A.sign w)"),
        ("corr_binary", "A binarized"),
        ("corr_activation", "corr(A_real.sign w, A_bin.sign w)"),
        ("corr_permuted", "permuted A (control)"),
    )
    for k, (key, label) in enumerate(series):
        values = [getattr(g, key) for g in layers]
        b.bar(idx + (k - 1.5) * width, [np.nan if v is None else v for v in values], width, label=label)
    low = min(v for g in layers for key, _ in series if (v := getattr(g, key)) is not None)
    b.set_ylim(min(0.5, low - 0.05), 1.0)
    b.set_xticks(idx, names, fontsize=8)
    b.set(xlabel="binary layer (module index)", ylabel="Pearson r", title="dot-product proportionality")
    b.legend(fontsize=6, loc="lower right")
    return save_figure(fig, path)


def plot_bnn_dots(
    layers: Sequence[LayerGeometry], samples: dict[int, dict[str, np.ndarray]], kind: str, path: Path
) -> Path | None:
    """Anderson & Berg's 2-D histograms per binary layer: A . w against A . sign(w) for the ``kind`` ("real" or
    "binary") activations, Pearson r over all measured pairs in the titles. None when no layer has such data."""
    chosen = [g for g in layers if kind in samples.get(g.index, {})]
    if not chosen:
        return None
    fig, axes = new_figure(ncols=len(chosen), width=3.2, height=3.2)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.17, top=0.88, wspace=0.4)
    for ax, g in zip(axes, chosen, strict=False):
        x, y = samples[g.index][kind]
        ax.hexbin(x, y, gridsize=30, bins="log", cmap="viridis")
        r = g.corr_real if kind == "real" else g.corr_binary
        ax.set(
            title=f"layer {g.index} (d={g.fan_in}): r = {fmt(r)}",
            xlabel=f"A.w (A {kind})",
            ylabel="A.sign(w)",
        )
    return save_figure(fig, path)
