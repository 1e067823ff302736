"""The synthetic suite: every :mod:`hdc.theory` check at fixed seeds, written as one report with plots.

python -m hdc.theory --out results/verify/synthetic        # under a minute on CPU
python -m hdc.theory --out /tmp/verify --quick              # a few seconds, smaller Monte Carlo
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc.theory.angles import (
    check_binarization_angle,
    check_rotation,
    dot_product_correlation,
    sample_weights,
)
from hdc.theory.concentration import check_layer_concentration, check_unit_concentration
from hdc.theory.formulas import DISTRIBUTIONS, KINDS
from hdc.theory.grothendieck import GrothendieckCheck, check_grothendieck
from hdc.theory.plots import (
    plot_angles,
    plot_grothendieck,
    plot_layer_concentration,
    plot_rademacher_bias,
    plot_rotation,
    plot_unit_concentration,
)
from hdc.theory.report import (
    Report,
    angle_verdict,
    dot_product_verdict,
    grothendieck_verdict,
    layer_verdict,
    required_n_table,
    rotation_verdict,
    timed,
    unit_verdict,
)

__all__ = ["run_synthetic", "synthetic_layer", "synthetic_sizes"]


def synthetic_sizes(quick: bool) -> dict[str, Any]:
    """Monte Carlo sizes; ``quick`` keeps the whole suite to a few seconds (for tests and smoke runs)."""
    if quick:
        return {
            "groth_dims": (64, 256, 1024),
            "groth_in_features": 64,
            "groth_draws": 8,
            "unit_dims": (16, 64, 256, 1024),
            "unit_draws": 400,
            "unit_draws_rad": 200,
            "layer_units": 16,
            "layer_patches": 32,
            "layer_draws": 20,
            "angle_in_features": (3, 30, 300),
            "angle_draws": 500,
            "rot_in_features": (10, 100),
            "rot_samples": 100,
            "rot_rotations": 10,
        }
    return {
        "groth_dims": (64, 256, 1024, 4096, 16384),
        "groth_in_features": 256,
        "groth_draws": 32,
        "unit_dims": (16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
        "unit_draws": 4000,
        "unit_draws_rad": 1000,
        "layer_units": 64,
        "layer_patches": 128,
        "layer_draws": 200,
        "angle_in_features": (3, 10, 27, 100, 300, 1000, 3000),
        "angle_draws": 4000,
        "rot_in_features": (10, 30, 100, 300, 500),
        "rot_samples": 500,
        "rot_rotations": 20,
    }


def synthetic_layer(
    units: int, patches: int, in_features: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Random weights (units, in_features) and patches (patches, in_features), float64, whose correlations span
    roughly [-0.9, 0.9]."""
    rng = np.random.default_rng([seed, 5])
    w = rng.standard_normal((units, in_features))
    # Each patch leans towards one unit with a random signed strength, so z covers most of (-pi/2, pi/2).
    lean = rng.uniform(-3.0, 3.0, (patches, 1))
    x = rng.standard_normal((patches, in_features)) + lean * w[rng.integers(0, units, patches)]
    return w, x


