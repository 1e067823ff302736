"""n-gram encoding of symbol sequences.

The n-gram starting at ``t`` is ``XOR_{j<n} permute(item[s[t + j]], n - 1 - j)`` (the oldest
symbol is shifted most, so order matters); a sequence is the majority bundle of its n-grams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc._validate import Seed, as_generator, check_int
from hdc.encoders._terms import tie_vector, xor_terms_majority
from hdc.ops import permute
from hdc.packed import _to_numpy, check_dim, validate_words

__all__ = ["ngram", "ngrams"]


def _as_sequence(seq: Any, n: int, n_symbols: int, which: str) -> np.ndarray:
    s = _to_numpy(seq, which)
    if s.ndim != 1:
        raise ValueError(f"{which} must be a 1-D sequence of symbol indices, got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"{which} must hold integer symbol indices, got dtype {s.dtype}")
    if s.shape[0] < n:
        raise ValueError(f"{which} has length {s.shape[0]}, shorter than n={n}")
    if s.min() < 0 or s.max() >= n_symbols:
        raise ValueError(f"{which} symbols must lie in [0, {n_symbols}), got [{s.min()}, {s.max()}]")
    return s.astype(np.int64)


def ngrams(
    sequences: Any,
    items: Any,
    dim: int,
    n: int = 3,
    *,
    ties: str = "random",
    seed: Seed = 0,
) -> NDArray[np.uint64]:
    """Encode each sequence as the bundle of its n-grams.

    Args:
        sequences: one 1-D int sequence, a 2-D int array ``(B, T)``, or a list of 1-D int
            sequences of any lengths ``>= n``.
        items: uint64 ``(K, W)`` symbol hypervectors (e.g. ``hdc.ops.random(K, dim, seed)``).
        dim: dimension ``D``.
        n: n-gram length (>= 1).
        ties: "random" (one seeded tie-break vector shared by all sequences) or
            "deterministic" (+1); ties only occur for an even number of n-grams.
        seed: int or Generator for the tie-break vector.

    Returns:
        uint64 ``(W,)`` for a single 1-D sequence, else ``(B, W)``.
    """
    dim = check_dim(dim)
    n = check_int(n, "n", minimum=1)
    table = validate_words(items, dim, name="items")
    if table.ndim != 2:
        raise ValueError(f"items must be 2-D (K, W), got shape {table.shape}")
    k = table.shape[0]
    single = False
    if isinstance(sequences, (list, tuple)):
        seqs: Sequence[Any] = sequences
    else:
        arr = _to_numpy(sequences, "sequences")
        if arr.ndim == 1:
            single = True
            seqs = [arr]
        elif arr.ndim == 2:
            seqs = list(arr)
        else:
            raise ValueError(f"sequences must be 1-D or 2-D, got shape {arr.shape}")
    if len(seqs) == 0:
        raise ValueError("sequences is empty")
    checked = [_as_sequence(s, n, k, f"sequences[{i}]") for i, s in enumerate(seqs)]
    # rows j*K .. (j+1)*K - 1 hold the items shifted for position j of the n-gram.
    rows = np.concatenate([permute(table, n - 1 - j, dim) for j in range(n)])
    offsets = np.arange(n, dtype=np.int64) * k
    terms = np.concatenate([np.lib.stride_tricks.sliding_window_view(s, n) + offsets for s in checked])
    counts = np.array([s.shape[0] - n + 1 for s in checked], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(counts)])
    tie = tie_vector(ties, as_generator(seed), table.shape[1], dim)
    out = xor_terms_majority(rows, terms, ptr, tie, dim)
    return out[0] if single else out


def ngram(symbols: Any, items: Any, dim: int) -> NDArray[np.uint64]:
    """One n-gram (no bundling): ``XOR_j permute(items[symbols[j]], n - 1 - j)``, uint64 ``(W,)``."""
    dim = check_dim(dim)
    table = validate_words(items, dim, name="items")
    s = _as_sequence(symbols, 1, table.shape[0], "symbols")
    n = s.shape[0]
    out = np.zeros(table.shape[1], dtype=np.uint64)
    for j, sym in enumerate(s):
        out ^= permute(table[sym], n - 1 - j, dim)
    return out
