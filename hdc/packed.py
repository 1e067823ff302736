"""Packed binary hypervectors: the storage layout every other module relies on.

Layout (see docs/architecture.md): a binary hypervector of dimension ``D`` is a
``numpy.uint64`` array of shape ``(..., ceil(D / 64))``.  Element ``i`` lives in
word ``i // 64`` at bit ``i % 64`` (value ``1 << (i % 64)``), bit 1 means +1/True,
bit 0 means -1/False, and the tail bits beyond ``D`` are always 0.

This is exactly ``np.packbits(bits, axis=-1, bitorder="little")`` padded to a
multiple of 8 bytes and viewed as little-endian uint64, which is how packing and
unpacking are implemented (no Python loops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "WORD_BITS",
    "PackedHV",
    "check_dim",
    "clear_tail",
    "from_bipolar",
    "n_words",
    "pack_bits",
    "pack_sign",
    "popcount",
    "tail_mask",
    "to_bipolar",
    "unpack_bits",
    "validate_words",
]

WORD_BITS = 64
_WORD_BYTES = WORD_BITS // 8
# Packed words are defined as little-endian; on a big-endian host the view below
# still reads bytes in the documented order and astype() fixes the byte order.
_LE_WORD = np.dtype("<u8")


def check_dim(dim: Any, name: str = "dim") -> int:
    """Return ``dim`` as a Python int, raising ValueError unless it is a positive integer."""
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {dim!r} ({type(dim).__name__})")
    dim = int(dim)
    if dim <= 0:
        raise ValueError(f"{name} must be a positive integer, got {dim}")
    return dim


def n_words(dim: int) -> int:
    """Number of uint64 words holding ``dim`` bits: ``ceil(dim / 64)``."""
    dim = check_dim(dim)
    return (dim + WORD_BITS - 1) // WORD_BITS


def tail_mask(dim: int) -> np.uint64:
    """Mask of the valid bits in the last word (all ones when ``dim % 64 == 0``)."""
    dim = check_dim(dim)
    r = dim % WORD_BITS
    if r == 0:
        return np.uint64(0xFFFF_FFFF_FFFF_FFFF)
    return np.uint64((1 << r) - 1)


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert a numpy array / torch tensor / nested sequence to a numpy array without copying when possible."""
    if isinstance(x, np.ndarray):
        return x
    mod = type(x).__module__
    if mod.startswith("torch"):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc


def validate_words(words: Any, dim: int, *, name: str = "words", check_tail: bool = True) -> NDArray[np.uint64]:
    """Check that ``words`` is a packed array for dimension ``dim`` and return it as a uint64 ndarray.

    Args:
        words: uint64 array of shape ``(..., n_words(dim))``.
        dim: true dimension ``D``.
        name: argument name used in error messages.
        check_tail: also verify that the bits beyond ``D`` are zero.

    Raises:
        ValueError: wrong dtype, zero-dimensional input, wrong last axis, or set tail bits.
    """
    dim = check_dim(dim)
    arr = _to_numpy(words, name)
    if arr.dtype != np.uint64:
        raise ValueError(f"{name} must have dtype uint64 (packed words), got {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one axis (..., n_words), got a scalar")
    w = n_words(dim)
    if arr.shape[-1] != w:
        raise ValueError(
            f"{name} has {arr.shape[-1]} words in its last axis but dim={dim} needs {w} (shape {arr.shape})"
        )
    if check_tail and dim % WORD_BITS and arr.size and np.any(arr[..., -1] & ~tail_mask(dim)):
        raise ValueError(f"{name} has non-zero tail bits beyond dim={dim}; tail bits must be 0")
    return arr


def clear_tail(words: np.ndarray, dim: int) -> NDArray[np.uint64]:
    """Zero the bits beyond ``dim`` in the last word, in place; returns ``words``."""
    dim = check_dim(dim)
    if dim % WORD_BITS:
        words[..., -1] &= tail_mask(dim)
    return words


