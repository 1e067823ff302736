"""Numba kernel of the counter-based row fault sampler of :mod:`hdc.faults`.

The definition of the sampler (and its vectorised numpy reference, which gives the same bits) is in
:func:`hdc.faults.row_fault_mask`; this module only holds the compiled loop and the SplitMix64 constants it shares
with the reference.
"""

from __future__ import annotations

import numpy as np

from hdc._kernels.runtime import jit

__all__ = ["GOLDEN", "MIX1", "MIX2", "row_masks"]

_U64 = np.uint64
# SplitMix64 (Steele, Lea and Flood 2014): the increment and the two multipliers of its output mix.
GOLDEN = _U64(0x9E3779B97F4A7C15)
MIX1 = _U64(0xBF58476D1CE4E5B9)
MIX2 = _U64(0x94D049BB133111EB)


@jit(inline="always")
def _mix(z):  # pragma: no cover - compiled
    z = (z ^ (z >> _U64(30))) * MIX1
    z = (z ^ (z >> _U64(27))) * MIX2
    return z ^ (z >> _U64(31))


@jit()
def row_masks(row_ids, key, dim, k, replace, out):  # pragma: no cover - compiled
    """``out[r] |= k`` positions of row ``r``; ``out`` uint64 ``(R, n_words(dim))`` must be zero on entry.

    row_ids: uint64 ``(R,)``; key: uint64; dim, k: int64 (``k <= dim`` unless ``replace``); replace: bool.
    """
    for r in range(row_ids.shape[0]):
        state = _mix(_mix(row_ids[r] + GOLDEN) ^ key)
        if replace:
            for _ in range(k):
                state += GOLDEN
                t = _mix(state) % _U64(dim)
                out[r, t >> _U64(6)] |= _U64(1) << (t & _U64(63))
        else:
            # Floyd: for j = dim-k .. dim-1 draw t in [0, j]; take t unless already taken, else take j.
            for j in range(dim - k, dim):
                state += GOLDEN
                t = _mix(state) % _U64(j + 1)
                if (out[r, t >> _U64(6)] >> (t & _U64(63))) & _U64(1):
                    t = _U64(j)
                out[r, t >> _U64(6)] |= _U64(1) << (t & _U64(63))
