"""Bit-fault models for packed binary hypervectors: exact-rate bit flips and stuck-at faults.

A fault at rate ``p`` on codes of dimension ``D`` hits exactly ``k = fault_count(p, D) = floor(p * D + 1/2)``
distinct bit positions, sampled **without replacement**, so ``p`` is the fraction of bits actually corrupted
(``p = 0.5`` flips exactly half of every code and leaves no trace of the original in expectation). What happens
at a hit position depends on ``kind``:

- ``"flip"``: the bit is inverted;
- ``"stuck0"`` / ``"stuck1"``: the bit is forced to 0 / 1 (a hit on a bit that already has that value changes
  nothing, so about half of the hits are visible).

``scope`` says over what the ``k`` positions are drawn:

- ``"row"`` (default): every code (every index over the leading axes) gets exactly ``round(p * D)`` hits of its
  own. This is the default because the corruption of each code is then exact rather than exact only on average,
  each code's faults do not depend on which other codes share the array, and the same definition serves data
  codes that arrive in blocks of any size at inference time (:func:`row_fault_mask` with global row ids).
- ``"array"``: exactly ``round(p * R * D)`` hits spread uniformly over all ``R * D`` valid bits of the array, the
  "random bit errors in a memory" view; individual codes then get a hypergeometric number of hits.

Tail bits beyond ``D`` are never touched. Results are a pure function of ``(seed, stream, row id)``: no global
RNG is read or advanced.

Row scope draws its positions with Floyd's sampling algorithm from a SplitMix64 stream seeded by a hash of
``(key, row id)`` (a counter-based generator), so row ``i`` gets the same faults whether it is processed alone or
in a block of any size. Uniform integers below ``m`` are taken as ``x mod m`` from 64-bit outputs: the bias is
below ``m / 2**64`` (< 1e-12 for any realistic D).

``sampling="with_replacement"`` reproduces the protocol of the G-Net paper's code for comparison:
``floor(p * n)`` positions are drawn *with* replacement and a position drawn more than once is hit once, so only
a fraction ``1 - exp(-p)`` of the bits is corrupted (0.393 at p = 0.5).

For the Hamming classifiers of :mod:`hdc.classifiers`, :func:`faulty_prototypes`, :func:`predict_with_faults` and
:func:`classifier_robustness` apply the same fault model to the class prototypes, to the encoded samples, or both.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hdc.hamming import hamming_distance
from hdc.packed import WORD_BITS, check_dim, n_words, pack_bits, validate_words

__all__ = [
    "FAULT_KINDS",
    "SAMPLINGS",
    "SCOPES",
    "BitFaults",
    "apply_fault_mask",
    "CLASSIFIER_TARGETS",
    "array_fault_mask",
    "classifier_robustness",
    "fault_count",
    "fault_key",
    "faulty_prototypes",
    "inject_faults",
    "predict_with_faults",
    "row_fault_mask",
]

FAULT_KINDS = ("flip", "stuck0", "stuck1")
SCOPES = ("row", "array")
SAMPLINGS = ("without_replacement", "with_replacement")

CLASSIFIER_TARGETS = ("prototypes", "data", "both")
# Stream prefixes: prototypes (the classifier's "model" codes) and encoded samples (its data codes).
_PROTOTYPE_STREAM = (0, 0)
_DATA_STREAM = (1, 0)

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


# --------------------------------------------------------------------------------------------- validation
def _check_p(p: Any) -> float:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise ValueError(f"p must be a number in [0, 1], got {p!r}")
    p = float(p)
    if not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a finite number in [0, 1], got {p}")
    return p


def _check_choice(value: Any, valid: Sequence[str], name: str) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return value


def _check_stream(stream: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in stream)
    except (TypeError, ValueError):
        raise ValueError(f"stream must be a sequence of non-negative ints, got {stream!r}") from None
    if any(s < 0 for s in out):
        raise ValueError(f"stream must contain non-negative ints, got {out}")
    return out


def fault_count(p: float, n: int, sampling: str = "without_replacement") -> int:
    """Number of hits for rate ``p`` over ``n`` bits.

    ``floor(p * n + 1/2)`` (round half up, never banker's rounding) without replacement; ``int(p * n)`` draws with
    replacement, which is what the paper's ``int(p * numel)`` does.
    """
    p = _check_p(p)
    n = check_dim(n, "n")
    _check_choice(sampling, SAMPLINGS, "sampling")
    if sampling == "with_replacement":
        return int(p * n)  # exactly the paper's int(p * numel), float noise included
    # Rounding p * n to 6 decimals first makes exact halves such as 0.35 * 10 = 3.4999999999999996 round up.
    return min(n, int(math.floor(round(p * n, 6) + 0.5)))


def fault_key(seed: int | np.random.Generator, stream: Sequence[int] = ()) -> int:
    """A 64-bit key for the counter-based row sampler.

    An int ``seed`` gives ``SeedSequence(seed, spawn_key=stream)``'s first 64-bit word, so distinct streams (for
    example ``(target, layer, unit)``) are independent. A Generator is advanced once to draw the key.
    """
    stream = _check_stream(stream)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a numpy.random.Generator, got {seed!r}")
    return int(np.random.SeedSequence(int(seed), spawn_key=stream).generate_state(1, np.uint64)[0])


def _generator(seed: int | np.random.Generator, stream: Sequence[int]) -> np.random.Generator:
    stream = _check_stream(stream)
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=stream))


# --------------------------------------------------------------------------------------------- row sampler
try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency; the numpy reference below is the fallback
    njit = None

if njit is not None:

    @njit(cache=True, inline="always")
    def _mix(z):  # pragma: no cover - compiled
        z = (z ^ (z >> _U64(30))) * _MIX1
        z = (z ^ (z >> _U64(27))) * _MIX2
        return z ^ (z >> _U64(31))

    @njit(cache=True, nogil=True)
    def _row_masks_numba(row_ids, key, dim, k, replace, out):  # pragma: no cover - compiled
        """out[r] |= k positions of row r (out must be zero on entry); see _row_masks_numpy for the definition."""
        for r in range(row_ids.shape[0]):
            state = _mix(_mix(row_ids[r] + _GOLDEN) ^ key)
            if replace:
                for _ in range(k):
                    state += _GOLDEN
                    t = _mix(state) % _U64(dim)
                    out[r, t >> _U64(6)] |= _U64(1) << (t & _U64(63))
            else:
                # Floyd: for j = dim-k .. dim-1 draw t in [0, j]; take t unless already taken, else take j.
                for j in range(dim - k, dim):
                    state += _GOLDEN
                    t = _mix(state) % _U64(j + 1)
                    if (out[r, t >> _U64(6)] >> (t & _U64(63))) & _U64(1):
                        t = _U64(j)
                    out[r, t >> _U64(6)] |= _U64(1) << (t & _U64(63))


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _U64(30))) * _MIX1
    z = (z ^ (z >> _U64(27))) * _MIX2
    return z ^ (z >> _U64(31))


def _row_masks_numpy(row_ids: np.ndarray, key: int, dim: int, k: int, replace: bool, out: np.ndarray) -> None:
    """Reference definition of the row sampler, vectorised over rows (the numba kernel computes the same bits).

    Row ``r`` uses the SplitMix64 stream ``state_j = s_r + j * golden``, output ``mix(state_j)``, seeded with
    ``s_r = mix(mix(row_id + golden) ^ key)``.
    """
    with np.errstate(over="ignore"):
        state = _mix_np(_mix_np(row_ids + _GOLDEN) ^ _U64(key))
        rows = np.arange(len(row_ids))
        draws = range(k) if replace else range(dim - k, dim)
        for j in draws:
            state = state + _GOLDEN
            t = _mix_np(state) % _U64(dim if replace else j + 1)
            if not replace:
                taken = (out[rows, t >> _U64(6)] >> (t & _U64(63))) & _U64(1)
                t = np.where(taken.astype(bool), _U64(j), t)
            out[rows, t >> _U64(6)] |= _U64(1) << (t & _U64(63))


def row_fault_mask(
    row_ids: Any, dim: int, k: int, key: int, *, replace: bool = False, backend: str = "auto"
) -> np.ndarray:
    """Masks with ``k`` hit positions per row, a pure function of ``(key, row id)``.

    Args:
        row_ids: non-negative integer ids ``(R,)``; row ``r`` of the result depends only on ``row_ids[r]`` and
            ``key``, so the same id always gets the same mask whatever block it arrives in.
        dim: code dimension ``D``.
        k: hits per row, ``0 <= k <= D`` (draws per row when ``replace``).
        key: 64-bit key from :func:`fault_key`.
        replace: draw ``k`` positions with replacement (duplicates hit once) instead of ``k`` distinct ones.
        backend: "auto" (numba), "numba" or "numpy" (the vectorised reference; same bits).

    Returns:
        uint64 ``(R, ceil(D / 64))`` with exactly ``k`` set bits per row when ``replace`` is False; tail bits 0.
    """
    dim = check_dim(dim)
    ids = np.asarray(row_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"row_ids must be a 1-D integer array, got dtype {ids.dtype} shape {ids.shape}")
    if ids.size and ids.min() < 0:
        raise ValueError("row_ids must be non-negative")
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 0 <= k:
        raise ValueError(f"k must be a non-negative int, got {k!r}")
    if not replace and k > dim:
        raise ValueError(f"k={k} distinct positions cannot be drawn from dim={dim} bits")
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"unknown backend {backend!r}; valid: auto, numba, numpy")
    key = int(key)
    if not 0 <= key < 2**64:
        raise ValueError(f"key must be a 64-bit unsigned int, got {key}")
    ids = np.ascontiguousarray(ids.astype(np.uint64))
    k, invert = int(k), False
    if not replace and 2 * k > dim:
        # A uniform k-subset is the complement of a uniform (dim-k)-subset: draw the smaller one.
        k, invert = dim - k, True
    out = np.zeros((len(ids), n_words(dim)), dtype=np.uint64)
    if k and len(ids):
        if backend == "numpy" or njit is None:
            _row_masks_numpy(ids, key, dim, k, bool(replace), out)
        else:
            _row_masks_numba(ids, _U64(key), np.int64(dim), np.int64(k), bool(replace), out)
    if invert:
        np.invert(out, out=out)
        if dim % WORD_BITS:
            out[:, -1] &= _U64((1 << (dim % WORD_BITS)) - 1)
    return out


def array_fault_mask(
    n_rows: int, dim: int, k: int, rng: np.random.Generator, *, replace: bool = False
) -> np.ndarray:
    """A mask ``(n_rows, ceil(D / 64))`` with ``k`` hits spread over all ``n_rows * D`` valid bits.

    Without ``replace`` the ``k`` positions are distinct (``rng.choice(..., replace=False)``); with it, ``k``
    draws with replacement, duplicates hitting once.
    """
    dim = check_dim(dim)
    n_rows = check_dim(n_rows, "n_rows")
    total = n_rows * dim
    if not replace and k > total:
        raise ValueError(f"k={k} distinct positions cannot be drawn from {total} bits")
    bits = np.zeros(total, dtype=bool)
    if k:
        pos = rng.integers(0, total, size=k) if replace else rng.choice(total, size=k, replace=False)
        bits[pos] = True
    return pack_bits(bits.reshape(n_rows, dim))


def apply_fault_mask(words: np.ndarray, mask: np.ndarray, kind: str = "flip") -> np.ndarray:
    """A new array: ``words ^ mask`` (flip), ``words & ~mask`` (stuck0) or ``words | mask`` (stuck1)."""
    _check_choice(kind, FAULT_KINDS, "kind")
    if words.shape != mask.shape:
        raise ValueError(f"mask shape {mask.shape} does not match words shape {words.shape}")
    if kind == "flip":
        return words ^ mask
    if kind == "stuck0":
        return words & ~mask
    return words | mask


# --------------------------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class BitFaults:
    """A fault model: rate ``p``, ``kind`` ("flip", "stuck0", "stuck1"), ``scope`` ("row", "array"), ``sampling``.

    ``BitFaults(0.1).apply(words, dim, seed)`` flips exactly ``round(0.1 * dim)`` distinct bits of every code.
    """

    p: float
    kind: str = "flip"
    scope: str = "row"
    sampling: str = "without_replacement"

    def __post_init__(self) -> None:
        object.__setattr__(self, "p", _check_p(self.p))
        _check_choice(self.kind, FAULT_KINDS, "kind")
        _check_choice(self.scope, SCOPES, "scope")
        _check_choice(self.sampling, SAMPLINGS, "sampling")

    @property
    def replace(self) -> bool:
        return self.sampling == "with_replacement"

    def count(self, n: int) -> int:
        """Hits (distinct positions, or draws with replacement) over ``n`` bits."""
        return fault_count(self.p, n, self.sampling)

    def mask(
        self, shape: tuple[int, ...], dim: int, seed: int | np.random.Generator, stream: Sequence[int] = (),
        row_ids: Any = None,
    ) -> np.ndarray:
        """The hit mask for codes of batch shape ``shape`` (words shape ``(*shape, ceil(dim / 64))``).

        ``row_ids`` (row scope only) overrides the default ids ``0 .. prod(shape) - 1`` of the flattened codes.
        """
        dim = check_dim(dim)
        rows = math.prod(shape)
        if rows == 0:
            raise ValueError(f"no codes to fault (batch shape {shape})")
        if self.scope == "row":
            ids = np.arange(rows, dtype=np.int64) if row_ids is None else np.asarray(row_ids)
            if ids.shape != (rows,):
                raise ValueError(f"row_ids must have shape ({rows},), got {ids.shape}")
            mask = row_fault_mask(ids, dim, self.count(dim), fault_key(seed, stream), replace=self.replace)
        else:
            if row_ids is not None:
                raise ValueError("row_ids only apply to scope='row'")
            mask = array_fault_mask(rows, dim, self.count(rows * dim), _generator(seed, stream),
                                    replace=self.replace)
        return mask.reshape(*shape, n_words(dim))

    def apply(
        self, words: Any, dim: int, seed: int | np.random.Generator, stream: Sequence[int] = (), row_ids: Any = None
    ) -> np.ndarray:
        """Faulty copy of packed codes ``words`` uint64 ``(..., ceil(dim / 64))``; the input is never modified.

        Args:
            words: packed codes with zero tail bits; a single code ``(W,)`` is one row.
            dim: true dimension ``D``.
            seed: int (with ``stream``: ``SeedSequence(seed, spawn_key=stream)``) or a Generator (advanced).
            stream: ints selecting an independent stream, e.g. ``(layer,)``.
            row_ids: see :meth:`mask`.

        Returns:
            uint64 array of the same shape; tail bits stay 0.
        """
        arr = validate_words(words, dim)
        if self.p == 0.0:
            return arr.copy()
        return apply_fault_mask(arr, self.mask(arr.shape[:-1], dim, seed, stream, row_ids), self.kind)


def inject_faults(
    words: Any,
    dim: int,
    p: float,
    seed: int | np.random.Generator,
    *,
    kind: str = "flip",
    scope: str = "row",
    sampling: str = "without_replacement",
    stream: Sequence[int] = (),
) -> np.ndarray:
    """Functional form of :meth:`BitFaults.apply`: a faulty copy of ``words`` (uint64 ``(..., ceil(dim/64))``)."""
    return BitFaults(p, kind, scope, sampling).apply(words, dim, seed, stream)


# --------------------------------------------------------------------------------------------- HDC classifiers
# Duck-typed on the public attributes of the hdc.classifiers estimators (and anything shaped like them):
# ``prototypes_`` uint64 (n_classes, W), ``dim_``, ``classes_`` and ``encode(X) -> uint64 (n, W)``; prediction is
# the nearest prototype in Hamming distance with ties to the first class, as in ``HammingClassifier.predict``.


def _check_classifier(clf: Any) -> None:
    for name in ("prototypes_", "dim_", "classes_"):
        if not hasattr(clf, name):
            raise ValueError(f"clf must be a fitted Hamming classifier with a {name!r} attribute "
                             f"(got {type(clf).__name__}; fit it first)")


def faulty_prototypes(clf: Any, faults: BitFaults | float, seed: int | np.random.Generator) -> Any:
    """A shallow copy of a fitted Hamming classifier whose ``prototypes_`` carry ``faults``.

    The copy shares the (read-only) encoder with ``clf``, which is left unchanged; use it for inference (a later
    ``fit``/``partial_fit`` of the copy recomputes clean prototypes).
    """
    _check_classifier(clf)
    faults = faults if isinstance(faults, BitFaults) else BitFaults(faults)
    clone = copy.copy(clf)
    clone.prototypes_ = faults.apply(clf.prototypes_, clf.dim_, seed, _PROTOTYPE_STREAM)
    return clone


def predict_with_faults(
    clf: Any, X: Any, target: str, faults: BitFaults | float, seed: int
) -> np.ndarray:
    """Labels ``(n,)`` of a fitted Hamming classifier when its prototypes, the encoded samples, or both are faulty.

    Data faults hit every encoded sample (row scope only): sample ``i`` of ``X`` is row ``i``, so its faults depend
    on the seed and its position in ``X``, never on chunking. Prototype and data faults use independent streams
    of ``seed``.
    """
    _check_classifier(clf)
    if target not in CLASSIFIER_TARGETS:
        raise ValueError(f"unknown target {target!r}; valid: {', '.join(CLASSIFIER_TARGETS)}")
    faults = faults if isinstance(faults, BitFaults) else BitFaults(faults)
    if target != "prototypes" and faults.scope != "row":
        raise ValueError("data-code faults are per code: use scope='row' (scope='array' is for prototypes)")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    protos = clf.prototypes_
    if target in ("prototypes", "both"):
        protos = faults.apply(protos, clf.dim_, int(seed), _PROTOTYPE_STREAM)
    codes = clf.encode(X)
    if target in ("data", "both"):
        codes = faults.apply(codes, clf.dim_, int(seed), _DATA_STREAM)
    return clf.classes_[np.argmin(hamming_distance(codes, protos), axis=1)]


def classifier_robustness(
    clf: Any,
    X: Any,
    y: Any,
    ps: Sequence[float],
    seeds: Sequence[int],
    *,
    target: str = "data",
    kind: str = "flip",
    scope: str = "row",
    sampling: str = "without_replacement",
) -> dict[str, Any]:
    """Accuracy of a fitted Hamming classifier under faults for every rate in ``ps`` and seed in ``seeds``.

    Returns a JSON-serialisable dict shaped like :func:`gnet.robustness.robustness_sweep`'s: settings,
    ``clean_accuracy`` and ``rows`` with ``p``, ``hits`` (per code), ``accuracies``, ``accuracy_mean``,
    ``accuracy_std`` (population std over seeds).
    """
    _check_classifier(clf)
    y = np.asarray(y)
    if not len(ps) or not len(seeds):
        raise ValueError("ps and seeds must not be empty")
    clean = float(np.mean(clf.predict(X) == y))
    rows = []
    for p in ps:
        faults = BitFaults(p, kind, scope, sampling)
        hits = faults.count(clf.dim_ if scope == "row" else clf.prototypes_.shape[0] * clf.dim_)
        if hits == 0:
            accs = [clean] * len(seeds)
        else:
            accs = [float(np.mean(predict_with_faults(clf, X, target, faults, int(s)) == y)) for s in seeds]
        rows.append({"p": faults.p, "hits": hits, "accuracies": accs, "accuracy_mean": statistics.mean(accs),
                     "accuracy_std": statistics.pstdev(accs)})
    return {"target": target, "kind": kind, "scope": scope, "sampling": sampling, "dim": int(clf.dim_),
            "hits_unit": "per code" if scope == "row" else "per prototype array",
            "seeds": [int(s) for s in seeds], "n_test": int(len(y)), "clean_accuracy": clean, "rows": rows}