def _grothendieck_sections(rep: Report, sz: dict[str, Any], seed: int, progress: bool) -> None:
    checks: dict[str, GrothendieckCheck] = {}
    for kind in KINDS:
        ch, secs = timed(
            partial(
                check_grothendieck,
                dims=sz["groth_dims"],
                kind=kind,
                in_features=sz["groth_in_features"],
                n_draws=sz["groth_draws"],
                seed=seed,
                progress=progress,
            )
        )
        checks[kind] = ch
        fig = plot_grothendieck(ch, rep.figure_path(f"grothendieck_{kind}"))
        rows = "\n".join(
            f"| {r:g} | {ch.theory_mean[i]:.4f} | {ch.mean[i][-1]:.4f} | {ch.bias[i]:+.4f} ± {ch.bias_se[i]:.4f} | "
            f"{ch.std[i][0]:.4f} / {ch.theory_std[i][0]:.4f} | {ch.std[i][-1]:.5f} / {ch.theory_std[i][-1]:.5f} |"
            for i, r in enumerate(ch.rhos)
        )
        rep.add(
            f"grothendieck_{kind}",
            f"1. Grothendieck's identity, {kind} G",
            f"mu_hat = (1/N) sum_i sign(g_i.u) sign(g_i.v) from `hdc.projection.RandomProjection` "
            f"(d={ch.in_features}, dense unit vectors, {ch.n_draws} independent G, nested N). "
            f"Packed path (encode + hamming_distance) agrees with the float sums: {ch.packed_agrees}.\n\n"
            f"| rho | (2/pi) arcsin rho | measured mean (N={ch.dims[-1]}) | bias ± se | std/theory N={ch.dims[0]} "
            f"| std/theory N={ch.dims[-1]} |\n|---|---|---|---|---|---|\n{rows}",
            [fig],
            ch,
            grothendieck_verdict(ch),
            secs,
        )
    sparse, secs = timed(
        lambda: check_grothendieck(
            dims=sz["groth_dims"],
            kind="rademacher",
            in_features=sz["groth_in_features"],
            n_draws=sz["groth_draws"],
            seed=seed,
            layout="sparse",
            check_packed=False,
            progress=progress,
        )
    )
    exact = np.asarray(sparse.exact_mean, dtype=np.float64)  # rademacher + sparse: enumerated exactly
    fig = plot_rademacher_bias(checks["rademacher"], sparse, rep.figure_path("rademacher_bias"))
    rows = "\n".join(
        f"| {r:g} | {sparse.theory_mean[i]:.4f} | {exact[i]:.4f} | {sparse.mean[i][-1]:.4f} "
        f"| {checks['rademacher'].bias[i]:+.4f} |"
        for i, r in enumerate(sparse.rhos)
    )
    rep.add(
        "rademacher_bias",
        "1b. Rademacher G: the bias is measured, not assumed",
        "Grothendieck's identity needs Gaussian rows. With Rademacher rows it holds approximately for dense "
        "(delocalised) vectors, and can fail badly for sparse ones: for u = e1, v = rho e1 + sqrt(1-rho^2) e2 "
        "the products take only the values sign(rho +- sqrt(1-rho^2)), and the exact expectation (enumerating "
        "all sign patterns) is drawn beside the measurement.\n\n"
        "| rho | (2/pi) arcsin rho | sparse: exact | sparse: measured | dense: bias |\n|---|---|---|---|---|\n" + rows,
        [fig],
        sparse,
        grothendieck_verdict(sparse)[:1],
        secs,
    )


def _concentration_sections(rep: Report, sz: dict[str, Any], seed: int, progress: bool) -> None:
    for kind in KINDS:
        unit, secs = timed(
            partial(
                check_unit_concentration,
                dims=sz["unit_dims"],
                kind=kind,
                n_draws=sz["unit_draws"] if kind == "gaussian" else sz["unit_draws_rad"],
                seed=seed,
                progress=progress,
            )
        )
        fig = plot_unit_concentration(unit, rep.figure_path(f"concentration_unit_{kind}"))
        rep.add(
            f"concentration_unit_{kind}",
            f"2. Per-unit concentration, {kind} G",
            f"Failure frequency of one unit (rho={unit.rho:g}, z = arcsin rho = {unit.z:.4f}) over "
            f"{unit.n_draws} draws of G, against Hoeffding's 2 exp(-2 N t^2 / pi^2)"
            + (
                " and the exact Binomial tail (Gaussian G: the number of agreeing signs is Binomial(N, 1/2 + z/pi))."
                if kind == "gaussian"
                else "."
            )
            + " Hoeffding ignores the variance (1 - mu^2), so it is loose by orders of magnitude in the tail.",
            [fig],
            unit,
            unit_verdict(unit),
            secs,
        )
    w, x = synthetic_layer(sz["layer_units"], sz["layer_patches"], 64, seed)
    layer, secs = timed(
        lambda: check_layer_concentration(
            w, x, t=0.15, delta=0.05, n_draws=sz["layer_draws"], seed=seed, name="synthetic layer", progress=progress
        )
    )
    fig = plot_layer_concentration(layer, rep.figure_path("concentration_layer"))
    rep.add(
        "concentration_layer",
        "2b. Layer-level union bound and the N-required calculator",
        f"One G (N x {layer.in_features}) shared by m={layer.units} units and P={layer.patches} input patches; "
        f"z ranges over [{layer.z_range[0]:.2f}, {layer.z_range[1]:.2f}]. The union bound uses only the "
        "per-unit marginals, so sharing G across units does not weaken it. "
        f"`required_n(t={layer.t:g}, delta={layer.delta:g}, units={layer.units}, patches={layer.patches})` "
        f"= {layer.dim_required}.\n\nN required, N >= pi^2/(2 t^2) log(2 m P / delta):\n\n"
        + required_n_table((0.05, 0.1, 0.2), (0.01, 0.05), (1, 512, 512 * 196, 10**7)),
        [fig],
        layer,
        layer_verdict(layer),
        secs,
    )


