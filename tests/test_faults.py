"""hdc.faults: exact-rate bit flips and stuck-at faults on packed codes; hdc.classifiers.faults: the same faults in
the Hamming classifiers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hdc.classifiers.faults import classifier_robustness, faulty_prototypes, predict_with_faults
from hdc.faults import (
    BitFaults,
    apply_fault_mask,
    array_fault_mask,
    fault_count,
    fault_key,
    inject_faults,
    row_fault_mask,
)
from hdc.packed import pack_bits, popcount, tail_mask, unpack_bits, validate_words


def random_codes(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    return pack_bits(np.random.default_rng(seed).random((rows, dim)) < 0.5)


@pytest.mark.parametrize("dim", [1, 63, 64, 100, 1000])
@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.5, 0.77, 1.0])
def test_row_scope_flips_exactly_round_p_n_distinct_bits_per_code(dim, p):
    words = random_codes(20, dim)
    out = inject_faults(words, dim, p, seed=3)
    k = math.floor(p * dim + 0.5)
    assert (popcount(out ^ words) == k).all()  # k differing bits = k distinct positions flipped
    validate_words(out, dim)  # tail bits still 0


@pytest.mark.parametrize("dim", [70, 640])
def test_array_scope_flips_exactly_round_p_of_all_bits(dim):
    words = random_codes(13, dim)
    out = inject_faults(words, dim, 0.3, seed=1, scope="array")
    assert popcount(out ^ words).sum() == math.floor(0.3 * 13 * dim + 0.5)
    validate_words(out, dim)
    # Spread over the array, not k per row: the per-row counts differ (hypergeometric).
    assert len(set(popcount(out ^ words).tolist())) > 1


def test_fault_count_rounds_half_up_and_truncates_with_replacement():
    assert fault_count(0.25, 10) == 3  # 2.5 -> 3, where Python's round() gives 2
    assert fault_count(0.35, 10) == 4  # 0.35 * 10 = 3.4999999999999996 in floats, still an exact half
    assert fault_count(0.35, 10, "with_replacement") == 3  # the paper's int(p * numel)
    assert fault_count(1.0, 7) == 7
    assert fault_count(0.0, 7) == 0


def test_p_one_complements_every_valid_bit():
    words = random_codes(4, 100)
    out = inject_faults(words, 100, 1.0, seed=0)
    assert (unpack_bits(out, 100) == ~unpack_bits(words, 100)).all()
    assert not np.any(out[:, -1] & ~tail_mask(100))


@pytest.mark.parametrize("kind", ["stuck0", "stuck1"])
def test_stuck_at_faults_force_the_hit_bits(kind):
    dim = 300
    words = random_codes(8, dim)
    faults = BitFaults(0.4, kind=kind)
    mask = faults.mask((8,), dim, seed=5)
    out = faults.apply(words, dim, seed=5)
    assert (popcount(mask) == fault_count(0.4, dim)).all()
    if kind == "stuck0":
        assert not np.any(out & mask)
        assert np.array_equal(out & ~mask, words & ~mask)
    else:
        assert np.array_equal(out & mask, mask)
        assert np.array_equal(out & ~mask, words & ~mask)
    validate_words(out, dim)  # stuck-at-1 never sets tail bits


def test_input_is_never_modified_and_p_zero_returns_an_equal_copy():
    words = random_codes(5, 200)
    before = words.copy()
    out = inject_faults(words, 200, 0.3, seed=0)
    assert np.array_equal(words, before)
    assert not np.array_equal(out, words)  # the faults went into a copy
    same = inject_faults(words, 200, 0.0, seed=0)
    assert np.array_equal(same, words) and same is not words


def test_determinism_and_seed_streams():
    words = random_codes(6, 500)
    a = inject_faults(words, 500, 0.2, seed=11, stream=(0, 2))
    assert np.array_equal(a, inject_faults(words, 500, 0.2, seed=11, stream=(0, 2)))
    assert not np.array_equal(a, inject_faults(words, 500, 0.2, seed=12, stream=(0, 2)))
    assert not np.array_equal(a, inject_faults(words, 500, 0.2, seed=11, stream=(0, 3)))
    # A Generator is accepted and advanced: two calls give different faults, a fresh copy replays them.
    g1, g2 = np.random.default_rng(4), np.random.default_rng(4)
    b1 = inject_faults(words, 500, 0.2, seed=g1)
    assert np.array_equal(b1, inject_faults(words, 500, 0.2, seed=g2))
    assert not np.array_equal(b1, inject_faults(words, 500, 0.2, seed=g1))


def test_row_masks_depend_only_on_the_row_id_not_the_block():
    key = fault_key(7, (1, 0, 0))
    ids = np.arange(100, 160)
    whole = row_fault_mask(ids, 777, 100, key)
    parts = np.concatenate([row_fault_mask(ids[:13], 777, 100, key), row_fault_mask(ids[13:], 777, 100, key)])
    assert np.array_equal(whole, parts)
    single = row_fault_mask(ids[[41]], 777, 100, key)
    assert np.array_equal(single[0], whole[41])
    assert len({m.tobytes() for m in whole}) == len(ids)  # distinct rows get distinct masks


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("dim,k", [(100, 7), (130, 100), (64, 32)])
def test_numba_kernel_matches_the_numpy_reference(dim, k, replace):
    ids = np.arange(40)
    a = row_fault_mask(ids, dim, k, 99, replace=replace, backend="numba")
    b = row_fault_mask(ids, dim, k, 99, replace=replace, backend="numpy")
    assert np.array_equal(a, b)


@pytest.mark.parametrize("k", [16, 100])  # 100 > dim/2 exercises the complement path
def test_row_positions_are_uniform(k):
    dim, rows = 128, 4000
    mask = row_fault_mask(np.arange(rows), dim, k, fault_key(0))
    counts = unpack_bits(mask, dim).sum(axis=0)
    expected = rows * k / dim
    # With q = k/dim, a uniform k-subset has Var(I_i) = q(1-q) and Cov(I_i, I_j) = -q(1-q)/(dim-1), so over
    # independent rows the counts have covariance rows q(1-q) dim/(dim-1) (I - 11'/dim): scaled by that variance,
    # the squared deviations sum to a chi-square with dim - 1 degrees of freedom (mean dim - 1, std
    # sqrt(2 (dim - 1)) ~ 16). Allow 5 sigma above the mean.
    q = k / dim
    chi2 = ((counts - expected) ** 2).sum() / (rows * q * (1 - q) * dim / (dim - 1))
    assert chi2 < (dim - 1) + 5 * math.sqrt(2 * (dim - 1))
    # Pairs of positions are not correlated: the hit count in the first half of a row is hypergeometric with
    # variance k (1/2)(1/2)(dim - k)/(dim - 1); its sample variance over 4000 rows is within 15% (about 7
    # standard errors of a sample variance, sqrt(2 / rows) ~ 2.2%).
    half = unpack_bits(mask, dim)[:, : dim // 2].sum(axis=1)
    var = k * 0.25 * (dim - k) / (dim - 1)
    assert abs(half.var() / var - 1) < 0.15


def test_with_replacement_flips_about_one_minus_exp_minus_p():
    dim, rows, p = 10_000, 20, 0.5
    words = random_codes(rows, dim)
    out = inject_faults(words, dim, p, seed=0, sampling="with_replacement")
    frac = popcount(out ^ words) / dim
    m = fault_count(p, dim, "with_replacement")
    expected = 1 - (1 - 1 / dim) ** m  # 0.3935: a position drawn twice is still hit once
    # Distinct positions after m draws into dim bins: variance ~ dim e^-l (1 - (1 + l) e^-l), l = m/dim, i.e. a
    # std of 23 bits (0.0023 of dim) per row; the mean of 20 rows has std 0.0005. Allow 5 sigma.
    sd = math.sqrt(dim * math.exp(-0.5) * (1 - 1.5 * math.exp(-0.5))) / dim / math.sqrt(rows)
    assert abs(frac.mean() - expected) < 5 * sd
    assert frac.mean() < 0.40  # far from the nominal 0.5 the paper's protocol suggests


def test_array_mask_exact_count_and_generator_use():
    mask = array_fault_mask(3, 100, 150, np.random.default_rng(0))
    assert popcount(mask).sum() == 150
    with pytest.raises(ValueError, match="distinct"):
        array_fault_mask(3, 100, 301, np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"p": float("nan")}, "p must be"),
        ({"p": 1.5}, "p must be"),
        ({"p": -0.1}, "p must be"),
        ({"kind": "stuck2"}, "kind"),
        ({"scope": "column"}, "scope"),
        ({"sampling": "poisson"}, "sampling"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    words = random_codes(2, 100)
    args = {"p": 0.1, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        inject_faults(words, 100, args.pop("p"), args.pop("seed"), **args)


def test_bad_words_raise_value_error():
    with pytest.raises(ValueError, match="uint64"):
        inject_faults(np.zeros((2, 2), np.int64), 100, 0.1, 0)
    with pytest.raises(ValueError, match="words"):
        inject_faults(np.zeros((2, 3), np.uint64), 100, 0.1, 0)  # 100 bits need 2 words
    bad_tail = np.zeros((1, 2), np.uint64)
    bad_tail[0, 1] = np.uint64(1) << np.uint64(40)  # bit 104 > dim
    with pytest.raises(ValueError, match="tail"):
        inject_faults(bad_tail, 100, 0.1, 0)
    with pytest.raises(ValueError, match="no codes"):
        inject_faults(np.zeros((0, 2), np.uint64), 100, 0.1, 0)
    with pytest.raises(ValueError, match="row_ids"):
        row_fault_mask(np.array([-1]), 100, 3, 0)
    with pytest.raises(ValueError, match="distinct"):
        row_fault_mask(np.arange(2), 100, 101, 0)
    with pytest.raises(ValueError, match="shape"):
        apply_fault_mask(np.zeros((2, 2), np.uint64), np.zeros((3, 2), np.uint64))


# ------------------------------------------------------------------------------------------- HDC classifiers
@pytest.fixture(scope="module")
def centroid_digits():
    from sklearn.datasets import load_digits

    from hdc.classifiers import CentroidHD

    x, y = load_digits(return_X_y=True)
    clf = CentroidHD(dim=2048, seed=0).fit(x[:1200], y[:1200])
    return clf, x[1200:], y[1200:]


def test_faulty_prototypes_flip_exact_bits_of_a_copy(centroid_digits):
    clf, _, _ = centroid_digits
    before = clf.prototypes_.copy()
    faulty = faulty_prototypes(clf, 0.2, seed=0)
    assert (popcount(faulty.prototypes_ ^ before) == fault_count(0.2, 2048)).all()
    assert np.array_equal(clf.prototypes_, before) and faulty.encoder_ is clf.encoder_


@pytest.mark.parametrize("target", ["prototypes", "data", "both"])
def test_classifier_p_zero_identical_and_seeded(centroid_digits, target):
    clf, x, _ = centroid_digits
    assert np.array_equal(predict_with_faults(clf, x, target, 0.0, seed=1), clf.predict(x))
    a = predict_with_faults(clf, x, target, 0.45, seed=1)
    assert np.array_equal(a, predict_with_faults(clf, x, target, 0.45, seed=1))
    assert not np.array_equal(a, predict_with_faults(clf, x, target, 0.45, seed=2))


def test_classifier_data_faults_depend_on_position_not_chunking(centroid_digits):
    clf, x, _ = centroid_digits
    whole = predict_with_faults(clf, x, "data", 0.3, seed=4)
    assert np.array_equal(predict_with_faults(clf, x[:50], "data", 0.3, seed=4), whole[:50])


@pytest.mark.parametrize("target", ["prototypes", "data"])
def test_classifier_half_flipped_codes_give_chance_accuracy(centroid_digits, target):
    clf, x, y = centroid_digits
    res = classifier_robustness(clf, x, y, [0.0, 0.5], range(8), target=target)
    clean, half = res["rows"]
    n_classes = 10
    freq = np.bincount(y, minlength=n_classes) / len(y)
    # Same bound as tests/test_robustness.py: no class information left, so each seed's accuracy has mean within
    # max_c |P(y=c) - 1/C| of 1/C, and a spread at most that of mapping each class cluster to a random label,
    # std sqrt((1/C)(1 - 1/C)/C) = 0.095, i.e. <= 0.034 for the mean of 8 seeds. Allow 3 std.
    cluster_sd = math.sqrt((1 / n_classes) * (1 - 1 / n_classes) / n_classes)
    tol = np.abs(freq - 1 / n_classes).max() + 3 * cluster_sd / math.sqrt(8)
    assert abs(half["accuracy_mean"] - 1 / n_classes) <= tol
    assert clean["accuracies"] == [res["clean_accuracy"]] * 8 and res["clean_accuracy"] > 1 / n_classes + 3 * tol
    assert half["hits"] == 1024


def test_classifier_bad_arguments(centroid_digits):
    from hdc.classifiers import CentroidHD

    clf, x, _ = centroid_digits
    with pytest.raises(ValueError, match="target"):
        predict_with_faults(clf, x, "weights", 0.1, 0)
    with pytest.raises(ValueError, match="scope='row'"):
        predict_with_faults(clf, x, "data", BitFaults(0.1, scope="array"), 0)
    with pytest.raises(ValueError, match="fit"):
        faulty_prototypes(CentroidHD(dim=64), 0.1, 0)
