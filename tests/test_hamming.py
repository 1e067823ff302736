"""hdc.hamming: exactness of every method against a naive reference, top-k, statistics."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hdc import _linalg
from hdc._kernels import popcount
from hdc.hamming import (
    METHODS,
    bipolar_dot,
    choose_method,
    hamming_distance,
    hamming_similarity,
    hamming_topk,
)
from hdc.ops import random
from hdc.packed import PackedHV, pack_bits, to_bipolar

EXACT = [m for m in METHODS if m != "auto"]


def naive(bits_a: np.ndarray, bits_b: np.ndarray) -> np.ndarray:
    return (bits_a[:, None, :] != bits_b[None, :, :]).sum(-1)


def random_bits(rng, n, dim, p=0.5):
    return rng.random((n, dim)) < p


@settings(max_examples=40, deadline=None)
@given(
    q=st.integers(1, 9),
    m=st.integers(1, 9),
    dim=st.integers(1, 400),
    p=st.sampled_from([0.5, 0.02, 0.98]),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_method_equals_naive_reference(q, m, dim, p, seed):
    rng = np.random.default_rng(seed)
    ba, bb = random_bits(rng, q, dim, p), random_bits(rng, m, dim, p)
    ref = naive(ba, bb)
    a, b = pack_bits(ba), pack_bits(bb)
    for method in METHODS:
        h = hamming_distance(a, b, method=method)
        assert h.dtype == np.int32 and h.shape == (q, m)
        assert np.array_equal(h, ref), method


@pytest.mark.parametrize(
    "q, m, dim",
    [
        (1, 1, 10_000),
        (1, 20_000, 250),  # few queries, parallel over items (above the serial threshold)
        (2, 20_000, 250),
        (3, 5, 64),
        (600, 500, 1000),  # tiled, parallel
        (257, 33, 130),  # odd tile remainders, serial
        (40, 9000, 1000),  # many item tiles
    ],
)
def test_kernel_paths_are_exact(q, m, dim):
    rng = np.random.default_rng(q * 7 + m)
    ba, bb = random_bits(rng, q, dim), random_bits(rng, m, dim)
    a, b = pack_bits(ba), pack_bits(bb)
    ref = hamming_distance(a, b, method="numpy")
    # spot-check the numpy reference itself against the bool definition
    rows = slice(0, min(q, 3))
    assert np.array_equal(ref[rows], naive(ba[rows], bb))
    for method in ("numba", "gemm", "auto"):
        assert np.array_equal(hamming_distance(a, b, method=method), ref), method


def test_each_numba_kernel_directly():
    rng = np.random.default_rng(5)
    a = random(37, 200, rng)
    b = random(29, 200, rng)
    ref = hamming_distance(a, b, method="numpy")
    for tq, tm in [(2, 2), (3, 5), (64, 7), (1, 1)]:
        for kernel in (popcount.hamming_tiled, popcount.hamming_tiled_serial):
            out = np.full(ref.shape, -1, np.int32)
            kernel(a, b, out, tq, tm)
            assert np.array_equal(out, ref)
    for block in (1, 4, 100):
        out = np.full(ref.shape, -1, np.int32)
        popcount.hamming_few_queries(a, b, out, block)
        assert np.array_equal(out, ref)
    out = np.full(ref.shape, -1, np.int32)
    popcount.hamming_few_queries_serial(a, b, out)
    assert np.array_equal(out, ref)


def test_gemm_int32_fallback_is_exact(monkeypatch):
    # a torch build without a CPU torch._int_mm: hdc._linalg.int8_matmul multiplies in int32 instead
    monkeypatch.setitem(_linalg._INT_MM, "cpu", False)
    rng = np.random.default_rng(2)
    a, b = random(20, 777, rng), random(11, 777, rng)
    assert np.array_equal(hamming_distance(a, b, method="gemm"), hamming_distance(a, b, method="numpy"))


def test_extreme_distances():
    dim = 10_000
    a = random(3, dim, 0)
    comp = pack_bits(to_bipolar(a, dim) < 0)  # the complements
    for method in METHODS:
        h = hamming_distance(a, np.concatenate([a, comp]), method=method)
        assert np.array_equal(np.diag(h[:, :3]), [0, 0, 0])
        assert np.array_equal(np.diag(h[:, 3:]), [dim] * 3)


def test_one_dimensional_inputs_promote_to_rows():
    a, b = random(1, 100, 0)[0], random(4, 100, 1)
    assert hamming_distance(a, b).shape == (1, 4)
    assert hamming_distance(b, a).shape == (4, 1)
    assert hamming_distance(a, a).tolist() == [[0]]


def test_similarity_and_bipolar_dot_identities():
    rng = np.random.default_rng(3)
    dim = 333
    a, b = random(5, dim, rng), random(6, dim, rng)
    h = hamming_distance(a, b)
    pa = to_bipolar(a, dim, np.int64)
    pb = to_bipolar(b, dim, np.int64)
    assert np.array_equal(bipolar_dot(a, b, dim), pa @ pb.T)
    assert np.allclose(hamming_similarity(a, b, dim), 1 - h / dim)
    assert hamming_similarity(a, a[:1], dim)[0, 0] == 1.0


def test_topk_matches_sorted_reference_and_breaks_ties_by_index():
    rng = np.random.default_rng(4)
    dim = 100
    b = random(50, dim, rng)
    b = np.concatenate([b, b[:10]])  # exact duplicates -> equal distances
    a = random(7, dim, rng)
    h = hamming_distance(a, b)
    for k in (1, 5, 60):
        idx, dist = hamming_topk(a, b, k, max_block_bytes=3000)  # forces several query blocks
        assert idx.dtype == np.int64 and dist.dtype == np.int32 and idx.shape == (7, k)
        for q in range(7):
            order = np.lexsort((np.arange(b.shape[0]), h[q]))[:k]
            assert np.array_equal(idx[q], order)
            assert np.array_equal(dist[q], h[q, order])


def test_choose_method_prefers_numba_here():
    assert choose_method(1000, 1000, 157) == "numba"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda a, b: hamming_distance(a.astype(np.int64), b), "dtype uint64"),
        (lambda a, b: hamming_distance(a, b[:, :1]), "word counts"),
        (lambda a, b: hamming_distance(a[:0], b), "empty"),
        (lambda a, b: hamming_distance(a[None], b), "1-D .* or 2-D"),
        (lambda a, b: hamming_distance(a, b, method="fast"), "unknown method 'fast'"),
        (lambda a, b: hamming_similarity(a, b, 64), "needs 1 words"),
        (lambda a, b: bipolar_dot(a, b, 0), "positive"),
        (lambda a, b: hamming_topk(a, b, 0), "k must be between"),
        (lambda a, b: hamming_topk(a, b, 4), "k must be between"),
        (lambda a, b: hamming_topk(a, b, 1.5), "k must be an integer"),
    ],
)
def test_bad_input(call, match):
    a, b = random(2, 100, 0), random(3, 100, 1)
    with pytest.raises(ValueError, match=match):
        call(a, b)


def test_packedhv_inputs_carry_their_dim():
    dim = 130
    a, b = random(3, dim, 0), random(4, dim, 1)
    pa, pb = PackedHV(a, dim), PackedHV(b, dim)
    h = hamming_distance(a, b)
    assert np.array_equal(hamming_distance(pa, pb), h)
    assert np.array_equal(hamming_distance(pa, b), h)  # one wrapped, one plain: the word counts must agree
    assert np.array_equal(hamming_similarity(pa, pb), hamming_similarity(a, b, dim))
    assert np.array_equal(hamming_similarity(pa, b, dim), hamming_similarity(a, b, dim))
    assert np.array_equal(bipolar_dot(a, pb), bipolar_dot(a, b, dim))
    idx, dist = hamming_topk(pa, pb, 2)
    assert np.array_equal((idx, dist), hamming_topk(a, b, 2))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda pa, pb: hamming_similarity(pa, pb, 129), "dim=129 does not match the PackedHV dim 130"),
        (lambda pa, pb: bipolar_dot(pa, pb.words, 100), "does not match"),
        (lambda pa, pb: hamming_distance(pa, PackedHV(random(1, 100, 2), 100)), "different dims"),
        (lambda pa, pb: hamming_similarity(pa, PackedHV(random(1, 129, 2), 129)), "different dims"),
        (lambda pa, pb: hamming_similarity(pa.words, pb.words), "dim is required"),
    ],
)
def test_packedhv_dim_mismatch_is_an_error(call, match):
    pa, pb = PackedHV(random(2, 130, 0), 130), PackedHV(random(3, 130, 1), 130)
    with pytest.raises(ValueError, match=match):
        call(pa, pb)


def test_numba_kernel_uses_vector_popcount():
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    if "avx512_vpopcntdq" not in flags:
        pytest.skip("CPU lacks AVX-512 VPOPCNTDQ")
    import numba

    # A fresh, uncached compile of the scan kernel so the assembly can be inspected.
    scan = numba.njit(fastmath=True)(popcount._scan.py_func)
    a = random(2, 640, 0)
    out = np.zeros((2, 2), np.int32)
    scan(a, a, out, 0, 2, 0, 2)
    asm = scan.inspect_asm(scan.signatures[0])
    assert "vpopcntq" in asm and "zmm" in asm


# ---------------------------------------------------------------- statistics


def test_random_pairs_are_near_half():
    # For independent uniform vectors H ~ Binomial(D, 1/2): sd(H/D) = 1/(2 sqrt(D)).  The issue's
    # tolerance 5/sqrt(D) is 10 sd; with 200 x 300 = 60,000 pairs and a normal tail of ~1e-23 per
    # pair at 10 sd, a failure would mean a real bias, not bad luck.  The mean over all pairs has
    # sd 1/(2 sqrt(D * 60000)) (pairs share vectors, which inflates it by < sqrt(2)); 6 of those.
    dim = 10_000
    a, b = random(200, dim, 11), random(300, dim, 12)
    frac = hamming_distance(a, b) / dim
    assert np.abs(frac - 0.5).max() < 5 / np.sqrt(dim)
    assert abs(frac.mean() - 0.5) < 6 * np.sqrt(2) / (2 * np.sqrt(dim * frac.size))


def test_sign_projection_hamming_estimates_angle_over_pi():
    projection = pytest.importorskip("hdc.projection")
    # Grothendieck / SimHash: for Gaussian rows g, P[sign(g.u) != sign(g.v)] = theta / pi, rows
    # independent, so H/N ~ Binomial(N, theta/pi)/N with sd <= 1/(2 sqrt(N)) = 0.005 at N = 10,000.
    # Tolerance 5 sd = 0.025 per pair; with 12 pairs the union bound on a false failure is ~7e-6.
    n_in, dim = 24, 10_000
    rng = np.random.default_rng(21)
    angles = np.linspace(0.05, np.pi - 0.05, 12)
    u = rng.standard_normal(n_in)
    u /= np.linalg.norm(u)
    w = rng.standard_normal(n_in)
    w -= (w @ u) * u
    w /= np.linalg.norm(w)
    v = np.cos(angles)[:, None] * u[None] + np.sin(angles)[:, None] * w[None]
    proj = projection.RandomProjection(n_in, dim, kind="gaussian", seed=5)
    codes_u = proj.encode(torch.from_numpy(u[None].astype(np.float32)))
    codes_v = proj.encode(torch.from_numpy(v.astype(np.float32)))
    frac = hamming_distance(codes_v, codes_u)[:, 0] / dim
    assert np.all(np.abs(frac - angles / np.pi) < 5 * 0.5 / np.sqrt(dim))
