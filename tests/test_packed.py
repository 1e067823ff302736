"""hdc.packed: layout, round trips, validation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hdc.packed import (
    WORD_BITS,
    PackedHV,
    from_bipolar,
    n_words,
    pack_bits,
    pack_sign,
    popcount,
    tail_mask,
    to_bipolar,
    unpack_bits,
    validate_words,
)

DIMS = [1, 7, 63, 64, 65, 127, 128, 129, 1000]


def test_n_words_and_tail_mask():
    assert WORD_BITS == 64
    assert [n_words(d) for d in (1, 63, 64, 65, 128, 129)] == [1, 1, 1, 2, 2, 3]
    assert tail_mask(64) == np.uint64(2**64 - 1)
    assert tail_mask(65) == np.uint64(1)
    assert tail_mask(70) == np.uint64(0b111111)


@pytest.mark.parametrize("dim", DIMS)
def test_layout_matches_architecture(dim):
    # Element i lives in word i // 64 at bit i % 64.
    rng = np.random.default_rng(dim)
    bits = rng.random((3, dim)) < 0.5
    words = pack_bits(bits)
    assert words.dtype == np.uint64 and words.shape == (3, n_words(dim))
    for i in range(dim):
        got = (words[:, i // 64] >> np.uint64(i % 64)) & np.uint64(1)
        assert np.array_equal(got.astype(bool), bits[:, i])
    # tail bits are zero
    assert not np.any(words[:, -1] & ~tail_mask(dim))
    assert np.array_equal(unpack_bits(words, dim), bits)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    dim=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trips(shape, dim, seed):
    rng = np.random.default_rng(seed)
    bits = rng.random((*shape, dim)) < 0.5
    words = pack_bits(bits)
    assert words.shape == (*shape, n_words(dim))
    assert np.array_equal(unpack_bits(words, dim), bits)
    pm = to_bipolar(words, dim)
    assert pm.dtype == np.int8
    assert np.array_equal(pm, np.where(bits, 1, -1))
    assert np.array_equal(from_bipolar(pm), words)
    assert np.array_equal(popcount(words), bits.sum(-1))


def test_pack_sign_numpy_and_torch_agree_and_zero_is_plus_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 130)).astype(np.float32)
    x[0, :3] = 0.0
    x[1, 5] = -0.0
    ref = pack_bits(x >= 0)
    assert np.array_equal(pack_sign(x), ref)
    assert np.array_equal(pack_sign(torch.from_numpy(x)), ref)
    assert unpack_bits(pack_sign(x), 130)[0, :3].all()
    assert unpack_bits(pack_sign(x), 130)[1, 5]  # -0.0 >= 0
    assert np.array_equal(pack_sign(x.astype(np.int64)), pack_bits(x.astype(np.int64) >= 0))


def test_to_bipolar_dtypes():
    words = pack_bits(np.array([[True, False, True]]))
    assert to_bipolar(words, 3, np.float32).dtype == np.float32
    assert to_bipolar(words, 3, np.float32).tolist() == [[1.0, -1.0, 1.0]]
    with pytest.raises(ValueError, match="dtype"):
        to_bipolar(words, 3, np.uint8)


def test_packed_hv():
    rng = np.random.default_rng(1)
    bits = rng.random((4, 100)) < 0.5
    hv = PackedHV.from_bits(bits)
    assert hv.dim == 100 and hv.shape == (4,) and len(hv) == 4 and hv.n_words == 2
    assert hv.nbytes == 4 * 2 * 8
    assert np.array_equal(hv.bits(), bits)
    assert np.array_equal(hv.bipolar(), np.where(bits, 1, -1))
    assert np.array_equal(hv[1].bits(), bits[1])
    assert hv[1:3].shape == (2,)
    assert np.array_equal(PackedHV.from_sign(np.where(bits, 1.0, -1.0)).words, hv.words)
    assert np.array_equal(PackedHV.from_bipolar(np.where(bits, 1, -1)).words, hv.words)
    with pytest.raises(AttributeError):
        hv.dim = 5  # frozen
    with pytest.raises(TypeError):
        len(hv[0])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: PackedHV(np.zeros(2, np.int64), 100), "dtype uint64"),
        (lambda: PackedHV(np.zeros(3, np.uint64), 100), "needs 2"),
        (lambda: PackedHV(np.full(2, 2**63, np.uint64), 100), "tail bits"),
        (lambda: PackedHV(np.zeros(2, np.uint64), 0), "positive integer"),
        (lambda: PackedHV(np.zeros(2, np.uint64), 100.0), "positive integer"),
        (lambda: PackedHV(np.uint64(0), 1), "at least one axis"),
        (lambda: pack_bits(np.zeros((3, 0), bool)), "empty"),
        (lambda: pack_bits(np.array([0.5, 1.0])), "dtype"),
        (lambda: pack_bits(np.array([0, 2])), "only 0 and 1"),
        (lambda: pack_sign(np.array([1.0, np.nan])), "NaN"),
        (lambda: pack_sign(np.array([1.0, np.inf])), "NaN or inf"),
        (lambda: pack_sign(torch.tensor([1.0, float("nan")])), "NaN"),
        (lambda: pack_sign(np.array([True, False])), "real"),
        (lambda: pack_sign(np.zeros((2, 0))), "empty"),
        (lambda: from_bipolar(np.array([1, 0, -1])), "-1 and \\+1"),
        (lambda: unpack_bits(np.zeros((2, 3), np.uint64), 64), "words"),
        (lambda: n_words(-3), "positive"),
    ],
)
def test_bad_input_raises_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_validate_words_can_skip_tail_check():
    w = np.full((1, 2), 2**64 - 1, dtype=np.uint64)
    with pytest.raises(ValueError, match="tail"):
        validate_words(w, 100)
    assert validate_words(w, 100, check_tail=False) is w


def test_large_batch_round_trip():
    bits = np.random.default_rng(0).random((500, 10_000)) < 0.5
    words = pack_bits(bits)
    assert words.shape == (500, 157)
    assert np.array_equal(unpack_bits(words, 10_000), bits)
