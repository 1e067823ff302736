"""Numba kernel that XOR-binds one codebook row per feature (the kernel encoder of :mod:`hdc.encoders.features`)."""

from __future__ import annotations

import numpy as np
from numba import prange
from numpy.typing import NDArray

from hdc._kernels.runtime import jit

__all__ = ["xor_gather"]


# Below this many word operations the serial kernel is used: waking threads costs more.
_SERIAL_WORDS = 1 << 22


@jit()
def _xor_one(delta, ref, base, index, out, b):  # pragma: no cover - compiled
    acc = out[b]
    for w in range(delta.shape[2]):
        acc[w] = base[w]
    for f in range(index.shape[1]):
        level = index[b, f]
        if level != ref[f]:
            row = delta[f, level]
            for w in range(delta.shape[2]):
                acc[w] ^= row[w]


@jit(parallel=True)
def _xor_gather(delta, ref, base, index, out):  # pragma: no cover - compiled
    """out[b] = base XOR (XOR over f with index[b, f] != ref[f] of delta[f, index[b, f]]).

    delta: uint64 (F, L, W); ref: int64 (F,); base: uint64 (W,); index: int64 (B, F);
    out: uint64 (B, W).  Parallel over samples.
    """
    for b in prange(index.shape[0]):
        _xor_one(delta, ref, base, index, out, b)


@jit()
def _xor_gather_serial(delta, ref, base, index, out):  # pragma: no cover - compiled
    for b in range(index.shape[0]):
        _xor_one(delta, ref, base, index, out, b)


def xor_gather(
    delta: NDArray[np.uint64], ref: NDArray[np.integer], base: NDArray[np.uint64], index: NDArray[np.integer]
) -> NDArray[np.uint64]:
    """XOR-bind one codebook row per feature, skipping features at their reference level.

    With codebooks ``T`` ``(F, L, W)`` and any reference levels ``ref`` ``(F,)``, pass
    ``delta[f, l] = T[f, l] ^ T[f, ref[f]]`` and ``base = XOR_f T[f, ref[f]]``: the result is
    ``XOR_f T[f, index[b, f]]`` exactly, but features at their reference level (the background
    pixels of an image, say) cost nothing.

    Args:
        delta: uint64 ``(F, L, W)``; ref: int ``(F,)``; base: uint64 ``(W,)``;
        index: integer ``(B, F)`` level indices in ``[0, L)`` (validated by the caller).

    Returns:
        uint64 ``(B, W)``; tail bits are zero when the codebooks' are.
    """
    out = np.empty((index.shape[0], delta.shape[2]), dtype=np.uint64)
    kernel = _xor_gather_serial if index.size * delta.shape[2] < _SERIAL_WORDS else _xor_gather
    kernel(
        np.ascontiguousarray(delta),
        np.ascontiguousarray(ref, dtype=np.int64),
        np.ascontiguousarray(base),
        np.ascontiguousarray(index, dtype=np.int64),
        out,
    )
    return out
