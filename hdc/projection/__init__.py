"""Seeded sign projections phi(x) = sign(G x): the embedding of an EHD layer or of a random-projection encoder.

Every projection implements the :class:`Projection` protocol (``encode``, ``project``, ``chunks``,
``check_precision``, ``encode_exact`` and their unchecked variants):

- :class:`RandomProjection` (:mod:`hdc.projection.dense`): a dense G with Gaussian, Rademacher or group-orthogonal
  Gaussian rows (:data:`KINDS`);
- :class:`HadamardProjection` (:mod:`hdc.projection.hadamard`): the structured SORF transform, "hadamard".

:func:`make_projection` builds either by name (:data:`EMBEDDINGS`). Importing this package imports torch.

Example:
    >>> import numpy as np
    >>> from hdc.projection import make_projection
    >>> proj = make_projection("gaussian", in_features=3, dim=130, seed=0)
    >>> proj.encode(np.ones((2, 3), dtype=np.float32)).shape
    (2, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

from hdc._validate import Seed, check_choice, check_int
from hdc.projection.base import PRECISIONS, Projection, check_projection_input
from hdc.projection.dense import BLOCK_ROWS, KINDS, RandomProjection
from hdc.projection.hadamard import HadamardProjection

__all__ = [
    "BLOCK_ROWS",
    "EMBEDDINGS",
    "KINDS",
    "PRECISIONS",
    "HadamardProjection",
    "Projection",
    "RandomProjection",
    "check_projection_input",
    "make_projection",
]

EMBEDDINGS = (*KINDS, "hadamard")


def make_projection(
    kind: str,
    in_features: int,
    dim: int,
    seed: Seed = 0,
    stream: Sequence[int] = (),
    cache_bytes: int = 512 * 2**20,
) -> Projection:
    """The projection named ``kind`` with G of shape (dim, in_features), regenerated from ``(seed, stream)``.

    Args:
        kind: one of :data:`EMBEDDINGS`: a dense :class:`RandomProjection` ("gaussian", "rademacher",
            "orthogonal") or the structured :class:`HadamardProjection` ("hadamard").
        in_features: length of an input vector.
        dim: length of a code (rows of G).
        seed: an int, or a Generator from which one int is drawn.
        stream: non-negative integers selecting an independent stream, e.g. ``(layer, channel)``.
        cache_bytes: a dense G is kept in memory while its float32 copy fits this budget (a Hadamard projection
            stores only its diagonals, so the budget does not apply).

    Raises:
        ValueError: ``kind`` is not one of :data:`EMBEDDINGS`, or an argument is out of range.
    """
    check_choice(kind, EMBEDDINGS, "embedding")
    check_int(cache_bytes, "cache_bytes", minimum=0)
    if kind == "hadamard":
        return HadamardProjection(in_features, dim, seed, stream)
    return RandomProjection(in_features, dim, kind, seed, stream, cache_bytes=cache_bytes)
