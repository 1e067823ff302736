"""hdc.encoders: scalar codebooks, record encoding, n-grams."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdc.encoders import (
    RecordEncoder,
    ScalarEncoder,
    circular_codebook,
    encode_records,
    level_codebook,
    ngram,
    ngrams,
    thermometer_codebook,
    value_to_level,
)
from hdc.hamming import hamming_distance
from hdc.ops import bind, bundle, permute, random
from hdc.packed import tail_mask, unpack_bits


@settings(max_examples=25, deadline=None)
@given(levels=st.integers(2, 20), dim=st.integers(2, 400), seed=st.integers(0, 2**31))
def test_level_and_thermometer_distances_are_linear(levels, dim, seed):
    j = np.arange(levels)
    lv = level_codebook(levels, dim, seed)
    c = (2 * j * (dim // 2) + (levels - 1)) // (2 * (levels - 1))  # round(j * floor(D/2) / (L-1))
    assert np.array_equal(hamming_distance(lv, lv), np.abs(c[:, None] - c[None, :]))
    assert not np.any(lv[:, -1] & ~tail_mask(dim))
    for th in (thermometer_codebook(levels, dim), thermometer_codebook(levels, dim, seed)):
        ones = (2 * j * dim + (levels - 1)) // (2 * (levels - 1))
        assert np.array_equal(unpack_bits(th, dim).sum(1), ones)
        assert np.array_equal(hamming_distance(th, th), np.abs(ones[:, None] - ones[None, :]))


@settings(max_examples=25, deadline=None)
@given(levels=st.integers(2, 24), dim=st.integers(64, 2000), seed=st.integers(0, 2**31))
def test_circular_distance_follows_the_circle(levels, dim, seed):
    cb = circular_codebook(levels, dim, seed)
    j = np.arange(levels)
    gap = np.abs(j[:, None] - j[None, :])
    circ = np.minimum(gap, levels - gap) / levels  # fraction of the circle, <= 1/2
    # Evenly spaced phases: each of the two arcs of length delta holds delta*R +- 1 phases,
    # R = floor(D/2), so H = 2 delta R +- 2 (and delta * D differs from 2 delta R by < 1/2).
    assert np.all(np.abs(hamming_distance(cb, cb) - circ * dim) <= 2.5)


def test_codebooks_are_seeded():
    assert np.array_equal(level_codebook(10, 500, 3), level_codebook(10, 500, 3))
    assert not np.array_equal(level_codebook(10, 500, 3), level_codebook(10, 500, 4))
    assert np.array_equal(circular_codebook(7, 500, np.random.default_rng(1)), circular_codebook(7, 500, 1))


def test_value_to_level():
    assert value_to_level([0.0, 0.5, 1.0, -3.0, 7.0], 5, 0.0, 1.0).tolist() == [0, 2, 4, 0, 4]
    # circular: the period wraps, high == low
    assert value_to_level([0.0, 0.25, 1.0, 1.25, -0.25], 4, 0.0, 1.0, circular=True).tolist() == [0, 1, 0, 1, 3]


def test_scalar_encoder_neighbouring_values_are_similar():
    enc = ScalarEncoder(21, 10_000, low=-1.0, high=1.0, kind="level", seed=0)
    x = np.array([-1.0, -0.9, 0.0, 1.0])
    codes = enc.encode(x)
    assert codes.shape == (4, 157)
    h = hamming_distance(codes, codes)
    assert h[0, 1] == 250 and h[0, 3] == 5000  # one step of 20 = D/2/20; ends orthogonal
    circ = ScalarEncoder(24, 10_000, low=0.0, high=24.0, kind="circular", seed=0)
    hc = hamming_distance(circ.encode([23.0]), circ.encode([0.0, 12.0]))
    assert abs(hc[0, 0] - 10_000 / 24) <= 2.5 and abs(hc[0, 1] - 11 * 10_000 / 24) <= 2.5


def test_records_match_bundle_of_bound_pairs():
    dim, f = 1000, 5  # odd F: no ties
    enc = RecordEncoder(f, dim, levels=8, low=0.0, high=1.0, seed=3)
    x = np.random.default_rng(0).random((6, f))
    codes = enc.encode(x, batch_size=4)  # several batches
    idx = enc.values.index(x)
    for b in range(6):
        pairs = bind(enc.keys, enc.values.codebook[idx[b]])
        assert np.array_equal(codes[b], bundle(pairs, dim))
    # unbinding a key recovers that feature's value code better than any other level
    vals = bind(codes[0], enc.keys[2])
    h = hamming_distance(vals, enc.values.codebook)[0]
    assert h.argmin() == idx[0, 2]
    assert np.array_equal(enc.encode(x[0]), codes[0])


def test_record_encoder_in_features_and_its_deprecated_name():
    enc = RecordEncoder(in_features=3, dim=200, levels=4, seed=2)
    x = np.random.default_rng(2).random((4, 3))
    with pytest.warns(DeprecationWarning, match="in_features"):
        old = RecordEncoder(n_features=3, dim=200, levels=4, seed=2)
    assert np.array_equal(old.encode(x), enc.encode(x))
    with pytest.warns(DeprecationWarning):
        assert old.n_features == 3 == old.in_features
    with pytest.raises(ValueError, match="in_features only"):
        RecordEncoder(3, 200, n_features=3)
    with pytest.raises(TypeError, match="in_features and dim"):
        RecordEncoder(dim=200)


def test_records_with_even_features_use_one_fixed_tie_vector():
    dim, f = 640, 4
    enc = RecordEncoder(f, dim, levels=4, seed=1)
    x = np.random.default_rng(1).random((5, f))
    codes = enc.encode(x)
    # A sample's code does not depend on its batch.
    assert np.array_equal(enc.encode(x[3:4]), codes[3:4])
    idx = enc.values.index(x)
    for b in range(5):
        bits = unpack_bits(bind(enc.keys, enc.values.codebook[idx[b]]), dim).sum(0)
        got = unpack_bits(codes[b], dim)
        tie = 2 * bits == f
        assert np.array_equal(got[~tie], (2 * bits > f)[~tie])
        assert np.array_equal(got[tie], unpack_bits(enc.tie, dim)[tie])
    det = RecordEncoder(f, dim, levels=4, seed=1, ties="deterministic")
    assert np.array_equal(det.encode(x), encode_records(idx, det.keys, det.values.codebook, dim))


def test_similar_inputs_give_similar_records():
    dim, f = 10_000, 31
    enc = RecordEncoder(f, dim, levels=50, seed=7)
    rng = np.random.default_rng(2)
    x = rng.random((1, f))
    near = np.clip(x + 0.02 * rng.standard_normal((1, f)), 0, 1)
    far = rng.random((1, f))
    h = hamming_distance(enc.encode(x), np.concatenate([enc.encode(near), enc.encode(far)]))[0]
    # Level codes make H between records grow with |x - y|: per feature the bound pairs differ
    # in |level_i - level_j| * D/2/(L-1) bits, about D/6 on average for unrelated uniform values
    # and ~0.02 * D/2 = D/100 for the near copy; majority voting roughly preserves the order.
    # Measured here (fixed seeds): 239 vs 2067.
    assert h[0] < 0.05 * dim and h[1] > 0.15 * dim


def test_ngrams_match_definition_and_are_order_sensitive():
    dim, n = 1000, 3
    items = random(6, dim, 0)
    seq = np.array([0, 1, 2, 3, 4, 5, 1, 2])
    grams = np.stack(
        [
            permute(items[seq[t]], 2, dim) ^ permute(items[seq[t + 1]], 1, dim) ^ items[seq[t + 2]]
            for t in range(len(seq) - n + 1)
        ]
    )
    assert np.array_equal(ngram(seq[:3], items, dim), grams[0])
    out = ngrams(seq, items, dim, n, ties="deterministic")
    assert np.array_equal(out, bundle(grams, dim, ties="deterministic"))
    # batch forms: list of different lengths and 2-D array
    batch = ngrams([seq, seq[:5]], items, dim, n)
    assert batch.shape == (2, 16) and np.array_equal(batch[0], ngrams(seq, items, dim, n))
    assert np.array_equal(ngrams(np.stack([seq, seq]), items, dim, n)[1], batch[0])
    # abc vs cba: different trigrams -> ~orthogonal (H/D ~ 1/2 +- 1/(2 sqrt(D)) = 0.0158; 5 sd)
    big = random(3, 10_000, 1)
    h = hamming_distance(ngram([0, 1, 2], big, 10_000), ngram([2, 1, 0], big, 10_000))[0, 0]
    assert abs(h / 10_000 - 0.5) < 5 * 0.005


def test_ngram_profiles_separate_languages_of_symbols():
    # Two "languages" with different transition rules; a profile from one text is closer to
    # another text of the same language than to the other language.
    dim, k = 10_000, 12
    items = random(k, dim, 3)
    rng = np.random.default_rng(4)

    def text(step, length=400):
        s = [int(rng.integers(k))]
        for _ in range(length - 1):
            s.append((s[-1] + step + int(rng.integers(2))) % k)
        return np.array(s)

    p = ngrams([text(1), text(1), text(5)], items, dim, 3)
    h = hamming_distance(p[:1], p[1:])[0]
    assert h[0] < h[1]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: level_codebook(1, 100), "levels must be >= 2"),
        (lambda: level_codebook(5, 0), "positive"),
        (lambda: circular_codebook(2.5, 100), "levels must be an integer"),
        (lambda: value_to_level([0.0, np.nan], 5, 0, 1), "NaN"),
        (lambda: value_to_level([np.inf], 5, 0, 1), "NaN or inf"),
        (lambda: value_to_level([], 5, 0, 1), "empty"),
        (lambda: value_to_level([0.5], 5, 1, 0), "low < high"),
        (lambda: value_to_level(["a"], 5, 0, 1), "real numbers"),
        (lambda: ScalarEncoder(5, 100, kind="log"), "unknown kind 'log'"),
        (lambda: RecordEncoder(3, 100).encode(np.ones((2, 4))), r"shape \(B, 3\)"),
        (lambda: RecordEncoder(3, 100).encode(np.array([[0.1, np.nan, 0.2]])), "NaN"),
        (lambda: RecordEncoder(3, 100).encode(np.ones((0, 3))), "empty"),
        (lambda: RecordEncoder(0, 100), "in_features"),
        (lambda: RecordEncoder(3, 100, ties="coin"), "unknown ties 'coin'"),
        (lambda: encode_records(np.array([[0, 9]]), random(2, 100, 0), random(3, 100, 1), 100), "level_index must lie"),
        (lambda: encode_records(np.array([[0.0, 1.0]]), random(2, 100, 0), random(3, 100, 1), 100), "integers"),
        (lambda: ngrams(np.array([0, 1]), random(3, 100, 0), 100, 3), "shorter than n"),
        (lambda: ngrams(np.array([0, 5, 1]), random(3, 100, 0), 100, 2), "must lie in"),
        (lambda: ngrams([], random(3, 100, 0), 100, 2), "empty"),
        (lambda: ngrams(np.array([0.5, 1.0]), random(3, 100, 0), 100, 1), "integer"),
        (lambda: ngrams(np.array([0, 1]), random(3, 100, 0), 100, 0), "n must be"),
        (lambda: ngrams(np.array([0, 1]), random(3, 100, 0).astype(np.int64), 100, 1), "uint64"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
