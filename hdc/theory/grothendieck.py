"""Grothendieck's identity, measured with the project's own projection and packed Hamming distances.

For unit u, v with rho = <u, v> and Gaussian rows g, ``E[sign(g.u) sign(g.v)] = mu = (2/pi) arcsin(rho)``, so
``mu_hat = (1/N) sum_i sign(g_i.u) sign(g_i.v)`` over N = ``dim`` rows has mean mu and exact variance
``(1 - mu^2) / N``. For Rademacher rows the identity is only approximate: the bias is measured, not assumed (it
is small for dense, delocalised vectors and can be large for sparse ones, where it is computed exactly by
enumeration).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from hdc._validate import Seed, as_generator, check_choice, check_int
from hdc.theory._common import check_finite, check_rhos, check_sizes, sign
from hdc.theory.formulas import KINDS, LAYOUTS, grothendieck_mean

__all__ = ["GrothendieckCheck", "check_grothendieck", "correlated_pair", "rademacher_exact_mean"]

_MAX_ENUMERATED_SUPPORT = 20  # 2^20 sign patterns: exact Rademacher expectations stay under a second


def correlated_pair(
    rho: float, in_features: int, seed: Seed = 0, layout: str = "dense"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit vectors u, v in R^in_features with <u, v> = rho exactly; float64 (in_features,) each.

    ``layout="dense"``: u is a normalised Gaussian vector (delocalised: sum u_i^4 ~ 3/in_features) and v mixes in
    an orthogonal Gaussian direction. ``layout="sparse"``: u = e_1, v = rho e_1 + sqrt(1 - rho^2) e_2, the
    worst case for Rademacher G.
    """
    rho = float(check_rhos(rho)[0])
    in_features = check_int(in_features, "in_features", minimum=2)
    check_choice(layout, LAYOUTS, "layout")
    if layout == "sparse":
        u, w = np.zeros(in_features), np.zeros(in_features)
        u[0], w[1] = 1.0, 1.0
    else:
        rng = as_generator(seed)
        u = rng.standard_normal(in_features)
        u /= np.linalg.norm(u)
        w = rng.standard_normal(in_features)
        w -= (w @ u) * u
        w /= np.linalg.norm(w)
    return u, rho * u + math.sqrt(max(0.0, 1.0 - rho * rho)) * w


def rademacher_exact_mean(u: Any, v: Any) -> float:
    """Exact E[sign(g.u) sign(g.v)] for Rademacher g (tie rule sign(0) = +1), by enumerating the support.

    ``u``, ``v``: (in_features,). Only coordinates where u or v is non-zero matter; at most 20 of them are
    allowed (2^20 patterns).
    """
    u = check_finite(u, "u", ndim=1)
    v = check_finite(v, "v", ndim=1)
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


@dataclass
class GrothendieckCheck:
    """E[sign(g.u) sign(g.v)] measured with :class:`hdc.projection.RandomProjection` against (2/pi) arcsin rho.

    Arrays are indexed [rho, dim]. ``mean`` is the average of mu_hat over ``n_draws`` independent G (streams
    0..n_draws-1 of ``seed``); ``std`` its spread across draws; ``theory_std`` = sqrt((1 - mu^2)/N);
    ``bias`` = mean at the largest code length minus the reference (``reference`` is (2/pi) arcsin rho, or for
    Rademacher G with sparse vectors the exact enumerated expectation, in ``exact_mean``).
    ``packed_agrees`` says whether the packed path (encode + hamming_distance) gave the same sums.
    """

    kind: str
    layout: str
    in_features: int
    seed: int
    n_draws: int
    rhos: list[float]
    dims: list[int]
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


