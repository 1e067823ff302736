"""Numba kernels that turn projections into packed sign bits (private; used by hdc.projection and
hdc.structured_projection).

Writing the packed words straight from the product (instead of a bool matrix, then ``np.packbits``) removes two
full-size temporaries per chunk, and the structured (Hadamard) transform never materialises the projection at all.
Every row is computed by the same instruction sequence whatever the batch it arrives in, so results do not depend
on the batch size or the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import hdc._popcount  # noqa: F401  (sets numba's threading layer before the first parallel kernel compiles)


@njit(parallel=True, cache=True, nogil=True)
def pack_nonnegative_into(values, out, word_offset):  # pragma: no cover - compiled
    """out[r, word_offset + j // 64] bit (j % 64) = values[r, j] >= 0, for values (R, C); whole words are written,
    the bits past C in the last word are zero."""
    rows, cols = values.shape
    words = (cols + 63) // 64
    for r in prange(rows):
        for w in range(words):
            lo = w * 64
            hi = min(cols, lo + 64)
            word = np.uint64(0)
            for k in range(hi - lo):
                if values[r, lo + k] >= 0:
                    word |= np.uint64(1) << np.uint64(k)
            out[r, word_offset + w] = word


TILE = 32  # rows transformed together: the butterflies then run over 32 contiguous lanes (vectorised)


@njit(cache=True, nogil=True)
def _fwht_tile(buf):  # pragma: no cover - compiled
    """In-place unnormalised Walsh-Hadamard transform along axis 0 of buf (d, T), d a power of two.

    Radix-4 butterflies: half the passes over the buffer of radix 2, with the same additions in the same order
    ((a+b)+(c+e)), so the result is bit-identical to the textbook radix-2 transform."""
    d, lanes = buf.shape
    h = 1
    while 4 * h <= d:
        for i in range(0, d, 4 * h):
            for j in range(i, i + h):
                for t in range(lanes):
                    a = buf[j, t]
                    b = buf[j + h, t]
                    c = buf[j + 2 * h, t]
                    e = buf[j + 3 * h, t]
                    s0 = a + b
                    s1 = a - b
                    s2 = c + e
                    s3 = c - e
                    buf[j, t] = s0 + s2
                    buf[j + h, t] = s1 + s3
                    buf[j + 2 * h, t] = s0 - s2
                    buf[j + 3 * h, t] = s1 - s3
        h *= 4
    if h < d:
        for j in range(h):
            for t in range(lanes):
                a = buf[j, t]
                b = buf[j + h, t]
                buf[j, t] = a + b
                buf[j + h, t] = a - b


@njit(cache=True, nogil=True)
def _sorf_tile(xt, rows, diag, buf):  # pragma: no cover - compiled
    """buf[:, :rows] = H D3 H D2 H D1 [x, 0...] for a transposed tile of inputs xt (n, T) and diag (3, d)."""
    n = xt.shape[0]
    d, lanes = buf.shape
    for i in range(n):
        s = diag[0, i]
        for t in range(lanes):
            buf[i, t] = xt[i, t] * s
    for i in range(n, d):
        for t in range(lanes):
            buf[i, t] = 0.0
    _fwht_tile(buf)
    for k in (1, 2):
        for i in range(d):
            s = diag[k, i]
            for t in range(lanes):
                buf[i, t] *= s
        _fwht_tile(buf)


@njit(cache=True, nogil=True)
def _load_tile(x, r0, rows, xt):  # pragma: no cover - compiled
    """xt[:, t] = x[r0 + t] for t < rows, zero beyond."""
    n = x.shape[1]
    for i in range(n):
        for t in range(rows):
            xt[i, t] = x[r0 + t, i]
        for t in range(rows, xt.shape[1]):
            xt[i, t] = 0.0


@njit(parallel=True, cache=True, nogil=True)
def sorf_signs_into(x, diag, n_out, out):  # pragma: no cover - compiled
    """Packed sign bits of the first n_out structured projections of every row of x.

    x: (R, n) float; diag: (blocks, 3, d) +-1 of the same dtype, d a power of two >= max(n, 64);
    out: uint64 (R, ceil(n_out / 64)). Output j is row j % d of block j // d.
    """
    rows_total, n = x.shape
    d = diag.shape[2]
    blocks = (n_out + d - 1) // d
    tiles = (rows_total + TILE - 1) // TILE
    for tile in prange(tiles):
        r0 = tile * TILE
        rows = min(TILE, rows_total - r0)
        xt = np.empty((n, TILE), dtype=x.dtype)
        buf = np.empty((d, TILE), dtype=x.dtype)
        acc = np.empty(TILE, dtype=np.uint64)
        _load_tile(x, r0, rows, xt)
        for b in range(blocks):
            _sorf_tile(xt, rows, diag[b], buf)
            count = min(d, n_out - b * d)
            base = (b * d) // 64  # d is a multiple of 64, so a block starts on a word
            for w in range((count + 63) // 64):
                lo = w * 64
                # One accumulator per lane, updated over contiguous lanes: the compare-shift-or vectorises.
                for t in range(TILE):
                    acc[t] = 0
                for k in range(min(count, lo + 64) - lo):
                    shift = np.uint64(k)
                    for t in range(TILE):
                        acc[t] |= np.uint64(buf[lo + k, t] >= 0) << shift
                for t in range(rows):
                    out[r0 + t, base + w] = acc[t]


@njit(parallel=True, cache=True, nogil=True)
def sorf_project_into(x, diag, start, stop, scale, out):  # pragma: no cover - compiled
    """Structured projections start:stop of every row of x, times ``scale``: out (R, stop - start)."""
    rows_total, n = x.shape
    d = diag.shape[2]
    first, last = start // d, (stop - 1) // d
    tiles = (rows_total + TILE - 1) // TILE
    for tile in prange(tiles):
        r0 = tile * TILE
        rows = min(TILE, rows_total - r0)
        xt = np.empty((n, TILE), dtype=x.dtype)
        buf = np.empty((d, TILE), dtype=x.dtype)
        _load_tile(x, r0, rows, xt)
        for b in range(first, last + 1):
            _sorf_tile(xt, rows, diag[b], buf)
            lo = max(start, b * d)
            hi = min(stop, (b + 1) * d)
            for t in range(rows):
                for j in range(lo, hi):
                    out[r0 + t, j - start] = buf[j - b * d, t] * scale


@njit(cache=True, nogil=True, inline="always")
def _pack64(values, lo):  # pragma: no cover - compiled
    """Bit j set where values[lo + j] >= 0, j < 64 (a fixed trip count, so the loop vectorises)."""
    word = np.uint64(0)
    for j in range(64):
        word |= np.uint64(values[lo + j] >= 0) << np.uint64(j)
    return word


@njit(parallel=True, cache=True, nogil=True)
def dense_signs_into(x, gt, out):  # pragma: no cover - compiled
    """Packed sign bits of x @ gt for a small fan-in, without materialising the product.

    x: (R, k) float32; gt: (k, N) float32 (G transposed); out: uint64 (R, ceil(N / 64)). For small k a GEMM is
    bound by writing the (R, N) product to memory; here one row's N projections are accumulated in an
    L1-resident buffer (k streaming passes) and packed at once.
    """
    rows, k = x.shape
    n = gt.shape[1]
    words = (n + 63) // 64
    for r in prange(rows):
        acc = np.empty(n, dtype=x.dtype)
        xv = x[r, 0]
        for j in range(n):
            acc[j] = xv * gt[0, j]
        for i in range(1, k):
            xv = x[r, i]
            for j in range(n):
                acc[j] += xv * gt[i, j]
        for w in range(n // 64):
            out[r, w] = _pack64(acc, w * 64)
        if n % 64:
            lo = (n // 64) * 64
            word = np.uint64(0)
            for j in range(n - lo):
                word |= np.uint64(acc[lo + j] >= 0) << np.uint64(j)
            out[r, words - 1] = word
