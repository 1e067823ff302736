"""Shared kernel call: majority over groups of XOR-products of table rows (private)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hdc._validate import check_choice
from hdc.ops import TIES, _tie_words
from hdc.packed import clear_tail


def tie_vector(ties: str, rng: np.random.Generator, n_words_: int, dim: int) -> NDArray[np.uint64]:
    """The tie-break hypervector shared by every encoded sample: uint64 (n_words_,), all +1 for "deterministic".

    One fixed vector (not one per sample) so that a sample's code never depends on which batch
    it was encoded in.
    """
    return _tie_words(check_choice(ties, TIES, "ties"), rng, (n_words_,), dim)


def xor_terms_majority(
    rows: np.ndarray, idx: np.ndarray, group_ptr: np.ndarray, tie: np.ndarray, dim: int
) -> NDArray[np.uint64]:
    """out[g] = majority over t in group g of XOR_j rows[idx[t, j]]; ties take ``tie``'s bit.

    rows: uint64 (R, W); idx: int64 (T, J); group_ptr: int64 (G + 1,) non-decreasing with
    non-empty groups; tie: uint64 (W,).  Returns uint64 (G, W).
    """
    from hdc._kernels.popcount import xor_gather_majority

    groups = group_ptr.shape[0] - 1
    sizes = np.diff(group_ptr)
    if groups < 1 or np.any(sizes < 1):
        raise ValueError("every group needs at least one term")
    w = rows.shape[1]
    out = np.empty((groups, w), dtype=np.uint64)
    tie_words = np.ascontiguousarray(np.broadcast_to(tie, (groups, w)))
    n_planes = int(sizes.max()).bit_length()
    xor_gather_majority(
        np.ascontiguousarray(rows),
        np.ascontiguousarray(idx, dtype=np.int64),
        np.ascontiguousarray(group_ptr, dtype=np.int64),
        tie_words,
        n_planes,
        out,
    )
    return clear_tail(out, dim)
