"""Numba kernel for XOR-binding one codebook row per feature (private to hdc.classifiers)."""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

# Same threading-layer choice as hdc._popcount: numba's OpenMP layer stalls torch's threads.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

__all__ = ["xor_gather"]


@njit(parallel=True, cache=True, nogil=True)
def _xor_gather(table, index, out):  # pragma: no cover - compiled
    """out[b] = XOR over f of table[f, index[b, f]]; parallel over samples b.

    table: uint64 (F, L, W); index: int64 (B, F) in [0, L); out: uint64 (B, W).
    """
    n_samples, n_features = index.shape
    n_words = table.shape[2]
    for b in prange(n_samples):
        acc = out[b]
        for w in range(n_words):
            acc[w] = 0
        for f in range(n_features):
            row = table[f, index[b, f]]
            for w in range(n_words):
                acc[w] ^= row[w]


def xor_gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """XOR-bind one row of each feature's codebook per sample.

    Args:
        table: uint64 ``(F, L, W)``: feature ``f``'s codebook is ``table[f]``.
        index: integer ``(B, F)`` level indices in ``[0, L)`` (validated by the caller).

    Returns:
        uint64 ``(B, W)``; tail bits are zero when the table's are.
    """
    out = np.empty((index.shape[0], table.shape[2]), dtype=np.uint64)
    _xor_gather(np.ascontiguousarray(table), np.ascontiguousarray(index, dtype=np.int64), out)
    return out
