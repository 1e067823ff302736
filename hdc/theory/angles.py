"""Anderson & Berg: the angle between a real vector and its binarisation, measured.

The angle between w and sign(w) satisfies ``cos = ||w||_1 / (sqrt(d) ||w||_2) -> E|w| / sqrt(E w^2)`` with
d = ``in_features``: 37.1 deg (Gaussian), 30 deg (uniform), 45 deg (Laplace). Its spread follows from the delta
method on (mean |w|, mean w^2) (:func:`hdc.theory.angle_delta_method`); for Gaussian w the standard deviation is
``sqrt(1 - 3/pi) / sqrt(1 - 2/pi) / sqrt(d) = 0.3522 / sqrt(d)`` rad. Binarising after a random rotation,
R' sign(R w), restores the isotropic angle for anisotropic vectors. Angles are in radians unless a name says
``_deg``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc._validate import Seed, as_generator, check_choice, check_int
from hdc.theory._common import check_finite, check_sizes, single_thread_blas
from hdc.theory.formulas import (
    DISTRIBUTIONS,
    angle_delta_method,
    binarization_cosine_limit,
    distribution_moments,
    gaussian_binarization_cosine,
)

__all__ = [
    "AngleCheck",
    "DotProductCheck",
    "RotationCheck",
    "binarization_angles",
    "check_binarization_angle",
    "check_rotation",
    "dot_product_correlation",
    "exponential_covariance_scales",
    "random_rotation",
    "sample_moments",
    "sample_weights",
]


# ============================================================================================ helpers
def sample_moments(w: Any) -> tuple[float, float, float, float]:
    """Empirical (mean|w|, mean w^2, mean|w|^3, mean w^4) of all entries of ``w``."""
    a = np.abs(check_finite(w, "w")).ravel()
    return float(a.mean()), float((a**2).mean()), float((a**3).mean()), float((a**4).mean())


def binarization_angles(w: Any) -> NDArray[np.float64]:
    """angle(w_r, sign w_r) in radians for each row of ``w`` (..., in_features) -> float64 (...)."""
    w = check_finite(w, "w")
    if w.ndim < 1 or w.shape[-1] == 0:
        raise ValueError(f"w must have a non-empty last axis, got shape {w.shape}")
    norm = np.linalg.norm(w, axis=-1)
    if (norm == 0).any():
        raise ValueError("w has an all-zero row; its angle to sign(w) is undefined")
    cos = np.abs(w).sum(axis=-1) / (math.sqrt(w.shape[-1]) * norm)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def sample_weights(distribution: str, shape: tuple[int, ...], seed: Seed = 0) -> NDArray[np.float64]:
    """i.i.d. draws from the standard Gaussian, Uniform[-1, 1] or Laplace(scale 1); float64 ``shape``."""
    check_choice(distribution, DISTRIBUTIONS, "distribution")
    rng = as_generator(seed)
    if distribution == "gaussian":
        return rng.standard_normal(shape)
    if distribution == "uniform":
        return rng.uniform(-1.0, 1.0, shape)
    return rng.laplace(0.0, 1.0, shape)


def random_rotation(in_features: int, seed: Seed = 0) -> NDArray[np.float64]:
    """A Haar-random orthogonal matrix, float64 (in_features, in_features) (QR of a Gaussian matrix, sign fix)."""
    in_features = check_int(in_features, "in_features", minimum=1)
    g = as_generator(seed).standard_normal((in_features, in_features))
    with single_thread_blas():  # threaded LAPACK QR was measured 100x slower on a busy 2-core machine
        q, r = np.linalg.qr(g)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def exponential_covariance_scales(in_features: int, decay: float = 0.1) -> NDArray[np.float64]:
    """Coordinate std devs s_i = exp(decay (i - d/2)), float64 (in_features,): Anderson & Berg's
    exponential-covariance example."""
    d = check_int(in_features, "in_features", minimum=1)
    return np.exp(float(decay) * (np.arange(d) - d / 2.0))


# ============================================================================================ angle vs in_features
@dataclass
class AngleCheck:
    """angle(w, sign w) for i.i.d. entries, measured over ``n_draws`` vectors per length d (radians).

    Lists are indexed like ``in_features`` (the vector lengths d swept). ``limit`` = arccos(E|w| / sqrt(E w^2));
    ``pred_mean`` / ``pred_sd`` from :func:`hdc.theory.angle_delta_method`; ``sd_constant`` = measured
    sd * sqrt(d) (0.3522 predicted for Gaussian entries).
    """

    distribution: str
    seed: int
    n_draws: int
    in_features: list[int]
    mean: list[float]
    sd: list[float]
    pred_mean: list[float]
    pred_sd: list[float]
    limit: float
    sd_constant: list[float]
    pred_sd_constant: float


def check_binarization_angle(
    distribution: str = "gaussian",
    in_features: Sequence[int] = (3, 10, 27, 100, 300, 1000, 3000),
    n_draws: int = 4000,
    seed: int = 0,
) -> AngleCheck:
    """Measure the mean and spread of angle(w, sign w) against the limit and the delta-method prediction,
    for vectors w of each length in ``in_features``."""
    check_choice(distribution, DISTRIBUTIONS, "distribution")
    sizes = check_sizes(in_features, "in_features")
    n_draws = check_int(n_draws, "n_draws", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng([seed, 3])
    means, sds = [], []
    for d in sizes:
        angles = binarization_angles(sample_weights(distribution, (n_draws, int(d)), rng))
        means.append(float(angles.mean()))
        sds.append(float(angles.std(ddof=1)))
    moments = distribution_moments(distribution)
    pred_mean, pred_sd = angle_delta_method(moments, sizes)
    return AngleCheck(
        distribution=distribution,
        seed=seed,
        n_draws=n_draws,
        in_features=sizes.tolist(),
        mean=means,
        sd=sds,
        pred_mean=np.atleast_1d(pred_mean).tolist(),
        pred_sd=np.atleast_1d(pred_sd).tolist(),
        limit=math.acos(binarization_cosine_limit(distribution)),
        sd_constant=(np.array(sds) * np.sqrt(sizes)).tolist(),
        pred_sd_constant=float(angle_delta_method(moments, 1.0)[1]),
    )


# ============================================================================================ random rotation
@dataclass
class RotationCheck:
    """Mean angle(x, sign x) with and without a random rotation R before binarising (radians).

    Rotated binarisation is theta_R(x) = R' sign(R x); since R is orthogonal, angle(x, theta_R(x)) =
    angle(Rx, sign Rx). ``plain_pred`` uses :func:`hdc.theory.gaussian_binarization_cosine` on the coordinate
    scales in the standard basis (a large-d approximation: the ratio of expectations). ``rotated_pred`` is exact
    in distribution when averaged over Haar R: R x / ||x|| is then uniform on the sphere, i.e. distributed like a
    normalised Gaussian vector, so the rotated angle is the Gaussian-weight angle at length d (mean from
    :func:`hdc.theory.angle_delta_method`). ``n_rotations`` independent R are drawn per d; lists are indexed like
    ``in_features``.
    """

    decay: float
    seed: int
    n_samples: int
    n_rotations: int
    in_features: list[int]
    plain_mean: list[float]
    rotated_mean: list[float]
    plain_pred: list[float]
    rotated_pred: list[float]
    isotropic_limit: float


def check_rotation(
    in_features: Sequence[int] = (10, 30, 100, 300, 500),
    decay: float = 0.1,
    n_samples: int = 500,
    seed: int = 0,
    n_rotations: int = 1,
) -> RotationCheck:
    """Anderson & Berg's exponential-covariance example: x_i ~ N(0, exp(2 decay (i - d/2))), d in ``in_features``.

    The samples are split evenly across ``n_rotations`` independent Haar rotations per d. With one rotation per
    sample the rotated angles are exactly distributed as for Gaussian weights (see :class:`RotationCheck`).
    """
    sizes = check_sizes(in_features, "in_features")
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    n_rotations = check_int(n_rotations, "n_rotations", minimum=1)
    if n_rotations > n_samples:
        raise ValueError(f"n_rotations ({n_rotations}) must not exceed n_samples ({n_samples})")
    seed = check_int(seed, "seed", minimum=0)
    decay = float(check_finite(decay, "decay"))
    rng = np.random.default_rng([seed, 4])
    groups = np.array_split(np.arange(n_samples), n_rotations)
    plain, rotated, plain_pred, rotated_pred = [], [], [], []
    for d in sizes:
        scales = exponential_covariance_scales(int(d), decay)
        x = rng.standard_normal((n_samples, int(d))) * scales
        rot_angles = np.concatenate([binarization_angles(x[g] @ random_rotation(int(d), rng).T) for g in groups])
        plain.append(float(binarization_angles(x).mean()))
        rotated.append(float(rot_angles.mean()))
        plain_pred.append(math.acos(gaussian_binarization_cosine(scales)))
        rotated_pred.append(float(angle_delta_method(distribution_moments("gaussian"), float(d))[0]))
    return RotationCheck(
        decay=decay,
        seed=seed,
        n_samples=n_samples,
        n_rotations=n_rotations,
        in_features=sizes.tolist(),
        plain_mean=plain,
        rotated_mean=rotated,
        plain_pred=plain_pred,
        rotated_pred=rotated_pred,
        isotropic_limit=math.acos(math.sqrt(2.0 / math.pi)),
    )


# ============================================================================================ dot products
@dataclass
class DotProductCheck:
    """Anderson & Berg's dot-product proportionality: corr(a . w, a . sign w) over activations a.

    ``r`` pools every (sample, unit) pair of a layer; ``r_unit_mean`` averages the per-unit correlations;
    ``r_binary_both`` correlates a . w with sign(a) . sign(w); ``r_permuted`` repeats ``r`` with the coordinates
    of each activation vector randomly permuted (the control: alignment between activations and weights is
    destroyed); ``isotropic`` = mean over units of cos angle(w, sign w), the value ``r_unit_mean`` takes for
    isotropic activations. ``angle_deg`` = mean angle(w, sign w) in degrees. With ``rotate=True``,
    ``r_rotated`` and ``angle_rotated_deg`` repeat ``r`` and ``angle_deg`` for the rotated binarisation
    w_R = R' sign(R w) with one Haar rotation R (Anderson & Berg's generalised binarisation); otherwise None.
    """

    name: str
    units: int
    in_features: int
    n_samples: int
    r: float
    r_unit_mean: float
    r_binary_both: float
    r_permuted: float
    isotropic: float
    angle_deg: float
    angle_sd_deg: float
    r_rotated: float | None = None
    angle_rotated_deg: float | None = None


def _pearson(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else float("nan")


def dot_product_correlation(
    weights: Any, activations: Any, seed: Seed = 0, name: str = "layer", rotate: bool = False
) -> DotProductCheck:
    """Correlation between continuous and binarised-weight dot products: weights (m, in_features), activations
    (S, in_features).

    ``rotate`` adds the same measurement for w_R = R' sign(R w) (an in_features^2 QR: about a second at 3000).
    """
    w = check_finite(weights, "weights", ndim=2)
    a = check_finite(activations, "activations", ndim=2)
    if w.shape[1] != a.shape[1]:
        raise ValueError(f"weights have {w.shape[1]} features but activations have {a.shape[1]}")
    if a.shape[0] < 2:
        raise ValueError(f"activations need at least 2 samples, got {a.shape[0]}")
    rng = as_generator(seed)
    wb = np.where(w >= 0, 1.0, -1.0)
    cont, binw = a @ w.T, a @ wb.T
    per_unit = [_pearson(cont[:, o], binw[:, o]) for o in range(w.shape[0])]
    perm = np.argsort(rng.random(a.shape), axis=1)
    ap = np.take_along_axis(a, perm, axis=1)
    angles = binarization_angles(w)
    r_rot = angle_rot = None
    if rotate:
        rot = random_rotation(w.shape[1], rng)
        rw = w @ rot.T
        w_rot = np.where(rw >= 0, 1.0, -1.0) @ rot  # rows R' sign(R w_o)
        r_rot = _pearson(cont.ravel(), (a @ w_rot.T).ravel())
        angle_rot = float(np.degrees(binarization_angles(rw).mean()))  # angle(w, R' sign(Rw)) = angle(Rw, sign Rw)
    return DotProductCheck(
        name=name,
        units=int(w.shape[0]),
        in_features=int(w.shape[1]),
        n_samples=int(a.shape[0]),
        r=_pearson(cont.ravel(), binw.ravel()),
        r_unit_mean=float(np.nanmean(per_unit)),
        r_binary_both=_pearson(cont.ravel(), (np.where(a >= 0, 1.0, -1.0) @ wb.T).ravel()),
        r_permuted=_pearson((ap @ w.T).ravel(), (ap @ wb.T).ravel()),
        isotropic=float(np.cos(angles).mean()),
        angle_deg=float(np.degrees(angles.mean())),
        angle_sd_deg=float(np.degrees(angles.std())),
        r_rotated=r_rot,
        angle_rotated_deg=angle_rot,
    )