def _sign_product_means(
    x: NDArray[np.float32],
    dims: NDArray[np.int64],
    kind: str,
    seed: int,
    n_draws: int,
    check_packed: bool,
    progress: bool,
    desc: str,
) -> tuple[NDArray[np.float64], bool | None]:
    """mu_hat for each pair of rows (2i, 2i+1) of ``x`` at every code length: float64 (pairs, len(dims), n_draws)."""
    from hdc.projection import RandomProjection

    dim_max = int(dims[-1])
    est = np.empty((x.shape[0] // 2, len(dims), n_draws))
    packed_agrees: bool | None = None
    for draw in tqdm(range(n_draws), desc=desc, disable=not progress):
        # G for a smaller code length is a prefix of G for a larger one: one projection serves every dim.
        proj = RandomProjection(x.shape[1], dim_max, kind=kind, seed=seed, stream=(draw,))
        s = sign(proj.project(x).numpy())
        prod = s[0::2] * s[1::2]  # (pairs, dim_max)
        csum = np.cumsum(prod, axis=1, dtype=np.float64)
        est[:, :, draw] = csum[:, dims - 1] / dims
        if check_packed and draw == 0:
            packed_agrees = _packed_sums_agree(proj, x, csum[:, -1], dim_max)
    return est, packed_agrees


def check_grothendieck(
    rhos: Sequence[float] = (-0.9, -0.5, 0.0, 0.3, 0.7, 0.95),
    dims: Sequence[int] = (64, 256, 1024, 4096, 16384),
    kind: str = "gaussian",
    in_features: int = 256,
    n_draws: int = 32,
    seed: int = 0,
    layout: str = "dense",
    check_packed: bool = True,
    progress: bool = False,
) -> GrothendieckCheck:
    """Measure mu_hat = (1/N) <sign(Gu), sign(Gv)> with the project's RandomProjection for nested code lengths.

    u, v are pairs in R^in_features with <u, v> = rho; G for a smaller code length is a prefix of G for a larger
    one, so one projection at max(dims) per draw serves every code length.
    Cost: n_draws * max(dims) * in_features random numbers.
    """
    rhos_a = check_rhos(rhos, "rhos")
    dims_a = check_sizes(dims, "dims")
    check_choice(kind, KINDS, "kind")
    check_choice(layout, LAYOUTS, "layout")
    in_features = check_int(in_features, "in_features", minimum=2)
    n_draws = check_int(n_draws, "n_draws", minimum=2)
    seed = check_int(seed, "seed", minimum=0)

    pairs = [
        correlated_pair(r, in_features, seed=np.random.default_rng([seed, i]), layout=layout)
        for i, r in enumerate(rhos_a)
    ]
    # Row 2i is u_i, row 2i+1 is v_i: one projection call per draw covers every pair.
    x = np.stack([vec for pair in pairs for vec in pair]).astype(np.float32)
    est, packed_agrees = _sign_product_means(
        x, dims_a, kind, seed, n_draws, check_packed, progress, f"grothendieck {kind}/{layout}"
    )
    mean = est.mean(axis=2)
    std = est.std(axis=2, ddof=1)
    mu = grothendieck_mean(rhos_a)
    theory_std = np.sqrt((1.0 - mu[:, None] ** 2) / dims_a[None, :])
    exact = None
    if kind == "rademacher" and layout == "sparse":
        exact = np.array([rademacher_exact_mean(u, v) for u, v in pairs])
    # The bias is estimated from all n_draws * max(dims) terms at the largest code length; its standard error
    # uses the measured across-draw spread.
    bias = mean[:, -1] - mu
    return GrothendieckCheck(
        kind=kind,
        layout=layout,
        in_features=in_features,
        seed=seed,
        n_draws=n_draws,
        rhos=rhos_a.tolist(),
        dims=dims_a.tolist(),
        theory_mean=mu.tolist(),
        mean=mean.tolist(),
        std=std.tolist(),
        theory_std=theory_std.tolist(),
        mc_se=(theory_std / math.sqrt(n_draws)).tolist(),
        bias=bias.tolist(),
        bias_se=(std[:, -1] / math.sqrt(n_draws)).tolist(),
        delocalisation=[float(max((u**4).sum(), (v**4).sum())) for u, v in pairs],
        exact_mean=None if exact is None else exact.tolist(),
        packed_agrees=packed_agrees,
    )


def _packed_sums_agree(proj: Any, x: NDArray[np.float32], sums: NDArray[np.float64], dim: int) -> bool:
    """Whether dim - 2 hamming(encode(u), encode(v)) equals the float sign-product sums for every pair."""
    from hdc.hamming import hamming_distance

    words = proj.encode(x)
    # method="numpy": exact, and avoids a JIT compile for a handful of pairs
    d_h = np.diagonal(hamming_distance(words[0::2], words[1::2], method="numpy")).astype(np.int64)
    return bool(np.array_equal(dim - 2 * d_h, sums.astype(np.int64)))
