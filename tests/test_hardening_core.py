"""Inputs that used to give silently wrong values in the HDC core are refused with a ValueError naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hdc
from hdc.encoders.scalar import ScalarEncoder, value_to_level
from hdc.hamming import bipolar_dot, hamming_distance, hamming_similarity
from hdc.packed import PackedHV

DIM = 100  # not a multiple of 64: the last word has 28 tail bits


def _dirty(words: np.ndarray) -> np.ndarray:
    out = words.copy()
    out[..., -1] |= np.uint64(1) << np.uint64(63)
    return out


# ------------------------------------------------------------------------------------------------ bind


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[1, -1, 5, 1]], dtype=np.int64),  # packed words stored as int64
        np.array([[1.0, -1.0, np.nan, 1.0]]),
        np.array([[1.0, -1.0, 0.5, 1.0]]),
        np.array([[1, 0, -1, 1]], dtype=np.int8),
        torch.tensor([[1.0, float("nan"), -1.0, 1.0]]),
    ],
)
@pytest.mark.parametrize("side", ["a", "b"])
def test_bind_refuses_non_bipolar_values(bad, side):
    good = np.ones((1, 4)) if isinstance(bad, np.ndarray) else torch.ones(1, 4)
    a, b = (bad, good) if side == "a" else (good, bad)
    with pytest.raises(ValueError, match=rf"bind: {side} must hold only -1 and \+1"):
        hdc.bind(a, b)


def test_bind_of_valid_inputs_unchanged():
    rng = np.random.default_rng(0)
    a = rng.choice([-1, 1], size=(3, 50)).astype(np.int8)
    b = rng.choice([-1.0, 1.0], size=(3, 50)).astype(np.float32)
    np.testing.assert_array_equal(hdc.bind(a, b), a * b)
    ta, tb = torch.from_numpy(b), torch.from_numpy(b[::-1].copy())
    assert torch.equal(hdc.bind(ta, tb), ta * tb)
    w = hdc.random(3, DIM, seed=1)
    np.testing.assert_array_equal(hdc.bind(w, w[0]), w ^ w[0])


# ------------------------------------------------------------------------------------------------ bundle


def test_bundle_refuses_dim_that_does_not_match_the_words():
    w = hdc.random(5, DIM, seed=0)
    with pytest.raises(ValueError, match="dim=300 needs 5"):
        hdc.bundle(w, 300)
    with pytest.raises(ValueError, match="dim=1000 needs 16"):
        hdc.bundle(w, 1000)  # too few words for dim
    with pytest.raises(ValueError, match="tail bits"):
        hdc.bundle(_dirty(w), DIM)
    with pytest.raises(ValueError, match="tail bits"):
        hdc.bundle(w, 70)  # same word count, but bits set beyond 70


def test_bundle_refuses_dim_that_does_not_match_bipolar_or_packedhv():
    x = np.ones((3, 40))
    with pytest.raises(ValueError, match="dim=7 does not match x's last axis 40"):
        hdc.bundle(x, dim=7)
    np.testing.assert_array_equal(hdc.bundle(x, dim=40), np.ones(40))
    p = PackedHV(hdc.random(3, DIM), DIM)
    with pytest.raises(ValueError, match="dim=99 does not match the PackedHV dim 100"):
        hdc.bundle(p, 99)
    assert hdc.bundle(p, DIM).dim == DIM


# ------------------------------------------------------------------------------------------------ similarities


@pytest.mark.parametrize("fn", [hamming_similarity, bipolar_dot, hdc.similarity, hdc.dot, hdc.cosine])
@pytest.mark.parametrize("side", ["a", "b"])
def test_similarities_refuse_tail_bits(fn, side):
    w = hdc.random(4, DIM, seed=3)
    a, b = (_dirty(w), w) if side == "a" else (w, _dirty(w))
    with pytest.raises(ValueError, match=rf"{side} has non-zero tail bits beyond dim={DIM}"):
        fn(a, b, DIM)


def test_hamming_distance_with_dim_refuses_tail_bits_and_keeps_valid_results():
    w = hdc.random(4, DIM, seed=3)
    with pytest.raises(ValueError, match="tail bits"):
        hamming_distance(_dirty(w), w, dim=DIM)
    with pytest.raises(ValueError, match="tail bits"):
        hdc.ops.hamming(w, _dirty(w), dim=DIM)
    with pytest.raises(ValueError, match="dim=200 needs 4 words"):
        hamming_distance(w, w, dim=200)
    np.testing.assert_array_equal(hamming_distance(w, w, dim=DIM), hamming_distance(w, w))
    # a multiple of 64 has no tail: every bit is valid
    full = hdc.random(2, 128, seed=0)
    assert hamming_similarity(full, full, 128).shape == (2, 2)


# ------------------------------------------------------------------------------------------------ ScalarEncoder


@pytest.mark.parametrize("low, high", [(-1e308, 1e308), (-np.finfo(np.float64).max, 1e308)])
def test_scalar_encoder_refuses_overflowing_range(low, high):
    with pytest.raises(ValueError, match="high - low overflows"):
        ScalarEncoder(8, 256, low, high)
    with pytest.raises(ValueError, match="high - low overflows"):
        value_to_level([0.0], 8, low, high)


@pytest.mark.parametrize("low, high", [(np.nan, 1.0), (0.0, np.inf), (1.0, 1.0), (2.0, 1.0)])
def test_scalar_encoder_refuses_bad_range(low, high):
    with pytest.raises(ValueError, match="low|high"):
        ScalarEncoder(8, 256, low, high)


def test_circular_encoder_refuses_values_beyond_int64():
    enc = ScalarEncoder(16, 256, 0.0, 1.0, kind="circular")
    with pytest.raises(ValueError, match="values: .*2\\*\\*62"):
        enc.encode(np.array([0.5, 1e30]))
    with pytest.raises(ValueError, match="values"):
        enc.encode(np.array([-1e300]))
    # values several periods away still wrap exactly
    np.testing.assert_array_equal(enc.index(np.array([0.25, 3.25, -0.75])), [4, 4, 4])


def test_linear_encoder_clips_huge_values():
    enc = ScalarEncoder(16, 256, 0.0, 1.0)
    np.testing.assert_array_equal(enc.index(np.array([1e300, -1e300, 1.7e308])), [15, 0, 15])


def test_encode_records_refuses_a_batch_of_tie_vectors():
    from hdc.encoders.record import encode_records

    keys, book = hdc.random(3, DIM, seed=0), hdc.random(4, DIM, seed=1)
    idx = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="tie must be one packed vector"):
        encode_records(idx, keys, book, DIM, tie=hdc.random(2, DIM))
    assert encode_records(idx, keys, book, DIM, tie=hdc.random(1, DIM)[0]).shape == (2, 2)


# ------------------------------------------------------------------------------------------------ CLI edges


def _cli(argv: list[str], capsys) -> str:
    """Run ``gnet argv`` in process; it must fail with status 2 and one ``gnet <cmd>: error: ...`` line."""
    from gnet.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"gnet {argv[0]}: error: "), err
    return err


@pytest.fixture
def ehd_file(tmp_path):
    from test_crafted_files import _valid_model

    path = tmp_path / "m.ehd"
    _valid_model().save(path)
    return path


def test_cli_refuses_bad_counts(tmp_path, ehd_file, capsys):
    ckpt = str(tmp_path / "absent.pt")  # the flags are checked before the checkpoint is read
    assert "--seeds must be >= 1, got 0" in _cli(["sweep", ckpt, "--seeds", "0", "--out", str(tmp_path)], capsys)
    assert "--limit must be >= 1, got 0" in _cli(["sweep", ckpt, "--limit", "0", "--out", str(tmp_path)], capsys)
    assert "--limit must be >= 1, got -5" in _cli(["eval", str(ehd_file), "--limit", "-5"], capsys)
    assert "--limit must be >= 1, got 0" in _cli(["robustness", str(ehd_file), "--limit", "0", "--out", "o"], capsys)
    assert "--seeds must be >= 1" in _cli(["robustness", str(ehd_file), "--seeds", "0", "--out", "o"], capsys)
    assert "--batch-size must be >= 1" in _cli(["sweep", ckpt, "--batch-size", "0", "--out", "o"], capsys)


def test_cli_refuses_a_huge_rate_grid_at_once(tmp_path, ehd_file, capsys):
    import time

    t0 = time.perf_counter()
    err = _cli(["robustness", str(ehd_file), "--p", "0:1:1e-7", "--out", str(tmp_path)], capsys)
    assert "at most 10000" in err and time.perf_counter() - t0 < 1.0


def test_cli_refuses_out_paths_that_cannot_be_written(tmp_path, ehd_file, capsys):
    regular = tmp_path / "file.txt"
    regular.write_text("x")
    ckpt = str(tmp_path / "absent.pt")
    err = _cli(["sweep", ckpt, "--out", str(regular / "sub")], capsys)
    assert f"{regular} is not a directory" in err
    err = _cli(["sweep", ckpt, "--out", str(regular)], capsys)
    assert "exists and is not a directory" in err
    err = _cli(["robustness", str(ehd_file), "--out", str(regular)], capsys)
    assert "exists and is not a directory" in err
    err = _cli(["robustness", str(ehd_file), "--out", str(regular / "a" / "b")], capsys)
    assert "is not a directory" in err
    err = _cli(["convert", ckpt, "--out", str(tmp_path)], capsys)  # a directory where a file is expected
    assert "is a directory; give a file path" in err
    err = _cli(["convert", ckpt, "--out", str(regular / "m.ehd")], capsys)
    assert f"{regular} is not a directory" in err
    assert not (regular / "sub").exists() and regular.read_text() == "x"


# ------------------------------------------------------------------------------------------------ batch independence


def _ehd_mlp(embedding: str, precision: str, hidden: int, in_features: int = 64, dim: int = 1024):
    from gnet.ehd.layers import EHDClassifier, EHDGLayer, Geometry
    from gnet.ehd.model import EHDModel

    def codes(units: int) -> np.ndarray:
        return hdc.random(units, dim, seed=units)

    common = dict(embedding=embedding, precision=precision, seed=0)
    geometry = Geometry("linear", in_features, hidden)
    g = EHDGLayer(geometry, dim, codes(hidden), 0.1, activation="rasu", index=0, **common)
    clf = EHDClassifier(hidden, 10, dim, codes(10), 0.0, index=1, **common)
    return EHDModel([g, clf], input_shape=(in_features,), n_classes=10)


@pytest.mark.parametrize(
    "embedding, precision, hidden",
    [
        ("rademacher", "int8", 200),  # exact integer products at every fan-in
        ("hadamard", "float32", 200),  # the transform runs row by row
        ("gaussian", "float32", 48),  # fan-in <= 64: the fused per-row kernel, no GEMM
        ("rademacher", "float32", 48),
    ],
)
def test_logits_do_not_depend_on_the_batch_size(embedding, precision, hidden):
    """The paths documented as batch-independent (docs/hardening.md): logits, hence predictions, are identical for
    batch 1 and batch 256. (A float32 or bfloat16 GEMM, fan-in > 64, may round a projection near 0 differently.)"""
    model = _ehd_mlp(embedding, precision, hidden)
    x = torch.from_numpy(np.random.default_rng(0).random((300, 64), dtype=np.float32))
    full = torch.cat([model.logits(x[i : i + 256]) for i in range(0, len(x), 256)])
    single = torch.cat([model.logits(x[i : i + 1]) for i in range(len(x))])
    assert torch.equal(full, single)
    assert torch.equal(model.predict(x, batch_size=1), model.predict(x, batch_size=256))


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8", True])
def test_predict_and_penultimate_codes_refuse_bad_batch_sizes(batch_size):
    model = _ehd_mlp("gaussian", "float32", 16)
    x = torch.zeros(3, 64)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=batch_size)
    with pytest.raises(ValueError, match="batch_size"):
        model.penultimate_codes(x, batch_size=batch_size)


# ------------------------------------------------------------------------------------------------ property-based

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DTYPES = st.sampled_from([np.uint64, np.int64, np.int8, np.float32, np.float64, np.bool_, np.uint8])


def _arrays(min_side: int = 0):
    return _DTYPES.flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=5))
    )


@FUZZ
@given(a=_arrays(), b=_arrays())
def test_fuzz_bind_returns_or_refuses(a, b):
    try:
        out = hdc.bind(a, b)
    except ValueError:
        return
    if a.dtype == np.uint64:
        np.testing.assert_array_equal(out, a ^ b)
    else:  # accepted bipolar operands: only +-1 in, only +-1 out
        assert np.all(np.abs(out) == 1)


@FUZZ
@given(x=_arrays(), dim=st.one_of(st.none(), st.integers(-3, 400)), ties=st.sampled_from(["random", "deterministic"]))
def test_fuzz_bundle_returns_or_refuses(x, dim, ties):
    try:
        out = hdc.bundle(x, dim, ties=ties)
    except ValueError:
        return
    if x.dtype == np.uint64:
        assert dim is not None and out.shape == x.shape[:-2] + (x.shape[-1],)
        hdc.packed.validate_words(out, dim)  # tail bits stay zero
    else:
        assert np.all(np.abs(out) == 1)


@FUZZ
@given(
    words=hnp.arrays(np.uint64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)),
    dim=st.integers(-2, 300),
    fn=st.sampled_from([hamming_similarity, bipolar_dot]),
)
def test_fuzz_similarities_return_or_refuse(words, dim, fn):
    try:
        out = fn(words, words, dim)
    except ValueError:
        return
    d = hdc.packed.check_dim(dim)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(np.diagonal(out), 1.0 if fn is hamming_similarity else d)


_REALS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FUZZ
@given(
    low=_REALS,
    high=_REALS,
    values=hnp.arrays(np.float64, st.integers(1, 6), elements=_REALS),
    kind=st.sampled_from(["level", "thermometer", "circular"]),
)
def test_fuzz_scalar_encoder_levels_in_range_or_refused(low, high, values, kind):
    try:
        enc = ScalarEncoder(8, 64, low, high, kind=kind)
        idx = enc.index(values)
    except ValueError:
        return
    assert idx.dtype == np.int64 and np.all((idx >= 0) & (idx < 8))


@FUZZ
@given(text=st.text(alphabet="0123456789.:,-einfa ", max_size=20))
def test_fuzz_p_grid_returns_rates_or_refuses(text):
    from gnet.robustness import MAX_RATES, p_grid

    try:
        rates = p_grid(text)
    except ValueError:
        return
    assert 1 <= len(rates) <= MAX_RATES and all(0.0 <= p <= 1.0 for p in rates)


@FUZZ
@given(blob=st.binary(max_size=64), gz=st.booleans())
def test_fuzz_read_idx_returns_or_refuses(tmp_path_factory, blob, gz):
    import gzip

    from hdc.datasets.idx import read_idx

    path = tmp_path_factory.mktemp("idx") / "f-idx1-ubyte"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    try:
        arr = read_idx(path)
    except ValueError:
        return
    assert arr.dtype == np.uint8


def test_bundle_refuses_unsigned_bipolar_arrays():
    """Found by the fuzz test: a uint8 "bipolar" array's majority -1 wrapped to 255 (silently wrong)."""
    with pytest.raises(ValueError, match="signed or float dtype"):
        hdc.bundle(np.zeros((2, 1, 2), dtype=np.uint8), ties="random")
    out = hdc.bundle(np.array([[1, -1], [1, -1], [-1, -1]], dtype=np.int8))
    np.testing.assert_array_equal(out, [1, -1])