def _angle_sections(rep: Report, sz: dict[str, Any], seed: int) -> None:
    angles, secs = timed(
        lambda: [
            check_binarization_angle(d, in_features=sz["angle_in_features"], n_draws=sz["angle_draws"], seed=seed)
            for d in DISTRIBUTIONS
        ]
    )
    fig = plot_angles(angles, rep.figure_path("binarization_angle"))
    rows = "\n".join(
        f"| {a.distribution} | {math.degrees(a.limit):.2f} | {math.degrees(a.mean[-1]):.2f} | "
        f"{a.pred_sd_constant:.4f} | {a.sd_constant[-1]:.4f} |"
        for a in angles
    )
    rep.add(
        "binarization_angle",
        "3. Angle between w and sign(w) (Anderson & Berg)",
        "cos angle(w, sign w) = ||w||_1 / (sqrt(d) ||w||_2) -> E|w| / sqrt(E w^2). The spread comes from the "
        "delta method on (mean|w|, mean w^2) (`angle_delta_method`); for Gaussian w it gives "
        "sqrt(1 - 3/pi)/sqrt(1 - 2/pi) = 0.3522 rad / sqrt(d). The mean is biased low at small d; the dotted "
        "curves are the second-order delta-method mean.\n\n"
        f"| distribution | limit [deg] | measured at d={angles[0].in_features[-1]} [deg] | predicted "
        f"sd*sqrt(d) [rad] | measured sd*sqrt(d) |\n|---|---|---|---|---|\n" + rows,
        [fig],
        angles,
        [v for a in angles for v in angle_verdict(a)],
        secs,
    )
    rot, secs = timed(
        lambda: check_rotation(
            in_features=sz["rot_in_features"], n_samples=sz["rot_samples"], seed=seed, n_rotations=sz["rot_rotations"]
        )
    )
    fig = plot_rotation(rot, rep.figure_path("rotation"))
    rep.add(
        "rotation",
        "3b. Random rotation before binarising",
        "Binarisation is not rotation-invariant: for anisotropic x (exponentially decaying scales) sign(x) "
        "keeps only the few large coordinates. Binarising R x for a random rotation R spreads the energy over "
        "all coordinates and brings the angle back to the isotropic value.",
        [fig],
        rot,
        rotation_verdict(rot),
        secs,
    )
    rng = np.random.default_rng([seed, 6])
    dots = [
        dot_product_correlation(
            sample_weights(dist, (32, 256), rng), rng.standard_normal((500, 256)), seed=rng, name=dist
        )
        for dist in DISTRIBUTIONS
    ]
    rows = "\n".join(
        f"| {d.name} | {d.r_unit_mean:.4f} | {d.isotropic:.4f} | {d.r:.4f} | {d.r_permuted:.4f} |" for d in dots
    )
    rep.add(
        "dot_products",
        "3c. Dot-product proportionality on isotropic activations",
        "For isotropic activations a, corr_a(a.w, a.sign(w)) = cos angle(w, sign w) exactly, so the per-unit "
        "correlation should equal the cosine (the baseline a trained model's real activations are compared "
        "with).\n\n| weights | per-unit r | cos angle(w, sign w) | pooled r | pooled r, permuted a |\n"
        "|---|---|---|---|---|\n" + rows,
        [],
        dots,
        [dot_product_verdict(d) for d in dots],
    )


def run_synthetic(out_dir: str | Path, seed: int = 0, quick: bool = False, progress: bool = True) -> Report:
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
    _grothendieck_sections(rep, sz, seed, progress)  # via the project's RandomProjection
    _concentration_sections(rep, sz, seed, progress)
    _angle_sections(rep, sz, seed)
    rep.write()
    return rep
