"""Bit-parallel evaluation of logic-gate circuits (the DiffLogic engine; private, called by gnet.logic.convert).

Layout: bit ``j`` of word ``w`` of row ``r`` is node ``r`` for sample ``64 w + j`` ("bit-sliced over samples").
A gate then costs one bitwise operation per 64 samples. Work is split into blocks of :data:`BLOCK` words
(``64 BLOCK`` samples); each thread takes blocks round-robin and runs a block through every layer in two
thread-local buffers of ``(rows, BLOCK)`` words, so a gate's inner loop is ``BLOCK`` independent word operations
(one AVX-512 register or two AVX2 registers for ``BLOCK = 8``) and a block's rows stay in the core's cache.

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

__all__ = ["BLOCK", "circuit_counts", "pack_threshold_bits"]

BLOCK = 8  # words per block: 512 samples; one 64-byte cache line per node and block
_LEVELS = 40  # carry-save levels; enough for groups of up to 2**39 rows
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@jit(fastmath=True)
def _layer(cur, nxt, ids, ia, ib, start, stop):  # pragma: no cover - compiled
    """nxt[g - start] = gate ids[g] applied to rows ia[g], ib[g] of cur, for g in [start, stop)."""
    for g in range(start, stop):
        j = g - start
        a = ia[g]
        b = ib[g]
        op = ids[g]
        if op < 8:
            if op < 4:
                if op == 0:
                    for w in range(BLOCK):
                        nxt[j, w] = _ZERO
                elif op == 1:
                    for w in range(BLOCK):
                        nxt[j, w] = cur[a, w] & cur[b, w]
                elif op == 2:
                    for w in range(BLOCK):
                        nxt[j, w] = cur[a, w] & ~cur[b, w]
                else:
                    for w in range(BLOCK):
                        nxt[j, w] = cur[a, w]
            elif op < 6:
                if op == 4:
                    for w in range(BLOCK):
                        nxt[j, w] = ~cur[a, w] & cur[b, w]
                else:
                    for w in range(BLOCK):
                        nxt[j, w] = cur[b, w]
            elif op == 6:
                for w in range(BLOCK):
                    nxt[j, w] = cur[a, w] ^ cur[b, w]
            else:
                for w in range(BLOCK):
                    nxt[j, w] = cur[a, w] | cur[b, w]
        elif op < 12:
            if op == 8:
                for w in range(BLOCK):
                    nxt[j, w] = ~(cur[a, w] | cur[b, w])
            elif op == 9:
                for w in range(BLOCK):
                    nxt[j, w] = ~(cur[a, w] ^ cur[b, w])
            elif op == 10:
                for w in range(BLOCK):
                    nxt[j, w] = ~cur[b, w]
            else:
                for w in range(BLOCK):
                    nxt[j, w] = cur[a, w] | ~cur[b, w]
        elif op == 12:
            for w in range(BLOCK):
                nxt[j, w] = ~cur[a, w]
        elif op == 13:
            for w in range(BLOCK):
                nxt[j, w] = ~cur[a, w] | cur[b, w]
        elif op == 14:
            for w in range(BLOCK):
                nxt[j, w] = ~(cur[a, w] & cur[b, w])
        else:
            for w in range(BLOCK):
                nxt[j, w] = _ALL


@jit(fastmath=True)
def _group_counts(rows, lo, hi, pend, npend, carry, out, group, first_sample, n_samples):  # pragma: no cover
    """out[s, group] = number of one-bits of sample s in rows[lo:hi] (carry-save adder tree, see module doc)."""
    for lvl in range(_LEVELS):
        npend[lvl] = 0
    for r in range(lo, hi):
        for w in range(BLOCK):
            carry[w] = rows[r, w]
        lvl = 0
        while npend[lvl] == 2:
            for w in range(BLOCK):
                x = pend[lvl, 0, w]
                y = pend[lvl, 1, w]
                z = carry[w]
                t = x ^ y
                pend[lvl, 0, w] = t ^ z
                carry[w] = (x & y) | (t & z)
            npend[lvl] = 1
            lvl += 1
        slot = npend[lvl]
        for w in range(BLOCK):
            pend[lvl, slot, w] = carry[w]
        npend[lvl] = slot + 1
    for w in range(BLOCK):
        s0 = first_sample + 64 * w
        if s0 >= n_samples:
            break
        m = min(64, n_samples - s0)
        for j in range(m):
            total = 0
            for lvl in range(_LEVELS):
                for slot in range(npend[lvl]):
                    total += np.int64((pend[lvl, slot, w] >> np.uint64(j)) & _ONE) << lvl
            out[s0 + j, group] = total


@jit(parallel=True, fastmath=True)
def circuit_counts(x, ids, ia, ib, offsets, group_bounds, buf_rows, n_samples, n_threads,
                   out):  # pragma: no cover - compiled
    """Evaluate a layered circuit on bit-sliced inputs and count each group's one-bits per sample.

    Args:
        x: uint64 (n_inputs, n_words), n_words a multiple of BLOCK; bit j of word w = sample 64 w + j.
        ids: uint8 (total gates,) gate ids, layers concatenated; ia, ib: int32 (total,) input rows of each gate
            in the previous layer (the inputs for layer 0).
        offsets: int64 (n_layers + 1,) layer boundaries in ids/ia/ib.
        group_bounds: int64 (n_groups + 1,) row boundaries of the groups in the last layer.
        buf_rows: max(n_inputs, widest layer).
        n_samples: samples to count (lanes beyond are padding and are ignored).
        n_threads: ``numba.get_num_threads()`` of the caller (asking inside would disable numba's cache).
        out: int32 (n_samples, n_groups), written.
    """
    n_inputs = x.shape[0]
    n_blocks = x.shape[1] // BLOCK
    n_layers = offsets.shape[0] - 1
    n_groups = group_bounds.shape[0] - 1
    n_threads = max(1, min(n_threads, n_blocks))
    for t in prange(n_threads):
        buf0 = np.empty((buf_rows, BLOCK), np.uint64)
        buf1 = np.empty((buf_rows, BLOCK), np.uint64)
        pend = np.empty((_LEVELS, 2, BLOCK), np.uint64)
        npend = np.zeros(_LEVELS, np.int64)
        carry = np.empty(BLOCK, np.uint64)
        for blk in range(t, n_blocks, n_threads):
            w0 = blk * BLOCK
            for r in range(n_inputs):
                for w in range(BLOCK):
                    buf0[r, w] = x[r, w0 + w]
            cur = buf0
            nxt = buf1
            for layer in range(n_layers):
                _layer(cur, nxt, ids, ia, ib, offsets[layer], offsets[layer + 1])
                cur, nxt = nxt, cur
            for g in range(n_groups):
                _group_counts(cur, group_bounds[g], group_bounds[g + 1], pend, npend, carry, out, g, 64 * w0,
                              n_samples)


@jit(parallel=True, fastmath=False)
def pack_threshold_bits(x, source, threshold, n_words, out):  # pragma: no cover - compiled
    """out[i, w] bit j = x[64 w + j, source[i]] > threshold[i] (zero for samples beyond x's rows).

    Args:
        x: float32 (n_samples, raw features); source: int64 (n_bits,); threshold: float32 (n_bits,);
        n_words: words per row of out (>= ceil(n_samples / 64)); out: uint64 (n_bits, n_words), written.
    """
    n_samples = x.shape[0]
    n_bits = source.shape[0]
    for w in prange(n_words):
        s0 = 64 * w
        m = max(0, min(64, n_samples - s0))
        for i in range(n_bits):
            out[i, w] = _ZERO
        for j in range(m):
            row = s0 + j
            bit = np.uint64(1) << np.uint64(j)
            for i in range(n_bits):
                if x[row, source[i]] > threshold[i]:
                    out[i, w] |= bit
