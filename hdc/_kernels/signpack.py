"""Numba kernels that pack projections into sign bits (private; used by :mod:`hdc.projection`).

Writing the packed words straight from the product (instead of a bool matrix, then ``np.packbits``) removes two
full-size temporaries per chunk. Every row is computed by the same instruction sequence whatever the batch it
arrives in, so results do not depend on the batch size or the number of threads.

``dense_signs_into``, on the EHD inference path for a small fan-in, is blocked for the cache and the vector
registers; each output element still goes through exactly the additions and multiplications, in the same order, of
the plain loop (kept in benchmarks/bench_signpack.py as the baseline), with no fastmath, so its packed words are
bit-identical to that loop (tests/test_signpack.py). The structured (Hadamard) kernels are in
:mod:`hdc._kernels.sorf`.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from hdc._kernels.runtime import jit

__all__ = ["dense_signs_into", "pack_nonnegative_into"]


@jit(parallel=True)
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


# ------------------------------------------------------------------------------------------------ sign masks
@intrinsic
def _ge0_bits64(typingctx, arr, start):  # pragma: no cover - compiled
    """uint64 whose bit j is arr[start + j] >= 0 (j < 64), for a contiguous 1-d float32 or float64 array.

    One 64-wide vector compare whose mask is the word (``vcmpps`` into mask registers, ``kunpck``, ``kmovq`` on
    AVX-512): numba offers no movemask, and the compare-shift-or loops it compiles instead cost as much as a
    Walsh-Hadamard transform where the bits must be gathered across lanes. The compare is ``fcmp oge`` like numba's
    ``>=`` (-0.0 counts as >= 0, NaN does not). No bounds check: the caller guarantees start + 64 <= arr.size."""
    if not (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and arr.layout == "C"
        and arr.dtype in (types.float32, types.float64)
        and isinstance(start, types.Integer)
    ):
        return None
    sig = types.uint64(arr, start)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        vec_type = ir.VectorType(context.get_value_type(signature.args[0].dtype), 64)
        ptr = builder.bitcast(builder.gep(ary.data, [index]), vec_type.as_pointer())
        vec = builder.load(ptr, align=signature.args[0].dtype.bitwidth // 8)
        ge0 = builder.fcmp_ordered(">=", vec, ir.Constant(vec_type, None))
        return builder.bitcast(ge0, ir.IntType(64))

    return sig, codegen


@jit()
def _transpose8x8(x):  # pragma: no cover - compiled
    """Bit transpose of an 8 x 8 bit matrix held in a uint64 as byte k = row k, bit t = column t: 3 rounds of
    masked swaps (Hacker's Delight, section 7-3)."""
    t = (x ^ (x >> np.uint64(7))) & np.uint64(0x00AA00AA00AA00AA)
    x = x ^ t ^ (t << np.uint64(7))
    t = (x ^ (x >> np.uint64(14))) & np.uint64(0x0000CCCC0000CCCC)
    x = x ^ t ^ (t << np.uint64(14))
    t = (x ^ (x >> np.uint64(28))) & np.uint64(0x00000000F0F0F0F0)
    return x ^ t ^ (t << np.uint64(28))


# ------------------------------------------------------------------------------------------------ dense, small fan-in
ROW_BLOCK = 4  # rows of x per block (the helpers below are written out for 4): each G^T load feeds 4 rows
COL_BLOCK = 1024  # columns per chunk: the block's accumulators (16 KiB) and a 3-row strip of G^T (12 KiB) stay in L1


@jit(inline="always")
def _dense_first(xb, i, g0, g1, g2, acc, cols):  # pragma: no cover - compiled
    """acc[r * COL_BLOCK + j] = x[r, i] g0[j] + x[r, i + 1] g1[j] + x[r, i + 2] g2[j], left to right, r < 4.

    g0, g1, g2: rows i .. i + 2 of G^T from the chunk's first column. Sliced views keep the index of the inner loop
    a plain counter from 0, so numba's negative-index fix-up folds away and the loads stay contiguous (indexing
    gt[i, j0 + j] instead compiled to gathers)."""
    C = COL_BLOCK
    a0, b0, c0, d0 = xb[0, i], xb[1, i], xb[2, i], xb[3, i]
    a1, b1, c1, d1 = xb[0, i + 1], xb[1, i + 1], xb[2, i + 1], xb[3, i + 1]
    a2, b2, c2, d2 = xb[0, i + 2], xb[1, i + 2], xb[2, i + 2], xb[3, i + 2]
    for j in range(cols):
        u0, u1, u2 = g0[j], g1[j], g2[j]
        acc[j] = a0 * u0 + a1 * u1 + a2 * u2
        acc[C + j] = b0 * u0 + b1 * u1 + b2 * u2
        acc[2 * C + j] = c0 * u0 + c1 * u1 + c2 * u2
        acc[3 * C + j] = d0 * u0 + d1 * u1 + d2 * u2


@jit(inline="always")
def _dense_more(xb, i, g0, g1, g2, acc, cols):  # pragma: no cover - compiled
    """acc[r * COL_BLOCK + j] += x[r, i] g0[j], then x[r, i + 1] g1[j], then x[r, i + 2] g2[j], r < 4."""
    C = COL_BLOCK
    a0, b0, c0, d0 = xb[0, i], xb[1, i], xb[2, i], xb[3, i]
    a1, b1, c1, d1 = xb[0, i + 1], xb[1, i + 1], xb[2, i + 1], xb[3, i + 1]
    a2, b2, c2, d2 = xb[0, i + 2], xb[1, i + 2], xb[2, i + 2], xb[3, i + 2]
    for j in range(cols):
        u0, u1, u2 = g0[j], g1[j], g2[j]
        acc[j] = acc[j] + a0 * u0 + a1 * u1 + a2 * u2
        acc[C + j] = acc[C + j] + b0 * u0 + b1 * u1 + b2 * u2
        acc[2 * C + j] = acc[2 * C + j] + c0 * u0 + c1 * u1 + c2 * u2
        acc[3 * C + j] = acc[3 * C + j] + d0 * u0 + d1 * u1 + d2 * u2


@jit(parallel=True)
def dense_signs_into(x, gt, out):  # pragma: no cover - compiled
    """Packed sign bits of x @ gt for a small fan-in, without materialising the product.

    x: (R, k) float32; gt: (k, N) float32 (G transposed); out: uint64 (R, ceil(N / 64)), bit j % 64 of word j // 64
    is (x @ gt)[r, j] >= 0. For small k a GEMM is bound by writing the (R, N) product to memory; here the product is
    accumulated ROW_BLOCK rows by COL_BLOCK columns at a time in an L1-resident buffer and packed at once. Each
    element is still x[r, 0] * gt[0, j], then + x[r, i] * gt[i, j] for i = 1 .. k - 1 in order (separate multiply
    and add, no FMA contraction), so the bits do not depend on the blocking; the gain is that every gt load and
    accumulator load/store now serves 3 multiply-adds of 4 rows instead of one of one row.
    """
    rows, k = x.shape
    n = gt.shape[1]
    C = COL_BLOCK
    k3 = (k + 2) // 3 * 3  # terms go 3 at a time; the padding terms are 0 * (a finite G entry)
    for blk in prange((rows + ROW_BLOCK - 1) // ROW_BLOCK):
        r0 = blk * ROW_BLOCK
        nr = min(ROW_BLOCK, rows - r0)
        # Zero padding: rows past the last (not written out) and terms past k. A padding term adds +-0.0, which
        # leaves every sum's value unchanged (at most the sign of an exact zero, and -0.0 >= 0 like +0.0), so the
        # packed bits are those of the k-term sum.
        xb = np.zeros((ROW_BLOCK, k3), dtype=x.dtype)
        for r in range(nr):
            for i in range(k):
                xb[r, i] = x[r0 + r, i]
        acc = np.empty(ROW_BLOCK * C, dtype=x.dtype)
        for j0 in range(0, n, C):
            cols = min(C, n - j0)
            for i in range(0, k3, 3):
                g0, g1, g2 = gt[min(i, k - 1), j0:], gt[min(i + 1, k - 1), j0:], gt[min(i + 2, k - 1), j0:]
                if i == 0:
                    _dense_first(xb, i, g0, g1, g2, acc, cols)
                else:
                    _dense_more(xb, i, g0, g1, g2, acc, cols)
            # Pack whole words; a chunk ends on a word boundary unless it is the last, whose stale tail bits
            # (past column N) are masked off.
            w0 = j0 // 64
            for r in range(nr):
                for w in range((cols + 63) // 64):
                    word = _ge0_bits64(acc, r * C + w * 64)
                    keep = cols - w * 64
                    if keep < 64:
                        word &= (np.uint64(1) << np.uint64(keep)) - np.uint64(1)
                    out[r0 + r, w0 + w] = word
