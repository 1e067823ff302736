"""hdc.theory: the formulas, and measurements at fixed seeds that must agree with them.

Statistical tolerances are derived from the variance of the measured quantity and written next to each
assertion; "5 se" is used throughout (a two-sided normal tail of 6e-7 per assertion).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hdc import theory as T

Z = 5.0  # standard errors allowed in every statistical assertion


# ============================================================================================ formulas
def test_grothendieck_mean_known_values():
    np.testing.assert_allclose(T.grothendieck_mean([-1, -0.5, 0, 0.5, 1]), [-1, -1 / 3, 0, 1 / 3, 1], atol=1e-15)


def test_required_n_is_the_smallest_n_meeting_the_union_bound():
    dim = T.required_n(0.05, 0.01, units=512)
    # pi^2/(2 t^2) log(2 m / delta) = 1973.9 * 11.537 (docs/reference: "about 22,800")
    assert dim == math.ceil(math.pi**2 / (2 * 0.05**2) * math.log(2 * 512 / 0.01))
    assert dim == 22_773  # the value docs/sections/50-verify.md quotes
    assert T.union_bound(dim, 0.05, 512) <= 0.01 < T.union_bound(dim - 1, 0.05, 512)
    assert T.required_n(0.05, 0.01, units=512, patches=4) > dim


def test_exact_tail_never_exceeds_hoeffding():
    # Hoeffding is a theorem for the Binomial count, so the exact tail must sit below it everywhere.
    for dim in (1, 7, 64, 1000):
        for rho in (-0.95, 0.0, 0.5, 0.99):
            for t in (0.01, 0.1, 0.3, 1.0):
                assert T.exact_unit_tail(dim, rho, t) <= T.hoeffding_unit_bound(dim, t) + 1e-12


def test_exact_tail_matches_brute_force_enumeration():
    # N = 3, p = 1/2 + arcsin(rho)/pi: z_hat takes 4 values; sum the Binomial mass where |z_hat - z| >= t.
    dim, rho, t = 3, 0.3, 0.4
    p, z = 0.5 + math.asin(rho) / math.pi, math.asin(rho)
    want = sum(
        math.comb(dim, k) * p**k * (1 - p) ** (dim - k)
        for k in range(dim + 1)
        if abs(math.pi / (2 * dim) * (2 * k - dim) - z) >= t
    )
    assert T.exact_unit_tail(dim, rho, t) == pytest.approx(want, rel=1e-12)


def test_binarization_limits_and_gaussian_sd_constant():
    assert math.degrees(math.acos(T.binarization_cosine_limit("gaussian"))) == pytest.approx(37.0714, abs=1e-3)
    assert math.degrees(math.acos(T.binarization_cosine_limit("uniform"))) == pytest.approx(30.0, abs=1e-9)
    assert math.degrees(math.acos(T.binarization_cosine_limit("laplace"))) == pytest.approx(45.0, abs=1e-9)
    _, sd = T.angle_delta_method(T.distribution_moments("gaussian"), 1.0)
    assert sd == pytest.approx(math.sqrt(1 - 3 / math.pi) / math.sqrt(1 - 2 / math.pi), rel=1e-12)
    assert sd == pytest.approx(0.3522, abs=1e-4)


def test_sample_moments_match_closed_forms():
    # Sample moments of 2e5 draws; the worst relative sd is Laplace's E w^4: sqrt(Var w^4 / n)/24 =
    # sqrt(8! - 24^2)/24/sqrt(2e5) = 0.019, so 5 se is about 0.1 relative.
    for dist in T.DISTRIBUTIONS:
        got = T.sample_moments(T.sample_weights(dist, (200_000,), seed=1))
        np.testing.assert_allclose(got, T.distribution_moments(dist), rtol=0.1)


def test_correlated_pair_has_exact_correlation():
    for layout in T.LAYOUTS:
        u, v = T.correlated_pair(0.3, 50, seed=2, layout=layout)
        assert np.linalg.norm(u) == pytest.approx(1) and np.linalg.norm(v) == pytest.approx(1)
        assert u @ v == pytest.approx(0.3, abs=1e-12)


def test_rademacher_exact_mean_for_sparse_pairs():
    # u = e1, v = rho e1 + s e2: sign(g.u) sign(g.v) = sign(rho + s g1 g2), g1 g2 = +-1 equally likely.
    for rho in (-0.9, -0.3, 0.2, 0.95):
        u, v = T.correlated_pair(rho, 5, layout="sparse")
        s = math.sqrt(1 - rho * rho)
        want = 0.5 * (math.copysign(1, rho + s) + math.copysign(1, rho - s))
        assert T.rademacher_exact_mean(u, v) == want
    u = np.array([1.0, 2.0, 0.0])
    assert T.rademacher_exact_mean(u, u) == 1.0


def test_random_rotation_is_orthogonal_and_seeded():
    r = T.random_rotation(20, seed=3)
    np.testing.assert_allclose(r @ r.T, np.eye(20), atol=1e-12)
    np.testing.assert_array_equal(r, T.random_rotation(20, seed=3))


def test_unit_z_is_arcsin_of_cosine():
    w = np.array([[1.0, 0.0], [1.0, 1.0]])
    x = np.array([[2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(T.unit_z(w, x), [[math.pi / 2, 0.0], [math.pi / 4, math.pi / 4]], atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: T.grothendieck_mean(1.5), "rho"),
        (lambda: T.grothendieck_mean(np.nan), "rho"),
        (lambda: T.required_n(0.1, 1.5), "delta"),
        (lambda: T.required_n(-0.1, 0.1), "t"),
        (lambda: T.required_n(0.1, 0.1, units=0), "units"),
        (lambda: T.union_bound(10, 0.1, units=2, patches=0), "patches"),
        (lambda: T.check_grothendieck(dims=(256, 64)), "dims"),
        (lambda: T.check_grothendieck(kind="bernoulli"), "kind"),
        (lambda: T.check_grothendieck(layout="diagonal"), "layout"),
        (lambda: T.check_unit_concentration(dims=(0, 4)), "dims"),
        (lambda: T.check_unit_concentration(seed=-1), "seed"),
        (lambda: T.check_binarization_angle("cauchy"), "distribution"),
        (lambda: T.unit_z(np.ones((2, 3)), np.ones((2, 4))), "features"),
        (lambda: T.unit_z(np.zeros((1, 3)), np.ones((2, 3))), "zero"),
        (lambda: T.binarization_angles(np.array([[1.0, np.inf]])), "NaN or inf"),
        (lambda: T.dot_product_correlation(np.ones((2, 3)), np.ones((1, 3))), "samples"),
        (lambda: T.check_layer_concentration(np.ones((2, 3)), np.ones((0, 3))), "inputs"),
        (lambda: T.rademacher_exact_mean(np.ones(30), np.ones(30)), "enumeration"),
        (lambda: T.angle_delta_method((1.0, 0.5, 1.0, 1.0), 10), "moments"),
        (lambda: T.check_rotation(n_samples=4, n_rotations=5), "n_rotations"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ============================================================================================ 1. Grothendieck
def test_grothendieck_gaussian_projection_is_unbiased():
    ch = T.check_grothendieck(
        rhos=(-0.5, 0.3, 0.8), dims=(64, 4096), kind="gaussian", in_features=64, n_draws=32, seed=0
    )
    assert ch.packed_agrees is True  # N - 2 hamming(encode u, encode v) == float sign-product sums
    mean = np.array(ch.mean)[:, -1]
    # mean of D*N i.i.d. +-1 terms with mean mu: sd = sqrt((1 - mu^2) / (D N)) (<= 0.0028 here).
    se = np.sqrt((1 - np.array(ch.theory_mean) ** 2) / (32 * 4096))
    assert np.all(np.abs(mean - ch.theory_mean) <= Z * se)


def test_grothendieck_rademacher_dense_bias_is_small():
    ch = T.check_grothendieck(
        rhos=(-0.6, 0.0, 0.5, 0.9), dims=(4096,), kind="rademacher", in_features=256, n_draws=32, seed=1
    )
    mean = np.array(ch.mean)[:, -1]
    se = np.sqrt((1 - np.array(ch.theory_mean) ** 2) / (32 * 4096))
    # Rademacher rows are not rotation-invariant, so only an allowance is possible: the third cumulants vanish
    # (symmetric entries), and the leading (4th-cumulant, Edgeworth) correction scales like sum_i u_i^4
    # (~3/d = 0.012 for dense u; measured |bias| <= 0.05 * sum u_i^4 at d = 16..256). We allow 1x sum u_i^4.
    assert np.all(np.abs(mean - ch.theory_mean) <= Z * se + np.array(ch.delocalisation))
    assert max(ch.delocalisation) < 0.02  # the vectors really are delocalised


def test_grothendieck_rademacher_sparse_matches_exact_enumeration_not_arcsin():
    ch = T.check_grothendieck(
        rhos=(-0.9, 0.5, 0.95),
        dims=(64, 2048),
        kind="rademacher",
        in_features=8,
        n_draws=16,
        seed=2,
        layout="sparse",
        check_packed=False,
    )
    exact = np.array(ch.exact_mean)
    np.testing.assert_array_equal(exact, [-1.0, 0.0, 1.0])
    mean = np.array(ch.mean)[:, -1]
    # Same variance argument as above with the exact mean: sd = sqrt((1 - exact^2)/(D N)); zero when |exact| = 1.
    assert np.all(np.abs(mean - exact) <= Z * np.sqrt((1 - exact**2) / (16 * 2048)) + 1e-12)
    # ...and the bias against the Gaussian identity is large and reported, e.g. 0 vs 1/3 at rho = 0.5.
    assert ch.bias[1] == pytest.approx(-1 / 3, abs=0.03)


def test_same_seed_gives_identical_measurements():
    a = T.check_grothendieck(rhos=(0.2,), dims=(64, 128), in_features=16, n_draws=3, seed=5, check_packed=False)
    b = T.check_grothendieck(rhos=(0.2,), dims=(64, 128), in_features=16, n_draws=3, seed=5, check_packed=False)
    assert a == b
    c = T.check_unit_concentration(dims=(8, 16), n_draws=50, seed=5)
    assert c == T.check_unit_concentration(dims=(8, 16), n_draws=50, seed=5)
    assert c != T.check_unit_concentration(dims=(8, 16), n_draws=50, seed=6)


# ============================================================================================ 2. concentration
def _kurtosis_excess_of_mean(mu: float, n_terms: int) -> float:
    # A +-1 term with mean mu is 2B - 1 with B ~ Bernoulli(q), q = (1 + mu)/2, whose excess kurtosis is
    # (1 - 6 q (1 - q)) / (q (1 - q)); the mean of n_terms i.i.d. terms divides it by n_terms.
    q = (1 + mu) / 2
    return (1 - 6 * q * (1 - q)) / (q * (1 - q)) / n_terms


def test_unit_concentration_gaussian_matches_exact_tail_and_variance():
    dims, ts, d = (16, 64, 256, 1024), (0.1, 0.2, 0.4), 4000
    ch = T.check_unit_concentration(rho=0.5, dims=dims, ts=ts, kind="gaussian", n_draws=d, seed=0)
    fail, exact, hoeff = np.array(ch.failure), np.array(ch.exact), np.array(ch.hoeffding)
    # A frequency over D draws has sd sqrt(p (1 - p) / D); p = exact.
    assert np.all(np.abs(fail - exact) <= Z * np.sqrt(exact * (1 - exact) / d) + 1e-12)
    assert np.all(fail <= hoeff)  # the empirical failure frequency is at most the bound
    # Sample variance over D draws: Var(s^2)/sigma^4 = 2/(D-1) + kappa/D, kappa = excess kurtosis of mu_hat.
    mu = 2 / math.pi * math.asin(0.5)
    for dim, s, th in zip(dims, ch.zhat_std, ch.theory_std, strict=False):
        rel_sd_var = math.sqrt(2 / (d - 1) + abs(_kurtosis_excess_of_mean(mu, dim)) / d)
        assert abs((s / th) ** 2 - 1) <= Z * rel_sd_var
    # the mean estimator is unbiased for arcsin(rho): sd of the mean over draws = theory_std / sqrt(D)
    assert np.all(np.abs(np.array(ch.zhat_mean) - ch.z) <= Z * np.array(ch.theory_std) / math.sqrt(d))


def test_unit_concentration_rademacher_respects_hoeffding():
    d = 600
    ch = T.check_unit_concentration(
        rho=-0.3, dims=(16, 128, 1024), ts=(0.1, 0.3), kind="rademacher", in_features=64, n_draws=d, seed=3
    )
    fail = np.array(ch.failure)
    # Hoeffding holds around the terms' true mean; for Rademacher G that mean differs from (2/pi) arcsin(rho) by
    # a bias within the sum u_i^4 allowance (see the Grothendieck test), i.e. (pi/2) sum u_i^4 in z. So the bound
    # is evaluated at t minus that shift, plus the frequency noise 5 sqrt(b (1 - b) / D).
    shift = math.pi / 2 * ch.delocalisation
    assert shift < 0.1
    b = T.hoeffding_unit_bound(np.array(ch.dims)[:, None], np.array(ch.ts)[None, :] - shift)
    assert np.all(fail <= b + Z * np.sqrt(b * (1 - b) / d))
    assert fail[-1, -1] == 0.0


def test_layer_union_bound_and_required_n():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((12, 24))
    x = rng.standard_normal((20, 24)) + 2.0 * w[rng.integers(0, 12, 20)]
    d = 60
    ch = T.check_layer_concentration(w, x, t=0.2, delta=0.1, n_draws=d, seed=0)
    assert ch.dim_required == T.required_n(0.2, 0.1, 12, 20)
    assert ch.dim_required in ch.dims
    fa, union = np.array(ch.failure_any), np.array(ch.union)
    # The frequency over D draws has sd <= sqrt(b (1 - b) / D) when its probability is at most the bound b.
    assert np.all(fa <= union + Z * np.sqrt(union * (1 - union) / d))
    at_req = fa[ch.dims.index(ch.dim_required)]
    assert at_req <= 0.1 + Z * math.sqrt(0.1 * 0.9 / d)
    fu, hoeff = np.array(ch.failure_unit_mean), np.array(ch.hoeffding)
    assert np.all(fu <= hoeff + Z * np.sqrt(hoeff * (1 - hoeff) / d))
    # The mean squared error over cells and draws is unbiased for the mean exact variance. Cells of one draw share
    # G, so per draw it is no less noisy than one cell, whose squared error has relative sd ~ sqrt(2) (near-normal
    # error): relative sd of the draw average <= sqrt(2/D), halved by the square root.
    np.testing.assert_allclose(ch.error_rms, ch.theory_rms, rtol=Z * math.sqrt(2 / d) / 2)


# ============================================================================================ 3. Anderson & Berg
@pytest.mark.parametrize("dist", T.DISTRIBUTIONS)
def test_binarization_angle_matches_formula(dist):
    d, draws = 1000, 2000
    ch = T.check_binarization_angle(dist, in_features=(30, d), n_draws=draws, seed=4)
    # mean over D vectors: se = sd / sqrt(D); the 2nd-order delta-method mean leaves an O(d^-2) error (1e-6 rad).
    assert abs(ch.mean[-1] - ch.pred_mean[-1]) <= Z * ch.sd[-1] / math.sqrt(draws) + 1e-5
    assert abs(ch.mean[-1] - ch.limit) <= Z * ch.sd[-1] / math.sqrt(draws) + abs(ch.pred_mean[-1] - ch.limit)
    # sample sd over D draws: relative sd 1/sqrt(2(D-1)) for near-normal angles, plus the first-order
    # delta method's O(1/d) relative error (allowance 10/d; measured at most 5/d for Laplace at d = 300).
    assert abs(ch.sd[-1] / ch.pred_sd[-1] - 1) <= Z / math.sqrt(2 * (draws - 1)) + 10 / d
    # at small d the mean is biased low (Gaussian: about 34.5 deg at d = 10): the limit is for d >= ~100
    assert ch.mean[0] < ch.limit


def test_random_rotation_restores_isotropic_angle():
    d, n_samples = 100, 200
    ch = T.check_rotation(in_features=(d,), n_samples=n_samples, n_rotations=n_samples, seed=5)
    # With a fresh Haar R per sample, R x / |x| is uniform on the sphere, so the angle is distributed exactly as
    # for Gaussian weights at d: mean pred_mean, sd 0.3522/sqrt(d) rad; se of the mean = sd / sqrt(n_samples).
    _, sd = T.angle_delta_method(T.distribution_moments("gaussian"), d)
    assert abs(ch.rotated_mean[0] - ch.rotated_pred[0]) <= Z * sd / math.sqrt(n_samples)
    assert math.degrees(ch.plain_mean[0]) > 60  # binarising in the standard basis destroys the direction
    # the large-d formula for the plain case (ratio of expectations) is an approximation: within 3 deg here
    assert abs(math.degrees(ch.plain_mean[0] - ch.plain_pred[0])) < 3


def test_dot_product_correlation_equals_cosine_for_isotropic_activations():
    rng = np.random.default_rng(6)
    w = rng.uniform(-1, 1, (16, 200))
    a = rng.standard_normal((2000, 200))
    ch = T.dot_product_correlation(w, a, seed=7)
    # corr over isotropic a of (a.w, a.sign w) = cos angle(w, sign w); a sample correlation over S samples has
    # sd ~ (1 - r^2)/sqrt(S), and the mean over units is no noisier than one unit.
    assert abs(ch.r_unit_mean - ch.isotropic) <= Z * (1 - ch.isotropic**2) / math.sqrt(2000)
    assert ch.angle_deg == pytest.approx(30.0, abs=1.0)  # uniform weights (sd 0.56 deg at d = 200)
    assert abs(ch.r_permuted - ch.r) < 0.05  # permuting isotropic activations changes nothing
    # aligned activations (a along sign(w) directions) push r above the isotropic baseline
    aligned = a + 3 * rng.standard_normal((2000, 1)) * np.sign(w[0])
    assert T.dot_product_correlation(w[:1], aligned, seed=7).r_unit_mean > ch.isotropic + 0.1


# ============================================================================================ report
def test_quick_synthetic_report(tmp_path):
    from hdc.theory.synthetic import run_synthetic

    rep = run_synthetic(tmp_path, seed=0, quick=True, progress=False)
    assert all(v.ok for v in rep.verdicts), [v for v in rep.verdicts if not v.ok]
    md = (tmp_path / "report.md").read_text()
    data = json.loads((tmp_path / "report.json").read_text())  # strict JSON: no NaN tokens
    assert "Grothendieck" in md and data["meta"]["quick"] is True
    for sec in data["sections"].values():
        for fig in sec["figures"]:
            assert (tmp_path / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"]({fig})" in md


# ============================================================================================ layout
def test_package_reexports_every_public_name_and_measuring_needs_no_matplotlib():
    import subprocess
    import sys

    from hdc.theory import angles, concentration, formulas, grothendieck

    for module in (formulas, grothendieck, concentration, angles):
        assert set(module.__all__) <= set(T.__all__), module.__name__
        for name in module.__all__:
            assert getattr(T, name) is getattr(module, name)
    code = "import sys, hdc.theory; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
