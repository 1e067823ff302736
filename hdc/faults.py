"""Bit-fault models for packed binary hypervectors: exact-rate bit flips and stuck-at faults.

A fault at rate ``p`` on codes of dimension ``D`` hits exactly ``k = fault_count(p, D) = floor(p * D + 1/2)``
distinct bit positions, sampled **without replacement**, so ``p`` is the fraction of bits actually corrupted
(``p = 0.5`` flips exactly half of every code and leaves no trace of the original in expectation). What happens
at a hit position depends on ``kind``:

- ``"flip"``: the bit is inverted;
- ``"stuck0"`` / ``"stuck1"``: the bit is forced to 0 / 1 (a hit on a bit that already has that value changes
  nothing, so about half of the hits are visible).

``scope`` says over what the ``k`` positions are drawn:

- ``"row"`` (default): every code (every index over the leading axes) gets exactly ``round(p * D)`` hits of its
  own. This is the default because the corruption of each code is then exact rather than exact only on average,
  each code's faults do not depend on which other codes share the array, and the same definition serves data
  codes that arrive in blocks of any size at inference time (:func:`row_fault_mask` with global row ids).
- ``"array"``: exactly ``round(p * R * D)`` hits spread uniformly over all ``R * D`` valid bits of the array, the
  "random bit errors in a memory" view; individual codes then get a hypergeometric number of hits.

Tail bits beyond ``D`` are never touched. Results are a pure function of ``(seed, stream, row id)``: no global
RNG is read or advanced.

Row scope draws its positions with Floyd's sampling algorithm from a SplitMix64 stream seeded by a hash of
``(key, row id)`` (a counter-based generator), so row ``i`` gets the same faults whether it is processed alone or
in a block of any size. Uniform integers below ``m`` are taken as ``x mod m`` from 64-bit outputs: the bias is
below ``m / 2**64`` (< 1e-12 for any realistic D).

``sampling="with_replacement"`` reproduces the protocol of the G-Net paper's code for comparison:
``floor(p * n_bits)`` positions are drawn *with* replacement and a position drawn more than once is hit once, so only
a fraction ``1 - exp(-p)`` of the bits is corrupted (0.393 at p = 0.5).

:mod:`hdc.classifiers.faults` applies the same fault model to the prototypes and encoded samples of the Hamming
classifiers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc._kernels.faults import GOLDEN, MIX1, MIX2, row_masks
from hdc._validate import Seed, as_generator, check_choice, check_int, check_number, check_seed
from hdc.packed import WORD_BITS, check_dim, n_words, pack_bits, validate_words

__all__ = [
    "FAULT_KINDS",
    "SAMPLINGS",
    "SCOPES",
    "BitFaults",
    "apply_fault_mask",
    "array_fault_mask",
    "fault_count",
    "fault_key",
    "inject_faults",
    "row_fault_mask",
]

FAULT_KINDS = ("flip", "stuck0", "stuck1")
SCOPES = ("row", "array")
SAMPLINGS = ("without_replacement", "with_replacement")

_U64 = np.uint64
_BACKENDS = ("auto", "numba", "numpy")


# --------------------------------------------------------------------------------------------- validation
def _check_p(p: Any) -> float:
    return check_number(p, "p", 0.0, 1.0)


def _check_stream(stream: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in stream)
    except (TypeError, ValueError):
        raise ValueError(f"stream must be a sequence of non-negative ints, got {stream!r}") from None
    if any(s < 0 for s in out):
        raise ValueError(f"stream must contain non-negative ints, got {out}")
    return out


def fault_count(p: float, n_bits: int, sampling: str = "without_replacement") -> int:
    """Number of hits for rate ``p`` over ``n_bits`` bits.

    ``floor(p * n_bits + 1/2)`` (round half up, never banker's rounding) without replacement; ``int(p * n_bits)``
    draws with replacement, which is what the paper's ``int(p * numel)`` does.
    """
    p = _check_p(p)
    n_bits = check_dim(n_bits, "n_bits")
    check_choice(sampling, SAMPLINGS, "sampling")
    if sampling == "with_replacement":
        return int(p * n_bits)  # exactly the paper's int(p * numel), float noise included
    # Rounding p * n_bits to 6 decimals first makes exact halves such as 0.35 * 10 = 3.4999999999999996 round up.
    return min(n_bits, math.floor(round(p * n_bits, 6) + 0.5))


def fault_key(seed: Seed, stream: Sequence[int] = ()) -> int:
    """A 64-bit key for the counter-based row sampler.

    An int ``seed`` gives ``SeedSequence(seed, spawn_key=stream)``'s first 64-bit word, so distinct streams (for
    example ``(target, layer, unit)``) are independent. A Generator is advanced once to draw the key.
    """
    stream = _check_stream(stream)
    seed = check_seed(seed)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    return int(np.random.SeedSequence(seed, spawn_key=stream).generate_state(1, np.uint64)[0])


# --------------------------------------------------------------------------------------------- row sampler
def _mix_np(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = (z ^ (z >> _U64(30))) * MIX1
    z = (z ^ (z >> _U64(27))) * MIX2
    return z ^ (z >> _U64(31))


def _row_masks_numpy(
    row_ids: NDArray[np.uint64], key: int, dim: int, k: int, replace: bool, out: NDArray[np.uint64]
) -> None:
    """Reference definition of the row sampler, vectorised over rows (:func:`hdc._kernels.faults.row_masks`
    computes the same bits).

    Row ``r`` uses the SplitMix64 stream ``state_j = s_r + j * golden``, output ``mix(state_j)``, seeded with
    ``s_r = mix(mix(row_id + golden) ^ key)``.
    """
    with np.errstate(over="ignore"):
        state = _mix_np(_mix_np(row_ids + GOLDEN) ^ _U64(key))
        rows = np.arange(len(row_ids))
        draws = range(k) if replace else range(dim - k, dim)
        for j in draws:
            state = state + GOLDEN
            t = _mix_np(state) % _U64(dim if replace else j + 1)
            if not replace:
                taken = (out[rows, t >> _U64(6)] >> (t & _U64(63))) & _U64(1)
                t = np.where(taken.astype(bool), _U64(j), t)
            out[rows, t >> _U64(6)] |= _U64(1) << (t & _U64(63))


def row_fault_mask(
    row_ids: Any, dim: int, k: int, key: int, *, replace: bool = False, backend: str = "auto"
) -> NDArray[np.uint64]:
    """Masks with ``k`` hit positions per row, a pure function of ``(key, row id)``.

    Args:
        row_ids: non-negative integer ids ``(R,)``; row ``r`` of the result depends only on ``row_ids[r]`` and
            ``key``, so the same id always gets the same mask whatever block it arrives in.
        dim: code dimension ``D``.
        k: hits per row, ``0 <= k <= D`` (draws per row when ``replace``).
        key: 64-bit key from :func:`fault_key`.
        replace: draw ``k`` positions with replacement (duplicates hit once) instead of ``k`` distinct ones.
        backend: "auto" (numba), "numba" or "numpy" (the vectorised reference; same bits).

    Returns:
        uint64 ``(R, ceil(D / 64))`` with exactly ``k`` set bits per row when ``replace`` is False; tail bits 0.
    """
    dim = check_dim(dim)
    ids = np.asarray(row_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"row_ids must be a 1-D integer array, got dtype {ids.dtype} shape {ids.shape}")
    if ids.size and ids.min() < 0:
        raise ValueError("row_ids must be non-negative")
    k = check_int(k, "k", minimum=0)
    if not replace and k > dim:
        raise ValueError(f"k={k} distinct positions cannot be drawn from dim={dim} bits")
    check_choice(backend, _BACKENDS, "backend")
    key = int(key)
    if not 0 <= key < 2**64:
        raise ValueError(f"key must be a 64-bit unsigned int, got {key}")
    ids = np.ascontiguousarray(ids.astype(np.uint64))
    invert = False
    if not replace and 2 * k > dim:
        # A uniform k-subset is the complement of a uniform (dim-k)-subset: draw the smaller one.
        k, invert = dim - k, True
    out = np.zeros((len(ids), n_words(dim)), dtype=np.uint64)
    if k and len(ids):
        if backend == "numpy":
            _row_masks_numpy(ids, key, dim, k, bool(replace), out)
        else:
            row_masks(ids, _U64(key), np.int64(dim), np.int64(k), bool(replace), out)
    if invert:
        np.invert(out, out=out)
        if dim % WORD_BITS:
            out[:, -1] &= _U64((1 << (dim % WORD_BITS)) - 1)
    return out


def array_fault_mask(
    n_rows: int, dim: int, k: int, rng: np.random.Generator, *, replace: bool = False
) -> NDArray[np.uint64]:
    """A mask ``(n_rows, ceil(D / 64))`` with ``k`` hits spread over all ``n_rows * D`` valid bits.

    Without ``replace`` the ``k`` positions are distinct (``rng.choice(..., replace=False)``); with it, ``k``
    draws with replacement, duplicates hitting once.
    """
    dim = check_dim(dim)
    n_rows = check_dim(n_rows, "n_rows")
    total = n_rows * dim
    if not replace and k > total:
        raise ValueError(f"k={k} distinct positions cannot be drawn from {total} bits")
    bits = np.zeros(total, dtype=bool)
    if k:
        pos = rng.integers(0, total, size=k) if replace else rng.choice(total, size=k, replace=False)
        bits[pos] = True
    return pack_bits(bits.reshape(n_rows, dim))


def apply_fault_mask(words: NDArray[np.uint64], mask: NDArray[np.uint64], kind: str = "flip") -> NDArray[np.uint64]:
    """A new array: ``words ^ mask`` (flip), ``words & ~mask`` (stuck0) or ``words | mask`` (stuck1), all uint64
    of the same shape."""
    check_choice(kind, FAULT_KINDS, "kind")
    if words.shape != mask.shape:
        raise ValueError(f"mask shape {mask.shape} does not match words shape {words.shape}")
    if kind == "flip":
        return words ^ mask
    if kind == "stuck0":
        return words & ~mask
    return words | mask


# --------------------------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class BitFaults:
    """A fault model: rate ``p``, ``kind`` ("flip", "stuck0", "stuck1"), ``scope`` ("row", "array"), ``sampling``.

    ``BitFaults(0.1).apply(words, dim, seed)`` flips exactly ``round(0.1 * dim)`` distinct bits of every code.
    """

    p: float
    kind: str = "flip"
    scope: str = "row"
    sampling: str = "without_replacement"

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", _check_p(self.p))
        check_choice(self.kind, FAULT_KINDS, "kind")
        check_choice(self.scope, SCOPES, "scope")
        check_choice(self.sampling, SAMPLINGS, "sampling")

    @property
    def replace(self) -> bool:
        return self.sampling == "with_replacement"

    def count(self, n_bits: int) -> int:
        """Hits (distinct positions, or draws with replacement) over ``n_bits`` bits."""
        return fault_count(self.p, n_bits, self.sampling)

    def mask(
        self, shape: tuple[int, ...], dim: int, seed: Seed, stream: Sequence[int] = (), row_ids: Any = None
    ) -> NDArray[np.uint64]:
        """The hit mask for codes of batch shape ``shape`` (words shape ``(*shape, ceil(dim / 64))``).

        ``row_ids`` (row scope only) overrides the default ids ``0 .. prod(shape) - 1`` of the flattened codes.
        """
        dim = check_dim(dim)
        rows = math.prod(shape)
        if rows == 0:
            raise ValueError(f"no codes to fault (batch shape {shape})")
        if self.scope == "row":
            ids = np.arange(rows, dtype=np.int64) if row_ids is None else np.asarray(row_ids)
            if ids.shape != (rows,):
                raise ValueError(f"row_ids must have shape ({rows},), got {ids.shape}")
            mask = row_fault_mask(ids, dim, self.count(dim), fault_key(seed, stream), replace=self.replace)
        else:
            if row_ids is not None:
                raise ValueError("row_ids only apply to scope='row'")
            rng = as_generator(seed, "seed", _check_stream(stream))
            mask = array_fault_mask(rows, dim, self.count(rows * dim), rng, replace=self.replace)
        return mask.reshape(*shape, n_words(dim))

    def apply(
        self, words: Any, dim: int, seed: Seed, stream: Sequence[int] = (), row_ids: Any = None
    ) -> NDArray[np.uint64]:
        """Faulty copy of packed codes ``words`` uint64 ``(..., ceil(dim / 64))``; the input is never modified.

        Args:
            words: packed codes with zero tail bits; a single code ``(W,)`` is one row.
            dim: true dimension ``D``.
            seed: int (with ``stream``: ``SeedSequence(seed, spawn_key=stream)``) or a Generator (advanced).
            stream: ints selecting an independent stream, e.g. ``(layer,)``.
            row_ids: see :meth:`mask`.

        Returns:
            uint64 array of the same shape; tail bits stay 0.
        """
        arr = validate_words(words, dim)
        if self.p == 0.0:
            return arr.copy()
        return apply_fault_mask(arr, self.mask(arr.shape[:-1], dim, seed, stream, row_ids), self.kind)


def inject_faults(
    words: Any,
    dim: int,
    p: float,
    seed: Seed,
    *,
    kind: str = "flip",
    scope: str = "row",
    sampling: str = "without_replacement",
    stream: Sequence[int] = (),
) -> NDArray[np.uint64]:
    """Functional form of :meth:`BitFaults.apply`: a faulty copy of ``words`` (uint64 ``(..., ceil(dim/64))``)."""
    return BitFaults(p, kind, scope, sampling).apply(words, dim, seed, stream)
