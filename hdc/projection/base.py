"""The :class:`Projection` protocol that every sign projection implements, and the checks they share.

A projection is the map x -> G x with G of shape (dim, in_features), regenerated from ``(seed, stream)`` and never
stored whole unless it fits a budget. Rows are produced block by block from ``SeedSequence(seed, spawn_key=(*stream,
block))``, so any chunking over ``dim`` gives bit-identical results and G for a smaller ``dim`` is a prefix of G for
a larger one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from numpy.typing import NDArray

from hdc._linalg import chunks
from hdc._validate import Seed, as_generator, as_seed, check_int

__all__ = ["PRECISIONS", "Projection", "ProjectionBase", "block_generator", "check_projection_input"]

PRECISIONS = ("float32", "bfloat16", "int8")  # arithmetic of a projection; not every kind runs every one

WORD_ROWS = 64  # chunks start on a packed-word boundary


@runtime_checkable
class Projection(Protocol):
    """A seeded sign projection x -> G x, G of shape (dim, in_features).

    Implemented by :class:`hdc.projection.RandomProjection` (dense: "gaussian", "rademacher", "orthogonal") and
    :class:`hdc.projection.HadamardProjection` ("hadamard"); :func:`hdc.projection.make_projection` builds either
    by name. The ``*_unchecked`` methods skip input validation, for hot loops whose caller validated ``x`` once.
    """

    in_features: int
    dim: int
    kind: str
    seed: int
    stream: tuple[int, ...]

    def chunks(self, chunk_rows: int = 4096) -> Iterator[tuple[int, int]]:
        """Row ranges ``(start, stop)`` covering [0, dim), each a multiple of 64 rows long (except the last)."""
        ...

    def check_precision(self, precision: str) -> str:
        """``precision`` if this projection can run in it, else ``ValueError``."""
        ...

    def encode_is_fused(self, precision: str) -> bool:
        """Whether :meth:`encode_unchecked` in ``precision`` on the CPU packs each sign where it computes it,
        never writing the (B, rows) float product out (callers size their chunks by it)."""
        ...

    def project(
        self, x: torch.Tensor | np.ndarray, start: int = 0, stop: int | None = None, precision: str = "float32"
    ) -> torch.Tensor:
        """G[start:stop] x: real (B, in_features) -> float32 (B, stop - start), on x's device."""
        ...

    def project_unchecked(
        self, x: torch.Tensor, start: int = 0, stop: int | None = None, precision: str = "float32"
    ) -> torch.Tensor:
        """:meth:`project` without input validation."""
        ...

    def encode(
        self, x: torch.Tensor | np.ndarray, chunk_rows: int = 4096, precision: str = "float32"
    ) -> NDArray[np.uint64]:
        """Packed sign(G x): real (B, in_features) -> uint64 (B, ceil(dim / 64)); bit 1 where (G x) >= 0."""
        ...

    def encode_unchecked(
        self, x: torch.Tensor, chunk_rows: int = 4096, precision: str = "float32"
    ) -> NDArray[np.uint64]:
        """:meth:`encode` without input validation."""
        ...

    def encode_exact(self, x: torch.Tensor) -> NDArray[np.uint64]:
        """Packed sign(G x) computed in float64: (B, in_features) -> uint64 (B, ceil(dim / 64)).

        For codes that must not depend on float32 rounding (EHD weight codes)."""
        ...


def check_projection_input(x: torch.Tensor | np.ndarray, in_features: int) -> torch.Tensor:
    """Validate a batch for a projection.

    Args:
        x: tensor or array (B, in_features), B >= 1, finite.
        in_features: the expected fan-in.

    Returns:
        x as a tensor; integer (and bool) input becomes float32, a floating dtype is kept.
    """
    x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[1] != in_features:
        raise ValueError(f"x must have shape (batch, {in_features}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch")
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    return x


def block_generator(seed: int, stream: tuple[int, ...], block: int) -> np.random.Generator:
    """The generator of row block ``block``: ``default_rng(SeedSequence(seed, spawn_key=(*stream, block)))``."""
    return as_generator(seed, stream=(*stream, block))


class ProjectionBase:
    """Attributes, chunking and the checked entry points shared by the projections.

    Subclasses set ``kind`` and implement ``check_precision``, ``project_unchecked``, ``encode_unchecked`` and
    ``encode_exact``.
    """

    kind: str

    def __init__(self, in_features: int, dim: int, seed: Seed = 0, stream: Sequence[int] = ()) -> None:
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.dim = check_int(dim, "dim", minimum=1)
        self.seed = as_seed(seed)
        self.stream = tuple(check_int(s, "stream entry", minimum=0) for s in stream)

    @property
    def n(self) -> int:
        """Deprecated name of :attr:`dim` (kept for one release)."""
        warnings.warn("projection.n is deprecated; use projection.dim", DeprecationWarning, stacklevel=2)
        return self.dim

    def chunks(self, chunk_rows: int = 4096) -> Iterator[tuple[int, int]]:
        """Row ranges ``(start, stop)`` covering [0, dim), each a multiple of 64 rows long (except the last)."""
        step = max(WORD_ROWS, (int(chunk_rows) // WORD_ROWS) * WORD_ROWS)
        return chunks(self.dim, step)

    def check_precision(self, precision: str) -> str:
        raise NotImplementedError

    def encode_is_fused(self, precision: str) -> bool:
        return False

    def _check_input(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        return check_projection_input(x, self.in_features)

    def _row_range(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.dim if stop is None else stop
        if not 0 <= start < stop <= self.dim:
            raise ValueError(f"row range [{start}, {stop}) is outside [0, {self.dim})")
        return start, stop

    def project(
        self, x: torch.Tensor | np.ndarray, start: int = 0, stop: int | None = None, precision: str = "float32"
    ) -> torch.Tensor:
        """G[start:stop] x for a batch: real (B, in_features) -> float32 (B, stop - start), on x's device."""
        precision = self.check_precision(precision)
        start, stop = self._row_range(start, stop)
        return self.project_unchecked(self._check_input(x), start, stop, precision)

    def project_unchecked(
        self, x: torch.Tensor, start: int = 0, stop: int | None = None, precision: str = "float32"
    ) -> torch.Tensor:
        raise NotImplementedError

    def encode(
        self, x: torch.Tensor | np.ndarray, chunk_rows: int = 4096, precision: str = "float32"
    ) -> NDArray[np.uint64]:
        """Packed sign(G x): real (B, in_features) -> uint64 (B, ceil(dim / 64)); bit 1 where (G x) >= 0."""
        x = self._check_input(x)
        return self.encode_unchecked(x, chunk_rows, self.check_precision(precision))

    def encode_unchecked(
        self, x: torch.Tensor, chunk_rows: int = 4096, precision: str = "float32"
    ) -> NDArray[np.uint64]:
        raise NotImplementedError

    def encode_exact(self, x: torch.Tensor) -> NDArray[np.uint64]:
        raise NotImplementedError
