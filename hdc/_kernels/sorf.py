"""Numba kernels of the structured (Hadamard, SORF) projection (private; used by :mod:`hdc.projection.hadamard`).

The structured transform never materialises the projection: each block of rows is H D3 H D2 H D1 applied to the
zero-padded input in a d-long buffer. Every row is computed by the same instruction sequence whatever the batch it
arrives in, so results do not depend on the batch size or the number of threads.

``sorf_signs_into``, the hot path of EHD inference, is blocked for the cache and the vector registers; each output
element still goes through exactly the additions, in the same order, of the plain tile transform (``_fwht_tile``,
kept here for ``sorf_project_into``), with no fastmath, so its packed words are bit-identical to the plain loops
(tests/test_signpack.py).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from hdc._kernels.runtime import jit
from hdc._kernels.signpack import _ge0_bits64, _transpose8x8

__all__ = ["sorf_project_into", "sorf_signs_into"]


# ------------------------------------------------------------------------------------------------ structured (SORF)
# The TILE-lane kernels below are the plain transform: sorf_project_into (projections as floats, for
# HadamardProjection.project and .rows) still uses them. sorf_signs_into, the hot path of EHD inference, uses the
# blocked LANES-lane transform further down.

TILE = 32  # rows transformed together: the butterflies then run over 32 contiguous lanes (vectorised)


@jit()
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


@jit()
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


@jit()
def _load_tile(x, r0, rows, xt):  # pragma: no cover - compiled
    """xt[:, t] = x[r0 + t] for t < rows, zero beyond."""
    n = x.shape[1]
    for i in range(n):
        for t in range(rows):
            xt[i, t] = x[r0 + t, i]
        for t in range(rows, xt.shape[1]):
            xt[i, t] = 0.0


@jit(parallel=True)
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


LANES = 8  # input rows transformed together by sorf_signs_into: one 256-bit vector of float32 per tile row
UNIT = 16  # rows per radix-16 unit (two radix-4 stages held in registers)
BLOCK = 256  # rows per cache block: stages h = 1 .. 64 run block by block (8 KiB of float32 lanes, in L1)
SUPER = 1024  # rows per super-block: stage h = 256 runs super-block by super-block (32 KiB, in L1)


@jit()
def _bfly4(a, b, c, e):  # pragma: no cover - compiled
    """One radix-4 butterfly, with the additions of two radix-2 stages in their order: ((a+b)+(c+e)) etc."""
    s0 = a + b
    s1 = a - b
    s2 = c + e
    s3 = c - e
    return s0 + s2, s1 + s3, s0 - s2, s1 - s3


@jit(inline="always")
def _bfly16(x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15):  # pragma: no cover - compiled
    """Two radix-4 stages on 16 values in registers: butterflies over (4b .. 4b + 3), then over (a, a + 4, ..)."""
    x0, x1, x2, x3 = _bfly4(x0, x1, x2, x3)
    x4, x5, x6, x7 = _bfly4(x4, x5, x6, x7)
    x8, x9, x10, x11 = _bfly4(x8, x9, x10, x11)
    x12, x13, x14, x15 = _bfly4(x12, x13, x14, x15)
    x0, x4, x8, x12 = _bfly4(x0, x4, x8, x12)
    x1, x5, x9, x13 = _bfly4(x1, x5, x9, x13)
    x2, x6, x10, x14 = _bfly4(x2, x6, x10, x14)
    x3, x7, x11, x15 = _bfly4(x3, x7, x11, x15)
    return x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15


@jit(inline="always")
def _radix16(v, S):  # pragma: no cover - compiled
    """Stages h = s and h = 4s of the transform, in registers, on the 16 rows q * s (q < 16) of v.

    v: a flat view of a (rows, LANES) tile starting at the unit's first row; S = s * LANES (a compile-time constant
    at every call, so the 16 row offsets are known and the lane loop vectorises without run-time alias checks).
    Row q = a + 4b takes butterfly b of stage s, then butterfly a of stage 4s: the additions of two radix-4 passes.
    """
    for t in range(LANES):
        x0, x1, x2, x3 = v[0 * S + t], v[1 * S + t], v[2 * S + t], v[3 * S + t]
        x4, x5, x6, x7 = v[4 * S + t], v[5 * S + t], v[6 * S + t], v[7 * S + t]
        x8, x9, x10, x11 = v[8 * S + t], v[9 * S + t], v[10 * S + t], v[11 * S + t]
        x12, x13, x14, x15 = v[12 * S + t], v[13 * S + t], v[14 * S + t], v[15 * S + t]
        (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15) = _bfly16(
            x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15
        )
        v[0 * S + t], v[1 * S + t], v[2 * S + t], v[3 * S + t] = x0, x1, x2, x3
        v[4 * S + t], v[5 * S + t], v[6 * S + t], v[7 * S + t] = x4, x5, x6, x7
        v[8 * S + t], v[9 * S + t], v[10 * S + t], v[11 * S + t] = x8, x9, x10, x11
        v[12 * S + t], v[13 * S + t], v[14 * S + t], v[15 * S + t] = x12, x13, x14, x15


@jit(inline="always")
def _radix16_scaled(v, S, dg):  # pragma: no cover - compiled
    """_radix16 of the rows multiplied by dg[q] first: dg, the matching 16 entries of a +-1 diagonal (stride 1).

    x * (+-1) is exact, so folding the diagonal into the first butterfly leaves every value unchanged.
    """
    # Hoisted by hand: numba cannot prove that dg and v do not overlap, and a load it must repeat in the loop
    # stops the vectoriser.
    m0, m1, m2, m3 = dg[0], dg[1], dg[2], dg[3]
    m4, m5, m6, m7 = dg[4], dg[5], dg[6], dg[7]
    m8, m9, m10, m11 = dg[8], dg[9], dg[10], dg[11]
    m12, m13, m14, m15 = dg[12], dg[13], dg[14], dg[15]
    for t in range(LANES):
        x0, x1, x2, x3 = v[0 * S + t] * m0, v[1 * S + t] * m1, v[2 * S + t] * m2, v[3 * S + t] * m3
        x4, x5, x6, x7 = v[4 * S + t] * m4, v[5 * S + t] * m5, v[6 * S + t] * m6, v[7 * S + t] * m7
        x8, x9, x10, x11 = v[8 * S + t] * m8, v[9 * S + t] * m9, v[10 * S + t] * m10, v[11 * S + t] * m11
        x12, x13, x14, x15 = v[12 * S + t] * m12, v[13 * S + t] * m13, v[14 * S + t] * m14, v[15 * S + t] * m15
        (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15) = _bfly16(
            x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15
        )
        v[0 * S + t], v[1 * S + t], v[2 * S + t], v[3 * S + t] = x0, x1, x2, x3
        v[4 * S + t], v[5 * S + t], v[6 * S + t], v[7 * S + t] = x4, x5, x6, x7
        v[8 * S + t], v[9 * S + t], v[10 * S + t], v[11 * S + t] = x8, x9, x10, x11
        v[12 * S + t], v[13 * S + t], v[14 * S + t], v[15 * S + t] = x12, x13, x14, x15


@jit()
def _radix4_pass(buf, d, h):  # pragma: no cover - compiled
    """Radix-4 stage h (the stages h and 2h of radix 2) over a whole flat (d, LANES) tile. Rows j .. j + h - 1 of a
    group are contiguous, so each of the four streams is one contiguous run of h * LANES values."""
    run = h * LANES
    for i in range(0, d, 4 * h):
        base = i * LANES
        v0 = buf[base : base + run]
        v1 = buf[base + run : base + 2 * run]
        v2 = buf[base + 2 * run : base + 3 * run]
        v3 = buf[base + 3 * run : base + 4 * run]
        for u in range(run):
            v0[u], v1[u], v2[u], v3[u] = _bfly4(v0[u], v1[u], v2[u], v3[u])


@jit()
def _radix2_pass(buf, h):  # pragma: no cover - compiled
    """The final radix-2 stage h (d = 2h) of a flat (d, LANES) tile."""
    run = h * LANES
    v0 = buf[:run]
    v1 = buf[run : 2 * run]
    for u in range(run):
        a = v0[u]
        b = v1[u]
        v0[u] = a + b
        v1[u] = a - b


@jit()
def _fwht_core(buf, d, dg, n):  # pragma: no cover - compiled
    """buf = H diag(dg) buf for a flat (d, LANES) tile, d a power of two >= 64, dg (d,) +-1, where rows >= n are
    +0.0 (and dg is +1 on those of them in the unit of 16 rows that holds row n - 1, so they stay +0.0).

    The same stages, butterflies and additions as _fwht_tile (so bit-identical), reordered for the cache: stages
    h = 1 .. 64 run BLOCK rows at a time and h = 256 SUPER rows at a time, each while its rows are in L1, and two
    stages per pass over the data (radix-16 in registers); the diagonal is applied as the first stage loads its rows.
    Units and blocks made only of padding stay +0.0 through the stages inside them (+0 + +0 = +0 - +0 = +0), so
    they are skipped."""
    block = min(d, BLOCK)
    sup = min(d, SUPER)
    used = min(d, (n + UNIT - 1) // UNIT * UNIT)  # rows in units that hold data
    for s0 in range(0, min(d, n + sup - 1) // sup * sup, sup):
        for r0 in range(s0, min(s0 + sup, n + block - 1) // block * block, block):
            for g in range(r0, min(r0 + block, used), UNIT):  # stages 1 and 4, with the diagonal
                _radix16_scaled(buf[g * LANES :], LANES, dg[g:])
            if block == BLOCK:
                for j in range(UNIT):  # stages 16 and 64
                    _radix16(buf[(r0 + j) * LANES :], UNIT * LANES)
        if sup == SUPER:
            _radix4_pass(buf[s0 * LANES : (s0 + sup) * LANES], sup, BLOCK)
    if d < BLOCK:  # d = 64 or 128
        _radix4_pass(buf, d, UNIT)
        if d == 2 * 64:
            _radix2_pass(buf, 64)
        return
    # Stages h >= SUPER as radix-4 passes, not radix-16: 16 streams h * LANES * 4 >= 32 KiB apart all fall into one
    # L1 set (measured 2x slower than two radix-4 passes).
    h = SUPER if d >= SUPER else BLOCK
    while 4 * h <= d:
        _radix4_pass(buf, d, h)
        h *= 4
    if h < d:
        _radix2_pass(buf, h)


@jit()
def _fwht_first(xt, n, dg, buf, d, dg_first):  # pragma: no cover - compiled
    """buf = H diag(dg) [xt; 0] for xt a flat (n, LANES) tile of inputs: the first transform of a block.

    The padding rows n .. d - 1 are +0.0, as in the plain kernel, and must not be multiplied by -1 (-0.0 would
    differ in its sign bit from the plain kernel's intermediate values): dg_first, a (d,) scratch array, gets dg
    with +1 on the padding."""
    for u in range(n * LANES):  # one flat loop: a single run-time overlap check, then vector copies
        buf[u] = xt[u]
    # Slice assignments, not loops from n * LANES: numba's negative-index fix-up on a counter that does not start
    # at 0 keeps such a loop scalar (measured 15x slower).
    buf[n * LANES :] = 0.0
    dg_first[:n] = dg[:n]
    dg_first[n:] = 1.0
    _fwht_core(buf, d, dg_first, n)


@jit()
def _swap_units(a, b, mask, shift):  # pragma: no cover - compiled
    """One round of an 8 x 8 byte-matrix transpose (one word per row, byte c = column c): the units of ``shift``
    bits at odd positions in row a trade places with those at even positions in row b (``mask`` selects the even
    units). Rounds of 1-, 2- and 4-byte units between rows 1, 2 and 4 apart transpose the matrix."""
    return (a & mask) | ((b & mask) << shift), ((a >> shift) & mask) | (b & ~mask)


@jit()
def _pack_lanes(buf, lo):  # pragma: no cover - compiled
    """The 8 words (one per lane t, LANES == 8) whose bit k is buf[lo + k, t] >= 0, k < 64, for a flat (d, LANES)
    tile: a 64 x 8 bit transpose.

    Every 8 rows give one 64-bit compare mask, an 8 x 8 bit matrix (row k = byte k) whose bit transpose m_g holds
    lane t's bits for those rows in byte t; the byte transpose of m_0 .. m_7 is then the 8 words. All in registers:
    numba cannot tell an array of words from buf, and would store and reload it at every update."""
    m0 = _transpose8x8(_ge0_bits64(buf, lo * LANES))
    m1 = _transpose8x8(_ge0_bits64(buf, (lo + 8) * LANES))
    m2 = _transpose8x8(_ge0_bits64(buf, (lo + 16) * LANES))
    m3 = _transpose8x8(_ge0_bits64(buf, (lo + 24) * LANES))
    m4 = _transpose8x8(_ge0_bits64(buf, (lo + 32) * LANES))
    m5 = _transpose8x8(_ge0_bits64(buf, (lo + 40) * LANES))
    m6 = _transpose8x8(_ge0_bits64(buf, (lo + 48) * LANES))
    m7 = _transpose8x8(_ge0_bits64(buf, (lo + 56) * LANES))
    k1, s1 = np.uint64(0x00FF00FF00FF00FF), np.uint64(8)
    k2, s2 = np.uint64(0x0000FFFF0000FFFF), np.uint64(16)
    k4, s4 = np.uint64(0x00000000FFFFFFFF), np.uint64(32)
    m0, m1 = _swap_units(m0, m1, k1, s1)
    m2, m3 = _swap_units(m2, m3, k1, s1)
    m4, m5 = _swap_units(m4, m5, k1, s1)
    m6, m7 = _swap_units(m6, m7, k1, s1)
    m0, m2 = _swap_units(m0, m2, k2, s2)
    m1, m3 = _swap_units(m1, m3, k2, s2)
    m4, m6 = _swap_units(m4, m6, k2, s2)
    m5, m7 = _swap_units(m5, m7, k2, s2)
    m0, m4 = _swap_units(m0, m4, k4, s4)
    m1, m5 = _swap_units(m1, m5, k4, s4)
    m2, m6 = _swap_units(m2, m6, k4, s4)
    m3, m7 = _swap_units(m3, m7, k4, s4)
    return m0, m1, m2, m3, m4, m5, m6, m7


@jit(parallel=True)
def sorf_signs_into(x, diag, n_out, out):  # pragma: no cover - compiled
    """Packed sign bits of the first n_out structured projections of every row of x.

    x: (R, n) float32 or float64; diag: (blocks, 3, d) +-1 of the same dtype, d a power of two >= max(n, 64);
    out: uint64 (R, ceil(n_out / 64)). Output j is row j % d of block j // d, so bit j % 64 of word j // 64 is
    (H D3 H D2 H D1 [x, 0...])[j % d] >= 0 for the diagonals of block j // d. Rows go LANES at a time through a
    (d, LANES) tile, which is d * 32 bytes in float32 (32 KiB at d = 1024: L1-resident).
    """
    rows_total, n = x.shape
    d = diag.shape[2]
    blocks = (n_out + d - 1) // d
    tiles = (rows_total + LANES - 1) // LANES
    for tile in prange(tiles):
        r0 = tile * LANES
        rows = min(LANES, rows_total - r0)
        xt = np.zeros(n * LANES, dtype=x.dtype)  # lanes past the last row stay zero (and are not written out)
        for i in range(n):  # i outer: each store run is contiguous (measured 2x faster than t outer)
            for t in range(rows):
                xt[i * LANES + t] = x[r0 + t, i]
        buf = np.empty(d * LANES, dtype=x.dtype)
        dg_first = np.empty(d, dtype=x.dtype)
        for b in range(blocks):
            _fwht_first(xt, n, diag[b, 0], buf, d, dg_first)
            _fwht_core(buf, d, diag[b, 1], d)
            _fwht_core(buf, d, diag[b, 2], d)
            count = min(d, n_out - b * d)
            base = (b * d) // 64  # d is a multiple of 64, so a block starts on a word
            for w in range((count + 63) // 64):
                words = _pack_lanes(buf, w * 64)
                keep = count - w * 64
                # The last word of the last block: bits past n_out are zero.
                mask = (np.uint64(1) << np.uint64(keep)) - np.uint64(1) if keep < 64 else ~np.uint64(0)
                for t in range(rows):
                    out[r0 + t, base + w] = words[t] & mask
