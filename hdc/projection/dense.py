"""Dense seeded random sign projections: phi(x) = sign(G x) with every entry of G drawn.

G is a (dim, in_features) matrix with i.i.d. Gaussian N(0, 1) or Rademacher (+-1) entries, or Gaussian rows
orthogonalised in groups (kind "orthogonal", see :func:`_orthogonal_block`). It is never stored unless it fits the
cache budget: rows are generated in fixed blocks of :data:`BLOCK_ROWS`, each from its own
``SeedSequence(seed, spawn_key=(*stream, block))``. Two consequences users rely on:

- any chunking over dim yields bit-identical rows, so memory can be bounded without changing results;
- G for a smaller dim is a prefix of G for a larger dim, so sweeps over dim are nested.

By Grothendieck's identity, for Gaussian G, ``E[sign(g.u) sign(g.v)] = (2/pi) arcsin(rho(u, v))``. An orthogonal
G keeps that expectation exactly (each of its rows is marginally N(0, I)) and lowers the variance of the Hamming
estimate, because rows of a group are orthogonal instead of independent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from hdc._kernels.signpack import dense_signs_into, pack_nonnegative_into
from hdc._linalg import int8_matmul, quantize_rows_int8
from hdc._validate import Seed, check_choice, check_int
from hdc.packed import n_words, pack_sign
from hdc.projection.base import PRECISIONS, ProjectionBase, block_generator

__all__ = ["BLOCK_ROWS", "KINDS", "PRECISIONS", "RandomProjection"]

BLOCK_ROWS = 256  # a multiple of 64, so a block packs into whole words
KINDS = ("gaussian", "rademacher", "orthogonal")
FUSED_MAX_FAN_IN = 64  # up to this fan-in, float32 signs are computed by the fused kernel instead of a GEMM
EXACT_CHUNK_ROWS = 2048  # rows per float64 product in encode_exact
_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.int8}


def _orthogonal_block(rng: np.random.Generator, rows: int, in_features: int) -> np.ndarray:
    """Gaussian rows orthogonalised in groups ("super-bit" LSH, Ji et al. NIPS 2012; orthogonal random features,
    Yu et al. NeurIPS 2016): float32 (rows, in_features).

    The rows are cut into groups of min(in_features, rows) rows (the last one shorter); each group is the
    transposed Q of the QR factorisation of its own (in_features, group size) float64 Gaussian draw. With the
    columns of Q multiplied by sign(diag(R)), Q is the first columns of a Haar-random orthogonal matrix (QR is then
    unique and commutes with rotations of the draw), so every row's direction is exactly uniform on the sphere.
    Each row is then scaled by an independent chi(in_features) length, which makes it marginally exactly N(0, I):
    every sign bit keeps the Gaussian expectation (2/pi) arcsin(rho), while orthogonal rows in a group cover
    directions more evenly than independent ones (a lower-variance Hamming estimate).
    """
    d = in_features
    full, rest = (rows // d, rows % d) if d < rows else (0, rows)
    groups = [] if full == 0 else [rng.standard_normal((full, d, d))]  # one stacked QR for the full groups
    if rest:
        groups.append(rng.standard_normal((1, d, rest)))
    out = np.empty((rows, d), dtype=np.float32)
    lo = 0
    for draw in groups:
        q, r = np.linalg.qr(draw)
        q *= np.where(np.diagonal(r, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]  # sign fix: Haar, not LAPACK's
        q = q.transpose(0, 2, 1).reshape(-1, d)  # each group's columns become its rows
        out[lo : lo + len(q)] = q
        lo += len(q)
    out *= np.sqrt(rng.chisquare(d, size=rows)).astype(np.float32)[:, None]
    return out


class RandomProjection(ProjectionBase):
    """The random map x -> G x with G of shape (dim, in_features), regenerated from a seed.

    Args:
        in_features: length of an input vector (the fan-in).
        dim: number of rows of G, the length of a code.
        kind: ``"gaussian"``, ``"rademacher"`` or ``"orthogonal"`` (Gaussian rows orthogonalised in groups of
            min(in_features, BLOCK_ROWS) within each block; see :func:`_orthogonal_block`).
        seed: an int, or a Generator from which one int is drawn.
        stream: extra non-negative integers that select an independent stream, e.g. ``(layer,)`` or
            ``(layer, channel)``.
        cache_bytes: rows are kept in memory after first use while the whole float32 G fits in this budget;
            above it, each call regenerates its chunks (bounded memory, more time).
    """

    def __init__(
        self,
        in_features: int,
        dim: int,
        kind: str = "gaussian",
        seed: Seed = 0,
        stream: Sequence[int] = (),
        cache_bytes: int = 512 * 2**20,
    ) -> None:
        super().__init__(in_features, dim, seed, stream)
        self.kind = check_choice(kind, KINDS, "projection kind")
        self._cacheable = self.dim * self.in_features * 4 <= check_int(cache_bytes, "cache_bytes", minimum=0)
        self._cache: dict[str, torch.Tensor] = {}  # '<precision>@<device>' -> G

    def __repr__(self) -> str:
        return (
            f"RandomProjection(in_features={self.in_features}, dim={self.dim}, kind={self.kind!r}, "
            f"seed={self.seed}, stream={self.stream})"
        )

    def check_precision(self, precision: str) -> str:
        """``precision`` (one of :data:`PRECISIONS`); int8 needs an integer (Rademacher) G."""
        check_choice(precision, PRECISIONS, "precision")
        if precision == "int8" and self.kind != "rademacher":
            raise ValueError("precision='int8' needs kind='rademacher' (a Gaussian G is not integer)")
        return precision

    def encode_is_fused(self, precision: str) -> bool:
        """True in float32 up to :data:`FUSED_MAX_FAN_IN` inputs with G cached: a GEMM would spend its time writing
        the (B, dim) product, the fused kernel keeps one row's projections in L1 and packs them there."""
        return precision == "float32" and self.in_features <= FUSED_MAX_FAN_IN and self._cacheable

    # ----------------------------------------------------------------------------------------- generation
    def _block(self, block: int) -> np.ndarray:
        """Rows [block*BLOCK_ROWS, (block+1)*BLOCK_ROWS) of G, (BLOCK_ROWS, in_features): float32 for a Gaussian or
        orthogonal G, int8 +-1 for a Rademacher G (exact, and a quarter of the memory)."""
        rng = block_generator(self.seed, self.stream, block)
        shape = (BLOCK_ROWS, self.in_features)
        if self.kind == "gaussian":
            return rng.standard_normal(shape, dtype=np.float32)
        if self.kind == "orthogonal":
            return _orthogonal_block(rng, BLOCK_ROWS, self.in_features)
        bits = rng.integers(0, 2, size=shape, dtype=np.int8)
        bits *= 2
        bits -= 1
        return bits

    def _generate(self, start: int, stop: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows start:stop as a fresh (stop - start, in_features) tensor of ``dtype``, written block by block so the
        only transient is one block (no float32 copy of a whole int8 or bf16 G)."""
        out = torch.empty(stop - start, self.in_features, dtype=dtype)
        view = out.numpy() if dtype in (torch.float32, torch.int8) else None
        for b in range(start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS + 1):
            lo, hi = max(start, b * BLOCK_ROWS), min(stop, (b + 1) * BLOCK_ROWS)
            block = self._block(b)[lo - b * BLOCK_ROWS : hi - b * BLOCK_ROWS]
            if view is not None:
                view[lo - start : hi - start] = block  # numpy casts +-1 int8 <-> float32 exactly
            else:
                out[lo - start : hi - start] = torch.from_numpy(block).to(dtype)
        return out

    def rows(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``start:stop`` of G as float32, shape (stop - start, in_features)."""
        start, stop = self._row_range(start, stop)
        if self._cacheable:
            return self._full("float32")[start:stop]
        return self._generate(start, stop)

    def _full(self, precision: str, device: torch.device | str = "cpu") -> torch.Tensor:
        # Only the (precision, device) pairs in use are kept, so a bf16 or int8 user holds 2 or 1 bytes per
        # entry, and a GPU user keeps G resident on the GPU instead of copying it every call.
        key = f"{precision}@{torch.device(device)}"
        if key not in self._cache:
            host = self._cache.get(f"{precision}@cpu")
            if host is None:
                host = self._generate(0, self.dim, _TORCH_DTYPES[precision])
            self._cache[key] = host.to(device=device)
        return self._cache[key]

    def _transposed_float32(self) -> np.ndarray:
        """G^T as a contiguous float32 array (in_features, dim), cached (for the fused small-fan-in kernel)."""
        if "float32T@cpu" not in self._cache:
            self._cache["float32T@cpu"] = self._full("float32").T.contiguous()
        return self._cache["float32T@cpu"].numpy()

    # ----------------------------------------------------------------------------------------- projection
    def _rows_as(self, start: int, stop: int, precision: str, device: torch.device) -> torch.Tensor:
        if self._cacheable:
            return self._full(precision, device)[start:stop]
        return self._generate(start, stop, _TORCH_DTYPES[precision]).to(device=device)

    def project_unchecked(
        self, x: torch.Tensor, start: int = 0, stop: int | None = None, precision: str = "float32"
    ) -> torch.Tensor:
        """G[start:stop] x without input validation: (B, in_features) -> float32 (B, stop - start).

        ``precision="bfloat16"`` multiplies in bf16 (float32 accumulation). ``precision="int8"`` needs a
        Rademacher G: each row of x is scaled to [-127, 127] and rounded, and the product is accumulated exactly
        in int32, so the result does not depend on the batch size or chunking.
        """
        stop = self.dim if stop is None else stop
        g = self._rows_as(start, stop, precision, x.device)
        if precision == "float32":
            return x.to(torch.float32) @ g.T
        if precision == "bfloat16":
            return (x.to(torch.bfloat16) @ g.T).to(torch.float32)
        q, scale = quantize_rows_int8(x)
        return int8_matmul(q, g.T).to(torch.float32) * scale

    def _raw_product(self, x: torch.Tensor, start: int, stop: int, precision: str) -> torch.Tensor:
        """G[start:stop] x up to a positive per-row factor: float32, or the exact int32 product in int8 (the row
        scale is positive, so the sign is read straight off the int32 product)."""
        if precision != "int8":
            return self.project_unchecked(x, start, stop, precision)
        q, _ = quantize_rows_int8(x)
        return int8_matmul(q, self._rows_as(start, stop, precision, x.device).T)

    def encode_unchecked(
        self, x: torch.Tensor, chunk_rows: int = 4096, precision: str = "float32"
    ) -> NDArray[np.uint64]:
        """:meth:`encode` without validation: (B, in_features) -> uint64 (B, ceil(dim / 64)).

        The sign bits are packed straight from each chunk's product into one preallocated array, so the only
        temporary is one (B, chunk_rows) product."""
        out = np.empty((x.shape[0], n_words(self.dim)), dtype=np.uint64)
        if x.device.type == "cpu" and self.encode_is_fused(precision):  # same rows, same signs up to rounding
            xs = np.ascontiguousarray(x.detach().to(torch.float32).numpy())
            dense_signs_into(xs, self._transposed_float32(), out)
            return out
        for start, stop in self.chunks(chunk_rows):
            product = self._raw_product(x, start, stop, precision).cpu().contiguous()
            pack_nonnegative_into(product.numpy(), out, start // 64)
        return out

    def encode_exact(self, x: torch.Tensor) -> NDArray[np.uint64]:
        """Packed sign(G x) computed in float64: real (B, in_features) -> uint64 (B, ceil(dim / 64)).

        Each chunk of :data:`EXACT_CHUNK_ROWS` rows of G is cast to float64 and multiplied, so a code never depends
        on float32 rounding of the product (EHD weight codes)."""
        x = self._check_input(x).detach().to(torch.float64)
        return np.concatenate(
            [pack_sign((x @ self.rows(a, b).to(torch.float64).T).numpy()) for a, b in self.chunks(EXACT_CHUNK_ROWS)],
            axis=-1,
        )
