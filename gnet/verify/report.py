"""The model-level report: every :mod:`gnet.verify.measure` check on a trained G-Net, written as ``report.md``,
``report.json`` and PNG plots (through :class:`hdc.theory.report.Report`)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gnet.verify.measure import (
    EHDLayerErrors,
    LayerAngles,
    LayerData,
    NetworkCheck,
    check_ehd,
    collect_layer_data,
    layer_angles,
    layer_concentration,
)
from gnet.verify.plots import (
    plot_dot_scatter,
    plot_ehd_layers,
    plot_layer_angles,
    plot_network,
)
from hdc._validate import check_int
from hdc.theory import required_n
from hdc.theory.plots import plot_layer_concentration
from hdc.theory.report import Report, Verdict, fmt, layer_verdict, timed

__all__ = ["QUICK", "QuickSizes", "run_model_report"]


@dataclass(frozen=True)
class QuickSizes:
    """What ``quick=True`` runs: a few code lengths, the first seeds only, a few draws of G per concentration check."""

    dims: tuple[int, ...] = (256, 1024)
    n_seeds: int = 1
    n_draws: int = 10


QUICK = QuickSizes()


def _required_table(layer_data: Sequence[LayerData], t: float, delta: float) -> str:
    lines = [
        "| layer | units m | positions P per item | fan-in | N required per item (t, delta) |",
        "|---|---|---|---|---|",
    ]
    total = 0
    for d in layer_data:
        total += d.units * d.positions
        lines.append(
            f"| {d.name} | {d.units} | {d.positions} | {d.in_features} | "
            f"{required_n(t, delta, d.units, d.positions):,} |"
        )
    lines.append(f"| whole network (union over all {total:,} estimates) | | | | {required_n(t, delta, total):,} |")
    return "\n".join(lines)


def _ehd_layer_verdicts(layers: Sequence[EHDLayerErrors], embedding: str) -> list[Verdict]:
    out = []
    for le in layers:
        ratio = np.array(le.rms).mean(axis=1) / np.array(le.theory_rms)
        frac = np.array(le.frac_fail).mean(axis=1)
        over = frac > np.array(le.hoeffding) + 1e-12
        out.append(
            Verdict(
                f"EHD {le.name}: rms error = exact std",
                f"ratio in [{ratio.min():.3f}, {ratio.max():.3f}]",
                "1" + (" (exact for Gaussian G)" if embedding == "gaussian" else " (Gaussian formula)"),
                None,
                f"{len(le.seeds)} draws of G per N: cells share G, so no tolerance is derived",
            )
        )
        out.append(
            Verdict(
                f"EHD {le.name}: failure fraction <= Hoeffding",
                f"{int(over.sum())} of {len(frac)} N above",
                f"2 exp(-2 N t^2/pi^2), t={le.t:g}",
                bool(not over.any()),
            )
        )
    return out


def _layers_section(rep: Report, data: Sequence[LayerData], t: float, delta: float, seconds: float) -> None:
    rep.add(
        "layers",
        "Layers and the N-required calculator",
        (
            f"N >= pi^2/(2 t^2) log(2 m P / delta) makes every estimate of one item within t = {t:g} with probability "
            f"1 - delta = {1 - delta:g} (union bound; it uses marginals only, so a G shared by the units is fine).\n\n"
            + _required_table(data, t, delta)
        ),
        data=[
            {
                "name": d.name,
                "units": d.units,
                "positions": d.positions,
                "in_features": d.in_features,
                "dim_required": required_n(t, delta, d.units, d.positions),
            }
            for d in data
        ],
        seconds=seconds,
    )


def _ehd_layers_section(
    rep: Report, ehd_layers: list[EHDLayerErrors], net: NetworkCheck, embedding: str, layer_items: int
) -> None:
    fig = plot_ehd_layers(ehd_layers, rep.figure_path("ehd_layers"))
    rows = "\n".join(
        f"| {le.name} | "
        + " | ".join(f"{np.mean(r):.4f} / {th:.4f}" for r, th in zip(le.rms, le.theory_rms, strict=False))
        + " |"
        for le in ehd_layers
    )
    rep.add(
        "ehd_layers",
        "EHD layers: error of each layer on its real inputs",
        (
            "`gnet.ehd.convert(model, dim=N, embedding, seed)` for each N and seed; each EHD layer is fed the float "
            f"layer's input for the first {layer_items} items, so the error is that layer's alone. "
            "Table: measured rms / exact rms.\n\n"
            "| layer | "
            + " | ".join(f"N={dim}" for dim in net.dims)
            + " |\n|---|"
            + "---|" * len(net.dims)
            + "\n"
            + rows
        ),
        [fig],
        ehd_layers,
        _ehd_layer_verdicts(ehd_layers, embedding),
        None,
    )


def _network_section(rep: Report, net: NetworkCheck, seconds: float) -> None:
    fig = plot_network(net, rep.figure_path("network"))
    acc = np.array(net.accuracy)
    rows = "\n".join(
        f"| {dim} | {acc[i].mean():.4f} | {np.mean(net.agreement[i]):.4f} | {np.mean(net.logit_rms[i]):.4f} | "
        f"{net.classifier_rms[i]:.4f} | {np.mean(net.seconds[i]):.1f} |"
        for i, dim in enumerate(net.dims)
    )
    ratio = np.array(net.logit_rms).mean(axis=1) * np.sqrt(net.dims)
    rep.add(
        "network",
        "Network level: logits and accuracy as N grows",
        (
            f"Float accuracy on these {net.n_items} items: {net.float_accuracy:.4f}. The logit deviation includes the "
            "errors of every earlier layer, so it sits above the classifier-alone floor, which falls exactly like "
            "1/sqrt(N); the dotted line fits c/sqrt(N) to the measurements for comparison (at small N the propagated "
            "errors are not yet in that regime).\n\n"
            "| N | EHD accuracy | agreement with float | logit rms | classifier-alone rms "
            "| seconds per conversion+run |\n"
            "|---|---|---|---|---|---|\n" + rows
        ),
        [fig],
        net,
        [
            Verdict(
                "network logit deviation ~ c / sqrt(N)",
                f"rms * sqrt(N) in [{ratio.min():.2f}, {ratio.max():.2f}]",
                "constant c",
                None,
                f"classifier-alone c = {net.classifier_rms[0] * math.sqrt(net.dims[0]):.2f}",
            ),
            Verdict(
                "EHD accuracy approaches float accuracy",
                f"{acc[-1].mean():.4f} at N={net.dims[-1]}",
                f"{net.float_accuracy:.4f} (float)",
                None,
                f"agreement with float predictions {np.mean(net.agreement[-1]):.4f}",
            ),
        ],
        seconds,
    )


def _angles_section(
    rep: Report, data: Sequence[LayerData], angles: list[LayerAngles], seed: int, seconds: float
) -> None:
    fig_a = plot_layer_angles(angles, rep.figure_path("binarization_angles"))
    fig_s = plot_dot_scatter(data, rep.figure_path("dot_products"), seed=seed)
    rows = "\n".join(
        f"| {g.name} | {g.in_features} | {g.mean_deg:.2f} ± {g.sd_deg:.2f} | {g.pred_mean_deg:.2f} ± "
        f"{g.pred_sd_deg:.2f} | {g.excess_kurtosis:+.2f} | {g.dot.r:.3f} | {g.dot.r_permuted:.3f} | "
        f"{g.dot.isotropic:.3f} | {fmt(g.dot.r_rotated)} | {fmt(g.dot.angle_rotated_deg, 4)} |"
        for g in angles
    )
    rep.add(
        "binarization",
        "Anderson & Berg: the angle to sign(w) and dot-product proportionality",
        (
            "Per layer: angle(w~, sign w~) over units (mean ± sd) against the delta-method prediction from the layer's "
            "own weight moments (each unit scaled to unit rms); the correlation of a.w~ with a.sign(w~) over real "
            "(shifted) input patches a, with permuted activations as a control and cos angle as the isotropic "
            "prediction; and the rotated binarisation R' sign(R w~) for one Haar R.\n\n"
            "| layer | d | angle [deg] | predicted [deg] | excess kurtosis | r | r permuted | cos angle | r rotated "
            "| angle rotated [deg] |\n|---|---|---|---|---|---|---|---|---|---|\n" + rows
        ),
        [fig_a, fig_s],
        angles,
        [
            Verdict(
                f"angle(w, sign w): {g.name}",
                f"{g.mean_deg:.2f} ± {g.sd_deg:.2f} deg",
                f"{g.pred_mean_deg:.2f} ± {g.pred_sd_deg:.2f} deg from the layer's moments",
                None,
                f"r = {g.dot.r:.3f} vs permuted {g.dot.r_permuted:.3f}",
            )
            for g in angles
        ],
        seconds,
    )


def _concentration_section(
    rep: Report,
    d: LayerData,
    embedding: str,
    t: float,
    delta: float,
    n_draws: int,
    max_units: int,
    max_patches: int,
    seed: int,
    progress: bool,
) -> None:
    """One layer's concentration check on its real inputs, many draws of G, added to ``rep``."""
    chk, secs = timed(
        partial(
            layer_concentration,
            d,
            t=t,
            delta=delta,
            kind=embedding,
            n_draws=n_draws,
            max_units=max_units,
            max_patches=max_patches,
            seed=seed,
            progress=progress,
        )
    )
    fig = plot_layer_concentration(chk, rep.figure_path(f"concentration_{d.index}"))
    rep.add(
        f"concentration_{d.index}",
        f"Concentration on real inputs: {d.name}",
        (
            f"{chk.units} of {d.units} units x {chk.patches} real input patches (sampled), {chk.n_draws} draws of "
            f"a shared {embedding} G per N; z spans [{chk.z_range[0]:.2f}, {chk.z_range[1]:.2f}]."
        ),
        [fig],
        chk,
        layer_verdict(chk),
        secs,
    )


