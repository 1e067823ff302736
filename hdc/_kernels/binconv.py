"""Numba kernels of sign-thresholded convolutions with +-1 weights, output bits packed per position (private).

Each kernel computes a convolution followed by a per-channel threshold and writes the output channel bits of each
position into uint64 words (bit ``o % 64`` of word ``o // 64``, tail bits 0), so no (batch, channels, positions)
intermediate is stored. Images are spread over numba's threads (``prange``). The innermost loops run over all
output positions of one image at once: long, contiguous loops that vectorise (``vpopcntq`` on zmm registers where
the CPU has AVX-512 VPOPCNTDQ, float64 lanes in the real kernel); loops over a handful of kernel terms or channels
were measured to spend most of their time entering and leaving the loop.

Output geometry: stride 1 (the kernels' callers check), any zero padding and dilation; a 1-D convolution is the
2-D one of height 1.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from hdc._kernels.popcount import popcnt64
from hdc._kernels.runtime import jit

__all__ = ["binary_conv_sign", "exact_float64_sums", "real_conv_sign"]


@jit()
def exact_float64_sums(bits, mantissa, exponent_ones, bias, n_terms):  # pragma: no cover - compiled
    """True if every signed sum of at most ``n_terms`` entries of a float array is exact in float64, in any order.

    Each non-zero entry is an odd integer times a power of two, its lowest set bit ``2^e_k``; every entry, and
    every signed subset sum, is an integer multiple of ``2^e``, ``e = min e_k``, of magnitude below
    ``n_terms * 2^top`` (``2^top`` bounds every ``|x|``). If that is at most ``2^(52 + e)``, float64 represents
    all these values (integers times ``2^e`` below ``2^53``): every addition is exact, whatever the order.
    Integer operations on the bit patterns only (a vectorised loop). Non-finite entries give False.

    Args:
        bits: the array viewed as int32 (float32: mantissa 23, exponent_ones 0xFF, bias 150) or int64 (float64:
            52, 0x7FF, 1075); an entry is ``m * 2^(max(E, 1) - bias)`` with ``E`` its exponent field.
    """
    flat = bits.ravel()
    fraction = (np.int64(1) << mantissa) - 1
    top_field = np.int64(-1)
    low = np.int64(1) << 20
    bad = False
    for k in range(flat.shape[0]):
        b = np.int64(flat[k])
        e = (b >> mantissa) & exponent_ones
        m = (b & fraction) | ((np.int64(e > 0)) << mantissa)
        bad |= e == exponent_ones
        if m != 0:
            zeros = np.int64(popcnt64(np.uint64((m & -m) - 1)))  # trailing zeros of m
            top_field = max(top_field, e)
            low = min(low, max(e, 1) - bias + zeros)
    if bad:
        return False
    if top_field < 0:
        return True  # all zeros
    top = max(top_field, 1) - bias + mantissa + 1
    log_terms = 0
    while (1 << log_terms) < n_terms:
        log_terms += 1
    return log_terms + top <= 52 + low


_GROUP = 4  # kernel terms (real) or patch words (binary) added per pass over an image's accumulators


@jit(parallel=True)
def real_conv_sign(x, weight, threshold, kh, kw, padding, dilation, out):  # pragma: no cover - compiled
    """out bit o of position (b, i, j) = ``sum(x patch * w[o]) >= threshold[o]``, stride 1, zero padding.

    float64 sums of exact products (+-1 weights, and 0 for the terms that fill the last group of four); equal to
    the exact sums wherever every addition is exact (checked by the caller with :func:`exact_float64_sums`):
    then the order of the additions does not matter.

    Args:
        x: float32 or float64 (B, C, H, W).
        weight: float64 (n_out, C * kh * kw), +-1, row ``o`` in (c, ki, kj) order.
        threshold: float64 (n_out,).
        padding, dilation: int64 (2,) each, (height, width).
        out: uint64 (B, Ho, Wo, ceil(n_out / 64)), written completely.
    """
    B, C, H, W = x.shape
    n_out, T = weight.shape
    Ho, n_words = out.shape[1], out.shape[3]
    Hp, Wp = H + 2 * padding[0], W + 2 * padding[1]
    # The output is computed Wp wide (columns >= Wo are ignored): one kernel term over all positions is then one
    # contiguous loop over the padded image stored row after row (plus slack after the last row).
    n = Ho * Wp
    size = Hp * Wp + (kw - 1) * dilation[1]
    n_terms = -(-T // _GROUP) * _GROUP
    offsets = np.zeros(n_terms, dtype=np.int64)  # fill terms read the start of channel 0 with weight 0
    for c in range(C):
        for ki in range(kh):
            for kj in range(kw):
                offsets[(c * kh + ki) * kw + kj] = c * size + ki * dilation[0] * Wp + kj * dilation[1]
    w = np.zeros((-(-n_out // _GROUP) * _GROUP, n_terms), dtype=np.float64)  # fill rows: weight 0, bits not kept
    w[:n_out, :T] = weight
    for b in prange(B):
        xpad = np.zeros(C * size, dtype=np.float64)
        for c in range(C):
            for y in range(H):
                base = c * size + (y + padding[0]) * Wp + padding[1]
                for xx in range(W):
                    xpad[base + xx] = x[b, c, y, xx]
        acc = np.empty((_GROUP, n), dtype=np.float64)
        bits = np.zeros((n_words, n), dtype=np.uint64)
        for o in range(0, w.shape[0], _GROUP):
            acc[:] = 0.0
            for r in range(0, n_terms, _GROUP):
                _add_terms(xpad, offsets[r : r + _GROUP], w[o : o + _GROUP, r : r + _GROUP], acc)
            for u in range(min(_GROUP, n_out - o)):
                _set_bits(bits[(o + u) // 64], (o + u) % 64, acc[u], threshold[o + u])
        _store_rows(bits, Wp, out, b)


# Contraction into fused multiply-adds changes no result here: fma(w, v, a) rounds a + w * v once, and w * v with
# w in {-1, 0, +1} is exact, so the separate multiply and add round to the same value.
@jit(fastmath={"contract"})
def _add_terms(xpad, offsets, w, acc):  # pragma: no cover - compiled
    """acc[u, q] += sum_t w[u, t] * xpad[offsets[t] + q] for 4 units u and 4 terms t: 16 products per 4 loads
    of the image and 4 of the accumulators (one term of one unit per pass was bound by those loads)."""
    n = acc.shape[1]
    s0, s1 = xpad[offsets[0] : offsets[0] + n], xpad[offsets[1] : offsets[1] + n]
    s2, s3 = xpad[offsets[2] : offsets[2] + n], xpad[offsets[3] : offsets[3] + n]
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    w00, w01, w02, w03 = w[0, 0], w[0, 1], w[0, 2], w[0, 3]
    w10, w11, w12, w13 = w[1, 0], w[1, 1], w[1, 2], w[1, 3]
    w20, w21, w22, w23 = w[2, 0], w[2, 1], w[2, 2], w[2, 3]
    w30, w31, w32, w33 = w[3, 0], w[3, 1], w[3, 2], w[3, 3]
    for q in range(n):
        v0, v1, v2, v3 = s0[q], s1[q], s2[q], s3[q]
        a0[q] += (w00 * v0 + w01 * v1) + (w02 * v2 + w03 * v3)
        a1[q] += (w10 * v0 + w11 * v1) + (w12 * v2 + w13 * v3)
        a2[q] += (w20 * v0 + w21 * v1) + (w22 * v2 + w23 * v3)
        a3[q] += (w30 * v0 + w31 * v1) + (w32 * v2 + w33 * v3)


@jit()
def _set_bits(row, shift, acc, threshold):  # pragma: no cover - compiled
    """row |= (acc >= threshold) << shift: one bit of every position at once (a vectorised loop)."""
    bit = np.uint64(shift)
    for q in range(row.shape[0]):
        row[q] |= np.uint64(acc[q] >= threshold) << bit


@jit()
def _set_bits_limit(row, shift, acc, limit):  # pragma: no cover - compiled
    """row |= (acc <= limit) << shift, elementwise."""
    bit = np.uint64(shift)
    for q in range(row.shape[0]):
        row[q] |= np.uint64(acc[q] <= limit[q]) << bit


@jit()
def _store_rows(bits, width, out, b):  # pragma: no cover - compiled
    """out[b, i, j, :] = bits[:, i * width + j] for the Ho x Wo positions of out."""
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            for wi in range(out.shape[3]):
                out[b, i, j, wi] = bits[wi, i * width + j]


@jit(parallel=True)
def binary_conv_sign(words, channels, pad_word, weight, limit, kh, kw, padding, dilation, out):  # pragma: no cover
    """out bit o of position p = (b, i, j) = ``Hamming(patch, w[o]) <= limit[o, i * Wo + j]``, stride 1.

    The patch of a position is the bit string of its kernel positions' channel bits, one after the other
    (``channels`` bits each), packed tightly into uint64 words: with 32 channels two kernel positions share a
    word, half the words of one word per position.

    Args:
        words: uint64 (B, H, W, Wc): the input channel bits of each position (tail bits 0).
        channels: the number of channel bits per position.
        pad_word: uint64 (Wc,): the words of a padded position.
        weight: uint64 (O4, K), O4 and K multiples of 4, K >= n_words(kh * kw * channels): row o's bits in the
            patch order, then 0 bits; rows from n_out on (fill) are ignored.
        limit: int32 (n_out, Ho * Wo): the largest Hamming distance that gives bit 1 (-1: never).
        padding, dilation: int64 (2,) each, (height, width).
        out: uint64 (B, Ho, Wo, ceil(n_out / 64)), written completely.
    """
    n_out, K = weight.shape
    n_units = limit.shape[0]
    Ho, Wo, n_words = out.shape[1], out.shape[2], out.shape[3]
    P = Ho * Wo
    for b in prange(words.shape[0]):
        patches = np.zeros((K, P), dtype=np.uint64)  # transposed: one word of every position is contiguous
        _gather_patches(words, pad_word, channels, b, kh, kw, padding, dilation, Ho, Wo, patches)
        acc = np.empty((_GROUP, P), dtype=np.int64)
        bits = np.zeros((n_words, P), dtype=np.uint64)
        for o in range(0, n_out, _GROUP):
            acc[:] = 0
            for k in range(0, K, _GROUP):
                _add_popcounts(patches[k : k + _GROUP], weight[o : o + _GROUP, k : k + _GROUP], acc)
            for u in range(min(_GROUP, n_units - o)):
                _set_bits_limit(bits[(o + u) // 64], (o + u) % 64, acc[u], limit[o + u])
        _store_rows(bits, Wo, out, b)


@jit()
def _add_popcounts(patches, w, acc):  # pragma: no cover - compiled
    """acc[u, p] += sum_k popcount(patches[k, p] ^ w[u, k]) for 4 units u and 4 words k (16 popcounts per 4 loads
    of patch words and 4 of the accumulators)."""
    n = acc.shape[1]
    p0, p1, p2, p3 = patches[0], patches[1], patches[2], patches[3]
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    w00, w01, w02, w03 = w[0, 0], w[0, 1], w[0, 2], w[0, 3]
    w10, w11, w12, w13 = w[1, 0], w[1, 1], w[1, 2], w[1, 3]
    w20, w21, w22, w23 = w[2, 0], w[2, 1], w[2, 2], w[2, 3]
    w30, w31, w32, w33 = w[3, 0], w[3, 1], w[3, 2], w[3, 3]
    for q in range(n):
        v0, v1, v2, v3 = p0[q], p1[q], p2[q], p3[q]
        a0[q] += np.int64((popcnt64(v0 ^ w00) + popcnt64(v1 ^ w01)) + (popcnt64(v2 ^ w02) + popcnt64(v3 ^ w03)))
        a1[q] += np.int64((popcnt64(v0 ^ w10) + popcnt64(v1 ^ w11)) + (popcnt64(v2 ^ w12) + popcnt64(v3 ^ w13)))
        a2[q] += np.int64((popcnt64(v0 ^ w20) + popcnt64(v1 ^ w21)) + (popcnt64(v2 ^ w22) + popcnt64(v3 ^ w23)))
        a3[q] += np.int64((popcnt64(v0 ^ w30) + popcnt64(v1 ^ w31)) + (popcnt64(v2 ^ w32) + popcnt64(v3 ^ w33)))


@jit()
def _gather_patches(words, pad_word, channels, b, kh, kw, padding, dilation, Ho, Wo, patches):  # pragma: no cover
    """patches[:, i * Wo + j] = the concatenated channel bits of the kernel positions of output (i, j) of image b,
    gathered row by row of the output from a padded copy of the image's words."""
    H, W, Wc = words.shape[1], words.shape[2], words.shape[3]
    Hp, Wp = H + 2 * padding[0], W + 2 * padding[1]
    padded = np.empty((Wc, Hp, Wp), dtype=np.uint64)  # word-major: a row of one word is contiguous
    for c in range(Wc):
        padded[c] = pad_word[c]
        for y in range(H):
            for xx in range(W):
                padded[c, y + padding[0], xx + padding[1]] = words[b, y, xx, c]
    for ki in range(kh):
        for kj in range(kw):
            for c in range(Wc):
                off = (ki * kw + kj) * channels + 64 * c  # the word's first bit in the patch
                k, s = off // 64, np.uint64(off % 64)
                spill = off % 64 + min(64, channels - 64 * c) > 64
                for i in range(Ho):
                    src = padded[c, i + ki * dilation[0], kj * dilation[1] : kj * dilation[1] + Wo]
                    dst = patches[k, i * Wo : i * Wo + Wo]
                    for j in range(Wo):
                        dst[j] |= src[j] << s
                    if spill:
                        nxt = patches[k + 1, i * Wo : i * Wo + Wo]
                        for j in range(Wo):
                            nxt[j] |= src[j] >> (np.uint64(64) - s)
