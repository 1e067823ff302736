"""Thermometer coding of real features into bits: ``k`` thresholds per feature, bit ``j`` of feature ``f`` is
``x[:, f] > thresholds[f, j]``.

Thresholds are uniform over a value range (``t_j = lo + (j + 1) (hi - lo) / (k + 1)``, e.g. CIFAR-10's
``x > (j + 1) / 4`` for ``k = 3`` in DiffLogic) or per-feature quantiles of training data (``fit``). Output bit
``f * k + j`` (feature-major), as float {0, 1} for training (torch) or packed uint64 for the engines: along the
features (one row of ``ceil(F k / 64)`` words per sample, the layout of :mod:`hdc.packed`) or along the samples
(``(F k, ceil(B / 64))``: bit ``i`` of word ``w`` is sample ``64 w + i``, the bit-parallel layout of the logic
engine).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from hdc._validate import check_choice, check_int, check_number
from hdc.packed import pack_bits

__all__ = ["THRESHOLD_METHODS", "ThermometerEncoder"]

THRESHOLD_METHODS = ("uniform", "quantile")


def _as_float32(x: Any, name: str = "x") -> NDArray[np.float32]:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, in_features), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


class ThermometerEncoder:
    """``k`` thresholds per feature; ``encode`` gives ``in_features * k`` bits per sample.

    Args:
        k: thresholds per feature (``k = 1`` with the uniform method is binarisation at the range's midpoint).
        method: ``"uniform"`` (usable without ``fit``; one set of thresholds for every feature) or
            ``"quantile"`` (``fit`` sets per-feature thresholds at the ``(j + 1) / (k + 1)`` quantiles).
        value_range: ``(lo, hi)`` for the uniform thresholds. Without it the range is [0, 1] and inputs outside
            [0, 1] raise ``ValueError``; with it (or with quantile thresholds) any finite input is accepted
            (values beyond the thresholds saturate).

    Attributes:
        thresholds: float32 ``(in_features, k)``, or ``(1, k)`` for an unfitted uniform encoder (broadcast).
        in_features: ``None`` until fitted (uniform) or the fitted width.
    """

    def __init__(self, k: int, method: str = "uniform", value_range: tuple[float, float] | None = None) -> None:
        self.k = check_int(k, "k", 1)
        self.method = check_choice(method, THRESHOLD_METHODS, "threshold method")
        # Uniform thresholds assume [0, 1] unless told otherwise; quantile thresholds follow the data's range.
        self.strict_range = value_range is None and self.method == "uniform"
        lo, hi = (0.0, 1.0) if value_range is None else value_range
        lo, hi = check_number(lo, "value_range[0]"), check_number(hi, "value_range[1]")
        if not hi > lo:
            raise ValueError(f"value_range must satisfy lo < hi, got ({lo}, {hi})")
        self.value_range = (lo, hi)
        self.in_features: int | None = None
        self.thresholds: NDArray[np.float32] | None = None
        if method == "uniform":
            steps = np.arange(1, self.k + 1, dtype=np.float64) / (self.k + 1)
            self.thresholds = (lo + steps * (hi - lo)).astype(np.float32)[None, :]

    @classmethod
    def from_thresholds(
        cls, thresholds: ArrayLike, value_range: tuple[float, float] | None = None
    ) -> ThermometerEncoder:
        """An encoder with given float32 thresholds ``(in_features, k)`` (or ``(1, k)``, shared)."""
        t = _as_float32(thresholds, "thresholds")
        enc = cls(t.shape[1], "uniform", value_range)
        enc.method = "given"
        enc.thresholds = t
        enc.in_features = t.shape[0] if t.shape[0] > 1 else None
        return enc

    @property
    def out_features(self) -> int | None:
        """``in_features * k`` once the width is known."""
        return None if self.in_features is None else self.in_features * self.k

    def fit(self, x: ArrayLike | torch.Tensor) -> ThermometerEncoder:
        """Record the width (and, for ``quantile``, the per-feature thresholds) from training data (n, F)."""
        arr = self._check(x, fitting=True)
        self.in_features = arr.shape[1]
        if self.method == "quantile":
            q = np.arange(1, self.k + 1, dtype=np.float64) / (self.k + 1)
            self.thresholds = np.quantile(arr.astype(np.float64), q, axis=0).T.astype(np.float32)
        return self

    def _check(self, x: Any, fitting: bool = False) -> NDArray[np.float32]:
        arr = _as_float32(x)
        if self.strict_range and arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(
                f"inputs must lie in [0, 1] (got [{arr.min()}, {arr.max()}]); scale them, or pass "
                "value_range=(lo, hi) to the encoder"
            )
        if not fitting:
            if self.thresholds is None:
                raise ValueError("quantile ThermometerEncoder is not fitted; call fit(x_train) first")
            if self.in_features is not None and arr.shape[1] != self.in_features:
                raise ValueError(f"expected {self.in_features} features, got {arr.shape[1]}")
        return arr

    def bits(self, x: ArrayLike | torch.Tensor) -> NDArray[np.bool_]:
        """bool ``(n, in_features * k)``, feature-major (bit ``f k + j`` = ``x[:, f] > t[f, j]``)."""
        arr = self._check(x)
        thresholds = self.thresholds
        assert thresholds is not None  # _check raised otherwise
        return (arr[:, :, None] > thresholds[None, :, :]).reshape(len(arr), -1)

    def encode(self, x: ArrayLike | torch.Tensor) -> torch.Tensor:
        """float32 torch ``(n, in_features * k)`` with values in {0, 1}, for training."""
        return torch.from_numpy(self.bits(x).astype(np.float32))

    def encode_packed(self, x: ArrayLike | torch.Tensor, layout: str = "features") -> NDArray[np.uint64]:
        """Packed bits: ``layout="features"`` -> ``(n, ceil(F k / 64))`` (one row per sample, as
        :func:`hdc.packed.pack_bits`); ``layout="samples"`` -> ``(F k, ceil(n / 64))`` (bit-parallel over
        samples; tail bits of the last word are zero)."""
        check_choice(layout, ("features", "samples"), "layout")
        b = self.bits(x)
        return pack_bits(b) if layout == "features" else pack_bits(np.ascontiguousarray(b.T))

    def __repr__(self) -> str:
        return (
            f"ThermometerEncoder(k={self.k}, method={self.method!r}, value_range={self.value_range}, "
            f"in_features={self.in_features})"
        )
