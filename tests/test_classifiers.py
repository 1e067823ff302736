"""Tests of hdc.classifiers: scikit-learn conformance, algorithms, encoders, accuracy floors."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from hdc.classifiers import (
    AdaptHD,
    CentroidHD,
    KernelEncoder,
    LevelEncoder,
    OnlineHD,
    ProjectionEncoder,
    make_encoder,
)
from hdc.datasets import load
from hdc.encoders.features import corrected_factor, kernel_matrix, shifted_codebooks
from hdc.packed import PackedHV, n_words, pack_bits, to_bipolar, unpack_bits

# Small D keeps the ~55 checks per estimator fast; every encoder is exercised by some estimator.
ESTIMATORS = [
    CentroidHD(dim=512),
    AdaptHD(dim=512),
    OnlineHD(dim=512),
    CentroidHD(dim=512, encoder="projection"),
    AdaptHD(dim=512, encoder="level"),
    OnlineHD(dim=500, encoder="projection"),  # D not a multiple of 64: tail bits
    KernelEncoder(dim=256),
    ProjectionEncoder(dim=256),
    LevelEncoder(dim=256),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _blobs(n_per_class=60, n_features=5, n_classes=3, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(n_classes, n_features))
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, n_features)) for c in centers])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return x.astype(np.float64), y


def _flat(ds):
    return ds.x_train.reshape(len(ds.x_train), -1), ds.y_train, ds.x_test.reshape(len(ds.x_test), -1), ds.y_test


# ---------------------------------------------------------------------------------------------- centroid


def test_centroid_prototypes_are_bitwise_majority_with_ties_to_plus_one():
    x, y = _blobs(n_per_class=6)  # even class sizes: ties happen
    model = CentroidHD(dim=100).fit(x, y)
    codes = model.encode(x)
    bip = to_bipolar(codes, 100, np.int64)
    for c in range(3):
        total = bip[y == c].sum(axis=0)
        expected = pack_bits(total >= 0)  # sign with sign(0) = +1
        np.testing.assert_array_equal(model.prototypes_[c], expected)
    assert np.all(model.prototypes_[:, -1] >> np.uint64(100 - 64) == 0)  # tail bits clear


def test_predict_is_nearest_prototype_in_bipolar_dot():
    x, y = _blobs()
    model = CentroidHD(dim=777).fit(x, y)
    codes = model.encode(x)
    dots = to_bipolar(codes, 777, np.int64) @ to_bipolar(model.prototypes_, 777, np.int64).T
    # Ties of the dot go to the first class in both rules.
    np.testing.assert_array_equal(model.predict(x), model.classes_[np.argmax(dots, axis=1)])
    np.testing.assert_allclose(model.decision_function(x), dots / 777)


def test_centroid_partial_fit_equals_fit_for_any_batching():
    x, y = _blobs()
    full = CentroidHD(dim=256).fit(x, y)
    inc = CentroidHD(dim=256)
    order = np.random.default_rng(1).permutation(len(y))
    for part in np.array_split(order, 5):
        inc.partial_fit(x[part], y[part], classes=np.unique(y))
    # The encoder is fitted on the first batch, so compare on codes from one shared encoder.
    codes = inc.encoder_.transform(x)
    pre = CentroidHD(dim=256, encoder="precomputed").fit(codes, y)
    np.testing.assert_array_equal(inc.prototypes_, pre.prototypes_)
    np.testing.assert_array_equal(inc.class_count_, [60, 60, 60])
    assert full.score(x, y) > 0.9


# ---------------------------------------------------------------------------------------------- retraining


@pytest.mark.parametrize("cls", [AdaptHD, OnlineHD])
def test_one_update_step_matches_the_rule(cls):
    """epochs=1 with one batch holding every sample: a single update from the class means."""
    x, y = _blobs(n_per_class=40, spread=4.0)  # overlapping classes, so there are mistakes
    dim, lr = 320, 0.25
    codes = ProjectionEncoder(dim=dim).fit(x).transform(x)
    extra = {"margin": 0.0} if cls is AdaptHD else {}  # the plain rule: mistakes only
    model = cls(dim=dim, encoder="precomputed", epochs=1, lr=lr, batch_size=len(y), **extra).fit(codes, y)
    bip = to_bipolar(codes, dim, np.float64)
    w0 = np.stack([bip[y == c].mean(axis=0) for c in range(3)])
    pred = np.argmax(bip @ np.where(w0 >= 0, 1.0, -1.0).T, axis=1)
    wrong = np.flatnonzero(pred != y)
    assert 0 < len(wrong) < len(y)
    expected = w0.copy()
    cos = bip @ (w0 / np.linalg.norm(w0, axis=1, keepdims=True)).T / math.sqrt(dim)
    for i in wrong:
        a = b = lr
        if cls is OnlineHD:
            a, b = lr * (1 - cos[i, y[i]]), lr * (1 - cos[i, pred[i]])
        expected[y[i]] += a * bip[i]
        expected[pred[i]] -= b * bip[i]
    np.testing.assert_allclose(model.weights_, expected, rtol=1e-5, atol=1e-5)
    assert model.train_errors_ == [len(wrong)]
    np.testing.assert_array_equal(model.prototypes_, pack_bits(model.weights_ >= 0))


def test_adapthd_margin_also_updates_narrowly_correct_samples():
    """One full-batch step: the samples updated are the mistakes plus those correct by < margin sqrt(D) bits,
    each against its nearest other class."""
    x, y = _blobs(n_per_class=40, spread=4.0)
    dim, lr, margin = 320, 0.25, 1.5
    codes = ProjectionEncoder(dim=dim).fit(x).transform(x)
    model = AdaptHD(dim=dim, encoder="precomputed", epochs=1, lr=lr, margin=margin, batch_size=len(y)).fit(codes, y)
    bip = to_bipolar(codes, dim, np.float64)
    w0 = np.stack([bip[y == c].mean(axis=0) for c in range(3)])
    ham = (dim - bip @ np.where(w0 >= 0, 1.0, -1.0).T) / 2
    own = ham[np.arange(len(y)), y]
    others = ham.copy()
    others[np.arange(len(y)), y] = np.inf
    rival = np.argmin(others, axis=1)
    gap = others[np.arange(len(y)), rival] - own
    moved = np.flatnonzero(gap < margin * math.sqrt(dim))
    wrong = np.argmin(ham, axis=1) != y
    assert np.count_nonzero(wrong) < len(moved) < len(y)  # the margin adds samples, but not all
    expected = w0.copy()
    for i in moved:
        expected[y[i]] += lr * bip[i]
        expected[rival[i]] -= lr * bip[i]
    np.testing.assert_allclose(model.weights_, expected, rtol=1e-5, atol=1e-5)
    assert model.train_errors_ == [int(np.count_nonzero(wrong))]  # mistakes, not updates


def test_adapthd_kernel_bandwidth_defaults_to_the_median_distance():
    x, y = _blobs()
    from scipy.spatial.distance import pdist

    z = AdaptHD(dim=256).fit(x, y).encoder_
    med = np.median(pdist(np.clip(z._scaled(x), -3, 3).astype(np.float64), "cityblock"))
    assert z.bandwidth_ == pytest.approx(med, rel=1e-6)
    assert CentroidHD(dim=256).fit(x, y).encoder_.bandwidth_ == pytest.approx(med / 2, rel=1e-6)
    # an explicit choice wins
    assert AdaptHD(dim=256, encoder_params={"bandwidth_scale": 0.5}).fit(x, y).encoder_.bandwidth_ == pytest.approx(
        med / 2, rel=1e-6
    )
    assert AdaptHD(dim=256, encoder_params={"bandwidth": 3.0}).fit(x, y).encoder_.bandwidth_ == 3.0
    assert AdaptHD(dim=256, encoder="projection").fit(x, y).score(x, y) > 0.5  # no kernel keys leak


@pytest.mark.parametrize("bad", [-0.1, float("nan"), "1", True])
def test_adapthd_rejects_bad_margin(bad):
    x, y = _blobs()
    with pytest.raises(ValueError, match="margin"):
        AdaptHD(dim=64, margin=bad).fit(x, y)


@pytest.mark.parametrize("cls", [AdaptHD, OnlineHD])
def test_retraining_reduces_training_mistakes(cls):
    x, y = _blobs(n_per_class=80, spread=2.5)
    model = cls(dim=1024, epochs=8).fit(x, y)
    centroid = CentroidHD(dim=1024).fit(x, y)
    assert model.train_errors_[-1] < model.train_errors_[0]
    assert model.score(x, y) >= centroid.score(x, y)


@pytest.mark.parametrize("cls", [AdaptHD, OnlineHD])
def test_partial_fit_learns_online(cls):
    x, y = _blobs(n_per_class=100)
    model = cls(dim=1024)
    for _ in range(3):  # three passes over six mini-batches
        for part in np.array_split(np.random.default_rng(0).permutation(len(y)), 6):
            model.partial_fit(x[part], y[part], classes=[0, 1, 2])
    assert model.n_iter_ == 18
    assert sum(model.train_errors_[12:]) < sum(model.train_errors_[:6])
    assert model.score(x, y) > 0.9


@pytest.mark.parametrize("cls", [CentroidHD, AdaptHD, OnlineHD])
def test_same_seed_same_model_other_seed_other_model(cls):
    x, y = _blobs()
    a = cls(dim=512, seed=3).fit(x, y)
    b = cls(dim=512, seed=3).fit(x, y)
    c = cls(dim=512, seed=4).fit(x, y)
    np.testing.assert_array_equal(a.prototypes_, b.prototypes_)
    assert not np.array_equal(a.prototypes_, c.prototypes_)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict(x), a.predict(x))


# ---------------------------------------------------------------------------------------------- precomputed codes


@pytest.mark.parametrize("cls", [CentroidHD, AdaptHD, OnlineHD])
def test_precomputed_codes_give_the_same_model(cls):
    """The G-Net path: fit on packed codes computed elsewhere."""
    x, y = _blobs()
    direct = cls(dim=300).fit(x, y)
    # a fresh encoder with the model's encoder parameters (AdaptHD widens the default bandwidth)
    enc = make_encoder(
        "kernel", 300, 0, {k: v for k, v in direct.encoder_.get_params().items() if k not in ("dim", "seed")}
    ).fit(x)
    codes = enc.transform(x)
    pre = cls(dim=300, encoder="precomputed").fit(codes, y)
    np.testing.assert_array_equal(pre.prototypes_, direct.prototypes_)
    np.testing.assert_array_equal(pre.predict(codes), direct.predict(x))
    np.testing.assert_array_equal(pre.predict(PackedHV(codes, 300)), direct.predict(x))
    assert pre.encoder_ is None and pre.n_features_in_ == n_words(300)


def test_precomputed_input_validation():
    x, y = _blobs()
    codes = make_encoder("projection", 100, 0).fit(x).transform(x)
    model = CentroidHD(dim=100, encoder="precomputed")
    with pytest.raises(ValueError, match="uint64"):
        model.fit(codes.astype(np.int64), y)
    with pytest.raises(ValueError, match="words"):
        CentroidHD(dim=200, encoder="precomputed").fit(codes, y)
    bad = codes.copy()
    bad[0, -1] |= np.uint64(1) << np.uint64(63)
    with pytest.raises(ValueError, match="tail"):
        model.fit(bad, y)
    with pytest.raises(ValueError, match="dim"):
        model.fit(PackedHV(codes, 100), y).predict(PackedHV(np.zeros((2, 1), np.uint64), 64))
    with pytest.raises(ValueError, match="encoder_params"):
        CentroidHD(dim=100, encoder="precomputed", encoder_params={"levels": 3}).fit(codes, y)


# ---------------------------------------------------------------------------------------------- errors


def test_bad_parameters_and_inputs_raise_value_error():
    x, y = _blobs()
    with pytest.raises(ValueError, match="encoder"):
        CentroidHD(encoder="fourier").fit(x, y)
    with pytest.raises(ValueError, match="unknown keys"):
        CentroidHD(dim=64, encoder_params={"gamma": 1.0}).fit(x, y)
    with pytest.raises(ValueError, match="dim"):
        OnlineHD(dim=0).fit(x, y)
    with pytest.raises(ValueError, match="lr"):
        AdaptHD(dim=64, lr=-1).fit(x, y)
    with pytest.raises(ValueError, match="kernel"):
        CentroidHD(dim=64, encoder_params={"kernel": "cosine"}).fit(x, y)
    with pytest.raises(ValueError, match="scaling"):
        CentroidHD(dim=64, encoder_params={"scaling": "minmax"}).fit(x, y)
    x_nan = x.copy()
    x_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CentroidHD(dim=64).fit(x_nan, y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        CentroidHD(dim=64, encoder="precomputed").fit(np.zeros((5, 1), np.uint64), y)
    with pytest.raises(ValueError, match="classes"):
        OnlineHD(dim=64).partial_fit(x, y)
    model = OnlineHD(dim=64).partial_fit(x, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not in classes"):
        model.partial_fit(x[:3], np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="features"):
        model.predict(x[:, :3])


# ---------------------------------------------------------------------------------------------- encoders


def test_kernel_correction_makes_code_similarity_equal_the_kernel():
    """Per feature: E[bipolar similarity of level rows a, b] = K[a, b] (not (2/pi) arcsin K)."""
    levels, dim = 12, 2**15
    values = np.linspace(-3, 3, levels)
    k = kernel_matrix(values, "laplace", 2.0)
    factor = corrected_factor(k)
    # The clipped eigenvalues of sin(pi/2 K) are tiny, so the corrected target is K itself.
    u = factor / np.linalg.norm(factor, axis=0, keepdims=True)
    np.testing.assert_allclose(2 / np.pi * np.arcsin(np.clip(u.T @ u, -1, 1)), k, atol=0.01)
    table = shifted_codebooks(factor, 1, dim, seed=5)[0]
    bip = to_bipolar(table, dim, np.float64)
    sim = bip @ bip.T / dim
    # Each of the D positions is an independent +-1 product with mean K[a, b], so the estimate
    # has standard deviation sqrt((1 - K^2) / D) <= 1/sqrt(D) = 0.0055; over 66 pairs, 5 sigma
    # (0.028) is exceeded with probability < 66 * 6e-7, plus 0.01 for the clipping above.
    tol = 5 / math.sqrt(dim) + 0.01
    assert np.max(np.abs(sim - k)) < tol
    uncorrected = 2 / np.pi * np.arcsin(k)
    off = ~np.eye(levels, dtype=bool)
    assert np.max(np.abs(uncorrected - k)[off]) > 3 * tol  # the correction is visible


def test_bound_codes_have_the_product_kernel_as_similarity():
    x = np.array([[0.0, 0.0, 0.0], [0.4, -0.2, 0.6], [1.0, 0.8, -0.6]])
    dim, bw = 2**15, 2.0
    enc = KernelEncoder(dim=dim, bandwidth=bw, levels=31, clip=3.0, scaling="none", seed=1).fit(x)
    codes = enc.transform(x)
    bip = to_bipolar(codes, dim, np.float64)
    sim = bip @ bip.T / dim
    q = enc.levels_values_[enc.level_index(x)]  # the quantised values the codebooks see
    expected = np.exp(-np.abs(q[:, None, :] - q[None, :, :]).sum(-1) / bw)
    # Position j's term is a product over features of columns j - f of one Gaussian base, so it
    # is dependent only on the F (F - 1) = 6 positions whose column sets overlap it: the variance
    # of the mean is at most (1 + 6) / D, sd <= 0.0146; 5 sd = 0.073 over 3 pairs.
    assert np.max(np.abs(sim - expected)) < 5 * math.sqrt(7 / dim)
    np.testing.assert_array_equal(enc.codebooks()[np.arange(3), enc.ref_levels_], enc.ref_rows_)


def test_kernel_encoder_more_features_than_dim_and_reference_levels_do_not_change_codes():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(40, 90)).astype(np.float64)  # 90 features > dim = 64: two bases
    enc = KernelEncoder(dim=64, levels=8).fit(x)
    codes = enc.transform(x)
    idx = enc.level_index(enc._scaled(x))
    table = enc.codebooks()
    expected = np.bitwise_xor.reduce(table[np.arange(90)[None, :], idx], axis=1)
    np.testing.assert_array_equal(codes, expected)
    assert enc.delta_table_.shape == (90, 8, 1)


def test_bandwidth_heuristic_is_half_the_median_distance():
    x, _ = _blobs(n_per_class=20)
    enc = KernelEncoder(dim=64, scaling="none").fit(x)
    from scipy.spatial.distance import pdist

    assert enc.bandwidth_ == pytest.approx(np.median(pdist(np.clip(x, -3, 3), "cityblock")) / 2)


def test_projection_encoder_is_sign_of_seeded_projection():
    from hdc.encoders.features import PROJECTION_KINDS
    from hdc.projection import KINDS, RandomProjection

    assert PROJECTION_KINDS == KINDS
    x, _ = _blobs(n_per_class=5)
    enc = ProjectionEncoder(dim=130, offset=0.5, scaling="none", seed=9).fit(x)
    aug = np.concatenate([x, np.full((len(x), 1), 0.5)], axis=1)
    proj = RandomProjection(6, 130, seed=9).project(aug.astype(np.float32)).numpy()
    np.testing.assert_array_equal(unpack_bits(enc.transform(x), 130), proj >= 0)


def test_scaling_modes():
    x, _ = _blobs()
    x[:, 2] = 7.0  # a constant feature
    enc = ProjectionEncoder(dim=64, scaling="feature").fit(x)
    z = enc._scaled(x)
    np.testing.assert_allclose(z[:, [0, 1, 3, 4]].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, [0, 1, 3, 4]].std(0), 1, atol=1e-4)
    np.testing.assert_allclose(z[:, 2], 0)
    g = ProjectionEncoder(dim=64, scaling="global").fit(x)._scaled(x)
    assert abs(g.mean()) < 1e-5 and abs(g.std() - 1) < 1e-4


# ---------------------------------------------------------------------------------------------- accuracy floors

# torchhd 5.8.4 at D = 4096, 10 epochs, batch 64, on the same 70/30 stratified seed-0 splits: issue 5's table for
# digits, breast_cancer and wine; iris is not in it, so its references are the means over torchhd seeds 0-4
# measured by `PYTHONPATH=. python3 benchmarks/bench_classifiers.py --dim 4096 --datasets digits,iris,wine,
# breast_cancer --torchhd-seeds 5` (results/bench_classifiers.json, "torchhd_seeds").
TORCHHD_4096 = {
    "digits": {"centroid": 89.6, "adapthd": 96.1, "onlinehd": 95.0},
    "breast_cancer": {"centroid": 91.2, "adapthd": 94.2, "onlinehd": 91.8},
    "wine": {"centroid": 98.1, "adapthd": 98.1, "onlinehd": 98.1},
    "iris": {"centroid": 87.6, "adapthd": 98.7, "onlinehd": 97.3},
}
MODELS = {"centroid": CentroidHD, "adapthd": AdaptHD, "onlinehd": OnlineHD}


@pytest.mark.parametrize("name", list(TORCHHD_4096))
def test_accuracy_floor_against_torchhd(name):
    """Ours (defaults, D = 4096), averaged over seeds 0-4, >= torchhd - 1 point on the same split (issue 5's rule).

    The mean over 5 seeds moves in steps of 100 / (5 n_test) points (0.44 on iris), so one point is resolvable
    on every set here.  Deterministic (fixed seeds), so no statistical tolerance is needed beyond the issue's.
    """
    x_tr, y_tr, x_te, y_te = _flat(load(name))
    margin = 1.0
    for model, ref in TORCHHD_4096[name].items():
        acc = np.mean([100 * MODELS[model](dim=4096, seed=s).fit(x_tr, y_tr).score(x_te, y_te) for s in range(5)])
        assert acc >= ref - margin, f"{name} {model}: {acc:.2f}% < torchhd {ref}% - {margin:.2f}"


def test_clone_keeps_parameters():
    m = OnlineHD(dim=128, encoder="projection", encoder_params={"kind": "rademacher"}, lr=0.3)
    c = clone(m)
    assert c.get_params() == m.get_params()
    x, y = _blobs()
    assert c.fit(x, y).encoder_.kind == "rademacher"
