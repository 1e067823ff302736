"""Record (key-value) encoding: ``bundle_f(key_f XOR level(x_f))``.

Bundling uses bit-sliced counters over packed words (hdc._kernels.popcount.xor_gather_majority), so a
batch never materialises a (B, F, D) tensor and each feature costs ~3 log2(F) word operations
per word instead of 64 per word when unpacked.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm.auto import tqdm

from hdc._linalg import chunks
from hdc._validate import Seed, as_generator, check_choice, check_int
from hdc.encoders._terms import tie_vector, xor_terms_majority
from hdc.encoders.scalar import KINDS, ScalarEncoder
from hdc.ops import random
from hdc.packed import _to_numpy, check_dim, validate_words

__all__ = ["RecordEncoder", "encode_records"]


def encode_records(
    level_index: Any,
    keys: Any,
    codebook: Any,
    dim: int,
    *,
    tie: Any = None,
) -> NDArray[np.uint64]:
    """Bundle of ``keys[f] XOR codebook[level_index[b, f]]`` over features ``f``.

    Args:
        level_index: int ``(B, F)`` indices into ``codebook``.
        keys: uint64 ``(F, W)`` one key hypervector per feature.
        codebook: uint64 ``(L, W)`` value hypervectors.
        dim: dimension ``D``.
        tie: uint64 ``(W,)`` bits used where the vote is tied (even F); default all ones (+1).

    Returns:
        uint64 ``(B, W)``.
    """
    dim = check_dim(dim)
    k = validate_words(keys, dim, name="keys")
    cb = validate_words(codebook, dim, name="codebook")
    if k.ndim != 2 or cb.ndim != 2:
        raise ValueError(f"keys and codebook must be 2-D, got {k.shape} and {cb.shape}")
    idx = _to_numpy(level_index, "level_index")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"level_index must be integers, got dtype {idx.dtype}")
    if idx.ndim != 2 or idx.size == 0:
        raise ValueError(f"level_index must be a non-empty 2-D (B, F) array, got {idx.shape}")
    n_samples, f = idx.shape
    if f != k.shape[0]:
        raise ValueError(f"level_index has {f} features but there are {k.shape[0]} keys")
    if idx.min() < 0 or idx.max() >= cb.shape[0]:
        raise ValueError(f"level_index must lie in [0, {cb.shape[0]}), got [{idx.min()}, {idx.max()}]")
    if tie is None:
        tie = tie_vector("deterministic", np.random.default_rng(0), k.shape[1], dim)
    else:
        tie = validate_words(tie, dim, name="tie")
        if tie.shape != (k.shape[1],):
            raise ValueError(f"tie must be one packed vector of shape ({k.shape[1]},), got {tie.shape}")
    rows = np.concatenate([k, cb])
    terms = np.empty((n_samples * f, 2), dtype=np.int64)
    terms[:, 0] = np.tile(np.arange(f, dtype=np.int64), n_samples)
    terms[:, 1] = f + idx.reshape(-1).astype(np.int64)
    ptr = np.arange(0, n_samples * f + 1, f, dtype=np.int64)
    return xor_terms_majority(rows, terms, ptr, tie, dim)


class RecordEncoder:
    """Encode feature vectors ``(B, in_features)`` as records of (feature key, quantised value) pairs.

    Args:
        in_features: number of features ``F`` of an input vector (``n_features=`` is accepted for one release,
            with a DeprecationWarning).
        dim: hypervector dimension ``D``.
        levels: quantisation levels of the value codebook.
        low: lower end of the value range (values are clipped; the period starts here for circular).
        high: upper end of the value range.
        kind: value codebook: "level", "thermometer" or "circular".
        ties: "random" (a fixed seeded tie-break vector) or "deterministic" (+1); only matters
            for even ``F``.
        seed: int or Generator; keys, codebook and tie vector come from independent streams.

    Attributes:
        keys: uint64 ``(in_features, n_words(dim))``, one key per feature.
        values: the :class:`ScalarEncoder` of the values.
        tie: uint64 ``(n_words(dim),)``, the tie-break vector.
    """

    def __init__(
        self,
        in_features: int | None = None,
        dim: int | None = None,
        levels: int = 100,
        low: float = 0.0,
        high: float = 1.0,
        *,
        kind: str = "level",
        ties: str = "random",
        seed: Seed = 0,
        n_features: int | None = None,
    ) -> None:
        if n_features is not None:
            if in_features is not None:
                raise ValueError("pass in_features only (n_features is its deprecated name)")
            warnings.warn(
                "RecordEncoder(n_features=...) is deprecated; use in_features=...", DeprecationWarning, stacklevel=2
            )
            in_features = n_features
        if in_features is None or dim is None:
            raise TypeError("RecordEncoder needs in_features and dim")
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.dim = check_dim(dim)
        check_choice(kind, KINDS, "kind")
        key_rng, value_rng, tie_rng = as_generator(seed).spawn(3)
        self.keys = random(self.in_features, self.dim, key_rng)
        self.values = ScalarEncoder(levels, self.dim, low, high, kind=kind, seed=value_rng)
        self.tie = tie_vector(ties, tie_rng, self.keys.shape[1], self.dim)

    @property
    def n_features(self) -> int:
        """Deprecated name of :attr:`in_features`."""
        warnings.warn("RecordEncoder.n_features is deprecated; use in_features", DeprecationWarning, stacklevel=2)
        return self.in_features

    def encode(self, x: Any, *, batch_size: int = 1024, progress: bool = False) -> NDArray[np.uint64]:
        """uint64 ``(B, n_words(dim))`` for real features ``x`` of shape ``(B, in_features)`` (or ``(in_features,)``,
        giving ``(n_words(dim),)``)."""
        arr = _to_numpy(x, "x")
        single = arr.ndim == 1
        if single:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (B, {self.in_features}), got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError("x is empty")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        idx = self.values.index(arr)
        out = np.empty((arr.shape[0], self.keys.shape[1]), dtype=np.uint64)
        batches = list(chunks(arr.shape[0], batch_size))
        for b0, b1 in tqdm(batches, disable=not progress, desc="records", unit="batch"):
            out[b0:b1] = encode_records(idx[b0:b1], self.keys, self.values.codebook, self.dim, tie=self.tie)
        return out[0] if single else out
