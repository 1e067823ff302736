"""Anderson & Berg's high-dimensional geometry, measured on a trained BNN: ``report.md``, ``report.json`` and plots.

Per binary layer (:func:`gnet.bnn.measure_geometry`): the angle between each latent weight vector and its sign
(mean and sd over the units) beside three predictions (the Gaussian limit ``arccos(sqrt(2/pi)) = 37.07`` deg with
sd ``20.18 / sqrt(d)``; ``arccos(E|w| / sqrt(E w^2))`` of the layer's own weights; the delta-method mean and sd for
i.i.d. entries with the layer's moments), and the Pearson correlation of ``A . w`` with ``A . sign(w)`` on the
activations that really feed the layer: real (pre-sign), binarized (what the layer sees) and permuted (the
control). Trained weights are not i.i.d. draws, so these rows are reported beside their formulas, not judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gnet.bnn.geometry import GeometryReport, LayerGeometry, measure_geometry
from gnet.bnn.models import BNN
from gnet.verify.plots import plot_bnn_angles, plot_bnn_dots
from hdc._validate import check_int
from hdc.theory.report import Report, Verdict, fmt, timed

__all__ = ["run_bnn_report"]

QUICK_ITEMS, QUICK_ROWS = 100, 1024
_IID = "trained weights are not i.i.d.: reported beside the formula"


def _angle_table(layers: Sequence[LayerGeometry]) -> str:
    lines = [
        "| layer | d | units | angle mean ± sd (deg) | arccos(E\\|w\\|/sqrt(E w²)) | delta method, own moments | "
        "Gaussian 37.07 ± 20.18/sqrt(d) |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in layers:
        delta = (
            "n/a" if g.angle_delta_mean_deg is None else f"{g.angle_delta_mean_deg:.2f} ± {fmt(g.angle_delta_sd_deg)}"
        )
        lines.append(
            f"| {g.index} {g.layer} | {g.fan_in} | {g.n_units} | {g.angle_mean_deg:.2f} ± {g.angle_sd_deg:.2f} | "
            f"{g.angle_predicted_deg:.2f} | {delta} | {g.angle_gaussian_deg:.2f} ± {g.angle_sd_gaussian_deg:.2f} |"
        )
    return "\n".join(lines)


def _dot_table(layers: Sequence[LayerGeometry]) -> str:
    lines = [
        "| layer | input | rows | r, A real | r, A binarized | r(A_real.sign w, A_bin.sign w) | r, permuted A |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in layers:
        lines.append(
            f"| {g.index} {g.layer} | {'binary' if g.input_binary else 'real'} | {g.n_rows} | {fmt(g.corr_real)} | "
            f"{fmt(g.corr_binary)} | {fmt(g.corr_activation)} | {fmt(g.corr_permuted)} |"
        )
    return "\n".join(lines)


def _verdicts(layers: Sequence[LayerGeometry]) -> list[Verdict]:
    out = []
    for g in layers:
        out.append(
            Verdict(
                f"layer {g.index} (d={g.fan_in}): angle(w, sign w) = arccos(E\\|w\\|/sqrt(E w²)) of its weights",
                f"{g.angle_mean_deg:.2f} ± {g.angle_sd_deg:.2f} deg",
                f"{g.angle_predicted_deg:.2f} deg "
                f"(Gaussian {g.angle_gaussian_deg:.2f} ± {g.angle_sd_gaussian_deg:.2f})",
                None,
                _IID,
            )
        )
        seen = g.corr_binary if g.input_binary else g.corr_real
        out.append(
            Verdict(
                f"layer {g.index}: corr(A.w, A.sign w) on its {'binarized' if g.input_binary else 'real'} input",
                fmt(seen),
                f"above the permuted control {fmt(g.corr_permuted)} when activations align with the weights",
                None,
                "Anderson & Berg's dot-product proportionality",
            )
        )
    return out


def run_bnn_report(
    model: BNN,
    config: dict[str, Any],
    x: torch.Tensor,
    out_dir: str | Path,
    *,
    title: str = "Anderson & Berg geometry of a trained BNN",
    n_items: int | None = None,
    max_rows: int = 4096,
    keep_samples: int = 4000,
    seed: int = 0,
    quick: bool = False,
) -> Report:
    """Measure ``model`` on inputs ``x`` (N, *input_shape) float32 (e.g. test images) and write the report.

    Args:
        config: the checkpoint config (dataset and method go into the report).
        n_items: use the first ``n_items`` of ``x`` (all by default).
        max_rows: activation vectors per layer (a seeded subset of all patches).
        keep_samples: dot-product pairs per layer drawn in the 2-D histograms.
        quick: at most :data:`QUICK_ITEMS` items and :data:`QUICK_ROWS` rows (a smoke run).
    """
    if not isinstance(model, BNN):
        raise ValueError(f"run_bnn_report expects a BNN (gnet.bnn.build_bnn), got {type(model).__name__}")
    if n_items is not None:
        x = x[: check_int(n_items, "n_items", minimum=1)]
    if quick:
        x, max_rows = x[:QUICK_ITEMS], min(max_rows, QUICK_ROWS)
    geo: GeometryReport
    geo, seconds = timed(lambda: measure_geometry(model, x, max_rows=max_rows, seed=seed, keep_samples=keep_samples))
    rep = Report(
        out_dir,
        title,
        (
            f"Model: {config.get('dataset', '?')} BNN, method {model.method}, {len(x)} test items, up to {max_rows} "
            f"activation vectors per layer, seed {seed}. Anderson & Berg, 'The High-Dimensional Geometry of Binary "
            "Neural Networks': binarization keeps directions (angle(w, sign w) about 37 deg for Gaussian weights) and "
            "dot products up to a scale, which the BatchNorm that follows absorbs."
        ),
    )
    rep.meta = {"dataset": config.get("dataset"), "method": model.method, "n_items": len(x), "max_rows": max_rows}
    layers = geo.layers
    angles = plot_bnn_angles(layers, rep.figure_path("bnn_angles"))
    rep.add(
        "angles",
        "Angle between latent weights and their sign",
        (
            "Per unit: arccos(sum |w| / (sqrt(d) ||w||)); mean and sd over the layer's units. Beside it: "
            "arccos(E |w| / sqrt(E w²)) over all the layer's weights (the limit for i.i.d. weights of that "
            "distribution: 30 deg uniform, 37.07 Gaussian, 45 Laplace), the delta-method mean and sd for i.i.d. "
            "entries with the layer's own first four moments of |w|, and the Gaussian values.\n\n"
            + _angle_table(layers)
        ),
        figures=[angles],
        data=geo.to_dict(),
        verdicts=_verdicts(layers),
        seconds=seconds,
    )
    figures = [
        f
        for kind in ("real", "binary")
        if (f := plot_bnn_dots(layers, geo.samples, kind, rep.figure_path(f"bnn_dots_{kind}")))
    ]
    rep.add(
        "dot_products",
        "Dot-product proportionality",
        (
            "Pearson r between A.w and A.sign(w), pooled over activation vectors and units: A the layer's real "
            "activations (the pre-sign BatchNorm outputs through the same pooling, or the real input of the first "
            "layer), then its binarized activations; r(A_real.sign w, A_bin.sign w) compares the two inputs; the "
            "control permutes each activation vector's entries (for isotropic activations r = cos(w, sign w)).\n\n"
            + _dot_table(layers)
        ),
        figures=figures,
    )
    rep.write()
    return rep
