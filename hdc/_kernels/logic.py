"""Bit-parallel evaluation of logic-gate circuits (the DiffLogic engine; private, called by gnet.logic.convert).

Layout: bit ``j`` of word ``w`` of row ``r`` is node ``r`` for sample ``64 w + j`` ("bit-sliced over samples").
A gate then costs one bitwise operation per 64 samples. Work is split into blocks of :data:`BLOCK` words
(``64 BLOCK`` samples); each thread takes blocks round-robin and runs a block through every layer in two
thread-local buffers of ``(rows, BLOCK)`` words, so a gate's inner loop is ``BLOCK`` independent word operations
(vectorised: 4 words per AVX2, 8 per AVX-512 instruction) and a thread's working set (two buffers of
``widest layer x BLOCK`` words, 2 MiB for 8,000 gates at ``BLOCK = 16``) stays in L2/L3 cache.

GroupSum needs per-sample counts of one-bits across a group's rows, i.e. a vertical (column-wise) popcount of the
bit-sliced rows. Counting bit by bit costs 64 operations per row and word; instead each group's rows go through a
carry-save adder tree: pending words per binary weight (``2**level``), at most two per level; a third word at a
level triggers a full adder (sum = x ^ y ^ z stays, carry = maj(x, y, z) moves up one level), about 5 word
operations per row, all lanes at once. At the end every level holds at most two words, and lane ``j``'s count is
``sum(level words' bit j << level)``: about 2 log2(group size) words to unpack per group, independent of the group
size. The result is exact (integer arithmetic throughout).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from hdc._kernels.runtime import jit

__all__ = ["ANF", "BLOCK", "DEBRUIJN_INDEX", "FAULT_CODES", "circuit_counts", "pack_threshold_bits", "slice_row_bits"]

BLOCK = 16  # default words per block (1,024 samples); benchmarks/bench_logic.py --block compares sizes
_LEVELS = 40  # carry-save levels; enough for groups of up to 2**39 rows
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
# How circuit_counts applies its ``faults`` masks to the gate outputs: none, or per hit lane flip / force 0 / force 1.
FAULT_CODES = {"none": -1, "flip": 0, "stuck0": 1, "stuck1": 2}


def _anf_table() -> np.ndarray:
    """(16, 4) uint64 masks: gate ``i`` (truth-table id, bit ``3 - 2a - b`` = f(a, b)) equals
    ``k0 ^ (k1 & a) ^ (k2 & b) ^ (k3 & a & b)`` with k0 = f00, k1 = f00 ^ f10, k2 = f00 ^ f01,
    k3 = f00 ^ f01 ^ f10 ^ f11 (each 0 or all ones)."""
    table = np.zeros((16, 4), dtype=np.uint64)
    for gate in range(16):
        f00, f01, f10, f11 = ((gate >> (3 - 2 * a - b)) & 1 for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)))
        for col, bit in enumerate((f00, f00 ^ f10, f00 ^ f01, f00 ^ f01 ^ f10 ^ f11)):
            table[gate, col] = _ALL if bit else _ZERO
    return table


ANF = _anf_table()


# The block width ``nw`` is a runtime argument on purpose: the two row buffers are distinct, but LLVM cannot prove
# it, and with a small constant trip count it unrolls the word loop into scalar code. With a runtime trip count the
# loop vectoriser emits a vector loop guarded by one overlap check per gate (measured: 1.1 -> 0.7 ns per gate and
# word at 8 -> 32 words, against scalar code before).
@jit(fastmath=True)
def _layer(cur, nxt, ids, ia, ib, anf, start, stop, nw):  # pragma: no cover - compiled
    """nxt[g - start, :nw] = gate ids[g] applied to rows ia[g], ib[g] of cur, for g in [start, stop).

    Every gate is evaluated branch-free from its algebraic normal form ``k0 ^ (k1 & a) ^ (k2 & b) ^ (k3 & a & b)``
    (masks ``anf[id]``, each 0 or all ones), so mixed gate types cost the same and no branch is mispredicted.
    """
    for g in range(start, stop):
        op = ids[g]
        k0 = anf[op, 0]
        k1 = anf[op, 1]
        k2 = anf[op, 2]
        k3 = anf[op, 3]
        a = ia[g]
        b = ib[g]
        j = g - start
        for w in range(nw):
            x = cur[a, w]
            y = cur[b, w]
            nxt[j, w] = k0 ^ (k1 & x) ^ (k2 & y) ^ (k3 & x & y)


@jit(fastmath=True)
def _fault_rows(nxt, faults, fault_code, start, stop, w0, nw):  # pragma: no cover - compiled
    """Apply fault masks ``faults[g, w0 + w]`` to the just computed rows ``nxt[g - start, w]``, g in [start, stop):
    XOR (flip), AND NOT (stuck at 0) or OR (stuck at 1), one word operation per gate and 64 samples."""
    for g in range(start, stop):
        j = g - start
        if fault_code == 0:
            for w in range(nw):
                nxt[j, w] ^= faults[g, w0 + w]
        elif fault_code == 1:
            for w in range(nw):
                nxt[j, w] &= ~faults[g, w0 + w]
        else:
            for w in range(nw):
                nxt[j, w] |= faults[g, w0 + w]


@jit(fastmath=True)
def _group_counts(
    rows, lo, hi, pend0, pend1, npend, carry, lanes, out, group, first_sample, n_samples, nw
):  # pragma: no cover - compiled
    """out[s, group] = number of one-bits of sample s in rows[lo:hi, :nw] (carry-save adder tree, module doc).

    pend0, pend1: (levels, nw) the up to two pending words per level; npend: (levels,) how many are pending.
    """
    for lvl in range(_LEVELS):
        npend[lvl] = 0
    for r in range(lo, hi):
        for w in range(nw):
            carry[w] = rows[r, w]
        lvl = 0
        while npend[lvl] == 2:  # full adder: the sum stays at this level, the carry moves up
            for w in range(nw):
                x = pend0[lvl, w]
                y = pend1[lvl, w]
                z = carry[w]
                t = x ^ y
                pend0[lvl, w] = t ^ z
                carry[w] = (x & y) | (t & z)
            npend[lvl] = 1
            lvl += 1
        if npend[lvl] == 0:
            for w in range(nw):
                pend0[lvl, w] = carry[w]
        else:
            for w in range(nw):
                pend1[lvl, w] = carry[w]
        npend[lvl] += 1
    top = 0
    for lvl in range(_LEVELS):
        if npend[lvl]:
            top = lvl + 1
    for w in range(nw):
        s0 = first_sample + 64 * w
        if s0 >= n_samples:
            break
        for j in range(64):
            lanes[j] = 0
        for lvl in range(top):
            for slot in range(npend[lvl]):
                word = pend0[lvl, w] if slot == 0 else pend1[lvl, w]
                for j in range(64):  # variable shifts over the lanes: vectorises (vpsrlvq)
                    lanes[j] += np.int64((word >> np.uint64(j)) & _ONE) << lvl
        for j in range(min(64, n_samples - s0)):
            out[s0 + j, group] = lanes[j]


@jit(parallel=True, fastmath=True)
def circuit_counts(
    x, ids, ia, ib, anf, offsets, group_bounds, buf_rows, n_samples, block, n_threads, faults, fault_code, out
):  # pragma: no cover - compiled
    """Evaluate a layered circuit on bit-sliced inputs and count each group's one-bits per sample.

    Args:
        x: uint64 (n_inputs, n_words); bit j of word w = sample 64 w + j.
        ids: uint8 (total gates,) gate ids, layers concatenated; ia, ib: int32 (total,) input rows of each gate
            in the previous layer (the inputs for layer 0).
        anf: uint64 (16, 4) each gate's algebraic-normal-form masks (:data:`ANF`).
        offsets: int64 (n_layers + 1,) layer boundaries in ids/ia/ib.
        group_bounds: int64 (n_groups + 1,) row boundaries of the groups in the last layer.
        buf_rows: max(n_inputs, widest layer).
        n_samples: samples to count (lanes beyond are padding and are ignored).
        block: words per block (the last block may be shorter).
        n_threads: ``numba.get_num_threads()`` of the caller (asking inside would disable numba's cache).
        faults: uint64 (total gates, n_words) per-gate, per-sample fault masks (bit-sliced like ``x``), applied to
            each gate's output as soon as it is computed, so later gates read the faulty value; ignored (pass a
            (0, 0) array) when ``fault_code`` is -1 (see :data:`FAULT_CODES`).
        fault_code: :data:`FAULT_CODES` value.
        out: int32 (n_samples, n_groups), written.
    """
    n_inputs = x.shape[0]
    n_words = x.shape[1]
    n_blocks = (n_words + block - 1) // block
    n_layers = offsets.shape[0] - 1
    n_groups = group_bounds.shape[0] - 1
    n_threads = max(1, min(n_threads, n_blocks))
    for t in prange(n_threads):
        buf0 = np.empty((buf_rows, block), np.uint64)
        buf1 = np.empty((buf_rows, block), np.uint64)
        pend0 = np.empty((_LEVELS, block), np.uint64)
        pend1 = np.empty((_LEVELS, block), np.uint64)
        npend = np.zeros(_LEVELS, np.int64)
        carry = np.empty(block, np.uint64)
        lanes = np.empty(64, np.int64)
        for blk in range(t, n_blocks, n_threads):
            w0 = blk * block
            nw = min(block, n_words - w0)
            for r in range(n_inputs):
                for w in range(nw):
                    buf0[r, w] = x[r, w0 + w]
            cur = buf0
            nxt = buf1
            for layer in range(n_layers):
                _layer(cur, nxt, ids, ia, ib, anf, offsets[layer], offsets[layer + 1], nw)
                if fault_code >= 0:
                    _fault_rows(nxt, faults, fault_code, offsets[layer], offsets[layer + 1], w0, nw)
                cur, nxt = nxt, cur
            for g in range(n_groups):
                _group_counts(
                    cur,
                    group_bounds[g],
                    group_bounds[g + 1],
                    pend0,
                    pend1,
                    npend,
                    carry,
                    lanes,
                    out,
                    g,
                    64 * w0,
                    n_samples,
                    nw,
                )


@jit(parallel=True, fastmath=False)
def pack_threshold_bits(x, source, threshold, n_words, unit_range, n_threads, out):  # pragma: no cover - compiled
    """out[i, w] bit j = x[64 w + j, source[i]] > threshold[i] (zero for samples beyond x's rows); returns the
    number of values read that are NaN or infinite, or (``unit_range``) outside [0, 1].

    Each thread builds a word's ``n_bits`` rows in a local accumulator (one pass over its 64 samples, a gather
    along each sample's row) and writes them once, instead of read-modify-writing ``out`` 64 times per word.

    Args:
        x: float32 (n_samples, raw features); source: int64 (n_bits,); threshold: float32 (n_bits,);
        n_words: words per row of out (>= ceil(n_samples / 64)); unit_range: count values outside [0, 1] as bad;
        n_threads: as in :func:`circuit_counts`;
        out: uint64 (n_bits, n_words), written.
    """
    n_samples = x.shape[0]
    n_bits = source.shape[0]
    n_threads = max(1, min(n_threads, n_words))
    bad = 0
    for t in prange(n_threads):
        acc = np.empty(n_bits, np.uint64)
        bad_here = 0
        for w in range(t, n_words, n_threads):
            for i in range(n_bits):
                acc[i] = _ZERO
            s0 = 64 * w
            for j in range(max(0, min(64, n_samples - s0))):
                row = s0 + j
                shift = np.uint64(j)
                for i in range(n_bits):
                    v = x[row, source[i]]
                    acc[i] |= np.uint64(v > threshold[i]) << shift
                    if unit_range:
                        bad_here += not (v >= 0.0 and v <= 1.0)
                    else:
                        bad_here += not np.isfinite(v)
            for i in range(n_bits):
                out[i, w] = acc[i]
        bad += bad_here
    return bad


def _debruijn_table() -> np.ndarray:
    table = np.zeros(64, np.int64)
    for i in range(64):
        table[((1 << i) * _DEBRUIJN & 0xFFFFFFFFFFFFFFFF) >> 58] = i
    return table


_DEBRUIJN = 0x03F79D71B4CB0A89
DEBRUIJN_INDEX = _debruijn_table()


@jit(parallel=True)
def slice_row_bits(mask, row_of, index_table, out):  # pragma: no cover - compiled
    """Bit-slice per-sample masks: ``out[row_of[b], s // 64]`` bit ``s % 64`` = bit ``b`` of ``mask[s]``, for the
    bits ``b`` with ``row_of[b] >= 0`` (others are dropped).

    Visits set bits only (lowest set bit isolated by ``x & -x``, its index by a De Bruijn multiply), so the cost is
    one pass over the mask words plus one store per hit. Parallel over groups of 64 samples: each group gathers
    its output column in a local contiguous buffer (random stores within cache) and writes it once.

    Args:
        mask: uint64 (n_samples, ceil(n_bits / 64)) per-sample masks (e.g. :func:`hdc.faults.row_fault_mask`).
        row_of: int64 (n_bits,) output row of each bit, -1 to drop it.
        index_table: int64 (64,) De Bruijn index table (:data:`DEBRUIJN_INDEX`).
        out: uint64 (rows, ceil(n_samples / 64)), written (every word).
    """
    n_samples = mask.shape[0]
    n_words = mask.shape[1]
    n_rows = out.shape[0]
    for col in prange((n_samples + 63) // 64):
        column = np.zeros(n_rows, np.uint64)  # contiguous: the scattered stores stay in cache
        for s in range(64 * col, min(64 * col + 64, n_samples)):
            lane = np.uint64(1) << np.uint64(s - 64 * col)
            for w in range(n_words):
                word = mask[s, w]
                while word:
                    low = word & (~word + np.uint64(1))
                    bit = 64 * w + index_table[(low * np.uint64(_DEBRUIJN)) >> np.uint64(58)]
                    row = row_of[bit]
                    if row >= 0:
                        column[row] |= lane
                    word ^= low
        for r in range(n_rows):
            out[r, col] = column[r]
