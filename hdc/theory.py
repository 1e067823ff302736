"""The theory behind sign embeddings and binary networks, as formulas and as measurements.

Three families of claims, each with a closed form (or bound) and a Monte Carlo measurement that returns a
dataclass holding both, so a report can draw the measured curve beside the formula:

1. Grothendieck's identity. For unit u, v with rho = <u, v> and Gaussian rows g,
   ``E[sign(g.u) sign(g.v)] = mu = (2/pi) arcsin(rho)``, so ``mu_hat = (1/N) sum_i sign(g_i.u) sign(g_i.v)``
   has mean mu and exact variance ``(1 - mu^2) / N`` (i.i.d. +-1 terms), and
   ``z_hat = (pi/2) mu_hat`` is unbiased for ``z = arcsin(rho)``. For Rademacher rows the identity is only
   approximate: the bias is measured, not assumed (it is small for dense, delocalised vectors and can be large
   for sparse ones, where it is computed exactly by enumeration).
2. Concentration. Each term of z_hat lies in an interval of length pi/N, so Hoeffding gives
   ``P(|z_hat - z| >= t) <= 2 exp(-2 N t^2 / pi^2)`` per unit; a union bound over m units and P patches
   multiplies by m P. It uses only the marginals, so it holds whether G is shared across units or not.
   Inverting it: ``N >= pi^2 / (2 t^2) * log(2 m P / delta)``.
3. Anderson & Berg. The angle between w and sign(w) satisfies
   ``cos = ||w||_1 / (sqrt(d) ||w||_2) -> E|w| / sqrt(E w^2)``: 37.1 deg (Gaussian), 30 deg (uniform),
   45 deg (Laplace). Its spread follows from the delta method on (mean |w|, mean w^2); for Gaussian w the
   standard deviation is ``sqrt(1 - 3/pi) / sqrt(1 - 2/pi) / sqrt(d) = 0.3522 / sqrt(d)`` rad.

Every random function takes ``seed`` (an int or a ``numpy.random.Generator``); nothing touches global RNG state.
Angles are in radians unless a name says ``_deg``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "LAYOUTS",
    "AngleCheck",
    "DotProductCheck",
    "GrothendieckCheck",
    "LayerConcentrationCheck",
    "RotationCheck",
    "UnitConcentrationCheck",
    "angle_delta_method",
    "binarization_angles",
    "binarization_cosine_limit",
    "check_binarization_angle",
    "check_grothendieck",
    "check_layer_concentration",
    "check_rotation",
    "check_unit_concentration",
    "correlated_pair",
    "distribution_moments",
    "dot_product_correlation",
    "exact_unit_tail",
    "exponential_covariance_scales",
    "gaussian_binarization_cosine",
    "grothendieck_mean",
    "hoeffding_unit_bound",
    "rademacher_exact_mean",
    "random_rotation",
    "required_n",
    "sample_moments",
    "sample_weights",
    "sign_product_variance",
    "union_bound",
    "unit_z",
    "zhat_std",
]

KINDS = ("gaussian", "rademacher")
LAYOUTS = ("dense", "sparse")
DISTRIBUTIONS = ("gaussian", "uniform", "laplace")
_MAX_ENUMERATED_SUPPORT = 20  # 2^20 sign patterns: exact Rademacher expectations stay under a second


# ============================================================================================ validation
def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(choices)}")
    return value


def _check_ns(ns: Any, name: str = "ns") -> np.ndarray:
    arr = np.asarray(ns)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of integers, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if (arr < 1).any():
        raise ValueError(f"{name} must be positive, got {arr.tolist()}")
    if (np.diff(arr) <= 0).any():
        raise ValueError(f"{name} must be strictly increasing, got {arr.tolist()}")
    return arr.astype(np.int64)


def _check_finite(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_rhos(rhos: Any, name: str = "rho") -> np.ndarray:
    arr = _check_finite(np.atleast_1d(rhos), name)
    if (np.abs(arr) > 1).any():
        raise ValueError(f"{name} must lie in [-1, 1], got {arr.tolist()}")
    return arr


def _check_ts(ts: Any, name: str = "t") -> np.ndarray:
    arr = _check_finite(np.atleast_1d(ts), name)
    if (arr <= 0).any():
        raise ValueError(f"{name} must be positive, got {arr.tolist()}")
    return arr


def _check_unit_interval(p: Any, name: str) -> float:
    p = float(p)
    if not (0.0 < p < 1.0):
        raise ValueError(f"{name} must lie in (0, 1), got {p}")
    return p


@contextlib.contextmanager
def _single_thread_blas() -> Iterator[None]:
    """Run BLAS single-threaded for the duration (restored afterwards).

    The Monte Carlo loops multiply many small matrices; a multi-threaded BLAS spends most of its time
    synchronising threads there, and on a shared machine it was measured 6x slower than one thread.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, just run as configured
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _sign(x: np.ndarray) -> np.ndarray:
    """+-1 with the project's tie rule (x >= 0 -> +1), as float32."""
    return np.where(x >= 0, np.float32(1.0), np.float32(-1.0))


