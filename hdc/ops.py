"""Hypervector algebra: random vectors, bind, bundle, permute, similarities.

Two representations are accepted by most functions:

* packed binary: ``numpy.uint64`` words ``(..., n_words(dim))`` plus the true ``dim`` (or a
  :class:`hdc.packed.PackedHV`, which carries it); see :mod:`hdc.packed` for the layout;
* bipolar (MAP): real or integer arrays ``(..., D)`` holding +-1 values.

Note on bind: packed bind is XOR.  With the project's bit convention (bit 1 = +1) XOR equals
the *negated* bipolar product, ``to_bipolar(a ^ b) == -(to_bipolar(a) * to_bipolar(b))``.  The
global sign flip changes no Hamming distance, keeps binding self-inverse and is the usual
BSC convention, so results within one representation are unaffected; only do not mix a record
bound in one representation with a query bound in the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc._linalg import chunks
from hdc._validate import Seed, as_generator, check_choice, check_int
from hdc.hamming import _pair_dim, _require_dim, bipolar_dot, hamming_distance, hamming_similarity
from hdc.packed import (
    WORD_BITS,
    PackedHV,
    _to_numpy,
    check_dim,
    clear_tail,
    n_words,
    pack_bits,
    unpack_bits,
    validate_words,
)

__all__ = [
    "TIES",
    "bind",
    "bit_counts",
    "bundle",
    "bundle_from_counts",
    "cosine",
    "dot",
    "hamming",
    "inverse_permute",
    "permute",
    "random",
    "similarity",
]

TIES = ("random", "deterministic")

# Unpacked chunks (bits as uint8) stay below this size.
_CHUNK_BYTES = 64 * 2**20


def _random_words(rng: np.random.Generator, shape: tuple[int, ...], dim: int) -> np.ndarray:
    words = rng.integers(0, np.iinfo(np.uint64).max, size=shape, dtype=np.uint64, endpoint=True)
    return clear_tail(words, dim)


def random(n_vectors: int, dim: int, seed: Seed = 0) -> NDArray[np.uint64]:
    """``n_vectors`` i.i.d. uniformly random packed hypervectors: uint64 ``(n_vectors, n_words(dim))``.

    ``seed`` is an int (``numpy.random.default_rng(seed)``) or a Generator, which is used as is.
    """
    n_vectors = check_int(n_vectors, "n_vectors", minimum=1)
    dim = check_dim(dim)
    return _random_words(as_generator(seed), (n_vectors, n_words(dim)), dim)


def _is_packed(x: Any) -> bool:
    return isinstance(x, PackedHV) or (isinstance(x, np.ndarray) and x.dtype == np.uint64)


def _check_bipolar_array(x: Any, name: str) -> Any:
    """Real-valued numpy array or torch tensor with at least one non-empty axis."""
    if type(x).__module__.startswith("torch"):
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"{name} must have a non-empty last axis, got shape {tuple(x.shape)}")
        if x.dtype.is_complex or str(x.dtype) == "torch.bool":
            raise ValueError(f"{name} must be real-valued, got dtype {x.dtype}")
        return x
    arr = _to_numpy(x, name)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last axis, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be packed uint64 words or a real bipolar array, got dtype {arr.dtype}")
    return arr


def _is_unsigned(x: Any) -> bool:
    """An unsigned integer numpy array or torch tensor (torch has uint8, uint16, uint32, uint64)."""
    if type(x).__module__.startswith("torch"):
        return str(x.dtype).startswith("torch.uint")
    return bool(np.issubdtype(x.dtype, np.unsignedinteger))


def _check_pm1(x: Any, name: str) -> None:
    """Refuse a bipolar operand holding anything but -1 and +1 (NaN, 0.5, 0, or an int64 array of packed words):
    its product would be a silently wrong hypervector."""
    if type(x).__module__.startswith("torch"):
        ok = bool(((x == 1) | (x == -1)).all())
    else:
        ok = bool(np.all((x == 1) | (x == -1)))
    if not ok:
        raise ValueError(
            f"bind: {name} must hold only -1 and +1 (a bipolar array) or be packed uint64 words, "
            f"got dtype {x.dtype} with other values"
        )


def bind(a: Any, b: Any) -> Any:
    """Bind two hypervectors (self-inverse: ``bind(bind(a, b), b) == a``).

    Packed uint64 words (or PackedHV): bitwise XOR, broadcasting over batch axes.
    Bipolar arrays (values exactly -1 and +1, any real dtype): elementwise product.  Mixing the two, or a
    non-uint64 array holding any other value (NaN, 0.5, packed words stored as int64), raises ValueError.
    """
    if isinstance(a, PackedHV) or isinstance(b, PackedHV):
        if not (isinstance(a, PackedHV) and isinstance(b, PackedHV)):
            raise ValueError("bind: a and b must both be PackedHV (or both plain arrays)")
        if a.dim != b.dim:
            raise ValueError(f"bind: dimensions differ (a.dim={a.dim}, b.dim={b.dim})")
        return PackedHV(np.bitwise_xor(a.words, b.words), a.dim)
    if _is_packed(a) != _is_packed(b):
        raise ValueError(
            "bind: cannot mix packed uint64 words with a bipolar array "
            f"(a dtype {getattr(a, 'dtype', type(a))}, b dtype {getattr(b, 'dtype', type(b))})"
        )
    if _is_packed(a):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("bind: packed inputs need a word axis")
        if a.shape[-1] != b.shape[-1]:
            raise ValueError(f"bind: word counts differ ({a.shape[-1]} vs {b.shape[-1]}); dims must match")
        return np.bitwise_xor(a, b)
    a = _check_bipolar_array(a, "a")
    b = _check_bipolar_array(b, "b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"bind: dimensions differ ({a.shape[-1]} vs {b.shape[-1]})")
    _check_pm1(a, "a")
    _check_pm1(b, "b")
    return a * b


# --------------------------------------------------------------------------- permute


def _shift_up(x: np.ndarray, s: int) -> np.ndarray:
    """Bits move from index i to i + s across words (bits pushed past the last word drop)."""
    w = x.shape[-1]
    q, r = divmod(s, WORD_BITS)
    out = np.zeros_like(x)
    if q >= w:
        return out
    out[..., q:] = x[..., : w - q] << np.uint64(r)
    if r and q + 1 < w:
        out[..., q + 1 :] |= x[..., : w - q - 1] >> np.uint64(WORD_BITS - r)
    return out


def _shift_down(x: np.ndarray, s: int) -> np.ndarray:
    """Bits move from index i to i - s across words (bits below 0 drop)."""
    w = x.shape[-1]
    q, r = divmod(s, WORD_BITS)
    out = np.zeros_like(x)
    if q >= w:
        return out
    out[..., : w - q] = x[..., q:] >> np.uint64(r)
    if r and w - q - 1 > 0:
        out[..., : w - q - 1] |= x[..., q + 1 :] << np.uint64(WORD_BITS - r)
    return out


def permute(x: Any, k: int = 1, dim: int | None = None) -> Any:
    """Cyclic shift by ``k`` positions: ``result[..., i] = x[..., (i - k) mod D]`` (np.roll).

    Args:
        x: packed words ``(..., W)`` with ``dim``, a PackedHV, or a bipolar array ``(..., D)``.
        k: shift (any integer, negative shifts the other way).
        dim: true dimension, required for plain packed words (the rotation wraps at ``D``,
            not at ``64 * W``).

    Returns:
        the same kind as ``x``.  ``permute(permute(x, k, dim), -k, dim) == x``.
    """
    k = check_int(k, "k (the shift)")
    if isinstance(x, PackedHV):
        return PackedHV(permute(x.words, k, x.dim), x.dim)
    if _is_packed(x):
        if dim is None:
            raise ValueError("permute: dim is required for packed uint64 words")
        words = validate_words(x, dim, name="x")
        d = check_dim(dim)
        s = k % d
        if s == 0:
            return words.copy()
        # Rotating a D-bit string: (x << s) | (x >> (D - s)), truncated to D bits.
        out = _shift_up(words, s)
        out |= _shift_down(words, d - s)
        return clear_tail(out, d)
    arr = _check_bipolar_array(x, "x")
    if dim is not None and check_dim(dim) != arr.shape[-1]:
        raise ValueError(f"permute: dim={dim} does not match x's last axis {arr.shape[-1]}")
    if type(arr).__module__.startswith("torch"):
        import torch

        return torch.roll(arr, shifts=k, dims=-1)
    return np.roll(arr, k, axis=-1)


def inverse_permute(x: Any, k: int = 1, dim: int | None = None) -> Any:
    """Inverse of :func:`permute`: shift by ``-k``."""
    return permute(x, -check_int(k, "k (the shift)"), dim)


# --------------------------------------------------------------------------- bundle


def _tie_words(ties: str, seed: Seed, shape: tuple[int, ...], dim: int) -> np.ndarray:
    if ties == "deterministic":
        # A tie means a zero bipolar sum, which packs to +1 like sign(0) elsewhere.
        words = np.full(shape, np.iinfo(np.uint64).max, dtype=np.uint64)
        return clear_tail(words, dim)
    return _random_words(as_generator(seed), shape, dim)


def bit_counts(words: Any, dim: int, weights: Any = None) -> NDArray[Any]:
    """Per-position (weighted) count of 1 bits over axis -2.

    Args:
        words: uint64 ``(..., n_rows, W)``.
        dim: true dimension ``D``.
        weights: optional real weights ``(n_rows,)``; a 1 bit at row ``i`` adds ``weights[i]``.

    Returns:
        ``(..., D)``: int64 without weights, float64 with weights.
    """
    arr = validate_words(words, dim)
    if arr.ndim < 2 or arr.shape[-2] == 0:
        raise ValueError(f"words must have shape (..., n_rows, W) with n_rows >= 1, got {arr.shape}")
    n_rows = arr.shape[-2]
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n_rows,):
            raise ValueError(f"weights must have shape ({n_rows},), got {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError("weights contain NaN or inf")
    batch = arr.shape[:-2]
    flat: np.ndarray = arr.reshape(-1, n_rows, arr.shape[-1])
    out = np.zeros((flat.shape[0], dim), dtype=np.float64 if w is not None else np.int64)
    for g in range(flat.shape[0]):
        for i0, i1 in chunks(n_rows, max(1, _CHUNK_BYTES // max(1, dim))):
            bits = unpack_bits(flat[g, i0:i1], dim).view(np.uint8)
            if w is None:
                out[g] += bits.sum(axis=0, dtype=np.int64)
            else:
                out[g] += w[i0:i1] @ bits
    return out.reshape(batch + (dim,))


def bundle_from_counts(counts: Any, total: Any, *, ties: str = "random", seed: Seed = 0) -> NDArray[np.uint64]:
    """Majority threshold of accumulated counts: packed bit = ``2 * counts > total``.

    Args:
        counts: ``(..., D)`` (weighted) number of +1 votes per position, e.g. from
            :func:`bit_counts` or an accumulator kept across batches.
        total: total vote weight, a scalar or an array of shape ``counts.shape[:-1]``.
        ties: positions with ``2 * counts == total`` get a seeded random bit ("random") or
            +1 ("deterministic", the sign(0) = +1 rule).
        seed: int or Generator for random ties.

    Returns:
        uint64 ``(..., n_words(D))``.
    """
    check_choice(ties, TIES, "ties")
    c = np.asarray(counts)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError(f"counts must have a non-empty last axis, got shape {c.shape}")
    if not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.floating)):
        raise ValueError(f"counts must be numeric, got dtype {c.dtype}")
    t = np.asarray(total)
    if not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)):
        raise ValueError(f"total must be numeric, got dtype {t.dtype}")
    if not (np.isfinite(c).all() and np.isfinite(t).all()):
        raise ValueError("counts or total contain NaN or inf")
    if t.ndim:
        if t.shape != c.shape[:-1]:
            raise ValueError(f"total must be a scalar or have shape {c.shape[:-1]} (counts without D), got {t.shape}")
        t = t[..., None]
    twice = 2 * c
    words = pack_bits(twice > t)
    tie = twice == t
    if np.any(tie):
        dim = c.shape[-1]
        tw = _tie_words(ties, seed, words.shape, dim)
        words |= pack_bits(tie) & tw
    return words


def bundle(
    x: Any,
    dim: int | None = None,
    *,
    weights: Any = None,
    ties: str = "random",
    seed: Seed = 0,
) -> Any:
    """Majority (bundle) over axis -2.

    Args:
        x: packed uint64 ``(..., n_rows, W)`` with ``dim``, a batched PackedHV, or a bipolar numpy array or
            torch tensor ``(..., n_rows, D)``.
        dim: true dimension, required for plain packed words (which must have ``n_words(dim)`` words and zero
            tail bits); optional for the others, where it must equal the PackedHV's dim or the last axis.
        weights: optional real weights ``(n_rows,)`` (weighted majority; negative weights subtract).
        ties: "random" (seeded coin flip where the vote is tied, only possible for even ``n_rows``
            or weights) or "deterministic" (+1, like sign(0)).
        seed: int or Generator used for random ties.

    Returns:
        packed uint64 ``(..., W)`` (a PackedHV for PackedHV input), or for bipolar input an array ``(..., D)`` of
        values +-1 of the input's kind (a torch tensor on the input's device for a tensor, as :func:`bind`),
        dtype and, for torch, device.
    """
    check_choice(ties, TIES, "ties")
    if isinstance(x, PackedHV):
        if dim is not None and check_dim(dim) != x.dim:
            raise ValueError(f"bundle: dim={dim} does not match the PackedHV dim {x.dim}")
        return PackedHV(bundle(x.words, x.dim, weights=weights, ties=ties, seed=seed), x.dim)
    if _is_packed(x):
        return _bundle_packed(x, dim, weights, ties, seed)
    arr = _check_bipolar_array(x, "x")
    if _is_unsigned(arr):  # the majority's -1 would wrap to the dtype's maximum
        raise ValueError(f"bundle: a bipolar x needs a signed or float dtype to hold -1, got {arr.dtype}")
    if dim is not None and check_dim(dim) != arr.shape[-1]:
        raise ValueError(f"bundle: dim={dim} does not match x's last axis {arr.shape[-1]}")
    if not type(arr).__module__.startswith("torch"):
        return _bundle_bipolar(arr, weights, ties, seed).astype(arr.dtype)
    import torch

    host = arr.detach().cpu()
    if host.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds every bfloat16 value exactly
        host = host.to(torch.float32)
    out = _bundle_bipolar(host.numpy(), weights, ties, seed)
    return torch.from_numpy(out).to(device=arr.device, dtype=arr.dtype)


def _bundle_packed(x: Any, dim: int | None, weights: Any, ties: str, seed: Seed) -> NDArray[np.uint64]:
    if dim is None:
        raise ValueError("bundle: dim is required for packed uint64 words")
    arr = validate_words(x, dim, name="x")
    d = check_dim(dim)
    if arr.ndim < 2 or arr.shape[-2] == 0:
        raise ValueError(f"bundle: x must have shape (..., n_rows, W) with n_rows >= 1, got {arr.shape}")
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        counts = bit_counts(arr, d, w)
        return bundle_from_counts(counts, w.sum(), ties=ties, seed=seed)
    return _bundle_packed_uniform(arr, d, ties, seed)


def _bundle_bipolar(arr: np.ndarray, weights: Any, ties: str, seed: Seed) -> NDArray[np.int64]:
    """The +-1 majority of a real array (..., n_rows, D) over axis -2, as int64 (..., D)."""
    if arr.ndim < 2 or arr.shape[-2] == 0:
        raise ValueError(f"bundle: x must have shape (..., n_rows, D) with n_rows >= 1, got {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("bundle: x contains NaN or inf")
    if weights is None:
        total = arr.sum(axis=-2, dtype=np.float64)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (arr.shape[-2],):
            raise ValueError(f"weights must have shape ({arr.shape[-2]},), got {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError("weights contain NaN or inf")
        total = np.einsum("...nd,n->...d", arr.astype(np.float64), w)
    out = np.where(total > 0, 1, -1)
    tie = total == 0
    if np.any(tie):
        if ties == "random":
            coin = as_generator(seed).integers(0, 2, size=total.shape) * 2 - 1
        else:
            coin = np.ones(total.shape, dtype=np.int64)
        out = np.where(tie, coin, out)
    return out


def _bundle_packed_uniform(arr: np.ndarray, dim: int, ties: str, seed: Seed) -> NDArray[np.uint64]:
    from hdc._kernels.popcount import xor_gather_majority

    batch = arr.shape[:-2]
    n_rows, w = arr.shape[-2:]
    rows = np.ascontiguousarray(arr.reshape((-1, w)))
    groups = rows.shape[0] // n_rows
    idx = np.arange(rows.shape[0], dtype=np.int64)[:, None]
    ptr = np.arange(0, rows.shape[0] + 1, n_rows, dtype=np.int64)
    tw = _tie_words(ties, seed, (groups, w), dim)
    out = np.empty((groups, w), dtype=np.uint64)
    xor_gather_majority(rows, idx, ptr, tw, int(n_rows).bit_length(), out)
    return out.reshape(batch + (w,))


# --------------------------------------------------------------------------- similarities


def hamming(a: Any, b: Any, *, method: str = "auto", dim: int | None = None) -> NDArray[np.int32]:
    """All-pairs Hamming distance of packed words or PackedHV, int32 ``(Q, M)``; see :mod:`hdc.hamming`
    (a ``dim`` given for plain words is checked against their word count and tail bits)."""
    return hamming_distance(a, b, method=method, dim=dim)


def similarity(a: Any, b: Any, dim: int | None = None, *, method: str = "auto") -> NDArray[np.float64]:
    """Normalised Hamming similarity ``1 - H / D`` of packed vectors, float64 ``(Q, M)``."""
    return hamming_similarity(a, b, _require_dim(_pair_dim(a, b, dim), "similarity"), method=method)


def _as_matrix(x: np.ndarray) -> np.ndarray:
    return x[None, :] if x.ndim == 1 else x


def dot(a: Any, b: Any, dim: int | None = None, *, method: str = "auto") -> NDArray[Any]:
    """All-pairs bipolar inner product ``(Q, M)``.

    Packed inputs (with ``dim``, or PackedHV): exact int32 ``D - 2 H``.  Bipolar/real arrays ``(Q, D)`` and
    ``(M, D)``: float64 ``a @ b.T``.
    """
    if _is_packed(a) or _is_packed(b):
        return bipolar_dot(a, b, _require_dim(_pair_dim(a, b, dim), "dot"), method=method)
    a2 = _as_matrix(_to_numpy(_check_bipolar_array(a, "a"), "a"))
    b2 = _as_matrix(_to_numpy(_check_bipolar_array(b, "b"), "b"))
    if a2.ndim != 2 or b2.ndim != 2:
        raise ValueError(f"dot: a and b must be 1-D or 2-D, got {a2.shape} and {b2.shape}")
    if a2.shape[-1] != b2.shape[-1]:
        raise ValueError(f"dot: dimensions differ ({a2.shape[-1]} vs {b2.shape[-1]})")
    return a2.astype(np.float64) @ b2.astype(np.float64).T


def cosine(a: Any, b: Any, dim: int | None = None, *, method: str = "auto") -> NDArray[np.float64]:
    """All-pairs cosine similarity, float64 ``(Q, M)``.

    Packed: ``(D - 2 H) / D``.  Real arrays: ``a.b / (|a| |b|)``; a zero vector raises ValueError.
    """
    if _is_packed(a) or _is_packed(b):
        dim = _require_dim(_pair_dim(a, b, dim), "cosine")
        return bipolar_dot(a, b, dim, method=method) / float(dim)
    d = dot(a, b)
    a2 = _as_matrix(_to_numpy(a, "a")).astype(np.float64)
    b2 = _as_matrix(_to_numpy(b, "b")).astype(np.float64)
    na = np.linalg.norm(a2, axis=1)
    nb = np.linalg.norm(b2, axis=1)
    if not (np.all(na > 0) and np.all(nb > 0)):
        raise ValueError("cosine: a zero vector has no direction")
    return d / na[:, None] / nb[None, :]