def _pack_bool(bits: np.ndarray) -> np.ndarray:
    """Pack a bool (or 0/1 uint8) array along the last axis; the caller has validated it."""
    dim = bits.shape[-1]
    w = n_words(dim)
    packed = np.packbits(bits, axis=-1, bitorder="little")
    n_bytes = w * _WORD_BYTES
    if packed.shape[-1] != n_bytes:
        padded = np.zeros(packed.shape[:-1] + (n_bytes,), dtype=np.uint8)
        padded[..., : packed.shape[-1]] = packed
        packed = padded
    words = np.ascontiguousarray(packed).view(_LE_WORD)
    return words.astype(np.uint64, copy=False)


def pack_bits(bits: Any) -> NDArray[np.uint64]:
    """Pack booleans along the last axis.

    Args:
        bits: bool array ``(..., D)`` (integer arrays containing only 0 and 1 are accepted too;
            torch tensors are converted).

    Returns:
        uint64 array ``(..., ceil(D / 64))`` with zero tail bits.
    """
    arr = _to_numpy(bits, "bits")
    if arr.ndim == 0:
        raise ValueError("bits must have at least one axis (..., D), got a scalar")
    if arr.shape[-1] == 0:
        raise ValueError(f"bits has an empty last axis (shape {arr.shape}); dimension must be >= 1")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"bits must be bool (or 0/1 integers), got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValueError("bits must contain only 0 and 1 when given as integers")
        arr = arr.astype(np.bool_)
    return _pack_bool(arr)


def unpack_bits(words: Any, dim: int) -> NDArray[np.bool_]:
    """Inverse of :func:`pack_bits`.

    Args:
        words: uint64 array ``(..., n_words(dim))``.
        dim: true dimension ``D``.

    Returns:
        bool array ``(..., D)``.
    """
    arr = validate_words(words, dim, check_tail=False)
    as_bytes = np.ascontiguousarray(arr).astype(_LE_WORD, copy=False).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, count=dim, bitorder="little")
    return bits.view(np.bool_)


def pack_sign(x: Any) -> NDArray[np.uint64]:
    """Pack ``x >= 0`` along the last axis (the tie at exactly 0 goes to +1).

    Args:
        x: real-valued numpy array or torch tensor ``(..., D)``; must be finite.

    Returns:
        uint64 array ``(..., ceil(D / 64))``.
    """
    if type(x).__module__.startswith("torch"):
        import torch

        if x.ndim == 0:
            raise ValueError("x must have at least one axis (..., D), got a scalar")
        if x.dtype == torch.bool or x.is_complex():
            raise ValueError(f"x must be real-valued, got dtype {x.dtype}")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or inf")
        if x.shape[-1] == 0:
            raise ValueError(f"x has an empty last axis (shape {tuple(x.shape)})")
        return _pack_bool((x >= 0).cpu().numpy())
    arr = _real_numeric_vectors(x, "")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("x contains NaN or inf")
    return _pack_bool(arr >= 0)


def _real_numeric_vectors(x: Any, kind: str) -> np.ndarray:
    """x as a numpy array (..., D) with D >= 1 and a real numeric (not bool) dtype; ``kind`` words the error."""
    arr = _to_numpy(x, "x")
    if arr.ndim == 0:
        raise ValueError("x must have at least one axis (..., D), got a scalar")
    if arr.shape[-1] == 0:
        raise ValueError(f"x has an empty last axis (shape {arr.shape})")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"x must be a real numeric {kind}array, got dtype {arr.dtype}")
    return arr


def from_bipolar(x: Any) -> NDArray[np.uint64]:
    """Pack a bipolar array (values exactly -1 or +1) along the last axis: +1 -> bit 1.

    Args:
        x: numpy array or torch tensor ``(..., D)`` with entries in {-1, +1}.

    Returns:
        uint64 array ``(..., ceil(D / 64))``.
    """
    arr = _real_numeric_vectors(x, "bipolar ")
    pos = arr == 1
    if not np.all(pos | (arr == -1)):
        raise ValueError("x must contain only -1 and +1 (bipolar values)")
    return _pack_bool(pos)


