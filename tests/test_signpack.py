"""The packed-sign kernels of hdc._kernels.signpack and hdc._kernels.sorf against plain numpy references:
bit-identical words, whatever the shape, dtype or batch split.

The references repeat the kernels' arithmetic exactly (the same products and sums in the same order, one IEEE
operation at a time), so the packed words must be equal, not merely close: this is what lets the blocked kernels
replace the plain loops without changing a single EHD code.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdc._kernels.signpack import dense_signs_into
from hdc._kernels.sorf import sorf_project_into, sorf_signs_into


def pack_reference(bits: np.ndarray) -> np.ndarray:
    """bool (R, N) -> uint64 (R, ceil(N / 64)): bit j % 64 of word j // 64 is bits[:, j] (little-endian)."""
    rows, n = bits.shape
    words = (n + 63) // 64
    padded = np.zeros((rows, words * 64), dtype=bool)
    padded[:, :n] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def dense_reference(x: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Packed (x @ gt >= 0) with acc = x[:, 0] * gt[0], then acc += x[:, i] * gt[i] in order (no FMA, no BLAS)."""
    acc = x[:, :1] * gt[0]
    for i in range(1, x.shape[1]):
        acc = acc + x[:, i : i + 1] * gt[i]
    return pack_reference(acc >= 0)


def fwht_reference(buf: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh-Hadamard transform along axis 1 of (R, d), with the kernels' radix-4 additions
    ((a+b)+(c+e) etc.) and a final radix-2 stage when log2(d) is odd."""
    rows, d = buf.shape
    h = 1
    while 4 * h <= d:
        v = buf.reshape(rows, d // (4 * h), 4, h)
        a, b, c, e = v[:, :, 0], v[:, :, 1], v[:, :, 2], v[:, :, 3]
        s0, s1, s2, s3 = a + b, a - b, c + e, c - e
        buf = np.stack([s0 + s2, s1 + s3, s0 - s2, s1 - s3], axis=2).reshape(rows, d)
        h *= 4
    if h < d:
        a, b = buf[:, :h], buf[:, h:]
        buf = np.concatenate([a + b, a - b], axis=1)
    return buf


def sorf_reference(x: np.ndarray, diag: np.ndarray, n_out: int) -> np.ndarray:
    """Packed signs of H D3 H D2 H D1 [x, +0.0 ...] block by block (the padding is never multiplied)."""
    rows, n = x.shape
    d = diag.shape[2]
    blocks = []
    for b in range(diag.shape[0]):
        buf = np.zeros((rows, d), dtype=x.dtype)
        buf[:, :n] = x * diag[b, 0, :n]
        buf = fwht_reference(buf)
        buf = fwht_reference(buf * diag[b, 1])
        buf = fwht_reference(buf * diag[b, 2])
        blocks.append(buf)
    return pack_reference(np.concatenate(blocks, axis=1)[:, :n_out] >= 0)


def random_inputs(rng: np.random.Generator, rows: int, n: int, dtype) -> np.ndarray:
    """Gaussian rows with the cases that matter for signs mixed in: all-zero rows (every projection is +-0, so
    every bit is 1), -0.0 entries and exact small integers (exact cancellations give zeros inside the transform)."""
    x = rng.standard_normal((rows, n)).astype(dtype)
    x[rng.random(rows) < 0.2] = 0
    x[rng.random((rows, n)) < 0.05] = -0.0
    ints = rng.random(rows) < 0.2
    x[ints] = rng.integers(-2, 3, size=(int(ints.sum()), n)).astype(dtype)
    return np.ascontiguousarray(x)


def random_diagonals(rng: np.random.Generator, n_out: int, d: int, dtype) -> np.ndarray:
    return (2 * rng.integers(0, 2, size=(-(-n_out // d), 3, d)) - 1).astype(dtype)


def block_size(n: int) -> int:
    d = 64
    while d < n:
        d *= 2
    return d


# ------------------------------------------------------------------------------------------------ dense
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 9, 25, 64])
def test_dense_signs_match_the_sequential_reference(k):
    rng = np.random.default_rng(100 + k)
    for rows, n in ((1, 1), (3, 63), (4, 64), (5, 65), (9, 511), (13, 513), (7, 1000), (6, 1088)):
        x = random_inputs(rng, rows, k, np.float32)
        gt = rng.standard_normal((k, n)).astype(np.float32)
        gt[:, rng.random(n) < 0.05] = 0  # whole zero columns: every row's projection there is +-0
        out = np.empty((rows, (n + 63) // 64), dtype=np.uint64)
        dense_signs_into(x, gt, out)
        np.testing.assert_array_equal(out, dense_reference(x, gt), err_msg=f"k={k} rows={rows} n={n}")


def test_dense_signs_for_the_mnist_shape_and_nan():
    rng = np.random.default_rng(7)
    x = random_inputs(rng, 203, 9, np.float32)
    x[5, 3] = np.nan  # NaN projections compare false (bit 0), as with numpy's >=
    gt = rng.standard_normal((9, 6000)).astype(np.float32)
    out = np.empty((203, 94), dtype=np.uint64)
    dense_signs_into(x, gt, out)
    np.testing.assert_array_equal(out, dense_reference(x, gt))
    assert not out[5].any()


def test_dense_signs_do_not_depend_on_the_batch_split():
    rng = np.random.default_rng(8)
    x = random_inputs(rng, 37, 9, np.float32)
    gt = rng.standard_normal((9, 700)).astype(np.float32)
    whole = np.empty((37, 11), dtype=np.uint64)
    dense_signs_into(x, gt, whole)
    for cuts in ((1, 2, 3), (5, 6, 13, 30), tuple(range(1, 37))):
        parts = []
        for lo, hi in zip((0, *cuts), (*cuts, 37), strict=False):
            part = np.empty((hi - lo, 11), dtype=np.uint64)
            dense_signs_into(np.ascontiguousarray(x[lo:hi]), gt, part)
            parts.append(part)
        np.testing.assert_array_equal(np.concatenate(parts), whole)


# ------------------------------------------------------------------------------------------------ structured
SORF_CASES = [  # (n, d, n_out, rows): d from 64 to 4096, odd and even log2(d), partial tiles and words
    (1, 64, 64, 3),
    (37, 64, 200, 9),
    (64, 64, 130, 8),
    (100, 128, 300, 17),
    (200, 256, 256, 5),
    (300, 512, 1000, 11),
    (512, 512, 1400, 8),
    (513, 1024, 1500, 7),
    (800, 1024, 2500, 19),
    (1500, 2048, 2100, 3),
    (3136, 4096, 4200, 9),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, d, n_out, rows", SORF_CASES)
def test_sorf_signs_match_the_fwht_reference(n, d, n_out, rows, dtype):
    assert d == block_size(n) or n <= 64
    rng = np.random.default_rng(n * 7 + rows)
    x = random_inputs(rng, rows, n, dtype)
    diag = random_diagonals(rng, n_out, d, dtype)
    out = np.empty((rows, (n_out + 63) // 64), dtype=np.uint64)
    sorf_signs_into(x, diag, n_out, out)
    np.testing.assert_array_equal(out, sorf_reference(x, diag, n_out))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sorf_signs_match_the_plain_projection_kernel(dtype):
    # sorf_project_into keeps the plain (TILE-lane) transform: the signs of its floats must be the same bits.
    rng = np.random.default_rng(11)
    for n, n_out, rows in ((800, 15000, 41), (90, 333, 70), (2000, 2048, 6)):
        d = block_size(n)
        x = random_inputs(rng, rows, n, dtype)
        diag = random_diagonals(rng, n_out, d, dtype)
        out = np.empty((rows, (n_out + 63) // 64), dtype=np.uint64)
        sorf_signs_into(x, diag, n_out, out)
        proj = np.empty((rows, n_out), dtype=dtype)
        sorf_project_into(x, diag, 0, n_out, 1.0, proj)
        np.testing.assert_array_equal(out, pack_reference(proj >= 0))


def test_sorf_signs_do_not_depend_on_the_batch_split():
    rng = np.random.default_rng(12)
    n, n_out, rows = 300, 1100, 29
    x = random_inputs(rng, rows, n, np.float32)
    diag = random_diagonals(rng, n_out, 512, np.float32)
    whole = np.empty((rows, 18), dtype=np.uint64)
    sorf_signs_into(x, diag, n_out, whole)
    for cuts in ((1, 9), (3, 8, 16, 17), tuple(range(1, rows))):
        parts = []
        for lo, hi in zip((0, *cuts), (*cuts, rows), strict=False):
            part = np.empty((hi - lo, 18), dtype=np.uint64)
            sorf_signs_into(np.ascontiguousarray(x[lo:hi]), diag, n_out, part)
            parts.append(part)
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_sorf_signs_of_zero_rows_are_all_ones_up_to_n_out():
    n_out = 1000
    diag = random_diagonals(np.random.default_rng(13), n_out, 1024, np.float32)
    out = np.empty((3, 16), dtype=np.uint64)
    sorf_signs_into(np.zeros((3, 800), dtype=np.float32), diag, n_out, out)
    want = np.full((3, 16), ~np.uint64(0), dtype=np.uint64)
    want[:, -1] = (np.uint64(1) << np.uint64(n_out % 64)) - np.uint64(1)
    np.testing.assert_array_equal(out, want)
