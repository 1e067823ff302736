"""The theory behind sign embeddings and binary networks, as formulas and as measurements.

Three families of claims, each with a closed form (or bound) and a Monte Carlo measurement that returns a
dataclass holding both, so a report can draw the measured curve beside the formula:

1. Grothendieck's identity (:mod:`hdc.theory.grothendieck`). For unit u, v with rho = <u, v> and Gaussian rows
   g, ``E[sign(g.u) sign(g.v)] = mu = (2/pi) arcsin(rho)``, so ``mu_hat`` over N rows has mean mu and exact
   variance ``(1 - mu^2) / N``, and ``z_hat = (pi/2) mu_hat`` is unbiased for ``z = arcsin(rho)``.
2. Concentration (:mod:`hdc.theory.concentration`). Hoeffding gives ``P(|z_hat - z| >= t) <= 2 exp(-2 N t^2 /
   pi^2)`` per unit; a union bound over m units and P patches multiplies by m P. Inverting it:
   ``N >= pi^2 / (2 t^2) * log(2 m P / delta)`` (:func:`required_n`).
3. Anderson & Berg (:mod:`hdc.theory.angles`). The angle between w and sign(w) tends to
   ``arccos(E|w| / sqrt(E w^2))``: 37.1 deg (Gaussian), 30 deg (uniform), 45 deg (Laplace).

The closed forms live in :mod:`hdc.theory.formulas`. Report writing (markdown, JSON, PNG) lives in
:mod:`hdc.theory.report` and :mod:`hdc.theory.plots`, the synthetic suite in :mod:`hdc.theory.synthetic`
(``python -m hdc.theory --out DIR``); they are not imported here, so measuring needs no matplotlib.

Vocabulary: ``dim`` / ``dims`` is the code length N (rows of G); ``in_features`` is the length of the vectors
being embedded or binarised (the paper's d); counts are ``n_draws``, ``n_samples``, ``n_rotations``. Every random
function takes ``seed`` (an int or a ``numpy.random.Generator``); nothing touches global RNG state. Angles are in
radians unless a name says ``_deg``.
"""

from __future__ import annotations

from hdc.theory.angles import (
    AngleCheck,
    DotProductCheck,
    RotationCheck,
    binarization_angles,
    check_binarization_angle,
    check_rotation,
    dot_product_correlation,
    exponential_covariance_scales,
    random_rotation,
    sample_moments,
    sample_weights,
)
from hdc.theory.concentration import (
    LayerConcentrationCheck,
    UnitConcentrationCheck,
    check_layer_concentration,
    check_unit_concentration,
)
from hdc.theory.formulas import (
    DISTRIBUTIONS,
    KINDS,
    LAYOUTS,
    angle_delta_method,
    binarization_cosine_limit,
    distribution_moments,
    exact_unit_tail,
    gaussian_binarization_cosine,
    grothendieck_mean,
    hoeffding_unit_bound,
    required_n,
    sign_product_variance,
    union_bound,
    unit_z,
    zhat_std,
)
from hdc.theory.grothendieck import (
    GrothendieckCheck,
    check_grothendieck,
    correlated_pair,
    rademacher_exact_mean,
)

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
