"""Structured orthogonal random projections: G x in O(N log d) time and O(N) memory.

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
as for :class:`hdc.projection.RandomProjection`, G for a smaller N is a prefix of G for a larger N.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from hdc._signpack import sorf_project_into, sorf_signs_into
from hdc.projection import as_seed, check_projection_input

__all__ = ["HadamardProjection", "MIN_BLOCK"]

MIN_BLOCK = 64  # blocks start on a 64-bit word boundary


def _block_size(in_features: int) -> int:
    d = MIN_BLOCK
    while d < in_features:
        d *= 2
    return d


class HadamardProjection:
    """The structured map x -> G x with G of shape (n, in_features); same interface as RandomProjection.

    Args:
        in_features: n, the input dimension.
        n: N, the number of rows (the hypervector dimension).
        seed: an int, or a Generator from which one int is drawn.
        stream: extra integers that select an independent stream, e.g. ``(layer,)``.
    """

    kind = "hadamard"

    def __init__(
        self, in_features: int, n: int, seed: int | np.random.Generator = 0, stream: Sequence[int] = (), **_: object
    ) -> None:
        if int(in_features) < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features}")
        if int(n) < 1:
            raise ValueError(f"n (the projection dimension N) must be >= 1, got {n}")
        self.in_features = int(in_features)
        self.n = int(n)
        self.seed = as_seed(seed)
        self.stream = tuple(int(s) for s in stream)
        self.block = _block_size(self.in_features)
        self.n_blocks = -(-self.n // self.block)
        self._diag: dict[np.dtype, np.ndarray] = {}

    def __repr__(self) -> str:
        return (f"HadamardProjection(in_features={self.in_features}, n={self.n}, block={self.block}, "
                f"seed={self.seed}, stream={self.stream})")

    def diagonals(self, dtype: np.dtype | type = np.float32) -> np.ndarray:
        """The +-1 diagonals, (n_blocks, 3, block) of ``dtype`` (cached per dtype)."""
        dtype = np.dtype(dtype)
        if dtype not in self._diag:
            out = np.empty((self.n_blocks, 3, self.block), dtype=dtype)
            for b in range(self.n_blocks):
                rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(*self.stream, b))))
                out[b] = 2 * rng.integers(0, 2, size=(3, self.block), dtype=np.int8) - 1
            self._diag[dtype] = out
        return self._diag[dtype]

    # ----------------------------------------------------------------------------------------- rows
    def chunks(self, chunk_rows: int = 4096) -> Iterator[tuple[int, int]]:
        """Row ranges covering [0, N), each a multiple of 64 rows long (except the last)."""
        step = max(64, (int(chunk_rows) // 64) * 64)
        for start in range(0, self.n, step):
            yield start, min(self.n, start + step)

    def rows(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``start:stop`` of G, materialised as float32 (stop - start, in_features): G applied to the basis."""
        stop = self.n if stop is None else stop
        if not 0 <= start < stop <= self.n:
            raise ValueError(f"row range [{start}, {stop}) is outside [0, {self.n})")
        eye = np.eye(self.in_features, dtype=np.float64)
        cols = np.empty((self.in_features, stop - start), dtype=np.float64)
        sorf_project_into(eye, self.diagonals(np.float64), start, stop, 1.0 / self.block, cols)
        return torch.from_numpy(cols.T.astype(np.float32))

    # ----------------------------------------------------------------------------------------- projection
    def _check_input(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        return check_projection_input(x, self.in_features)

    @staticmethod
    def _check_precision(precision: str) -> None:
        if precision != "float32":
            raise ValueError(f"a Hadamard projection runs in float32 only, got precision={precision!r}")

    def _host(self, x: torch.Tensor) -> np.ndarray:
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        return np.ascontiguousarray(x.detach().to(device="cpu", dtype=dtype).numpy())

    def project(self, x: torch.Tensor | np.ndarray, start: int = 0, stop: int | None = None,
                precision: str = "float32") -> torch.Tensor:
        """G[start:stop] x for a batch: (B, in_features) -> float32 (B, stop - start)."""
        self._check_precision(precision)
        return self.project_unchecked(self._check_input(x), start, stop, precision)

    def project_unchecked(self, x: torch.Tensor, start: int = 0, stop: int | None = None,
                          precision: str = "float32") -> torch.Tensor:
        """:meth:`project` without input validation (float64 input is transformed in float64)."""
        stop = self.n if stop is None else stop
        xs = self._host(x)
        out = np.empty((xs.shape[0], stop - start), dtype=xs.dtype)
        sorf_project_into(xs, self.diagonals(xs.dtype), start, stop, 1.0 / self.block, out)
        return torch.from_numpy(out).to(device=x.device, dtype=torch.float32)

    def signs_unchecked(self, x: torch.Tensor, start: int = 0, stop: int | None = None,
                        precision: str = "float32") -> torch.Tensor:
        """(G[start:stop] x) >= 0 as bool (B, stop - start)."""
        return self.project_unchecked(x, start, stop, precision) >= 0

    def encode_unchecked(self, x: torch.Tensor) -> np.ndarray:
        """Packed sign(G x) without validation: (B, in_features) float32 or float64 -> uint64 (B, ceil(N/64)).

        Never materialises G x: each row is transformed block by block in a d-long buffer and packed."""
        xs = self._host(x)
        out = np.empty((xs.shape[0], (self.n + 63) // 64), dtype=np.uint64)
        sorf_signs_into(xs, self.diagonals(xs.dtype), self.n, out)
        return out

    def encode(self, x: torch.Tensor | np.ndarray, chunk_rows: int = 4096, precision: str = "float32") -> np.ndarray:
        """Packed sign(G x): (B, in_features) -> uint64 (B, ceil(N / 64)); bit 1 where (G x) >= 0."""
        self._check_precision(precision)
        return self.encode_unchecked(self._check_input(x))