def run_model_report(
    model: nn.Module,
    config: dict[str, Any],
    x: torch.Tensor,
    y: torch.Tensor,
    out_dir: str | Path,
    *,
    title: str = "Theory verification: trained model",
    dims: Sequence[int] = (256, 1024, 4096),
    seeds: Sequence[int] = (0, 1),
    embedding: str = "gaussian",
    t: float = 0.15,
    delta: float = 0.05,
    n_draws: int = 50,
    max_units: int = 64,
    max_patches: int = 128,
    layer_items: int = 16,
    n_items: int | None = None,
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
) -> Report:
    """Run every model-level check on ``model`` with real inputs ``x`` (B, *input_shape) and labels ``y`` (B,),
    and write the report into ``out_dir``.

    ``dims`` are the code lengths of the EHD sweep, ``seeds`` the conversion seeds per code length; ``n_items``
    keeps the first items of ``x`` only (all by default). ``quick`` replaces ``dims``, ``seeds`` and ``n_draws``
    by :data:`QUICK` (a smoke run in seconds).
    """
    if n_items is not None:
        n_items = check_int(n_items, "n_items", minimum=1)
        x, y = x[:n_items], y[:n_items]
    if quick:
        dims, seeds, n_draws = QUICK.dims, list(seeds)[: QUICK.n_seeds], QUICK.n_draws
    rep = Report(
        out_dir,
        title,
        (
            f"Model: {config.get('dataset', '?')} G-Net, {len(x)} test items, G {embedding}, seed {seed}. "
            "Every layer is measured on its real inputs (the float model's activations, shifted by the bias trick and "
            "cut into receptive fields) with its folded weights."
        ),
    )
    rep.meta = {
        "dataset": config.get("dataset"),
        "n_items": len(x),
        "dims": list(dims),
        "seeds": list(seeds),
        "embedding": embedding,
        "t": t,
        "delta": delta,
        "n_draws": n_draws,
        "max_units": max_units,
        "max_patches": max_patches,
        "layer_items": layer_items,
        "seed": seed,
        "quick": quick,
    }
    t0 = time.perf_counter()
    data = collect_layer_data(model, x)
    _layers_section(rep, data, t, delta, time.perf_counter() - t0)
    for d in data:  # concentration on real inputs, many draws of G
        _concentration_section(rep, d, embedding, t, delta, n_draws, max_units, max_patches, seed, progress)
    (ehd_layers, net), secs = timed(
        lambda: check_ehd(
            model,
            data,
            x,
            y,
            dims=dims,
            seeds=seeds,
            embedding=embedding,
            t=t,
            layer_items=layer_items,
            progress=progress,
        )
    )
    _ehd_layers_section(rep, ehd_layers, net, embedding, layer_items)
    _network_section(rep, net, secs)
    angles, secs = timed(lambda: [layer_angles(d, seed=seed) for d in data])
    _angles_section(rep, data, angles, seed, secs)
    rep.write()
    return rep
