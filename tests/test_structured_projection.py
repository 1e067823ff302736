"""The structured (Hadamard) sign projection: exact algebra, seeding, batch independence and its statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hdc.packed import pack_bits
from hdc.projection import EMBEDDINGS, HadamardProjection, make_projection


def test_block_rows_are_orthogonal_with_gaussian_scale():
    # in_features = block = 128: each block of 128 rows is an exact orthogonal basis scaled so ||g||^2 = d.
    g = HadamardProjection(128, 300, seed=1).rows().double()
    for lo, hi in ((0, 128), (128, 256)):
        gram = g[lo:hi] @ g[lo:hi].T
        assert torch.equal(gram, 128 * torch.eye(hi - lo, dtype=torch.float64))


def test_project_and_encode_match_the_materialised_rows():
    p = HadamardProjection(100, 1000, seed=3, stream=(2,))
    x = torch.randn(33, 100, generator=torch.Generator().manual_seed(0))
    g = p.rows().double()
    ref = x.double() @ g.T
    assert torch.allclose(p.project(x).double(), ref, atol=1e-4)
    # Signs agree except where a projection is within float32 rounding of zero.
    codes, want = p.encode(x), pack_bits((ref >= 0).numpy())
    differ = np.unpackbits(np.bitwise_xor(codes, want).view(np.uint8), bitorder="little").reshape(33, -1)[:, :1000]
    assert np.all(ref.abs().numpy()[differ.astype(bool)] < 1e-4)


def test_seeded_nested_and_batch_independent():
    a = HadamardProjection(50, 700, seed=9, stream=(1,))
    b = HadamardProjection(50, 1000, seed=9, stream=(1,))
    assert torch.equal(a.rows(), b.rows(0, 700))  # smaller N is a prefix
    assert not torch.equal(a.rows(), HadamardProjection(50, 700, seed=9, stream=(2,)).rows())
    x = torch.randn(70, 50, generator=torch.Generator().manual_seed(1))
    whole = b.encode(x)
    parts = np.concatenate([b.encode(x[i : i + 7]) for i in range(0, 70, 7)])
    assert np.array_equal(whole, parts)  # bit-identical whatever the batch size (tiles of 32 rows or fewer)
    assert np.array_equal(whole, HadamardProjection(50, 1000, seed=9, stream=(1,)).encode(x))


def test_tail_bits_are_zero_and_encode_exact_runs_in_float64():
    p = HadamardProjection(10, 100, seed=0)
    x = torch.randn(5, 10, dtype=torch.float64)
    codes = p.encode_exact(x)
    assert codes.shape == (5, 2) and np.all(codes[:, 1] >> np.uint64(36) == 0)  # bits 100..127 clear
    assert np.array_equal(codes, pack_bits((x @ p.rows().double().T >= 0).numpy()))
    # encode_unchecked runs in float32, as the dense projections do: float64 input is rounded first
    assert np.array_equal(p.encode_unchecked(x), p.encode_unchecked(x.float()))


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.full((2, 10), float("nan")), "NaN"),
        (torch.zeros(2, 11), "shape"),
        (torch.zeros(0, 10), "empty"),
    ],
)
def test_bad_input_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        HadamardProjection(10, 64).encode(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="float32 only"):
        HadamardProjection(10, 64).encode(torch.zeros(1, 10), precision="int8")
    with pytest.raises(ValueError, match="in_features"):
        HadamardProjection(0, 64)
    with pytest.raises(ValueError, match="unknown embedding 'sparse'"):
        make_projection("sparse", 10, 64)
    assert "hadamard" in EMBEDDINGS


def test_sign_agreement_estimates_grothendieck_arcsine():
    """Mean over 100 draws of <sign(Gu), sign(Gv)>/N equals (2/pi) arcsin(rho) for spread-out u, v.

    Each draw's estimate with N independent rows has variance (1 - mu^2)/N (mu the target); orthogonal rows can only
    lower it (checked below). The mean over 100 draws then has sd <= sqrt((1 - mu^2)/(100 N)); we allow 4 of those
    plus a bias budget of 0.003 for the structured rows (measured ~1e-4 at d = 512).
    """
    rng = np.random.default_rng(0)
    d, n, draws = 400, 2048, 100
    u = rng.standard_normal(d)
    v = 0.6 * u + 0.8 * rng.standard_normal(d)
    rho = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    mu = 2 / math.pi * math.asin(rho)
    pair = torch.tensor(np.stack([u, v]))
    est = []
    for seed in range(draws):
        s = HadamardProjection(d, n, seed=seed).project(pair).numpy()
        est.append(np.mean(np.sign(s[0]) * np.sign(s[1])))
    est = np.array(est)
    sd_independent = math.sqrt((1 - mu**2) / n)
    assert abs(est.mean() - mu) < 4 * sd_independent / math.sqrt(draws) + 0.003
    # The spread over draws is at most that of independent rows (chi-square bound: 100 draws, +25 % slack).
    assert est.std(ddof=1) < 1.25 * sd_independent
