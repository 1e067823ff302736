"""Concentration of the arcsin estimate: Hoeffding per unit and the union bound per layer, by Monte Carlo.

Each term of z_hat = (pi/2) mu_hat lies in an interval of length pi/N (N = ``dim``), so Hoeffding gives
``P(|z_hat - z| >= t) <= 2 exp(-2 N t^2 / pi^2)`` per unit; a union bound over m units and P patches multiplies
by m P. It uses only the marginals, so it holds whether G is shared across units or not. Inverting it:
``N >= pi^2 / (2 t^2) * log(2 m P / delta)`` (:func:`hdc.theory.required_n`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from hdc._validate import check_choice, check_int
from hdc.theory._common import (
    check_finite,
    check_rhos,
    check_sizes,
    check_ts,
    check_unit_interval,
    gaussian_or_rademacher,
    rademacher,
    sign,
    single_thread_blas,
)
from hdc.theory.formulas import (
    KINDS,
    _failure_threshold,
    exact_unit_tail,
    hoeffding_unit_bound,
    required_n,
    union_bound,
    unit_z,
    zhat_std,
)
from hdc.theory.grothendieck import correlated_pair

__all__ = [
    "LayerConcentrationCheck",
    "UnitConcentrationCheck",
    "check_layer_concentration",
    "check_unit_concentration",
]


# ============================================================================================ one unit
@dataclass
class UnitConcentrationCheck:
    """Per-unit failure frequency P(|z_hat - arcsin rho| >= t) over many draws of G, against the bounds.

    Arrays are indexed [dim, t]. ``exact`` is the Binomial tail (Gaussian G only; None for Rademacher).
    ``failure_se`` is the Monte Carlo standard error sqrt(p (1 - p) / n_draws) at p = max(measured, exact).
    ``delocalisation`` = max(sum u_i^4, sum v_i^4) of the dense pair (it sizes the Rademacher bias).
    """

    kind: str
    rho: float
    in_features: int
    seed: int
    n_draws: int
    dims: list[int]
    ts: list[float]
    failure: list[list[float]]
    failure_se: list[list[float]]
    hoeffding: list[list[float]]
    exact: list[list[float]] | None
    zhat_mean: list[float]
    zhat_std: list[float]
    theory_std: list[float]
    z: float
    delocalisation: float = 0.0


def _sign_agreement_counts(
    rho: float,
    dims: NDArray[np.int64],
    n_draws: int,
    kind: str,
    in_features: int,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[NDArray[np.int64], float]:
    """Number of agreeing signs K (n_draws, len(dims)) between sign(Gu) and sign(Gv), G drawn anew per draw.

    Gaussian G: only g.u and g.v matter, and for orthonormal (e1, e2) spanning {u, v} the pair (g.e1, g.e2) is
    two i.i.d. N(0, 1) by rotation invariance, so g.u = a, g.v = rho a + sqrt(1 - rho^2) b is exact in
    distribution and independent of in_features. Rademacher G has no such reduction: rows are drawn explicitly
    and applied to a dense pair in R^in_features.
    """
    dim_max = int(dims[-1])
    counts = np.empty((n_draws, len(dims)), dtype=np.int64)
    u, v = correlated_pair(rho, in_features, seed=rng, layout="dense")
    uv = np.stack([u, v], axis=1).astype(np.float32)
    chunk = max(1, (1 << 22) // (dim_max * (2 if kind == "gaussian" else in_features)))
    s = math.sqrt(max(0.0, 1.0 - rho * rho))
    for start in tqdm(range(0, n_draws, chunk), desc=f"unit concentration {kind}", disable=not progress):
        b = min(chunk, n_draws - start)
        gu: NDArray[np.floating[Any]]
        gv: NDArray[np.floating[Any]]
        if kind == "gaussian":
            ab = rng.standard_normal((b, dim_max, 2))
            gu, gv = ab[..., 0], rho * ab[..., 0] + s * ab[..., 1]
        else:
            proj = (rademacher(rng, b * dim_max, in_features) @ uv).reshape(b, dim_max, 2)
            gu, gv = proj[..., 0], proj[..., 1]
        agree = np.cumsum((gu >= 0) == (gv >= 0), axis=1)
        counts[start : start + b] = agree[:, dims - 1]
    return counts, float(max((u**4).sum(), (v**4).sum()))


def check_unit_concentration(
    rho: float = 0.5,
    dims: Sequence[int] = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
    ts: Sequence[float] = (0.1, 0.2, 0.4),
    kind: str = "gaussian",
    n_draws: int = 4000,
    in_features: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> UnitConcentrationCheck:
    """Empirical failure frequency of one unit over ``n_draws`` draws of G, with Hoeffding and the exact tail.

    ``in_features`` is the length of the Rademacher pair (the Gaussian case does not depend on it).
    """
    rho = float(check_rhos(rho)[0])
    dims_a = check_sizes(dims, "dims")
    ts_a = check_ts(ts, "ts")
    check_choice(kind, KINDS, "kind")
    n_draws = check_int(n_draws, "n_draws", minimum=2)
    in_features = check_int(in_features, "in_features", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng([seed, 1])
    with single_thread_blas():
        counts, deloc = _sign_agreement_counts(rho, dims_a, n_draws, kind, in_features, rng, progress)

    z = math.asin(rho)
    p = 0.5 + z / math.pi
    failure = np.empty((len(dims_a), len(ts_a)))
    exact = np.empty_like(failure)
    for i, dim in enumerate(dims_a):
        for j, t in enumerate(ts_a):
            failure[i, j] = np.mean(np.abs(counts[:, i] - dim * p) >= _failure_threshold(int(dim), float(t)))
            exact[i, j] = exact_unit_tail(int(dim), rho, float(t))
    zhat = (math.pi / (2.0 * dims_a)) * (2.0 * counts - dims_a)
    p_se = np.maximum(failure, exact)
    return UnitConcentrationCheck(
        kind=kind,
        rho=rho,
        in_features=in_features,
        seed=seed,
        n_draws=n_draws,
        dims=dims_a.tolist(),
        ts=ts_a.tolist(),
        failure=failure.tolist(),
        failure_se=np.sqrt(p_se * (1 - p_se) / n_draws).tolist(),
        hoeffding=hoeffding_unit_bound(dims_a[:, None], ts_a[None, :]).tolist(),
        exact=exact.tolist() if kind == "gaussian" else None,
        zhat_mean=zhat.mean(axis=0).tolist(),
        zhat_std=zhat.std(axis=0, ddof=1).tolist(),
        theory_std=zhat_std(rho, dims_a).tolist(),
        z=z,
        delocalisation=deloc,
    )


# ============================================================================================ one layer
@dataclass
class LayerConcentrationCheck:
    """Layer-level errors of z_hat over ``n_draws`` draws of a G shared by all units and patches.

    Indexed [dim]: ``failure_any`` = fraction of draws where max over (unit, patch) of |z_hat - z| >= t, against
    ``union`` = min(1, 2 m P exp(-2 N t^2 / pi^2)); ``failure_unit_mean`` = per-(unit, patch) failure
    frequency averaged over cells (the fraction of estimates off by >= t), against the per-unit ``hoeffding``
    bound (each cell's probability is below it, so their mean is too); ``failure_unit_max`` = the largest
    per-cell frequency (a maximum over m P noisy estimates: biased upwards, shown but not tested against the
    bound); ``max_error_mean`` = mean over draws of the max error; ``error_rms`` = root-mean-square error over
    all units, patches and draws, against ``theory_rms`` = rms over units of the exact std
    (pi/2) sqrt((1 - mu^2)/N). ``dim_required`` = :func:`hdc.theory.required_n` (t, delta, m, P).
    """

    name: str
    kind: str
    t: float
    delta: float
    units: int
    patches: int
    in_features: int
    seed: int
    n_draws: int
    dims: list[int]
    dim_required: int
    failure_any: list[float]
    union: list[float]
    failure_unit_mean: list[float]
    failure_unit_max: list[float]
    hoeffding: list[float]
    max_error_mean: list[float]
    error_rms: list[float]
    theory_rms: list[float]
    z_range: list[float] = field(default_factory=list)


def _layer_errors(
    w32: NDArray[np.float32],
    x32: NDArray[np.float32],
    z: NDArray[np.float64],
    dims: NDArray[np.int64],
    t: float,
    kind: str,
    n_draws: int,
    rng: np.random.Generator,
    progress: bool,
    desc: str,
) -> dict[str, NDArray[np.float64]]:
    """Per code length: draws with any failure, per-cell failure counts, summed max error and mean squared error."""
    m, p = z.shape
    out = {
        "any": np.zeros(len(dims)),
        "cell": np.zeros((len(dims), m, p)),
        "max": np.zeros(len(dims)),
        "sq": np.zeros(len(dims)),
    }
    bounds = np.concatenate([[0], dims])
    for _ in tqdm(range(n_draws), desc=desc, disable=not progress):
        acc = np.zeros((m, p), dtype=np.float32)  # +-1 sums; exact in float32 below 2^24
        for i in range(len(dims)):
            rows = int(bounds[i + 1] - bounds[i])
            for start in range(0, rows, 4096):
                g = gaussian_or_rademacher(rng, kind, min(4096, rows - start), w32.shape[1])
                acc += sign(g @ w32.T).T @ sign(g @ x32.T)
            dim = int(dims[i])
            err = np.abs((math.pi / (2.0 * dim)) * acc.astype(np.float64) - z)
            cell_fail = err >= t
            out["any"][i] += cell_fail.any()
            out["cell"][i] += cell_fail
            out["max"][i] += err.max()
            out["sq"][i] += np.mean(err**2)
    return out


def check_layer_concentration(
    weights: Any,
    inputs: Any,
    dims: Sequence[int] | None = None,
    t: float = 0.15,
    delta: float = 0.05,
    kind: str = "gaussian",
    n_draws: int = 100,
    seed: int = 0,
    name: str = "layer",
    progress: bool = False,
) -> LayerConcentrationCheck:
    """Union-bound check for one layer: every unit ``weights`` (m, in_features) against every input patch
    ``inputs`` (P, in_features).

    G (dim, in_features) is drawn from a Generator per draw and shared by all units and patches, as in an EHD
    linear layer. ``dims`` defaults to a geometric sweep that includes :func:`hdc.theory.required_n`
    (t, delta, m, P). Work per draw is about dim in_features (m + P) + dim m P multiply-adds, so keep m P to a
    few thousand.
    """
    w = check_finite(weights, "weights", ndim=2)
    x = check_finite(inputs, "inputs", ndim=2)
    z = unit_z(w, x)
    m, p = z.shape
    t = float(check_ts(t)[0])
    delta = check_unit_interval(delta, "delta")
    check_choice(kind, KINDS, "kind")
    n_draws = check_int(n_draws, "n_draws", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    dim_req = required_n(t, delta, m, p)
    if dims is None:
        dims = sorted({int(dim_req * f) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2)} | {dim_req})
    dims_a = check_sizes(dims, "dims")
    w32 = (w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float32)
    x32 = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    rng = np.random.default_rng([seed, 2])
    with single_thread_blas():
        e = _layer_errors(w32, x32, z, dims_a, t, kind, n_draws, rng, progress, f"layer concentration {name}")
    mu = (2.0 / math.pi) * z
    cells = e["cell"].reshape(len(dims_a), -1)
    return LayerConcentrationCheck(
        name=name,
        kind=kind,
        t=t,
        delta=delta,
        units=m,
        patches=p,
        in_features=int(w.shape[1]),
        seed=seed,
        n_draws=n_draws,
        dims=dims_a.tolist(),
        dim_required=dim_req,
        failure_any=(e["any"] / n_draws).tolist(),
        union=union_bound(dims_a, t, m, p).tolist(),
        failure_unit_mean=(cells.mean(axis=1) / n_draws).tolist(),
        failure_unit_max=(cells.max(axis=1) / n_draws).tolist(),
        hoeffding=hoeffding_unit_bound(dims_a, t).tolist(),
        max_error_mean=(e["max"] / n_draws).tolist(),
        error_rms=np.sqrt(e["sq"] / n_draws).tolist(),
        theory_rms=((math.pi / 2.0) * np.sqrt(np.mean(1.0 - mu**2) / dims_a)).tolist(),
        z_range=[float(z.min()), float(z.max())],
    )
