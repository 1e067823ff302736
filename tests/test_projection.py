"""hdc.projection: the Projection protocol, make_projection, and the dense seeded, chunk-independent projections."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hdc._linalg import chunks, int8_matmul
from hdc.packed import pack_sign, unpack_bits
from hdc.projection import (
    BLOCK_ROWS,
    EMBEDDINGS,
    PRECISIONS,
    HadamardProjection,
    Projection,
    RandomProjection,
    make_projection,
)


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_rows_do_not_depend_on_chunking_or_caching(kind):
    p = RandomProjection(7, 3 * BLOCK_ROWS + 5, kind, seed=11, stream=(2,))
    uncached = RandomProjection(7, 3 * BLOCK_ROWS + 5, kind, seed=11, stream=(2,), cache_bytes=0)
    full = p.rows()
    pieces = torch.cat([uncached.rows(a, b) for a, b in uncached.chunks(100)])
    assert torch.equal(full, pieces)
    # G for a smaller N is a prefix of G for a larger N (nested sweeps)
    assert torch.equal(RandomProjection(7, 300, kind, seed=11, stream=(2,)).rows(), full[:300])
    assert not torch.equal(RandomProjection(7, 300, kind, seed=12, stream=(2,)).rows(), full[:300])
    assert not torch.equal(RandomProjection(7, 300, kind, seed=11, stream=(3,)).rows(), full[:300])
    if kind == "rademacher":
        assert set(full.unique().tolist()) == {-1.0, 1.0}


def test_gaussian_rows_have_unit_variance():
    g = RandomProjection(50, 2000, "gaussian", seed=0).rows()
    # 100k N(0,1) draws: the sample mean has sd 1/sqrt(1e5) = 0.0032 and the sample variance sd sqrt(2/1e5) = 0.0045;
    # 5 sd each.
    assert abs(g.mean().item()) < 5 * 0.0032
    assert abs(g.var().item() - 1) < 5 * 0.0045


def test_encode_is_packed_sign_of_projection():
    p = RandomProjection(5, 130, "gaussian", seed=3)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    words = p.encode(x, chunk_rows=64)
    assert words.shape == (4, 3) and words.dtype == np.uint64
    np.testing.assert_array_equal(unpack_bits(words, 130), (p.project(x) >= 0).numpy())


def test_hamming_fraction_estimates_angle_over_pi():
    # E[Hamming/N] = angle/pi for Gaussian G; Var = q(1-q)/N with q = angle/pi; N = 20000 -> sd <= 0.0036.
    u, v = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[math.cos(1.0), math.sin(1.0), 0.0]])
    p = RandomProjection(3, 20000, "gaussian", seed=5)
    bits_u, bits_v = unpack_bits(p.encode(u), 20000), unpack_bits(p.encode(v), 20000)
    q = 1.0 / math.pi
    assert abs((bits_u != bits_v).mean() - q) < 5 * math.sqrt(q * (1 - q) / 20000)


def test_int8_precision_is_exact_for_small_integer_inputs():
    p = RandomProjection(24, 200, "rademacher", seed=1)
    x = torch.randint(-127, 128, (9, 24), generator=torch.Generator().manual_seed(2)).float()
    x[:, 0] = 127  # each row's max is 127, so quantisation is the identity
    assert torch.equal(p.project(x, precision="int8"), p.project(x))


def test_int8_matmul_exact_on_awkward_shapes():
    gen = torch.Generator().manual_seed(0)
    for m, k, n in [(1, 1, 1), (5, 13, 7), (17, 8, 8), (40, 33, 9)]:
        a = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=gen)
        b = torch.randint(-127, 128, (k, n), dtype=torch.int8, generator=gen)
        assert torch.equal(int8_matmul(a, b), a.int() @ b.int())


def test_bad_input():
    with pytest.raises(ValueError, match="kind"):
        RandomProjection(3, 10, "uniform")
    with pytest.raises(ValueError, match="dim must be >= 1"):
        RandomProjection(3, 0)
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        RandomProjection(0, 10)
    with pytest.raises(ValueError, match="row range"):
        RandomProjection(3, 10).project(torch.zeros(1, 3), 5, 11)
    with pytest.raises(ValueError, match="seed"):
        RandomProjection(3, 10, seed=-1)
    p = RandomProjection(3, 10)
    with pytest.raises(ValueError, match="shape"):
        p.project(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="empty"):
        p.project(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="NaN"):
        p.encode(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="precision"):
        p.project(torch.zeros(1, 3), precision="fp8")
    with pytest.raises(ValueError, match="rademacher"):
        p.project(torch.zeros(1, 3), precision="int8")


# ------------------------------------------------------------------------------ kind="orthogonal" (super-bit rows)
def _group_bounds(fan_in: int, n: int) -> list[tuple[int, int]]:
    """Row ranges of the orthogonal groups: groups of fan_in rows restarted in every BLOCK_ROWS block."""
    size = min(fan_in, BLOCK_ROWS)
    return [
        (b + lo, min(b + lo + size, b + BLOCK_ROWS, n))
        for b in range(0, n, BLOCK_ROWS)
        for lo in range(0, BLOCK_ROWS, size)
        if b + lo < n
    ]


@pytest.mark.parametrize("fan_in", [1, 11, 300])
def test_orthogonal_rows_in_a_group_are_orthogonal(fan_in):
    n = 2 * BLOCK_ROWS
    g = RandomProjection(fan_in, n, "orthogonal", seed=4).rows().double()
    groups = _group_bounds(fan_in, n)
    if fan_in == 11:  # 256 = 23 * 11 + 3: each block ends with a short group of 3 rows
        assert [b - a for a, b in groups].count(3) == 2
    for a, b in groups:
        unit = g[a:b] / g[a:b].norm(dim=1, keepdim=True)
        # float32 rows of a float64 QR: cosines between rows of a group are rounding-level (~1e-7)
        assert (unit @ unit.T - torch.eye(b - a, dtype=torch.float64)).abs().max() < 1e-5
    if fan_in > 1:  # rows of different groups are independent directions, not orthogonal
        (a0, b0), (a1, b1) = groups[0], groups[1]
        cos = (g[a0:b0] / g[a0:b0].norm(dim=1, keepdim=True)) @ (g[a1:b1] / g[a1:b1].norm(dim=1, keepdim=True)).T
        assert cos.abs().max() > 0.1


def test_orthogonal_rows_have_gaussian_norms_and_haar_signs():
    for fan_in, n in [(11, 16 * BLOCK_ROWS), (300, 4 * BLOCK_ROWS)]:
        g = RandomProjection(fan_in, n, "orthogonal", seed=5).rows().double()
        norm2 = (g**2).sum(dim=1)
        # |row|^2 is an independent chi^2(fan_in) draw per row: mean fan_in, variance 2 fan_in, so the mean over n
        # rows has sd sqrt(2 fan_in / n) (0.073 for fan_in 11, 0.77 for 300); 5 sd. Unit-length rows would fail the
        # spread check below: chi^2's sample variance is 2 fan_in with relative sd sqrt((kurtosis - 1) / n),
        # kurtosis = 3 + 12 / fan_in <= 4.1 here, so relative sd <= sqrt(3.1 / 1024) = 0.055; 5 sd.
        assert abs(norm2.mean().item() - fan_in) < 5 * math.sqrt(2 * fan_in / n)
        assert abs(norm2.var().item() / (2 * fan_in) - 1) < 5 * math.sqrt((2 + 12 / fan_in) / n)
        # QR's sign convention would make the first coordinate of a group's first row always negative (LAPACK
        # Householder); after the sign fix it is positive with probability 1/2 over the groups: binomial, 5 sd.
        firsts = torch.stack([g[a, 0] for a, _ in _group_bounds(fan_in, n)])
        assert abs((firsts > 0).double().mean().item() - 0.5) < 5 * 0.5 / math.sqrt(len(firsts))


def _agreements(kind: str, u: np.ndarray, v: np.ndarray, n: int, seeds: int) -> np.ndarray:
    """mu_hat = (1/N) <sign(Gu), sign(Gv)> for G of seeds 0..seeds-1: float64 (seeds,)."""
    x = torch.tensor(np.stack([u, v]), dtype=torch.float32)
    out = []
    for s in range(seeds):
        signs = RandomProjection(len(u), n, kind, seed=s).project(x) >= 0
        out.append(2 * (signs[0] == signs[1]).double().mean().item() - 1)
    return np.array(out)


@pytest.mark.parametrize("dim, n, seeds", [(11, 16 * BLOCK_ROWS, 64), (300, 4 * BLOCK_ROWS, 24)])
def test_orthogonal_sign_agreement_is_unbiased(dim, n, seeds):
    from hdc.theory import correlated_pair, rademacher_exact_mean

    u, v = correlated_pair(0.5, dim, seed=2)
    mu = 2 / math.pi * math.asin(0.5)  # Grothendieck: 1/3
    est = _agreements("orthogonal", u, v, n, seeds)
    # Different seeds give independent G, so the mean over seeds has sd = (sd across seeds) / sqrt(seeds); 5 sd,
    # from the measured spread (no independence of rows within a G is assumed). dim 11: tol ~ 0.006.
    tol = 5 * est.std(ddof=1) / math.sqrt(seeds)
    assert abs(est.mean() - mu) < tol
    if dim <= 20:
        # the resolution suffices to see a Rademacher G's bias on this short vector (exactly -0.021 here)
        assert abs(rademacher_exact_mean(u, v) - mu) > tol


def test_orthogonal_sign_agreement_varies_less_than_independent_rows():
    from hdc.theory import correlated_pair

    n, seeds = BLOCK_ROWS, 400
    u, v = correlated_pair(0.5, 11, seed=2)
    mu = 2 / math.pi * math.asin(0.5)
    sd_independent = math.sqrt((1 - mu**2) / n)  # exact sd of mu_hat for N i.i.d. Gaussian rows: 0.0589
    sd = _agreements("orthogonal", u, v, n, seeds).std(ddof=1)
    # Slack: measured over 400 draws, sd / sd_independent ~ 0.84 for groups of 11 rows in 11 dims (0.81 at dim 64).
    # The sample sd of 400 near-normal draws has relative sd 1/sqrt(2 * 399) = 0.035, so the true ratio sits
    # (1/0.84 - 1) / 0.035 = 5.3 sd below the threshold; an independent-row G would pass only half the time.
    assert sd < sd_independent


@pytest.mark.parametrize("fan_in", [7, 300])
def test_orthogonal_rows_are_nested_chunk_independent_and_deterministic(fan_in):
    n = 2 * BLOCK_ROWS + 37
    p = RandomProjection(fan_in, n, "orthogonal", seed=11, stream=(2,))
    uncached = RandomProjection(fan_in, n, "orthogonal", seed=11, stream=(2,), cache_bytes=0)
    full = p.rows()
    assert torch.equal(torch.cat([uncached.rows(a, b) for a, b in uncached.chunks(100)]), full)
    assert torch.equal(RandomProjection(fan_in, 300, "orthogonal", seed=11, stream=(2,)).rows(), full[:300])
    assert not torch.equal(RandomProjection(fan_in, n, "orthogonal", seed=12, stream=(2,)).rows(), full)
    assert not torch.equal(RandomProjection(fan_in, n, "orthogonal", seed=11, stream=(3,)).rows(), full)
    x = torch.randn(5, fan_in, generator=torch.Generator().manual_seed(0))
    words = p.encode(x, chunk_rows=128)
    np.testing.assert_array_equal(words, uncached.encode(x, chunk_rows=64))
    np.testing.assert_array_equal(unpack_bits(words, n), (p.project(x) >= 0).numpy())
    bf16 = p.project(x, precision="bfloat16")  # bf16 rounds G and x to 8 mantissa bits: ~1% of |G x|'s scale
    assert (bf16 - p.project(x)).abs().max() < 0.05 * math.sqrt(fan_in) * x.abs().max()


def test_orthogonal_bad_input_and_wiring():
    p = RandomProjection(5, 100, "orthogonal")
    with pytest.raises(ValueError, match="rademacher"):
        p.project(torch.zeros(1, 5), precision="int8")
    with pytest.raises(ValueError, match="rademacher"):
        p.encode(torch.zeros(1, 5), precision="int8")
    with pytest.raises(ValueError, match="shape"):
        p.encode(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="kind"):
        RandomProjection(5, 100, "Orthogonal")
    with pytest.raises(ValueError, match="int8"):
        p.check_precision("int8")
    assert p.check_precision("bfloat16") == "bfloat16"
    assert "orthogonal" in EMBEDDINGS
    q = make_projection("orthogonal", 5, 100, seed=0, stream=(1,))
    assert q.kind == "orthogonal" and torch.equal(q.rows(), RandomProjection(5, 100, "orthogonal", 0, (1,)).rows())


# ------------------------------------------------------------------------------ the Projection protocol
def test_every_kind_satisfies_the_protocol():
    for kind in EMBEDDINGS:
        proj = make_projection(kind, 9, 200, seed=1, stream=(3,))
        assert isinstance(proj, Projection)
        assert (proj.in_features, proj.dim, proj.kind, proj.seed, proj.stream) == (9, 200, kind, 1, (3,))
        assert list(proj.chunks(130)) == [(0, 128), (128, 200)]  # whole words, whatever chunk_rows asks
        assert list(proj.chunks(1)) == list(chunks(200, 64))
        x = torch.randn(4, 9, generator=torch.Generator().manual_seed(len(kind)))
        words = proj.encode(x)
        assert words.shape == (4, 4) and words.dtype == np.uint64
        np.testing.assert_array_equal(words, proj.encode_unchecked(x))
        np.testing.assert_array_equal(unpack_bits(words, 200), (proj.project(x) >= 0).numpy())
        part = proj.project(x, 64, 130)
        assert part.dtype == torch.float32 and part.shape == (4, 66)
        assert torch.equal(part, proj.project_unchecked(x, 64, 130))
    assert isinstance(make_projection("hadamard", 9, 200), HadamardProjection)
    assert isinstance(make_projection("rademacher", 9, 200), RandomProjection)


def test_make_projection_rejects_unknown_kinds_and_arguments():
    valid = "gaussian, rademacher, orthogonal, hadamard"
    with pytest.raises(ValueError, match=f"unknown embedding 'sparse'; valid: {valid}"):
        make_projection("sparse", 10, 64)
    with pytest.raises(TypeError):
        make_projection("gaussian", 10, 64, n=64)  # the old name of dim is not swallowed
    with pytest.raises(TypeError):
        make_projection("hadamard", 10, 64, chunk_rows=128)
    with pytest.raises(TypeError):
        HadamardProjection(10, 64, cache_bytes=0)
    with pytest.raises(ValueError, match="cache_bytes"):
        make_projection("hadamard", 10, 64, cache_bytes=-1)
    with pytest.raises(ValueError, match="stream"):
        make_projection("gaussian", 10, 64, stream=(-1,))


@pytest.mark.parametrize("kind", EMBEDDINGS)
def test_check_precision(kind):
    proj = make_projection(kind, 5, 64)
    runs = {"hadamard": ["float32"], "rademacher": list(PRECISIONS)}.get(kind, ["float32", "bfloat16"])
    for precision in PRECISIONS:
        if precision in runs:
            assert proj.check_precision(precision) == precision
        else:
            with pytest.raises(ValueError, match="int8|float32 only"):
                proj.check_precision(precision)
            with pytest.raises(ValueError):
                proj.encode(torch.zeros(1, 5), precision=precision)
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        proj.check_precision("fp8")


def test_encode_is_fused_says_which_path_encode_takes(monkeypatch):
    # Callers size their chunks by this answer (EHDGLayer.default_row_chunk) and pick a layer's precision by it
    # (check_embedding), so it must match what encode_unchecked really does.
    import hdc.projection.dense as dense

    calls = []
    kernel = dense.dense_signs_into
    monkeypatch.setattr(dense, "dense_signs_into", lambda *a: calls.append(1) or kernel(*a))
    x = torch.randn(3, dense.FUSED_MAX_FAN_IN + 1, generator=torch.Generator().manual_seed(0))
    cases = [
        (make_projection("gaussian", 9, 200), "float32", True),
        (make_projection("rademacher", dense.FUSED_MAX_FAN_IN, 200), "float32", True),
        (make_projection("gaussian", 9, 200), "bfloat16", False),
        (make_projection("gaussian", dense.FUSED_MAX_FAN_IN + 1, 200), "float32", False),
        (make_projection("gaussian", 9, 200, cache_bytes=0), "float32", False),  # G regenerated per chunk: a GEMM
    ]
    for proj, precision, fused in cases:
        calls.clear()
        assert proj.encode_is_fused(precision) is fused
        proj.encode_unchecked(x[:, : proj.in_features], precision=precision)
        assert bool(calls) is fused, (proj, precision)
    assert make_projection("hadamard", 300, 200).encode_is_fused("float32")


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "orthogonal"])
def test_encode_exact_is_the_float64_product_per_2048_rows(kind):
    # The EHD weight-code recipe: G's float32 rows cast to float64, 2048 rows per product, signs packed per chunk.
    proj = make_projection(kind, 30, 4200, seed=2, stream=(1, 4), cache_bytes=0)
    w = torch.randn(3, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    want = np.concatenate(
        [pack_sign((w @ proj.rows(a, b).to(torch.float64).T).numpy()) for a, b in proj.chunks(2048)], axis=-1
    )
    np.testing.assert_array_equal(proj.encode_exact(w), want)
    np.testing.assert_array_equal(proj.encode_exact(w.float()), proj.encode_exact(w.float().double()))


def test_encode_exact_hadamard_runs_the_transform_in_float64():
    proj = make_projection("hadamard", 30, 300, seed=2, stream=(1,))
    w = torch.randn(3, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(proj.encode_exact(w), pack_sign((w @ proj.rows().double().T).numpy()))
    with pytest.raises(ValueError, match="shape"):
        proj.encode_exact(torch.zeros(2, 31, dtype=torch.float64))


def test_the_old_name_of_dim_still_reads_with_a_warning():
    proj = make_projection("hadamard", 5, 100)
    with pytest.warns(DeprecationWarning, match="dim"):
        assert proj.n == 100 == proj.dim