# ============================================================================================ formulas
def grothendieck_mean(rho: Any) -> np.ndarray:
    """mu = E[sign(g.u) sign(g.v)] = (2/pi) arcsin(rho) for Gaussian g; float64, shape of ``rho``."""
    return (2.0 / math.pi) * np.arcsin(_check_rhos(rho))


def sign_product_variance(rho: Any, n: Any) -> np.ndarray:
    """Exact Var(mu_hat) = (1 - mu^2) / N for N i.i.d. Gaussian rows (each term is +-1 with mean mu)."""
    mu = grothendieck_mean(rho)
    return (1.0 - mu**2) / np.asarray(n, dtype=np.float64)


def zhat_std(rho: Any, n: Any) -> np.ndarray:
    """Exact std of z_hat = (pi/2) mu_hat: (pi/2) sqrt((1 - mu^2) / N)."""
    return (math.pi / 2.0) * np.sqrt(sign_product_variance(rho, n))


def hoeffding_unit_bound(n: Any, t: Any) -> np.ndarray:
    """Per-unit Hoeffding bound min(1, 2 exp(-2 N t^2 / pi^2)) on P(|z_hat - arcsin rho| >= t)."""
    n = np.asarray(n, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return np.minimum(1.0, 2.0 * np.exp(-2.0 * n * t**2 / math.pi**2))


def union_bound(n: Any, t: Any, units: int, patches: int = 1) -> np.ndarray:
    """Layer bound min(1, 2 m P exp(-2 N t^2 / pi^2)) on P(max over units and patches of the error >= t)."""
    m = _check_int(units, "units")
    p = _check_int(patches, "patches")
    n = np.asarray(n, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return np.minimum(1.0, 2.0 * m * p * np.exp(-2.0 * n * t**2 / math.pi**2))


def required_n(t: float, delta: float, units: int = 1, patches: int = 1) -> int:
    """Smallest N with 2 m P exp(-2 N t^2 / pi^2) <= delta, i.e. ceil(pi^2 / (2 t^2) log(2 m P / delta)).

    With this N every one of the ``units * patches`` estimates z_hat is within ``t`` of arcsin(rho) with
    probability at least ``1 - delta``.
    """
    t = float(_check_ts(t, "t")[0])
    delta = _check_unit_interval(delta, "delta")
    m = _check_int(units, "units")
    p = _check_int(patches, "patches")
    return int(math.ceil(math.pi**2 / (2.0 * t**2) * math.log(2.0 * m * p / delta)))


def _failure_threshold(n: int, t: float) -> float:
    # |z_hat - z| >= t  <=>  |K - N p| >= N t / pi, with K the number of agreeing signs and p = 1/2 + z/pi.
    # The tiny relative slack makes a boundary count register as a failure in both the exact and the empirical
    # computation, so the two use the same predicate.
    return n * t / math.pi * (1.0 - 1e-12)


def exact_unit_tail(n: int, rho: float, t: float) -> float:
    """Exact P(|z_hat - arcsin rho| >= t) for Gaussian G: K ~ Binomial(N, 1/2 + arcsin(rho)/pi)."""
    n = _check_int(n, "n")
    rho = float(_check_rhos(rho)[0])
    t = float(_check_ts(t)[0])
    p = 0.5 + math.asin(rho) / math.pi
    k = np.arange(n + 1)
    fail = np.abs(k - n * p) >= _failure_threshold(n, t)
    return float(stats.binom.pmf(k[fail], n, p).sum())


# ------------------------------------------------------------------------------------- Anderson & Berg
def binarization_cosine_limit(distribution: str) -> float:
    """d -> infinity limit of cos angle(w, sign w) = E|w| / sqrt(E w^2) for i.i.d. entries."""
    m1, m2, _, _ = distribution_moments(distribution)
    return m1 / math.sqrt(m2)


def distribution_moments(distribution: str) -> tuple[float, float, float, float]:
    """(E|w|, E w^2, E|w|^3, E w^4) for a standard Gaussian, Uniform[-1, 1] or Laplace(scale 1) entry."""
    _check_choice(distribution, "distribution", DISTRIBUTIONS)
    if distribution == "gaussian":
        c = math.sqrt(2.0 / math.pi)
        return c, 1.0, 2.0 * c, 3.0
    if distribution == "uniform":
        return 0.5, 1.0 / 3.0, 0.25, 0.2
    return 1.0, 2.0, 6.0, 24.0  # Laplace: E|w|^k = k!


def sample_moments(w: Any) -> tuple[float, float, float, float]:
    """Empirical (mean|w|, mean w^2, mean|w|^3, mean w^4) of all entries of ``w``."""
    a = np.abs(_check_finite(w, "w")).ravel()
    return float(a.mean()), float((a**2).mean()), float((a**3).mean()), float((a**4).mean())


def angle_delta_method(moments: Sequence[float], d: Any) -> tuple[np.ndarray, np.ndarray]:
    """Predicted mean and std (radians) of angle(w, sign w) for d i.i.d. entries with the given moments.

    The angle is h(A, B) = arccos(A / sqrt(B)) of the sample means A = mean|w|, B = mean w^2, whose covariance
    is Sigma / d with Sigma = [[m2 - m1^2, m3 - m1 m2], [m3 - m1 m2, m4 - m2^2]]. First order gives
    sd = sqrt(grad h' Sigma grad h / d); second order gives mean = h(m1, m2) + tr(Hess h Sigma) / (2 d).
    For Gaussian entries sd * sqrt(d) = sqrt(1 - 3/pi) / sqrt(1 - 2/pi) = 0.3522.
    """
    if len(moments) != 4:
        raise ValueError(f"moments must be (E|w|, E w^2, E|w|^3, E w^4), got {len(moments)} values")
    m1, m2, m3, m4 = (float(m) for m in moments)
    if not (m1 > 0 and m2 > 0) or m1 * m1 > m2 * (1 + 1e-12):
        raise ValueError(f"moments are not those of a non-degenerate distribution: {moments}")
    d = np.asarray(d, dtype=np.float64)
    if (d < 1).any():
        raise ValueError(f"d must be >= 1, got {d}")
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
    """Large-d cos angle(x, sign x) for x with independent N(0, s_i^2) coordinates.

    Ratio of expectations: E sum|x_i| / sqrt(d E sum x_i^2) = sqrt(2/pi) mean(s) / sqrt(mean(s^2)); it equals
    sqrt(2/pi) (37.1 deg) only for equal scales. Anisotropic scales shrink it, which is why binarising in the
    standard basis can destroy a direction and a random rotation (which equalises the scales) restores it.
    """
    s = np.abs(_check_finite(scales, "scales", ndim=1))
    return math.sqrt(2.0 / math.pi) * float(s.mean()) / math.sqrt(float((s**2).mean()))


def exponential_covariance_scales(d: int, decay: float = 0.1) -> np.ndarray:
    """Coordinate std devs s_i = exp(decay (i - d/2)): Anderson & Berg's exponential-covariance example."""
    d = _check_int(d, "d")
    return np.exp(float(decay) * (np.arange(d) - d / 2.0))


# ============================================================================================ helpers
def unit_z(weights: Any, inputs: Any) -> np.ndarray:
    """Exact G-Net pre-activation z = arcsin(cos(w_o, x_p)): (m, d), (P, d) -> float64 (m, P)."""
    w = _check_finite(weights, "weights", ndim=2)
    x = _check_finite(inputs, "inputs", ndim=2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"weights have {w.shape[1]} features but inputs have {x.shape[1]}")
    wn, xn = np.linalg.norm(w, axis=1), np.linalg.norm(x, axis=1)
    if (wn == 0).any() or (xn == 0).any():
        raise ValueError("weights and inputs must not contain all-zero rows (their angle is undefined)")
    return np.arcsin(np.clip((w / wn[:, None]) @ (x / xn[:, None]).T, -1.0, 1.0))


def correlated_pair(
    rho: float, dim: int, seed: int | np.random.Generator = 0, layout: str = "dense"
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors u, v in R^dim with <u, v> = rho exactly; float64 (dim,) each.

    ``layout="dense"``: u is a normalised Gaussian vector (delocalised: sum u_i^4 ~ 3/dim) and v mixes in an
    orthogonal Gaussian direction. ``layout="sparse"``: u = e_1, v = rho e_1 + sqrt(1 - rho^2) e_2, the
    worst case for Rademacher G.
    """
    rho = float(_check_rhos(rho)[0])
    dim = _check_int(dim, "dim", minimum=2)
    _check_choice(layout, "layout", LAYOUTS)
    if layout == "sparse":
        u, w = np.zeros(dim), np.zeros(dim)
        u[0], w[1] = 1.0, 1.0
    else:
        rng = _rng(seed)
        u = rng.standard_normal(dim)
        u /= np.linalg.norm(u)
        w = rng.standard_normal(dim)
        w -= (w @ u) * u
        w /= np.linalg.norm(w)
    return u, rho * u + math.sqrt(max(0.0, 1.0 - rho * rho)) * w


def rademacher_exact_mean(u: Any, v: Any) -> float:
    """Exact E[sign(g.u) sign(g.v)] for Rademacher g (tie rule sign(0) = +1), by enumerating the support.

    Only coordinates where u or v is non-zero matter; at most 20 of them are allowed (2^20 patterns).
    """
    u = _check_finite(u, "u", ndim=1)
    v = _check_finite(v, "v", ndim=1)
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same shape, got {u.shape} and {v.shape}")
    support = np.flatnonzero((u != 0) | (v != 0))
    k = support.size
    if k == 0:
        return 1.0
    if k > _MAX_ENUMERATED_SUPPORT:
        raise ValueError(f"u, v have {k} non-zero coordinates; exact enumeration allows {_MAX_ENUMERATED_SUPPORT}")
    patterns = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1) * 2.0 - 1.0
    gu, gv = patterns @ u[support], patterns @ v[support]
    return float(np.mean(np.where(gu >= 0, 1.0, -1.0) * np.where(gv >= 0, 1.0, -1.0)))


def binarization_angles(w: Any) -> np.ndarray:
    """angle(w_r, sign w_r) in radians for each row of ``w`` (..., d) -> float64 (...)."""
    w = _check_finite(w, "w")
    if w.ndim < 1 or w.shape[-1] == 0:
        raise ValueError(f"w must have a non-empty last axis, got shape {w.shape}")
    norm = np.linalg.norm(w, axis=-1)
    if (norm == 0).any():
        raise ValueError("w has an all-zero row; its angle to sign(w) is undefined")
    cos = np.abs(w).sum(axis=-1) / (math.sqrt(w.shape[-1]) * norm)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def sample_weights(
    distribution: str, shape: tuple[int, ...], seed: int | np.random.Generator = 0
) -> np.ndarray:
    """i.i.d. draws from the standard Gaussian, Uniform[-1, 1] or Laplace(scale 1); float64 ``shape``."""
    _check_choice(distribution, "distribution", DISTRIBUTIONS)
    rng = _rng(seed)
    if distribution == "gaussian":
        return rng.standard_normal(shape)
    if distribution == "uniform":
        return rng.uniform(-1.0, 1.0, shape)
    return rng.laplace(0.0, 1.0, shape)


def random_rotation(d: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """A Haar-random orthogonal matrix, float64 (d, d) (QR of a Gaussian matrix with the sign fix)."""
    d = _check_int(d, "d")
    g = _rng(seed).standard_normal((d, d))
    with _single_thread_blas():  # threaded LAPACK QR was measured 100x slower on a busy 2-core machine
        q, r = np.linalg.qr(g)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _rademacher(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """+-1 float32 (rows, cols) from random bytes (8 entries per byte: much faster than integers())."""
    nbytes = (cols + 7) // 8
    bits = np.unpackbits(rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8), axis=1, count=cols)
    return bits.astype(np.float32) * 2.0 - 1.0


def _gaussian_or_rademacher(rng: np.random.Generator, kind: str, rows: int, cols: int) -> np.ndarray:
    if kind == "gaussian":
        return rng.standard_normal((rows, cols), dtype=np.float32)
    return _rademacher(rng, rows, cols)


# ============================================================================================ 1. Grothendieck
@dataclass
class GrothendieckCheck:
    """E[sign(g.u) sign(g.v)] measured with :class:`hdc.projection.RandomProjection` against (2/pi) arcsin rho.

    Arrays are indexed [rho, N]. ``mean`` is the average of mu_hat over ``n_draws`` independent G (streams
    0..n_draws-1 of ``seed``); ``std`` its spread across draws; ``theory_std`` = sqrt((1 - mu^2)/N);
    ``bias`` = mean at the largest N minus the reference (``reference`` is (2/pi) arcsin rho, or for
    Rademacher G with sparse vectors the exact enumerated expectation, in ``exact_mean``).
    ``packed_agrees`` says whether the packed path (encode + hamming_distance) gave the same sums.
    """

    kind: str
    layout: str
    dim: int
    seed: int
    n_draws: int
    rhos: list[float]
    ns: list[int]
    theory_mean: list[float]
    mean: list[list[float]]
    std: list[list[float]]
    theory_std: list[list[float]]
    mc_se: list[list[float]]
    bias: list[float]
    bias_se: list[float]
    delocalisation: list[float]
    exact_mean: list[float] | None = None
    packed_agrees: bool | None = None


def check_grothendieck(
    rhos: Sequence[float] = (-0.9, -0.5, 0.0, 0.3, 0.7, 0.95),
    ns: Sequence[int] = (64, 256, 1024, 4096, 16384),
    kind: str = "gaussian",
    dim: int = 256,
    n_draws: int = 32,
    seed: int = 0,
    layout: str = "dense",
    check_packed: bool = True,
    progress: bool = False,
) -> GrothendieckCheck:
    """Measure mu_hat = (1/N) <sign(Gu), sign(Gv)> with the project's RandomProjection for nested N.

    G for a smaller N is a prefix of G for a larger N, so one projection at max(ns) per draw serves every N.
    Cost: n_draws * max(ns) * dim random numbers.
    """
    from hdc.projection import RandomProjection

    rhos_a = _check_rhos(rhos, "rhos")
    ns_a = _check_ns(ns)
    _check_choice(kind, "kind", KINDS)
    _check_choice(layout, "layout", LAYOUTS)
    dim = _check_int(dim, "dim", minimum=2)
    n_draws = _check_int(n_draws, "n_draws", minimum=2)
    seed = _check_int(seed, "seed", minimum=0)
    n_max = int(ns_a[-1])

    pairs = [correlated_pair(r, dim, seed=np.random.default_rng([seed, i]), layout=layout)
             for i, r in enumerate(rhos_a)]
    # Row 2i is u_i, row 2i+1 is v_i: one projection call per draw covers every pair.
    x = np.stack([vec for pair in pairs for vec in pair]).astype(np.float32)
    est = np.empty((len(rhos_a), len(ns_a), n_draws))
    packed_agrees: bool | None = None
    for draw in tqdm(range(n_draws), desc=f"grothendieck {kind}/{layout}", disable=not progress):
        proj = RandomProjection(dim, n_max, kind=kind, seed=seed, stream=(draw,))
        s = _sign(proj.project(x).numpy())
        prod = s[0::2] * s[1::2]  # (R, N)
        csum = np.cumsum(prod, axis=1, dtype=np.float64)
        est[:, :, draw] = csum[:, ns_a - 1] / ns_a
        if check_packed and draw == 0:
            packed_agrees = _packed_sums_agree(proj, x, csum[:, -1])

    mean = est.mean(axis=2)
    std = est.std(axis=2, ddof=1)
    mu = grothendieck_mean(rhos_a)
    theory_std = np.sqrt((1.0 - mu[:, None] ** 2) / ns_a[None, :])
    exact = None
    if kind == "rademacher" and layout == "sparse":
        exact = np.array([rademacher_exact_mean(u, v) for u, v in pairs])
    # The bias is estimated from all n_draws * N_max terms at the largest N; its standard error uses the
    # measured across-draw spread.
    bias = mean[:, -1] - mu
    bias_se = std[:, -1] / math.sqrt(n_draws)
    return GrothendieckCheck(
        kind=kind,
        layout=layout,
        dim=dim,
        seed=seed,
        n_draws=n_draws,
        rhos=rhos_a.tolist(),
        ns=ns_a.tolist(),
        theory_mean=mu.tolist(),
        mean=mean.tolist(),
        std=std.tolist(),
        theory_std=theory_std.tolist(),
        mc_se=(theory_std / math.sqrt(n_draws)).tolist(),
        bias=bias.tolist(),
        bias_se=bias_se.tolist(),
        delocalisation=[float(max((u**4).sum(), (v**4).sum())) for u, v in pairs],
        exact_mean=None if exact is None else exact.tolist(),
        packed_agrees=packed_agrees,
    )


def _packed_sums_agree(proj: Any, x: np.ndarray, sums: np.ndarray) -> bool:
    """Whether N - 2 hamming(encode(u), encode(v)) equals the float sign-product sums for every pair."""
    from hdc.hamming import hamming_distance

    words = proj.encode(x)
    # method="numpy": exact, and avoids a JIT compile for a handful of pairs
    d_h = np.diagonal(hamming_distance(words[0::2], words[1::2], method="numpy")).astype(np.int64)
    return bool(np.array_equal(proj.n - 2 * d_h, sums.astype(np.int64)))


# ============================================================================================ 2. concentration
@dataclass
class UnitConcentrationCheck:
    """Per-unit failure frequency P(|z_hat - arcsin rho| >= t) over many draws of G, against the bounds.

    Arrays are indexed [N, t]. ``exact`` is the Binomial tail (Gaussian G only; None for Rademacher).
    ``failure_se`` is the Monte Carlo standard error sqrt(p (1 - p) / n_draws) at p = max(measured, exact).
    ``delocalisation`` = max(sum u_i^4, sum v_i^4) of the dense pair (it sizes the Rademacher bias).
    """

    kind: str
    rho: float
    dim: int
    seed: int
    n_draws: int
    ns: list[int]
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
    rho: float, ns: np.ndarray, n_draws: int, kind: str, dim: int, rng: np.random.Generator, progress: bool
) -> tuple[np.ndarray, float]:
    """Number of agreeing signs K (n_draws, len(ns)) between sign(Gu) and sign(Gv), G drawn anew per draw.

    Gaussian G: only g.u and g.v matter, and for orthonormal (e1, e2) spanning {u, v} the pair (g.e1, g.e2) is
    two i.i.d. N(0, 1) by rotation invariance, so g.u = a, g.v = rho a + sqrt(1 - rho^2) b is exact in
    distribution and independent of dim. Rademacher G has no such reduction: rows are drawn explicitly and
    applied to a dense pair in R^dim.
    """
    n_max = int(ns[-1])
    counts = np.empty((n_draws, len(ns)), dtype=np.int64)
    u, v = correlated_pair(rho, dim, seed=rng, layout="dense")
    uv = np.stack([u, v], axis=1).astype(np.float32)
    chunk = max(1, (1 << 22) // (n_max * (2 if kind == "gaussian" else dim)))
    s = math.sqrt(max(0.0, 1.0 - rho * rho))
    for start in tqdm(range(0, n_draws, chunk), desc=f"unit concentration {kind}", disable=not progress):
        b = min(chunk, n_draws - start)
        if kind == "gaussian":
            ab = rng.standard_normal((b, n_max, 2))
            gu, gv = ab[..., 0], rho * ab[..., 0] + s * ab[..., 1]
        else:
            proj = (_rademacher(rng, b * n_max, dim) @ uv).reshape(b, n_max, 2)
            gu, gv = proj[..., 0], proj[..., 1]
        agree = np.cumsum((gu >= 0) == (gv >= 0), axis=1)
        counts[start : start + b] = agree[:, ns - 1]
    return counts, float(max((u**4).sum(), (v**4).sum()))


def check_unit_concentration(
    rho: float = 0.5,
    ns: Sequence[int] = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
    ts: Sequence[float] = (0.1, 0.2, 0.4),
    kind: str = "gaussian",
    n_draws: int = 4000,
    dim: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> UnitConcentrationCheck:
    """Empirical failure frequency of one unit over ``n_draws`` draws of G, with Hoeffding and the exact tail."""
    rho = float(_check_rhos(rho)[0])
    ns_a = _check_ns(ns)
    ts_a = _check_ts(ts, "ts")
    _check_choice(kind, "kind", KINDS)
    n_draws = _check_int(n_draws, "n_draws", minimum=2)
    dim = _check_int(dim, "dim", minimum=2)
    seed = _check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng([seed, 1])
    with _single_thread_blas():
        counts, deloc = _sign_agreement_counts(rho, ns_a, n_draws, kind, dim, rng, progress)

    z = math.asin(rho)
    p = 0.5 + z / math.pi
    failure = np.empty((len(ns_a), len(ts_a)))
    exact = np.empty_like(failure)
    for i, n in enumerate(ns_a):
        for j, t in enumerate(ts_a):
            failure[i, j] = np.mean(np.abs(counts[:, i] - n * p) >= _failure_threshold(int(n), float(t)))
            exact[i, j] = exact_unit_tail(int(n), rho, float(t))
    zhat = (math.pi / (2.0 * ns_a)) * (2.0 * counts - ns_a)
    p_se = np.maximum(failure, exact)
    return UnitConcentrationCheck(
        kind=kind,
        rho=rho,
        dim=dim,
        seed=seed,
        n_draws=n_draws,
        ns=ns_a.tolist(),
        ts=ts_a.tolist(),
        failure=failure.tolist(),
        failure_se=np.sqrt(p_se * (1 - p_se) / n_draws).tolist(),
        hoeffding=hoeffding_unit_bound(ns_a[:, None], ts_a[None, :]).tolist(),
        exact=exact.tolist() if kind == "gaussian" else None,
        zhat_mean=zhat.mean(axis=0).tolist(),
        zhat_std=zhat.std(axis=0, ddof=1).tolist(),
        theory_std=zhat_std(rho, ns_a).tolist(),
        z=z,
        delocalisation=deloc,
    )


@dataclass
class LayerConcentrationCheck:
    """Layer-level errors of z_hat over ``n_draws`` draws of a G shared by all units and patches.

    Indexed [N]: ``failure_any`` = fraction of draws where max over (unit, patch) of |z_hat - z| >= t, against
    ``union`` = min(1, 2 m P exp(-2 N t^2 / pi^2)); ``failure_unit_mean`` = per-(unit, patch) failure
    frequency averaged over cells (the fraction of estimates off by >= t), against the per-unit ``hoeffding``
    bound (each cell's probability is below it, so their mean is too); ``failure_unit_max`` = the largest
    per-cell frequency (a maximum over m P noisy estimates: biased upwards, shown but not tested against the
    bound); ``max_error_mean`` = mean over draws of the
    max error; ``error_rms`` = root-mean-square error over all units, patches and draws, against
    ``theory_rms`` = rms over units of the exact std (pi/2) sqrt((1 - mu^2)/N).
    ``n_required`` = :func:`required_n` (t, delta, m, P).
    """

    name: str
    kind: str
    t: float
    delta: float
    units: int
    patches: int
    features: int
    seed: int
    n_draws: int
    ns: list[int]
    n_required: int
    failure_any: list[float]
    union: list[float]
    failure_unit_mean: list[float]
    failure_unit_max: list[float]
    hoeffding: list[float]
    max_error_mean: list[float]
    error_rms: list[float]
    theory_rms: list[float]
    z_range: list[float] = field(default_factory=list)


def check_layer_concentration(
    weights: Any,
    inputs: Any,
    ns: Sequence[int] | None = None,
    t: float = 0.15,
    delta: float = 0.05,
    kind: str = "gaussian",
    n_draws: int = 100,
    seed: int = 0,
    name: str = "layer",
    progress: bool = False,
) -> LayerConcentrationCheck:
    """Union-bound check for one layer: every unit ``weights`` (m, d) against every input patch ``inputs`` (P, d).

    G (N, d) is drawn from a Generator per draw and shared by all units and patches, as in an EHD linear layer.
    ``ns`` defaults to a geometric sweep that includes :func:`required_n` (t, delta, m, P). Work per draw is
    about N d (m + P) + N m P multiply-adds, so keep m P to a few thousand.
    """
    w = _check_finite(weights, "weights", ndim=2)
    x = _check_finite(inputs, "inputs", ndim=2)
    z = unit_z(w, x)
    m, p = z.shape
    t = float(_check_ts(t)[0])
    delta = _check_unit_interval(delta, "delta")
    _check_choice(kind, "kind", KINDS)
    n_draws = _check_int(n_draws, "n_draws", minimum=2)
    seed = _check_int(seed, "seed", minimum=0)
    n_req = required_n(t, delta, m, p)
    if ns is None:
        ns = sorted({int(n_req * f) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2)} | {n_req})
    ns_a = _check_ns(ns)
    w32 = (w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float32)
    x32 = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    rng = np.random.default_rng([seed, 2])

    fail_any = np.zeros(len(ns_a))
    fail_cell = np.zeros((len(ns_a), m, p))
    max_err = np.zeros(len(ns_a))
    sq_err = np.zeros(len(ns_a))
    bounds = np.concatenate([[0], ns_a])
    with _single_thread_blas():
        for _ in tqdm(range(n_draws), desc=f"layer concentration {name}", disable=not progress):
            acc = np.zeros((m, p), dtype=np.float32)  # +-1 sums; exact in float32 below 2^24
            for i in range(len(ns_a)):
                rows = int(bounds[i + 1] - bounds[i])
                for start in range(0, rows, 4096):
                    g = _gaussian_or_rademacher(rng, kind, min(4096, rows - start), w.shape[1])
                    acc += _sign(g @ w32.T).T @ _sign(g @ x32.T)
                n = int(ns_a[i])
                err = np.abs((math.pi / (2.0 * n)) * acc.astype(np.float64) - z)
                cell_fail = err >= t
                fail_any[i] += cell_fail.any()
                fail_cell[i] += cell_fail
                max_err[i] += err.max()
                sq_err[i] += np.mean(err**2)
    mu = (2.0 / math.pi) * z
    theory_rms = (math.pi / 2.0) * np.sqrt(np.mean(1.0 - mu**2) / ns_a)
    return LayerConcentrationCheck(
        name=name,
        kind=kind,
        t=t,
        delta=delta,
        units=m,
        patches=p,
        features=int(w.shape[1]),
        seed=seed,
        n_draws=n_draws,
        ns=ns_a.tolist(),
        n_required=n_req,
        failure_any=(fail_any / n_draws).tolist(),
        union=union_bound(ns_a, t, m, p).tolist(),
        failure_unit_mean=(fail_cell.reshape(len(ns_a), -1).mean(axis=1) / n_draws).tolist(),
        failure_unit_max=(fail_cell.reshape(len(ns_a), -1).max(axis=1) / n_draws).tolist(),
        hoeffding=hoeffding_unit_bound(ns_a, t).tolist(),
        max_error_mean=(max_err / n_draws).tolist(),
        error_rms=np.sqrt(sq_err / n_draws).tolist(),
        theory_rms=theory_rms.tolist(),
        z_range=[float(z.min()), float(z.max())],
    )


# ============================================================================================ 3. Anderson & Berg
@dataclass
class AngleCheck:
    """angle(w, sign w) for i.i.d. entries, measured over ``n_draws`` vectors per dimension d (radians).

    ``limit`` = arccos(E|w| / sqrt(E w^2)); ``pred_mean`` / ``pred_sd`` from :func:`angle_delta_method`;
    ``sd_constant`` = measured sd * sqrt(d) (0.3522 predicted for Gaussian entries).
    """

    distribution: str
    seed: int
    n_draws: int
    dims: list[int]
    mean: list[float]
    sd: list[float]
    pred_mean: list[float]
    pred_sd: list[float]
    limit: float
    sd_constant: list[float]
    pred_sd_constant: float


def check_binarization_angle(
    distribution: str = "gaussian",
    dims: Sequence[int] = (3, 10, 27, 100, 300, 1000, 3000),
    n_draws: int = 4000,
    seed: int = 0,
) -> AngleCheck:
    """Measure the mean and spread of angle(w, sign w) against the limit and the delta-method prediction."""
    _check_choice(distribution, "distribution", DISTRIBUTIONS)
    dims_a = _check_ns(dims, "dims")
    n_draws = _check_int(n_draws, "n_draws", minimum=2)
    seed = _check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng([seed, 3])
    means, sds = [], []
    for d in dims_a:
        angles = binarization_angles(sample_weights(distribution, (n_draws, int(d)), rng))
        means.append(float(angles.mean()))
        sds.append(float(angles.std(ddof=1)))
    moments = distribution_moments(distribution)
    pred_mean, pred_sd = angle_delta_method(moments, dims_a)
    return AngleCheck(
        distribution=distribution,
        seed=seed,
        n_draws=n_draws,
        dims=dims_a.tolist(),
        mean=means,
        sd=sds,
        pred_mean=np.atleast_1d(pred_mean).tolist(),
        pred_sd=np.atleast_1d(pred_sd).tolist(),
        limit=math.acos(binarization_cosine_limit(distribution)),
        sd_constant=(np.array(sds) * np.sqrt(dims_a)).tolist(),
        pred_sd_constant=float(angle_delta_method(moments, 1.0)[1]),
    )


@dataclass
class RotationCheck:
    """Mean angle(x, sign x) with and without a random rotation R before binarising (radians).

    Rotated binarisation is theta_R(x) = R' sign(R x); since R is orthogonal, angle(x, theta_R(x)) =
    angle(Rx, sign Rx). ``plain_pred`` uses :func:`gaussian_binarization_cosine` on the coordinate scales in
    the standard basis (a large-d approximation: the ratio of expectations). ``rotated_pred`` is exact in
    distribution when averaged over Haar R: R x / ||x|| is then uniform on the sphere, i.e. distributed like a
    normalised Gaussian vector, so the rotated angle is the Gaussian-weight angle at dimension d (mean from
    :func:`angle_delta_method`). ``n_rotations`` independent R are drawn per d.
    """

    decay: float
    seed: int
    n_samples: int
    n_rotations: int
    dims: list[int]
    plain_mean: list[float]
    rotated_mean: list[float]
    plain_pred: list[float]
    rotated_pred: list[float]
    isotropic_limit: float


def check_rotation(
    dims: Sequence[int] = (10, 30, 100, 300, 500),
    decay: float = 0.1,
    n_samples: int = 500,
    seed: int = 0,
    n_rotations: int = 1,
) -> RotationCheck:
    """Anderson & Berg's exponential-covariance example: x_i ~ N(0, exp(2 decay (i - d/2))).

    The samples are split evenly across ``n_rotations`` independent Haar rotations per d. With one rotation per
    sample the rotated angles are exactly distributed as for Gaussian weights (see :class:`RotationCheck`).
    """
    dims_a = _check_ns(dims, "dims")
    n_samples = _check_int(n_samples, "n_samples", minimum=2)
    n_rotations = _check_int(n_rotations, "n_rotations")
    if n_rotations > n_samples:
        raise ValueError(f"n_rotations ({n_rotations}) must not exceed n_samples ({n_samples})")
    seed = _check_int(seed, "seed", minimum=0)
    decay = float(_check_finite(decay, "decay"))
    rng = np.random.default_rng([seed, 4])
    groups = np.array_split(np.arange(n_samples), n_rotations)
    plain, rotated, plain_pred, rotated_pred = [], [], [], []
    for d in dims_a:
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
        dims=dims_a.tolist(),
        plain_mean=plain,
        rotated_mean=rotated,
        plain_pred=plain_pred,
        rotated_pred=rotated_pred,
        isotropic_limit=math.acos(math.sqrt(2.0 / math.pi)),
    )


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
    features: int
    samples: int
    r: float
    r_unit_mean: float
    r_binary_both: float
    r_permuted: float
    isotropic: float
    angle_deg: float
    angle_sd_deg: float
    r_rotated: float | None = None
    angle_rotated_deg: float | None = None


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else float("nan")


def dot_product_correlation(
    weights: Any, activations: Any, seed: int | np.random.Generator = 0, name: str = "layer", rotate: bool = False
) -> DotProductCheck:
    """Correlation between continuous and binarised-weight dot products: weights (m, d), activations (S, d).

    ``rotate`` adds the same measurement for w_R = R' sign(R w) (a d x d QR: about a second at d = 3000).
    """
    w = _check_finite(weights, "weights", ndim=2)
    a = _check_finite(activations, "activations", ndim=2)
    if w.shape[1] != a.shape[1]:
        raise ValueError(f"weights have {w.shape[1]} features but activations have {a.shape[1]}")
    if a.shape[0] < 2:
        raise ValueError(f"activations need at least 2 samples, got {a.shape[0]}")
    rng = _rng(seed)
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
        features=int(w.shape[1]),
        samples=int(a.shape[0]),
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
