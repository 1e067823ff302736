"""Numba kernels over packed uint64 words (private; the public API lives in hdc.hamming / hdc.ops).

``popcnt64`` lowers to LLVM's ``llvm.ctpop.i64``; numba compiles for the host CPU, so on
CPUs with AVX-512 VPOPCNTDQ the word loops below vectorise to ``vpopcntq`` on zmm registers
(checked by tests/test_hamming.py::test_numba_kernel_uses_vector_popcount when the CPU has
the flag).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from hdc._kernels.runtime import jit

__all__ = [
    "hamming_few_queries",
    "hamming_few_queries_serial",
    "hamming_tiled",
    "hamming_tiled_serial",
    "popcnt64",
    "xor_gather_majority",
]


@intrinsic
def popcnt64(typingctx, x):  # pragma: no cover - compiled
    """Population count of one uint64 word (LLVM ctpop intrinsic)."""
    if x != types.uint64:
        return None
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return sig, codegen


@jit(fastmath=True)
def _tile(a, b, out, q_lo, q_hi, m_lo, m_hi):  # pragma: no cover - compiled
    """out[q, m] = popcount(a[q] ^ b[m]) for q in [q_lo, q_hi), m in [m_lo, m_hi).

    2 queries x 2 items per inner loop: every loaded word is used twice (faster than 1 x 1 and
    on par with 4 x 1 in exploratory timings at Q = M = 1000, D = 10,000).
    """
    W = a.shape[1]
    q = q_lo
    while q + 1 < q_hi:
        m = m_lo
        while m + 1 < m_hi:
            s00 = np.uint64(0)
            s01 = np.uint64(0)
            s10 = np.uint64(0)
            s11 = np.uint64(0)
            for w in range(W):
                x0 = a[q, w]
                x1 = a[q + 1, w]
                y0 = b[m, w]
                y1 = b[m + 1, w]
                s00 += popcnt64(x0 ^ y0)
                s01 += popcnt64(x0 ^ y1)
                s10 += popcnt64(x1 ^ y0)
                s11 += popcnt64(x1 ^ y1)
            out[q, m] = np.int32(s00)
            out[q, m + 1] = np.int32(s01)
            out[q + 1, m] = np.int32(s10)
            out[q + 1, m + 1] = np.int32(s11)
            m += 2
        if m < m_hi:
            s0 = np.uint64(0)
            s1 = np.uint64(0)
            for w in range(W):
                y = b[m, w]
                s0 += popcnt64(a[q, w] ^ y)
                s1 += popcnt64(a[q + 1, w] ^ y)
            out[q, m] = np.int32(s0)
            out[q + 1, m] = np.int32(s1)
        q += 2
    if q < q_hi:
        _scan(a, b, out, q, q_hi, m_lo, m_hi)


@jit(fastmath=True)
def _scan(a, b, out, q_lo, q_hi, m_lo, m_hi):  # pragma: no cover - compiled
    """Same as _tile with one accumulator per pair.

    A single query is a memory-bound scan of the items; one accumulator per (query, item)
    vectorises best there (faster than the 2 x 2 tile in exploratory timings, 1 x 10,000 items).
    """
    W = a.shape[1]
    for m in range(m_lo, m_hi):
        for q in range(q_lo, q_hi):
            s = np.uint64(0)
            for w in range(W):
                s += popcnt64(a[q, w] ^ b[m, w])
            out[q, m] = np.int32(s)


@jit(fastmath=True)
def _tile_bounds(t, Q, M, tile_q, tile_m):  # pragma: no cover - compiled
    nmt = (M + tile_m - 1) // tile_m
    qt = t // nmt
    mt = t - qt * nmt
    q_lo = qt * tile_q
    m_lo = mt * tile_m
    return q_lo, min(Q, q_lo + tile_q), m_lo, min(M, m_lo + tile_m)


# Tiling keeps a tile of ``tile_m`` item rows in L1/L2 while ``tile_q`` queries stream past it;
# without it, Q = 1000 x M = 10,000 at D = 10,000 re-reads all 12.5 MB of items from memory per
# query pair (it ran about half as fast in exploratory timings).
@jit(parallel=True, fastmath=True)
def hamming_tiled(a, b, out, tile_q, tile_m):  # pragma: no cover - compiled
    """out[q, m] = popcount(a[q] ^ b[m]) for all pairs; parallel over (query, item) tiles.

    a: uint64 (Q, W) C-contiguous, b: uint64 (M, W) C-contiguous, out: int32 (Q, M).
    """
    Q = a.shape[0]
    M = b.shape[0]
    n_tiles = ((Q + tile_q - 1) // tile_q) * ((M + tile_m - 1) // tile_m)
    for t in prange(n_tiles):
        q_lo, q_hi, m_lo, m_hi = _tile_bounds(t, Q, M, tile_q, tile_m)
        _tile(a, b, out, q_lo, q_hi, m_lo, m_hi)


@jit(fastmath=True)
def hamming_tiled_serial(a, b, out, tile_q, tile_m):  # pragma: no cover - compiled
    """hamming_tiled on the calling thread only (small problems: no thread wake-up cost)."""
    Q = a.shape[0]
    M = b.shape[0]
    n_tiles = ((Q + tile_q - 1) // tile_q) * ((M + tile_m - 1) // tile_m)
    for t in range(n_tiles):
        q_lo, q_hi, m_lo, m_hi = _tile_bounds(t, Q, M, tile_q, tile_m)
        _tile(a, b, out, q_lo, q_hi, m_lo, m_hi)


@jit(parallel=True, fastmath=True)
def hamming_few_queries(a, b, out, block):  # pragma: no cover - compiled
    """Same result as hamming_tiled for a handful of queries, parallel over item blocks."""
    Q = a.shape[0]
    M = b.shape[0]
    n_blocks = (M + block - 1) // block
    for blk in prange(n_blocks):
        m0 = blk * block
        _scan(a, b, out, 0, Q, m0, min(M, m0 + block))


@jit(fastmath=True)
def hamming_few_queries_serial(a, b, out):  # pragma: no cover - compiled
    """hamming_few_queries on the calling thread only."""
    _scan(a, b, out, 0, a.shape[0], 0, b.shape[0])


@jit(parallel=True, fastmath=True)
def xor_gather_majority(rows, idx, group_ptr, tie_words, n_planes, out):  # pragma: no cover
    """Majority vote over XOR-products of table rows, with bit-sliced counters.

    For group ``g`` the terms are ``t = group_ptr[g] .. group_ptr[g + 1] - 1`` and term ``t`` is
    ``rows[idx[t, 0]] ^ rows[idx[t, 1]] ^ ...``.  Each bit position keeps a binary counter spread
    over ``n_planes`` words (bit-sliced: plane ``p`` holds bit ``p`` of 64 counters), so one term
    costs about 3 * n_planes word operations instead of 64 per word when unpacked.

    out[g] bit = 1 where count * 2 > n_terms, tie_words[g] bit where count * 2 == n_terms.

    rows: uint64 (R, W); idx: int64 (T, J); group_ptr: int64 (G + 1,); tie_words: uint64 (G, W);
    out: uint64 (G, W).  ``n_planes`` must satisfy 2 ** n_planes > max group size.
    """
    G = group_ptr.shape[0] - 1
    W = rows.shape[1]
    J = idx.shape[1]
    ones = np.uint64(0xFFFFFFFFFFFFFFFF)
    for g in prange(G):
        planes = np.zeros((n_planes, W), dtype=np.uint64)
        carry = np.empty(W, dtype=np.uint64)
        t0 = group_ptr[g]
        t1 = group_ptr[g + 1]
        for t in range(t0, t1):
            r0 = idx[t, 0]
            for w in range(W):
                carry[w] = rows[r0, w]
            for j in range(1, J):
                r = idx[t, j]
                for w in range(W):
                    carry[w] ^= rows[r, w]
            for p in range(n_planes):
                for w in range(W):
                    c = carry[w]
                    s = planes[p, w]
                    planes[p, w] = s ^ c
                    carry[w] = s & c
        n_terms = t1 - t0
        # count > n_terms // 2 (strict majority) and count == n_terms / 2 (tie, only for even n_terms),
        # compared MSB-first on the bit-sliced counters: gt/eq track "prefix greater"/"prefix equal".
        half = n_terms // 2
        for w in range(W):
            gt = np.uint64(0)
            eq = ones
            for p in range(n_planes - 1, -1, -1):
                c = planes[p, w]
                if (half >> p) & 1:
                    eq &= c
                else:
                    gt |= eq & c
                    eq &= ~c
            if n_terms % 2 == 0:
                out[g, w] = gt | (eq & tie_words[g, w])
            else:
                out[g, w] = gt
