"""Choose a sign projection by name: the embedding phi(v) = sign(G v) of an EHD layer or encoder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hdc.projection import KINDS, RandomProjection
from hdc.structured_projection import HadamardProjection

__all__ = ["EMBEDDINGS", "make_projection"]

EMBEDDINGS = (*KINDS, "hadamard")


def make_projection(
    kind: str,
    in_features: int,
    n: int,
    seed: int | np.random.Generator = 0,
    stream: Sequence[int] = (),
    cache_bytes: int = 512 * 2**20,
) -> RandomProjection | HadamardProjection:
    """A dense :class:`RandomProjection` ("gaussian", "rademacher") or a structured :class:`HadamardProjection`
    ("hadamard"), both with rows (n, in_features) regenerated from (seed, stream)."""
    if kind == "hadamard":
        return HadamardProjection(in_features, n, seed, stream)
    if kind not in KINDS:
        raise ValueError(f"unknown embedding {kind!r}; valid: {', '.join(EMBEDDINGS)}")
    return RandomProjection(in_features, n, kind, seed, stream, cache_bytes=cache_bytes)
