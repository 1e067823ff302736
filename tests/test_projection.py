"""hdc.projection: seeded, chunk-independent random sign projections."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hdc.packed import unpack_bits
from hdc.projection import BLOCK_ROWS, RandomProjection, int8_matmul


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
    with pytest.raises(ValueError, match="n"):
        RandomProjection(3, 0)
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
