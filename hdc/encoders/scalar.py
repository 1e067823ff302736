"""Scalar codebooks (level, thermometer, circular) and the value -> level encoder.

Each codebook is uint64 ``(levels, n_words(dim))``.  Hamming distances between levels are set
by construction (exact up to integer rounding of the flip counts):

* level:       ``H(i, j) = |c_i - c_j|`` with ``c_j = round(j * floor(D/2) / (L - 1))``, so the
               first and last levels are orthogonal (``H = D/2``);
* thermometer: level ``j`` has ``round(j * D / (L - 1))`` one bits, so ``H(0, L-1) = D``;
* circular:    ``H(i, j) ~= D * min(|i - j|, L - |i - j|) / L`` (to within 2 bits):
               neighbours on the circle are close, opposite points orthogonal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc._validate import Seed, as_generator, check_choice, check_int, check_number
from hdc.packed import _to_numpy, check_dim, pack_bits

__all__ = [
    "KINDS",
    "ScalarEncoder",
    "circular_codebook",
    "level_codebook",
    "thermometer_codebook",
    "value_to_level",
]

KINDS = ("level", "thermometer", "circular")


def _check_levels(levels: Any) -> int:
    return check_int(levels, "levels", minimum=2)


def _round_div(num: np.ndarray, den: int) -> np.ndarray:
    """Integer round-half-up of num / den for non-negative integers."""
    return (2 * num + den) // (2 * den)


def level_codebook(levels: int, dim: int, seed: Seed = 0) -> NDArray[np.uint64]:
    """Level hypervectors: each step flips a fresh block of a random base vector.

    Level ``j`` is the base with the first ``c_j`` positions of a random permutation flipped,
    ``c_j = round(j * floor(D/2) / (L - 1))``.  Returns uint64 ``(levels, n_words(dim))``.
    """
    levels = _check_levels(levels)
    dim = check_dim(dim)
    rng = as_generator(seed)
    base = rng.integers(0, 2, size=dim).astype(np.bool_)
    rank = np.empty(dim, dtype=np.int64)
    rank[rng.permutation(dim)] = np.arange(dim)
    flips = _round_div(np.arange(levels, dtype=np.int64) * (dim // 2), levels - 1)
    bits = base[None, :] ^ (rank[None, :] < flips[:, None])
    return pack_bits(bits)


def thermometer_codebook(levels: int, dim: int, seed: Seed | None = None) -> NDArray[np.uint64]:
    """Thermometer hypervectors: level ``j`` has ``round(j * D / (L - 1))`` one bits.

    With ``seed=None`` the ones fill positions from 0 upwards (deterministic); with a seed they
    fill positions in a random order, which avoids structure that permutation (n-grams) or
    word-aligned effects could pick up.  Returns uint64 ``(levels, n_words(dim))``.
    """
    levels = _check_levels(levels)
    dim = check_dim(dim)
    if seed is None:
        rank = np.arange(dim, dtype=np.int64)
    else:
        rank = np.empty(dim, dtype=np.int64)
        rank[as_generator(seed).permutation(dim)] = np.arange(dim)
    ones = _round_div(np.arange(levels, dtype=np.int64) * dim, levels - 1)
    return pack_bits(rank[None, :] < ones[:, None])


def circular_codebook(levels: int, dim: int, seed: Seed = 0) -> NDArray[np.uint64]:
    """Circular hypervectors for ``levels`` equally spaced angles (any ``levels >= 2``).

    A random half of the positions (``R = floor(D/2)``) get evenly spaced phases
    ``u_k = k / R``; position ``k`` of level ``j`` is the base bit XOR
    ``[(j / L - u_k) mod 1 < 1/2]``; the other positions keep the base bit.  Two levels a
    circular distance ``delta`` (fraction of the circle, <= 1/2) apart differ on the phases of
    two arcs of length ``delta``: ``H ~= 2 * delta * R = delta * D``.
    Returns uint64 ``(levels, n_words(dim))``.
    """
    levels = _check_levels(levels)
    dim = check_dim(dim)
    rng = as_generator(seed)
    base = rng.integers(0, 2, size=dim).astype(np.bool_)
    perm = rng.permutation(dim)
    r = dim // 2
    bits = np.broadcast_to(base, (levels, dim)).copy()
    if r:
        j = np.arange(levels, dtype=np.int64)[:, None]
        k = np.arange(r, dtype=np.int64)[None, :]
        # Exact integer form of ((j / L - k / R) mod 1) < 1/2.
        in_arc = 2 * np.mod(j * r - k * levels, levels * r) < levels * r
        bits[:, perm[:r]] ^= in_arc
    return pack_bits(bits)


def _finite_values(values: Any) -> np.ndarray:
    arr = _to_numpy(values, "values")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"values must be real numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"values is empty (shape {arr.shape})")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError("values contain NaN or inf")
    return arr


def value_to_level(values: Any, levels: int, low: float, high: float, *, circular: bool = False) -> np.ndarray:
    """Map values to level indices (int64, same shape as ``values``).

    Linear: ``round((v - low) / (high - low) * (L - 1))`` clipped to ``[0, L - 1]``.
    Circular: the period is ``high - low``; ``round((v - low) / (high - low) * L) mod L``.
    """
    levels = _check_levels(levels)
    low, high = _check_range(low, high)
    v = _finite_values(values)
    # Overflow to inf is harmless here: a linear level is clipped, a circular one refused just below.
    with np.errstate(over="ignore"):
        t = (v - low) / (high - low)
        scaled = np.rint(t * (levels if circular else levels - 1))
    if circular:
        # Beyond 2**62 the int64 cast would wrap (or overflow to inf first): a silently wrong level.
        if not np.all(np.abs(scaled) < _MAX_SCALED):
            raise ValueError(
                f"values: {np.max(np.abs(v)):g} is too far outside [low, high) = [{low:g}, {high:g}) to wrap onto "
                f"{levels} circular levels (|(v - low) / (high - low) * levels| must stay below 2**62)"
            )
        return np.mod(scaled.astype(np.int64), levels)
    return np.clip(scaled, 0, levels - 1).astype(np.int64)


# The largest |scaled value| the circular encoder casts to int64 (well inside the int64 range, and finite).
_MAX_SCALED = float(2**62)


def _check_range(low: Any, high: Any) -> tuple[float, float]:
    """(low, high) as floats: finite, low < high, and a finite width ``high - low`` (else every value would map to
    level 0)."""
    low_f, high_f = check_number(low, "low"), check_number(high, "high")
    if not high_f > low_f:
        raise ValueError(f"need low < high, got low={low_f}, high={high_f}")
    if not np.isfinite(high_f - low_f):
        raise ValueError(f"high - low overflows (low={low_f:g}, high={high_f:g}); the range must have a finite width")
    return low_f, high_f


class ScalarEncoder:
    """Encode real values as codebook hypervectors.

    Args:
        levels: number of quantisation levels (>= 2).
        dim: hypervector dimension.
        low: lower end of the value range (the period starts here for ``kind="circular"``); values outside
            are clipped (linear kinds) or wrapped (circular).
        high: upper end of the value range.
        kind: "level", "thermometer" or "circular".
        seed: int or Generator for the codebook.
    """

    def __init__(
        self,
        levels: int,
        dim: int,
        low: float = 0.0,
        high: float = 1.0,
        *,
        kind: str = "level",
        seed: Seed = 0,
    ) -> None:
        check_choice(kind, KINDS, "kind")
        self.levels = _check_levels(levels)
        self.dim = check_dim(dim)
        self.low, self.high = _check_range(low, high)
        self.kind = kind
        maker = {"level": level_codebook, "thermometer": thermometer_codebook, "circular": circular_codebook}[kind]
        self.codebook = maker(self.levels, self.dim, seed)

    def index(self, values: Any) -> NDArray[np.int64]:
        """Level index of each value: int64, same shape as ``values``."""
        return value_to_level(values, self.levels, self.low, self.high, circular=self.kind == "circular")

    def encode(self, values: Any) -> NDArray[np.uint64]:
        """uint64 ``(*values.shape, n_words(dim))``."""
        return self.codebook[self.index(values)]

    def __repr__(self) -> str:
        return (
            f"ScalarEncoder(levels={self.levels}, dim={self.dim}, low={self.low}, high={self.high}, kind={self.kind!r})"
        )
