"""Closed forms behind sign embeddings: the arcsin kernel, exact variances, Hoeffding and union bounds, the
code-length calculator, and the Anderson & Berg binarisation angle.

Vocabulary: ``dim`` is the code length N (rows of G, bits of a code); ``in_features`` is the length of the
vectors being embedded or binarised (the fan-in of a unit, the paper's d). Angles are in radians.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from hdc._validate import check_choice, check_int
from hdc.theory._common import check_finite, check_rhos, check_ts, check_unit_interval

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "LAYOUTS",
    "angle_delta_method",
    "binarization_cosine_limit",
    "distribution_moments",
    "exact_unit_tail",
    "gaussian_binarization_cosine",
    "grothendieck_mean",
    "hoeffding_unit_bound",
    "required_n",
    "sign_product_variance",
    "union_bound",
    "unit_z",
    "zhat_std",
]

KINDS = ("gaussian", "rademacher")
LAYOUTS = ("dense", "sparse")
DISTRIBUTIONS = ("gaussian", "uniform", "laplace")


# ============================================================================================ arcsin kernel
def grothendieck_mean(rho: Any) -> NDArray[np.float64]:
    """mu = E[sign(g.u) sign(g.v)] = (2/pi) arcsin(rho) for Gaussian g; float64, shape of ``rho``."""
    return (2.0 / math.pi) * np.arcsin(check_rhos(rho))


def sign_product_variance(rho: Any, dim: Any) -> NDArray[np.float64]:
    """Exact Var(mu_hat) = (1 - mu^2) / N for N = ``dim`` i.i.d. Gaussian rows (each term is +-1 with mean mu)."""
    mu = grothendieck_mean(rho)
    return (1.0 - mu**2) / np.asarray(dim, dtype=np.float64)


def zhat_std(rho: Any, dim: Any) -> NDArray[np.float64]:
    """Exact std of z_hat = (pi/2) mu_hat at code length ``dim``: (pi/2) sqrt((1 - mu^2) / N)."""
    return (math.pi / 2.0) * np.sqrt(sign_product_variance(rho, dim))


def unit_z(weights: Any, inputs: Any) -> NDArray[np.float64]:
    """Exact G-Net pre-activation z = arcsin(cos(w_o, x_p)): (m, in_features), (P, in_features) -> float64 (m, P)."""
    w = check_finite(weights, "weights", ndim=2)
    x = check_finite(inputs, "inputs", ndim=2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"weights have {w.shape[1]} features but inputs have {x.shape[1]}")
    wn, xn = np.linalg.norm(w, axis=1), np.linalg.norm(x, axis=1)
    if (wn == 0).any() or (xn == 0).any():
        raise ValueError("weights and inputs must not contain all-zero rows (their angle is undefined)")
    return np.arcsin(np.clip((w / wn[:, None]) @ (x / xn[:, None]).T, -1.0, 1.0))


# ============================================================================================ concentration
def hoeffding_unit_bound(dim: Any, t: Any) -> NDArray[np.float64]:
    """Per-unit Hoeffding bound min(1, 2 exp(-2 N t^2 / pi^2)) on P(|z_hat - arcsin rho| >= t), N = ``dim``."""
    dim = np.asarray(dim, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return np.minimum(1.0, 2.0 * np.exp(-2.0 * dim * t**2 / math.pi**2))


def union_bound(dim: Any, t: Any, units: int, patches: int = 1) -> NDArray[np.float64]:
    """Layer bound min(1, 2 m P exp(-2 N t^2 / pi^2)) on P(max over units and patches of the error >= t)."""
    m = check_int(units, "units", minimum=1)
    p = check_int(patches, "patches", minimum=1)
    dim = np.asarray(dim, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return np.minimum(1.0, 2.0 * m * p * np.exp(-2.0 * dim * t**2 / math.pi**2))


def required_n(t: float, delta: float, units: int = 1, patches: int = 1) -> int:
    """Smallest code length N with 2 m P exp(-2 N t^2 / pi^2) <= delta: ceil(pi^2 / (2 t^2) log(2 m P / delta)).

    With this N every one of the ``units * patches`` estimates z_hat is within ``t`` of arcsin(rho) with
    probability at least ``1 - delta``.
    """
    t = float(check_ts(t, "t")[0])
    delta = check_unit_interval(delta, "delta")
    m = check_int(units, "units", minimum=1)
    p = check_int(patches, "patches", minimum=1)
    return math.ceil(math.pi**2 / (2.0 * t**2) * math.log(2.0 * m * p / delta))


def _failure_threshold(dim: int, t: float) -> float:
    # |z_hat - z| >= t  <=>  |K - N p| >= N t / pi, with K the number of agreeing signs and p = 1/2 + z/pi.
    # The tiny relative slack makes a boundary count register as a failure in both the exact and the empirical
    # computation, so the two use the same predicate.
    return dim * t / math.pi * (1.0 - 1e-12)


def exact_unit_tail(dim: int, rho: float, t: float) -> float:
    """Exact P(|z_hat - arcsin rho| >= t) for Gaussian G with ``dim`` rows: K ~ Binomial(N, 1/2 + arcsin(rho)/pi)."""
    dim = check_int(dim, "dim", minimum=1)
    rho = float(check_rhos(rho)[0])
    t = float(check_ts(t)[0])
    p = 0.5 + math.asin(rho) / math.pi
    k = np.arange(dim + 1)
    fail = np.abs(k - dim * p) >= _failure_threshold(dim, t)
    return float(stats.binom.pmf(k[fail], dim, p).sum())


# ============================================================================================ Anderson & Berg
def binarization_cosine_limit(distribution: str) -> float:
    """in_features -> infinity limit of cos angle(w, sign w) = E|w| / sqrt(E w^2) for i.i.d. entries."""
    m1, m2, _, _ = distribution_moments(distribution)
    return m1 / math.sqrt(m2)


def distribution_moments(distribution: str) -> tuple[float, float, float, float]:
    """(E|w|, E w^2, E|w|^3, E w^4) for a standard Gaussian, Uniform[-1, 1] or Laplace(scale 1) entry."""
    check_choice(distribution, DISTRIBUTIONS, "distribution")
    if distribution == "gaussian":
        c = math.sqrt(2.0 / math.pi)
        return c, 1.0, 2.0 * c, 3.0
    if distribution == "uniform":
        return 0.5, 1.0 / 3.0, 0.25, 0.2
    return 1.0, 2.0, 6.0, 24.0  # Laplace: E|w|^k = k!


def angle_delta_method(moments: Sequence[float], in_features: Any) -> tuple[Any, Any]:
    """Predicted mean and std (radians) of angle(w, sign w) for ``in_features`` i.i.d. entries with the moments.

    The angle is h(A, B) = arccos(A / sqrt(B)) of the sample means A = mean|w|, B = mean w^2, whose covariance
    is Sigma / d with Sigma = [[m2 - m1^2, m3 - m1 m2], [m3 - m1 m2, m4 - m2^2]] (d = ``in_features``). First
    order gives sd = sqrt(grad h' Sigma grad h / d); second order gives mean = h(m1, m2) + tr(Hess h Sigma) / (2 d).
    For Gaussian entries sd * sqrt(d) = sqrt(1 - 3/pi) / sqrt(1 - 2/pi) = 0.3522. Both results are float64 of the
    shape of ``in_features`` (a scalar or an array).
    """
    if len(moments) != 4:
        raise ValueError(f"moments must be (E|w|, E w^2, E|w|^3, E w^4), got {len(moments)} values")
    m1, m2, m3, m4 = (float(m) for m in moments)
    if not (m1 > 0 and m2 > 0) or m1 * m1 > m2 * (1 + 1e-12):
        raise ValueError(f"moments are not those of a non-degenerate distribution: {moments}")
    d = np.asarray(in_features, dtype=np.float64)
    if (d < 1).any():
        raise ValueError(f"in_features must be >= 1, got {d}")
    sigma = np.array([[m2 - m1 * m1, m3 - m1 * m2], [m3 - m1 * m2, m4 - m2 * m2]])
    c = m1 / math.sqrt(m2)
    grad_c = np.array([m2**-0.5, -0.5 * m1 * m2**-1.5])
    hess_c = np.array([[0.0, -0.5 * m2**-1.5], [-0.5 * m2**-1.5, 0.75 * m1 * m2**-2.5]])
    s = math.sqrt(max(1.0 - c * c, 1e-300))
    dtheta, d2theta = -1.0 / s, -c / s**3
    grad = dtheta * grad_c
    hess = d2theta * np.outer(grad_c, grad_c) + dtheta * hess_c
    var_unit = float(grad @ sigma @ grad)
    mean = math.acos(c) + 0.5 * float(np.sum(hess * sigma)) / d
    return mean, np.sqrt(var_unit / d)


def gaussian_binarization_cosine(scales: Any) -> float:
    """Large-in_features cos angle(x, sign x) for x with independent N(0, s_i^2) coordinates; ``scales`` (d,).

    Ratio of expectations: E sum|x_i| / sqrt(d E sum x_i^2) = sqrt(2/pi) mean(s) / sqrt(mean(s^2)); it equals
    sqrt(2/pi) (37.1 deg) only for equal scales. Anisotropic scales shrink it, which is why binarising in the
    standard basis can destroy a direction and a random rotation (which equalises the scales) restores it.
    """
    s = np.abs(check_finite(scales, "scales", ndim=1))
    return math.sqrt(2.0 / math.pi) * float(s.mean()) / math.sqrt(float((s**2).mean()))
