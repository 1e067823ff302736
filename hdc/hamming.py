"""Exact all-pairs Hamming distances between packed binary hypervectors, plus top-k search.

Methods (all exact, all return int32):

* ``"numba"``  XOR + popcount over uint64 words (``vpopcntq`` with AVX-512 VPOPCNTDQ), parallel
  over queries (or over items when there are few queries).  Never builds a Q x M x W temporary.
* ``"gemm"``   unpack to int8 +-1 and multiply with ``torch._int_mm`` (int32 accumulation, exact);
  falls back to an int32 matmul (also exact) where torch lacks it.  Chunked.
* ``"numpy"``  ``np.bitwise_count`` reference, chunked so the temporary stays bounded.
* ``"auto"``   picks by shape, see :func:`choose_method`.

Every function takes plain uint64 words or :class:`hdc.packed.PackedHV` (whose ``dim`` is used;
an explicit ``dim`` that disagrees with it raises ``ValueError``).  Tail bits beyond the true
dimension are zero in both operands, so they never count, and the kernels need no ``dim``.
For the +-1 GEMM the padded width ``Dp = 64 * W`` is used: ``dot_p = Dp - 2 H`` because the
zero tail bits agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc import cpu
from hdc._linalg import chunks, int8_matmul, int_mm_available
from hdc._validate import check_choice, check_int
from hdc.packed import WORD_BITS, PackedHV, _to_numpy, check_dim, n_words, tail_mask

__all__ = [
    "METHODS",
    "bipolar_dot",
    "choose_method",
    "hamming_distance",
    "hamming_similarity",
    "hamming_topk",
]

METHODS = ("auto", "numba", "gemm", "numpy")

# Temporaries of the chunked methods stay below this many bytes.
_CHUNK_BYTES = 64 * 2**20
# numba kernel tiling (see hdc/_kernels/popcount.py): up to this many queries use the item-parallel
# scan; otherwise tiles of _TILE_QUERIES queries x (_TILE_ITEM_BYTES of item rows).
_FEW_QUERIES = 2
# Below this many word comparisons (~1 ms on one core) the kernels run on the calling thread:
# waking the pool costs ~50 us when cores are idle, but a full scheduler slice (~10 ms measured)
# when another process keeps a core busy.
_SERIAL_WORDS = 4 * 2**20
_ITEM_BLOCK = 256
_TILE_QUERIES = 256
_TILE_ITEM_BYTES = 32 * 2**10


def _as_rows(x: Any, name: str) -> np.ndarray:
    arr = _to_numpy(x, name)
    if arr.dtype != np.uint64:
        raise ValueError(f"{name} must have dtype uint64 (packed words), got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D (W,) or 2-D (rows, W), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return np.ascontiguousarray(arr)


def _pair_dim(a: Any, b: Any, dim: Any) -> int | None:
    """The dimension of a pair: the PackedHVs' (which must agree with each other and with an explicit ``dim``),
    else ``dim`` (None when neither gives one)."""
    carried = [x.dim for x in (a, b) if isinstance(x, PackedHV)]
    if len(carried) == 2 and carried[0] != carried[1]:
        raise ValueError(f"a and b have different dims (a.dim={carried[0]}, b.dim={carried[1]})")
    if dim is None:
        return carried[0] if carried else None
    dim = check_dim(dim)
    if carried and carried[0] != dim:
        raise ValueError(f"dim={dim} does not match the PackedHV dim {carried[0]}")
    return dim


def _check_pair(a: Any, b: Any, dim: Any = None) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Packed queries and items as C-contiguous (Q, W) and (M, W) uint64, plus the pair's dim (see _pair_dim)."""
    dim = _pair_dim(a, b, dim)
    a2 = _as_rows(a.words if isinstance(a, PackedHV) else a, "a")
    b2 = _as_rows(b.words if isinstance(b, PackedHV) else b, "b")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(
            f"a and b have different word counts ({a2.shape[1]} vs {b2.shape[1]}); they must share the same dimension"
        )
    if dim is not None:
        if n_words(dim) != a2.shape[1]:
            raise ValueError(f"dim={dim} needs {n_words(dim)} words but the inputs have {a2.shape[1]}")
        _check_tail(a2, dim, "a")
        _check_tail(b2, dim, "b")
    return a2, b2, dim


def _check_tail(rows: np.ndarray, dim: int, name: str) -> None:
    """Refuse set bits beyond ``dim``: they would shift every distance. Reads only the last word of each row."""
    if dim % WORD_BITS and np.any(rows[:, -1] & ~tail_mask(dim)):
        raise ValueError(f"{name} has non-zero tail bits beyond dim={dim}; tail bits must be 0")