def to_bipolar(words: Any, dim: int, dtype: Any = np.int8) -> NDArray[Any]:
    """Unpack to a bipolar array: bit 1 -> +1, bit 0 -> -1.

    Args:
        words: uint64 array ``(..., n_words(dim))``.
        dim: true dimension ``D``.
        dtype: numpy dtype of the result (a signed integer or float type).

    Returns:
        array ``(..., D)`` of ``dtype`` with values in {-1, +1}.
    """
    dt = np.dtype(dtype)
    if not (np.issubdtype(dt, np.signedinteger) or np.issubdtype(dt, np.floating)):
        raise ValueError(f"dtype must be a signed integer or float type, got {dt}")
    bits = unpack_bits(words, dim).view(np.uint8)
    out = bits.astype(dt)
    out *= 2
    out -= 1
    return out


def popcount(words: Any) -> NDArray[np.int64]:
    """Number of set bits along the last axis: uint64 ``(..., W)`` -> int64 ``(...)``."""
    arr = _to_numpy(words, "words")
    if arr.dtype != np.uint64:
        raise ValueError(f"words must have dtype uint64, got {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError("words must have at least one axis (..., n_words), got a scalar")
    return np.bitwise_count(arr).sum(axis=-1, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class PackedHV:
    """Packed binary hypervector(s) with their true dimension.

    Attributes:
        words: uint64 array ``(..., n_words(dim))`` with zero tail bits.
        dim: true dimension ``D``.

    A thin validated holder: the functional API works on plain ``(words, dim)`` pairs.
    """

    words: np.ndarray
    dim: int

    def __post_init__(self) -> None:
        dim = check_dim(self.dim)
        words = validate_words(self.words, dim)
        object.__setattr__(self, "dim", dim)
        object.__setattr__(self, "words", words)

    @classmethod
    def from_bits(cls, bits: Any) -> PackedHV:
        """Pack a bool array ``(..., D)``."""
        arr = _to_numpy(bits, "bits")
        words = pack_bits(arr)
        return cls(words, arr.shape[-1])

    @classmethod
    def from_sign(cls, x: Any) -> PackedHV:
        """Pack ``x >= 0`` of a real array or tensor ``(..., D)``."""
        words = pack_sign(x)
        return cls(words, int(x.shape[-1]))

    @classmethod
    def from_bipolar(cls, x: Any) -> PackedHV:
        """Pack a {-1, +1} array ``(..., D)``."""
        words = from_bipolar(x)
        return cls(words, int(x.shape[-1]))

    @property
    def shape(self) -> tuple[int, ...]:
        """Batch shape (the words' shape without the last axis)."""
        return tuple(self.words.shape[:-1])

    @property
    def n_words(self) -> int:
        return int(self.words.shape[-1])

    @property
    def nbytes(self) -> int:
        return int(self.words.nbytes)

    def __len__(self) -> int:
        if self.words.ndim < 2:
            raise TypeError("a single PackedHV has no len(); it is not a batch")
        return int(self.words.shape[0])

    def __getitem__(self, index: Any) -> PackedHV:
        """Index the batch axes; the word axis is always kept whole."""
        if self.words.ndim < 2:
            raise TypeError("a single PackedHV cannot be indexed; it is not a batch")
        if isinstance(index, tuple):
            if any(i is Ellipsis or i is None for i in index):
                raise ValueError("index must not contain Ellipsis or None; index the batch axes only")
            if len(index) >= self.words.ndim:
                raise ValueError(f"index has {len(index)} entries but there are only {self.words.ndim - 1} batch axes")
        sub = self.words[index]
        return PackedHV(sub, self.dim)

    def bits(self) -> NDArray[np.bool_]:
        """bool array ``(..., D)``."""
        return unpack_bits(self.words, self.dim)

    def bipolar(self, dtype: Any = np.int8) -> NDArray[Any]:
        """{-1, +1} array ``(..., D)`` of ``dtype``."""
        return to_bipolar(self.words, self.dim, dtype=dtype)

    def __repr__(self) -> str:
        return f"PackedHV(shape={self.shape}, dim={self.dim})"
