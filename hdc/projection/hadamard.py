"""Structured orthogonal random projections: G x in O(dim log d) time and O(dim) memory.

Each block of d rows (d the smallest power of two >= max(in_features, 64)) is

    G_b = (1/d) * H D_b3 H D_b2 H D_b1     (restricted to the first in_features columns),

with H the d x d Walsh-Hadamard matrix and D_bk diagonal +-1 matrices: the "structured orthogonal random features"
(SORF) of Yu et al., "Orthogonal Random Features" (NeurIPS 2016). The d rows of a block are exactly orthogonal, each
has squared norm d (as a Gaussian row of length d has on average), and three Hadamard-diagonal rounds make every
row's direction close to uniform on the sphere, so sign(G x) behaves like the Gaussian sign projection:
E[sign(g.u) sign(g.v)] is (2/pi) arcsin(rho) up to a small bias that shrinks with d (measured by
tests/test_structured_projection.py and ``hdc.theory``). Orthogonal rows in a block make the Hamming estimate's
variance no larger than with independent rows.

Applying a block costs 3 d log2(d) additions instead of d * in_features multiply-adds, and only the 3 x d signs of
the diagonals are stored. The diagonals of block b come from ``SeedSequence(seed, spawn_key=(*stream, b))``, so,
as for :class:`hdc.projection.RandomProjection`, G for a smaller dim is a prefix of G for a larger dim.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import DTypeLike, NDArray

from hdc._kernels.sorf import sorf_project_into, sorf_signs_into
from hdc._validate import Seed, check_choice
from hdc.packed import n_words
from hdc.projection.base import PRECISIONS, ProjectionBase, block_generator

__all__ = ["MIN_BLOCK", "HadamardProjection"]

MIN_BLOCK = 64  # blocks start on a 64-bit word boundary


def _block_size(in_features: int) -> int:
    d = MIN_BLOCK
    while d < in_features:
        d *= 2
    return d


class HadamardProjection(ProjectionBase):
    """The structured map x -> G x with G of shape (dim, in_features); see the module docstring.

    Args:
        in_features: length of an input vector (the fan-in).
        dim: number of rows of G, the length of a code.
        seed: an int, or a Generator from which one int is drawn.
        stream: extra non-negative integers that select an independent stream, e.g. ``(layer,)``.

    Runs in float32 (:meth:`encode_exact` in float64); ``chunk_rows`` is accepted for the protocol and ignored,
    since the transform never holds more than one d-long block per input row.
    """

    kind = "hadamard"

    def __init__(self, in_features: int, dim: int, seed: Seed = 0, stream: Sequence[int] = ()) -> None:
        super().__init__(in_features, dim, seed, stream)
        self.block = _block_size(self.in_features)
        self.n_blocks = -(-self.dim // self.block)
        self._diag: dict[np.dtype, np.ndarray] = {}

    def __repr__(self) -> str:
        return (
            f"HadamardProjection(in_features={self.in_features}, dim={self.dim}, block={self.block}, "
            f"seed={self.seed}, stream={self.stream})"
        )

    def check_precision(self, precision: str) -> str:
        """``"float32"``; any other precision raises ``ValueError`` (the transform has no int8 or bf16 kernel)."""
        check_choice(precision, PRECISIONS, "precision")
        if precision != "float32":
            raise ValueError(f"a Hadamard projection runs in float32 only, got precision={precision!r}")
        return precision

    def encode_is_fused(self, precision: str) -> bool:
        """Always: the transform packs each row's signs from a block-long buffer (float32 is its one precision)."""
        return True

    def diagonals(self, dtype: DTypeLike = np.float32) -> np.ndarray:
        """The +-1 diagonals, (n_blocks, 3, block) of ``dtype`` (cached per dtype)."""
        key = np.dtype(dtype)
        if key not in self._diag:
            out = np.empty((self.n_blocks, 3, self.block), dtype=key)
            for b in range(self.n_blocks):
                rng = block_generator(self.seed, self.stream, b)
                out[b] = 2 * rng.integers(0, 2, size=(3, self.block), dtype=np.int8) - 1
            self._diag[key] = out
        return self._diag[key]

    def rows(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``start:stop`` of G, materialised as float32 (stop - start, in_features): G applied to the basis."""
        start, stop = self._row_range(start, stop)
        eye = np.eye(self.in_features, dtype=np.float64)
        cols = np.empty((self.in_features, stop - start), dtype=np.float64)
        sorf_project_into(eye, self.diagonals(np.float64), start, stop, 1.0 / self.block, cols)
        return torch.from_numpy(cols.T.astype(np.float32))

    @staticmethod
    def _host(x: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
        return np.ascontiguousarray(x.detach().to(device="cpu", dtype=dtype).numpy())

    def project_unchecked(
        self, x: torch.Tensor, start: int = 0, stop: int | None = None, precision: str = "float32"
    ) -> torch.Tensor:
        """G[start:stop] x without input validation, transformed in float32: (B, in_features) -> float32
        (B, stop - start), on x's device."""
        stop = self.dim if stop is None else stop
        xs = self._host(x, torch.float32)
        out = np.empty((xs.shape[0], stop - start), dtype=np.float32)
        sorf_project_into(xs, self.diagonals(np.float32), start, stop, 1.0 / self.block, out)
        return torch.from_numpy(out).to(device=x.device)

    def _signs(self, xs: np.ndarray) -> NDArray[np.uint64]:
        out = np.empty((xs.shape[0], n_words(self.dim)), dtype=np.uint64)
        sorf_signs_into(xs, self.diagonals(xs.dtype), self.dim, out)
        return out

    def encode_unchecked(
        self, x: torch.Tensor, chunk_rows: int = 4096, precision: str = "float32"
    ) -> NDArray[np.uint64]:
        """Packed sign(G x) without validation, transformed in float32: (B, in_features) -> uint64
        (B, ceil(dim / 64)).

        Never materialises G x: each row is transformed block by block in a d-long buffer and packed."""
        return self._signs(self._host(x, torch.float32))

    def encode_exact(self, x: torch.Tensor) -> NDArray[np.uint64]:
        """Packed sign(G x) with the transform run in float64: real (B, in_features) -> uint64 (B, ceil(dim / 64))."""
        return self._signs(self._host(self._check_input(x), torch.float64))