def _require_dim(dim: int | None, caller: str) -> int:
    if dim is None:
        raise ValueError(f"{caller}: dim is required for packed uint64 words (or pass PackedHV)")
    return dim


# --------------------------------------------------------------------------- methods


def _numba_available() -> bool:
    try:
        import hdc._kernels.popcount  # noqa: F401
    except Exception:  # pragma: no cover - numba missing or broken
        return False
    return True


def _hamming_numba(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from numba import get_num_threads

    from hdc._kernels import popcount

    Q, W = a.shape
    M = b.shape[0]
    out = np.empty((Q, M), dtype=np.int32)
    threads = get_num_threads()
    serial = threads == 1 or Q * M * W < _SERIAL_WORDS
    tile_m = max(2, min(256, _TILE_ITEM_BYTES // (8 * W)))
    if Q <= _FEW_QUERIES:
        if serial:
            popcount.hamming_few_queries_serial(a, b, out)
        else:
            block = max(1, min(_ITEM_BLOCK, -(-M // threads)))
            popcount.hamming_few_queries(a, b, out, block)
    elif serial:
        popcount.hamming_tiled_serial(a, b, out, _TILE_QUERIES, tile_m)
    else:
        tile_q = _TILE_QUERIES
        # Enough tiles for every thread, otherwise shrink the query tile.
        n_mt = -(-M // tile_m)
        while tile_q > 2 and n_mt * -(-Q // tile_q) < 4 * threads:
            tile_q //= 2
        popcount.hamming_tiled(a, b, out, tile_q, tile_m)
    return out


def _hamming_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    Q, W = a.shape
    M = b.shape[0]
    out = np.empty((Q, M), dtype=np.int32)
    for q0, q1 in chunks(Q, max(1, _CHUNK_BYTES // (M * W * 8))):
        x = np.bitwise_xor(a[q0:q1, None, :], b[None, :, :])
        out[q0:q1] = np.bitwise_count(x).sum(axis=-1, dtype=np.int32)
    return out


def _unpack_pm1_int8(words: np.ndarray) -> np.ndarray:
    """(R, W) uint64 -> (R, 64 W) int8 in {-1, +1}, all bits including the zero tail."""
    bytes_ = np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(bytes_, axis=-1, bitorder="little").view(np.int8)
    bits *= 2
    bits -= 1
    return bits


def _hamming_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """H = (Dp - dot) / 2 with dot the exact int32 product of the +-1 unpackings (Dp = 64 W padded bits)."""
    import torch

    Q, W = a.shape
    M = b.shape[0]
    dp = W * WORD_BITS
    out = np.empty((Q, M), dtype=np.int32)
    rows = max(8, _CHUNK_BYTES // dp)
    for m0, m1 in chunks(M, rows):
        b_chunk = b[m0:m1]
        mb = m1 - m0
        if int_mm_available() and mb % 8:
            # Padded once per item chunk (not by int8_matmul for every query chunk); the zero rows' columns are
            # sliced off again, so padding never changes a result.
            b_chunk = np.concatenate([b_chunk, np.zeros((8 - mb % 8, W), np.uint64)])
        bt = torch.from_numpy(_unpack_pm1_int8(b_chunk)).t()
        for q0, q1 in chunks(Q, rows):
            dot = int8_matmul(torch.from_numpy(_unpack_pm1_int8(a[q0:q1])), bt)
            out[q0:q1, m0:m1] = ((dp - dot[:, :mb]) >> 1).numpy()  # exact integers
    return out


def choose_method(n_queries: int, n_items: int, n_words_: int) -> str:
    """Method that ``method="auto"`` uses for a (Q, W) x (M, W) problem.

    Measured on the dev machine (2-core AMD EPYC with AVX-512 VPOPCNTDQ and VNNI, no AMX) by
    ``benchmarks/bench_hamming.py`` (results/bench_hamming.json, "auto_crossover_grid"): the numba
    popcount kernel beat the int8 ``torch._int_mm`` GEMM (including its unpacking) at every shape
    tried, Q = 1 .. 2000, M = 1000 .. 10,000, D = 256 .. 10,000, by 2.8x to 155x (Q = M = 1000,
    D = 10,000: 4x; the pre-unpacked ``_int_mm`` alone was 5x slower than the numba kernel too).
    So there is no crossover on this CPU and "auto" means numba.
    On a CPU with AMX-int8 the GEMM runs several times faster and may win for large Q and M;
    pass ``method="gemm"`` there.  Without numba, GEMM is used from 4096 pairs up where int8 GEMM is fast
    (:func:`hdc.cpu.fast_int8_matmul`: VNNI or AMX and measured) and the numpy reference otherwise: "auto"
    never routes to the int8 GEMM on a CPU where it is slow (30-40x slower than float32 on AVX2-only CPUs).
    """
    if _numba_available():
        return "numba"
    if n_queries * n_items >= 4096 and cpu.fast_int8_matmul():
        return "gemm"
    return "numpy"


_IMPLS = {"numba": _hamming_numba, "gemm": _hamming_gemm, "numpy": _hamming_numpy}


def hamming_distance(a: Any, b: Any, *, method: str = "auto", dim: int | None = None) -> NDArray[np.int32]:
    """All-pairs Hamming distances.

    Args:
        a: uint64 packed queries ``(Q, W)`` or one query ``(W,)`` (promoted to ``(1, W)``), or a PackedHV.
        b: uint64 packed items ``(M, W)`` or ``(W,)`` (promoted to ``(1, W)``), or a PackedHV.
        method: "auto", "numba", "gemm" or "numpy" (all exact).
        dim: optional true dimension of plain words: when given (or carried by a PackedHV) the word count must
            match it and bits beyond it must be zero (ValueError otherwise); without it the words are taken as is.

    Returns:
        int32 ``(Q, M)``: number of differing bits.  Always 2-D.
    """
    check_choice(method, METHODS, "method")
    a2, b2, _ = _check_pair(a, b, dim)
    if method == "auto":
        method = choose_method(a2.shape[0], b2.shape[0], a2.shape[1])
    return _IMPLS[method](a2, b2)


def hamming_similarity(a: Any, b: Any, dim: int | None = None, *, method: str = "auto") -> NDArray[np.float64]:
    """Normalised similarity ``1 - H / D`` as float64 ``(Q, M)`` (1 = identical, 0.5 = unrelated).

    ``dim`` is required for plain words and taken from PackedHV input otherwise.
    """
    a2, b2, dim = _check_pair(a, b, dim)
    dim = _require_dim(dim, "hamming_similarity")
    h = hamming_distance(a2, b2, method=method)
    return 1.0 - h / float(dim)


def bipolar_dot(a: Any, b: Any, dim: int | None = None, *, method: str = "auto") -> NDArray[np.int32]:
    """Inner product of the +-1 vectors, ``D - 2 H``, as int32 ``(Q, M)``.

    ``dim`` is required for plain words and taken from PackedHV input otherwise.
    """
    a2, b2, dim = _check_pair(a, b, dim)
    dim = _require_dim(dim, "bipolar_dot")
    h = hamming_distance(a2, b2, method=method)
    return np.int32(dim) - 2 * h


def hamming_topk(
    a: Any,
    b: Any,
    k: int,
    *,
    method: str = "auto",
    max_block_bytes: int = 256 * 2**20,
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """The ``k`` nearest items (smallest Hamming distance) for every query.

    Ties are broken by the lower item index, so the result is deterministic.

    Args:
        a: uint64 queries ``(Q, W)`` or ``(W,)``, or a PackedHV.
        b: uint64 items ``(M, W)`` or ``(W,)``, or a PackedHV.
        k: 1 <= k <= M.
        method: Hamming method, see :func:`hamming_distance`.
        max_block_bytes: queries are processed in blocks whose (block, M) distance matrix
            stays below this size.

    Returns:
        ``(indices, distances)``: int64 ``(Q, k)`` and int32 ``(Q, k)``, nearest first.
    """
    a2, b2, _ = _check_pair(a, b)
    M = b2.shape[0]
    k = check_int(k, "k")
    if not 1 <= k <= M:
        raise ValueError(f"k must be between 1 and the number of items ({M}), got {k}")
    max_block_bytes = check_int(max_block_bytes, "max_block_bytes", minimum=1)
    Q = a2.shape[0]
    idx_out = np.empty((Q, k), dtype=np.int64)
    dist_out = np.empty((Q, k), dtype=np.int32)
    item_ids = np.arange(M, dtype=np.int64)
    for q0, q1 in chunks(Q, max(1, max_block_bytes // (M * 12))):
        h = hamming_distance(a2[q0:q1], b2, method=method)
        # A unique key (distance, index) makes argpartition's choice at the k-th boundary
        # deterministic: equal distances go to the lower index.
        key = h.astype(np.int64) * M + item_ids
        part = np.argpartition(key, k - 1, axis=1)[:, :k] if k < M else np.broadcast_to(item_ids, key.shape).copy()
        order = np.argsort(np.take_along_axis(key, part, axis=1), axis=1)
        best = np.take_along_axis(part, order, axis=1)
        idx_out[q0:q1] = best
        dist_out[q0:q1] = np.take_along_axis(h, best, axis=1)
    return idx_out, dist_out
