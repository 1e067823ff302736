"""hdc.ops: bind, bundle, permute, random, similarities (property and statistical tests)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hdc.hamming import hamming_distance
from hdc.ops import (
    bind,
    bit_counts,
    bundle,
    bundle_from_counts,
    cosine,
    dot,
    hamming,
    inverse_permute,
    permute,
    random,
    similarity,
)
from hdc.packed import PackedHV, n_words, tail_mask, to_bipolar, unpack_bits

dims = st.integers(1, 300)
seeds = st.integers(0, 2**32 - 1)


def test_random_is_seeded_and_tail_clean():
    for dim in (1, 63, 64, 65, 1000):
        x = random(5, dim, seed=3)
        assert x.shape == (5, n_words(dim)) and x.dtype == np.uint64
        assert not np.any(x[:, -1] & ~tail_mask(dim))
        assert np.array_equal(x, random(5, dim, seed=3))
        assert np.array_equal(x, random(5, dim, np.random.default_rng(3)))
    assert not np.array_equal(random(5, 1000, 3), random(5, 1000, 4))


@settings(max_examples=30, deadline=None)
@given(dim=dims, seed=seeds)
def test_bind_is_self_inverse_and_preserves_distance(dim, seed):
    rng = np.random.default_rng(seed)
    a, b, key = random(4, dim, rng), random(3, dim, rng), random(1, dim, rng)
    assert np.array_equal(bind(bind(a, key), key), a)
    assert np.array_equal(hamming_distance(bind(a, key), bind(b, key)), hamming_distance(a, b))
    pa, pk = to_bipolar(a, dim), to_bipolar(key, dim)
    assert np.array_equal(bind(bind(pa, pk), pk), pa)
    # With bit 1 = +1, XOR is the negated bipolar product (see hdc.ops docstring).
    assert np.array_equal(to_bipolar(bind(a, key), dim), -(pa * pk))
    hv = bind(PackedHV(a, dim), PackedHV(key, dim))
    assert isinstance(hv, PackedHV) and np.array_equal(hv.words, a ^ key)


def test_bound_vector_is_dissimilar_to_its_parts():
    # H(a ^ k, a) = popcount(k) ~ Binomial(D, 1/2): within 5 sd = 5 sqrt(D)/2 of D/2.
    dim = 10_000
    a, k = random(50, dim, 1), random(50, dim, 2)
    h = np.diag(hamming_distance(bind(a, k), a))
    assert np.all(np.abs(h - dim / 2) < 5 * math.sqrt(dim) / 2)


@settings(max_examples=40, deadline=None)
@given(dim=dims, k=st.integers(-1000, 1000), k2=st.integers(-300, 300), seed=seeds)
def test_permute_is_invertible_and_is_a_cyclic_roll(dim, k, k2, seed):
    x = random(3, dim, seed)
    p = permute(x, k, dim)
    assert not np.any(p[:, -1] & ~tail_mask(dim))
    assert np.array_equal(unpack_bits(p, dim), np.roll(unpack_bits(x, dim), k, axis=-1))
    assert np.array_equal(inverse_permute(p, k, dim), x)
    assert np.array_equal(permute(p, -k, dim), x)
    assert np.array_equal(permute(permute(x, k, dim), k2, dim), permute(x, k + k2, dim))
    # permutation preserves distances
    y = random(2, dim, seed + 1)
    assert np.array_equal(hamming_distance(p, permute(y, k, dim)), hamming_distance(x, y))
    pm = to_bipolar(x, dim)
    assert np.array_equal(permute(pm, k), np.roll(pm, k, axis=-1))
    assert np.array_equal(inverse_permute(permute(pm, k), k), pm)


def test_permute_torch_and_packedhv():
    t = torch.tensor([[1.0, -1.0, -1.0, 1.0]])
    assert torch.equal(permute(t, 1), torch.roll(t, 1, -1))
    hv = PackedHV(random(2, 130, 0), 130)
    out = permute(hv, 5)
    assert isinstance(out, PackedHV) and np.array_equal(out.words, permute(hv.words, 5, 130))


def test_permuted_vector_is_nearly_orthogonal():
    # Shifting a random vector by k != 0 gives H/D ~ 1/2 with sd 1/(2 sqrt(D)); 5 sd tolerance.
    dim = 10_000
    x = random(20, dim, 7)
    for k in (1, 64, 5000):
        h = np.diag(hamming_distance(permute(x, k, dim), x)) / dim
        assert np.all(np.abs(h - 0.5) < 5 / (2 * math.sqrt(dim)))


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 15), seed=seeds)
def test_bundle_is_closer_to_members_than_to_random_vectors(k, seed):
    # A member agrees with the majority of k vectors with probability 1/2 + C(k-1, (k-1)//2)/2^k
    # (>= 0.60 for k <= 15), so H(member, bundle)/D ~ <= 0.40, while a random vector is at
    # 1/2 +- 1/(2 sqrt(D)) = 0.5 +- 0.0078 at D = 4096: a gap of > 12 sd on either side.
    dim = 4096
    rng = np.random.default_rng(seed)
    members = random(k, dim, rng)
    others = random(20, dim, rng)
    s = bundle(members, dim, seed=rng)
    d_members = hamming_distance(s, members)[0]
    d_others = hamming_distance(s, others)[0]
    assert d_members.max() < d_others.min()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), dim=dims, seed=seeds)
def test_bundle_is_exact_majority(n, dim, seed):
    x = random(n, dim, seed)
    bits = unpack_bits(x, dim)
    count = bits.sum(0)
    tie = 2 * count == n
    det = unpack_bits(bundle(x, dim, ties="deterministic"), dim)
    assert np.array_equal(det[~tie], (2 * count > n)[~tie])
    assert det[tie].all()  # tie -> +1 like sign(0)
    rnd = unpack_bits(bundle(x, dim, ties="random", seed=5), dim)
    assert np.array_equal(rnd[~tie], det[~tie])
    assert np.array_equal(bundle(x, dim, seed=5), bundle(x, dim, seed=5))
    # from counts and with unit weights: same result
    assert np.array_equal(bundle_from_counts(count, n, ties="deterministic"), bundle(x, dim, ties="deterministic"))
    assert np.array_equal(
        bundle(x, dim, weights=np.ones(n), ties="deterministic"),
        bundle(x, dim, ties="deterministic"),
    )


def test_random_ties_are_seeded_coin_flips():
    dim = 10_000
    x = random(2, dim, 0)  # two vectors: every disagreeing bit is a tie
    tie = unpack_bits(x[0] ^ x[1], dim)
    a = unpack_bits(bundle(x, dim, seed=1), dim)[tie]
    b = unpack_bits(bundle(x, dim, seed=2), dim)[tie]
    assert not np.array_equal(a, b)
    # ~D/2 ties, each +1 with probability 1/2: mean within 5 sd = 5 / (2 sqrt(n_ties)) of 1/2.
    assert abs(a.mean() - 0.5) < 5 / (2 * math.sqrt(tie.sum()))


def test_weighted_bundle():
    dim = 200
    x = random(3, dim, 4)
    # a weight larger than the other two combined wins every position
    assert np.array_equal(bundle(x, dim, weights=[5.0, 1.0, 1.0]), x[0])
    # negative weight subtracts: x0 - x1 with equal weights ties where they disagree
    out = bundle(x[:2], dim, weights=[1.0, -1.0], ties="deterministic")
    bits0, bits1 = unpack_bits(x[:2], dim)
    assert np.array_equal(unpack_bits(out, dim)[bits0 & ~bits1], np.ones((bits0 & ~bits1).sum(), bool))
    counts = bit_counts(x, dim, weights=[2.0, 1.0, 0.5])
    assert np.allclose(counts, unpack_bits(x, dim).T.astype(float) @ [2.0, 1.0, 0.5])


def test_batched_bundle_and_counts():
    dim = 130
    x = random(12, dim, 9).reshape(4, 3, -1)
    out = bundle(x, dim)
    assert out.shape == (4, n_words(dim))
    for g in range(4):
        assert np.array_equal(out[g], bundle(x[g], dim))
    assert bit_counts(x, dim).shape == (4, dim)
    hv = bundle(PackedHV(x[0], dim))
    assert isinstance(hv, PackedHV) and np.array_equal(hv.words, out[0])


def test_bipolar_bundle():
    x = np.array([[1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=np.int8)
    assert bundle(x).tolist() == [1, -1, -1, -1]
    assert bundle(x).dtype == np.int8
    assert bundle(x[:2], ties="deterministic").tolist() == [1, 1, 1, -1]
    assert bundle(x, weights=[1, 1, 3]).tolist() == [1, -1, -1, 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int8])
def test_bipolar_bundle_returns_torch_for_torch_input(dtype):
    # as bind does: a tensor in, a tensor of the same dtype (and device) out, with the numpy result's values
    x = np.array([[1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1], [-1, -1, 1, 1]], dtype=np.int8)
    t = torch.from_numpy(x).to(dtype)
    out = bundle(t, seed=3)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == t.device
    assert out.tolist() == bundle(x, seed=3).tolist()  # ties (even count) use the same seeded coin
    assert torch.equal(bundle(t, weights=[1, 1, 3, 1]), torch.tensor([1, -1, -1, 1], dtype=dtype))
    assert isinstance(bind(t[0], t[1]), torch.Tensor)


def test_similarities_accept_one_packedhv_and_check_dims():
    dim = 100
    a, b = random(2, dim, 0), random(3, dim, 1)
    assert np.array_equal(similarity(PackedHV(a, dim), b), similarity(a, b, dim))
    assert np.array_equal(dot(a, PackedHV(b, dim)), dot(a, b, dim))
    assert np.array_equal(cosine(PackedHV(a, dim), b), cosine(a, b, dim))
    with pytest.raises(ValueError, match="does not match"):
        similarity(PackedHV(a, dim), b, 99)


def test_similarities():
    dim = 500
    a, b = random(3, dim, 1), random(4, dim, 2)
    h = hamming_distance(a, b)
    pa, pb = to_bipolar(a, dim, np.float64), to_bipolar(b, dim, np.float64)
    assert np.array_equal(hamming(a, b), h)
    assert np.allclose(similarity(a, b, dim), 1 - h / dim)
    assert np.array_equal(dot(a, b, dim), dim - 2 * h)
    assert np.allclose(dot(pa, pb), pa @ pb.T)
    assert np.allclose(cosine(a, b, dim), (dim - 2 * h) / dim)
    assert np.allclose(cosine(pa, pb), (dim - 2 * h) / dim)
    ha, hb = PackedHV(a, dim), PackedHV(b, dim)
    assert np.array_equal(hamming(ha, hb), h)
    assert np.allclose(similarity(ha, hb), 1 - h / dim)
    assert np.allclose(cosine(ha, hb), (dim - 2 * h) / dim)
    real = np.array([[3.0, 4.0]])
    assert np.allclose(cosine(real, real), 1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: random(0, 10, 0), "n_vectors must be"),
        (lambda: random(2, 10, None), "seed"),
        (lambda: random(2, 10, -1), "non-negative"),
        (lambda: random(2, 10, "x"), "seed"),
        (lambda: bind(random(1, 10, 0), np.ones(10)), "cannot mix"),
        (lambda: bind(random(1, 10, 0), random(1, 100, 0)), "word counts differ"),
        (lambda: bind(np.ones(3), np.ones(4)), "dimensions differ"),
        (lambda: bind(PackedHV(random(1, 10, 0), 10), PackedHV(random(1, 20, 0), 20)), "dimensions differ"),
        (lambda: permute(random(1, 10, 0), 1), "dim is required"),
        (lambda: permute(random(1, 10, 0), 1.5, 10), r"k \(the shift\) must be an integer"),
        (lambda: permute(random(1, 10, 0), 1, 200), "words"),
        (lambda: bundle(random(3, 10, 0)), "dim is required"),
        (lambda: bundle(random(3, 10, 0), 10, ties="coin"), "unknown ties 'coin'"),
        (lambda: bundle(random(3, 10, 0)[0], 10), r"\(\.\.\., n_rows, W\)"),
        (lambda: bundle(random(3, 10, 0), 10, weights=[1, 2]), "weights must have shape"),
        (lambda: bundle(random(3, 10, 0), 10, weights=[1, np.nan, 2]), "NaN"),
        (lambda: bundle(np.array([[1.0, np.nan]])), "NaN"),
        (lambda: bundle(np.zeros((0, 4))), "n_rows >= 1"),
        (lambda: bundle_from_counts(np.array([1.0, np.inf]), 2), "NaN or inf"),
        (lambda: bundle_from_counts(np.ones((2, 3)), np.ones(3)), "total must be"),
        (lambda: similarity(random(1, 10, 0), random(1, 10, 1)), "dim is required"),
        (lambda: cosine(np.zeros((1, 3)), np.ones((1, 3))), "zero vector"),
        (lambda: dot(np.ones((1, 3)), np.ones((1, 4))), "dimensions differ"),
        (lambda: bind(np.array(["a"]), np.array(["b"])), "dtype"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
