"""Exact all-pairs Hamming distances between packed binary hypervectors, plus top-k search.

Methods (all exact, all return int32):

* ``"numba"``  XOR + popcount over uint64 words (``vpopcntq`` with AVX-512 VPOPCNTDQ), parallel
  over queries (or over items when there are few queries).  Never builds a Q x M x W temporary.
* ``"gemm"``   unpack to int8 +-1 and multiply with ``torch._int_mm`` (int32 accumulation, exact);
  falls back to float32 matmul, exact while the padded dimension is below 2**24.  Chunked.
* ``"numpy"``  ``np.bitwise_count`` reference, chunked so the temporary stays bounded.
* ``"auto"``   picks by shape, see :func:`choose_method`.

Tail bits beyond the true dimension are zero in both operands, so they never count, and the
kernels need no ``dim``.  For the +-1 GEMM the padded width ``Dp = 64 * W`` is used:
``dot_p = Dp - 2 H`` because the zero tail bits agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hdc.packed import WORD_BITS, _to_numpy, check_dim, n_words

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
# numba kernel tiling (see hdc/_popcount.py): up to this many queries use the item-parallel
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


def _check_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a2 = _as_rows(a, "a")
    b2 = _as_rows(b, "b")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(
            f"a and b have different word counts ({a2.shape[1]} vs {b2.shape[1]}); "
            "they must share the same dimension"
        )
    return a2, b2


def _check_dim_matches(dim: Any, w: int) -> int:
    dim = check_dim(dim)
    if n_words(dim) != w:
        raise ValueError(f"dim={dim} needs {n_words(dim)} words but the inputs have {w}")
    return dim


# --------------------------------------------------------------------------- methods


def _numba_available() -> bool:
    try:
        import hdc._popcount  # noqa: F401
    except Exception:  # pragma: no cover - numba missing or broken
        return False
    return True


def _hamming_numba(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from numba import get_num_threads

    from hdc import _popcount

    Q, W = a.shape
    M = b.shape[0]
    out = np.empty((Q, M), dtype=np.int32)
    threads = get_num_threads()
    serial = threads == 1 or Q * M * W < _SERIAL_WORDS
    tile_m = max(2, min(256, _TILE_ITEM_BYTES // (8 * W)))
    if Q <= _FEW_QUERIES:
        if serial:
            _popcount.hamming_few_queries_serial(a, b, out)
        else:
            block = max(1, min(_ITEM_BLOCK, -(-M // threads)))
            _popcount.hamming_few_queries(a, b, out, block)
    elif serial:
        _popcount.hamming_tiled_serial(a, b, out, _TILE_QUERIES, tile_m)
    else:
        tile_q = _TILE_QUERIES
        # Enough tiles for every thread, otherwise shrink the query tile.
        n_mt = -(-M // tile_m)
        while tile_q > 2 and n_mt * -(-Q // tile_q) < 4 * threads:
            tile_q //= 2
        _popcount.hamming_tiled(a, b, out, tile_q, tile_m)
    return out


def _hamming_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    Q, W = a.shape
    M = b.shape[0]
    out = np.empty((Q, M), dtype=np.int32)
    rows = max(1, _CHUNK_BYTES // (M * W * 8))
    for q0 in range(0, Q, rows):
        x = np.bitwise_xor(a[q0 : q0 + rows, None, :], b[None, :, :])
        out[q0 : q0 + rows] = np.bitwise_count(x).sum(axis=-1, dtype=np.int32)
    return out


def _unpack_pm1_int8(words: np.ndarray) -> np.ndarray:
    """(R, W) uint64 -> (R, 64 W) int8 in {-1, +1}, all bits including the zero tail."""
    bytes_ = np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(bytes_, axis=-1, bitorder="little").view(np.int8)
    bits *= 2
    bits -= 1
    return bits


def _int_mm_available() -> bool:
    import torch

    if not hasattr(torch, "_int_mm"):
        return False
    try:
        x = torch.ones((17, 64), dtype=torch.int8)
        return int(torch._int_mm(x, torch.ones((64, 8), dtype=torch.int8))[0, 0]) == 64
    except Exception:
        return False


_INT_MM: bool | None = None


def _hamming_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import torch

    global _INT_MM
    if _INT_MM is None:
        _INT_MM = _int_mm_available()
    Q, W = a.shape
    M = b.shape[0]
    dp = W * WORD_BITS
    if not _INT_MM and dp >= 2**24:
        # float32 accumulation would no longer be exact; the popcount path always is.
        return _hamming_numpy(a, b)
    out = np.empty((Q, M), dtype=np.int32)
    rows = max(8, _CHUNK_BYTES // dp)
    for m0 in range(0, M, rows):
        b_chunk = b[m0 : m0 + rows]
        mb = b_chunk.shape[0]
        if _INT_MM and mb % 8:
            # _int_mm documents N % 8 == 0 (and M > 16) on some builds; zero-padded rows are
            # sliced off again, so padding never changes a result.
            b_chunk = np.concatenate([b_chunk, np.zeros((8 - mb % 8, W), np.uint64)])
        bt = torch.from_numpy(_unpack_pm1_int8(b_chunk))
        bt = bt.t() if _INT_MM else bt.to(torch.float32).t()
        for q0 in range(0, Q, rows):
            a_chunk = a[q0 : q0 + rows]
            qa = a_chunk.shape[0]
            if _INT_MM and qa <= 16:
                a_chunk = np.concatenate([a_chunk, np.zeros((17 - qa, W), np.uint64)])
            at = torch.from_numpy(_unpack_pm1_int8(a_chunk))
            if _INT_MM:
                dot = torch._int_mm(at, bt)
            else:
                dot = torch.matmul(at.to(torch.float32), bt).to(torch.int32)
            # H = (Dp - dot) / 2, exact integers
            ham = (dp - dot[:qa, :mb]) >> 1
            out[q0 : q0 + qa, m0 : m0 + mb] = ham.numpy()
    return out


def choose_method(n_queries: int, n_items: int, n_words_: int) -> str:
    """Method that ``method="auto"`` uses for a (Q, W) x (M, W) problem.

    Measured on the dev machine (2-core AMD EPYC with AVX-512 VPOPCNTDQ and VNNI, no AMX) by
    ``benchmarks/bench_hamming.py`` (results/bench_hamming.json, "auto_crossover_grid"): the numba
    popcount kernel beat the int8 ``torch._int_mm`` GEMM (including its unpacking) at every shape
    tried, Q = 1 .. 2000, M = 1000 .. 10,000, D = 256 .. 10,000, by 2.8x to 155x (Q = M = 1000,
    D = 10,000: 4x; the pre-unpacked ``_int_mm`` alone was 5x slower than the numba kernel too).  So there is no crossover on this CPU and "auto" means numba.
    On a CPU with AMX-int8 the GEMM runs several times faster and may win for large Q and M;
    pass ``method="gemm"`` there.  Without numba, GEMM is used from 4096 pairs up and the numpy
    reference below that.
    """
    if _numba_available():
        return "numba"
    if n_queries * n_items >= 4096:
        return "gemm"
    return "numpy"


_IMPLS = {"numba": _hamming_numba, "gemm": _hamming_gemm, "numpy": _hamming_numpy}


def hamming_distance(a: Any, b: Any, *, method: str = "auto") -> np.ndarray:
    """All-pairs Hamming distances.

    Args:
        a: uint64 packed queries ``(Q, W)`` or one query ``(W,)`` (promoted to ``(1, W)``).
        b: uint64 packed items ``(M, W)`` or ``(W,)`` (promoted to ``(1, W)``).
        method: "auto", "numba", "gemm" or "numpy" (all exact).

    Returns:
        int32 ``(Q, M)``: number of differing bits.  Always 2-D.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    a2, b2 = _check_pair(a, b)
    if method == "auto":
        method = choose_method(a2.shape[0], b2.shape[0], a2.shape[1])
    return _IMPLS[method](a2, b2)


def hamming_similarity(a: Any, b: Any, dim: int, *, method: str = "auto") -> np.ndarray:
    """Normalised similarity ``1 - H / D`` as float64 ``(Q, M)`` (1 = identical, 0.5 = unrelated)."""
    a2, b2 = _check_pair(a, b)
    dim = _check_dim_matches(dim, a2.shape[1])
    h = hamming_distance(a2, b2, method=method)
    return 1.0 - h / float(dim)


def bipolar_dot(a: Any, b: Any, dim: int, *, method: str = "auto") -> np.ndarray:
    """Inner product of the +-1 vectors, ``D - 2 H``, as int32 ``(Q, M)``."""
    a2, b2 = _check_pair(a, b)
    dim = _check_dim_matches(dim, a2.shape[1])
    h = hamming_distance(a2, b2, method=method)
    return np.int32(dim) - 2 * h


def hamming_topk(
    a: Any,
    b: Any,
    k: int,
    *,
    method: str = "auto",
    max_block_bytes: int = 256 * 2**20,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest items (smallest Hamming distance) for every query.

    Ties are broken by the lower item index, so the result is deterministic.

    Args:
        a: uint64 queries ``(Q, W)`` or ``(W,)``.
        b: uint64 items ``(M, W)`` or ``(W,)``.
        k: 1 <= k <= M.
        method: Hamming method, see :func:`hamming_distance`.
        max_block_bytes: queries are processed in blocks whose (block, M) distance matrix
            stays below this size.

    Returns:
        ``(indices, distances)``: int64 ``(Q, k)`` and int32 ``(Q, k)``, nearest first.
    """
    a2, b2 = _check_pair(a, b)
    M = b2.shape[0]
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    k = int(k)
    if not 1 <= k <= M:
        raise ValueError(f"k must be between 1 and the number of items ({M}), got {k}")
    if max_block_bytes <= 0:
        raise ValueError(f"max_block_bytes must be positive, got {max_block_bytes}")
    Q = a2.shape[0]
    idx_out = np.empty((Q, k), dtype=np.int64)
    dist_out = np.empty((Q, k), dtype=np.int32)
    rows = max(1, max_block_bytes // (M * 12))
    item_ids = np.arange(M, dtype=np.int64)
    for q0 in range(0, Q, rows):
        h = hamming_distance(a2[q0 : q0 + rows], b2, method=method)
        # A unique key (distance, index) makes argpartition's choice at the k-th boundary
        # deterministic: equal distances go to the lower index.
        key = h.astype(np.int64) * M + item_ids
        if k < M:
            part = np.argpartition(key, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(item_ids, key.shape).copy()
        order = np.argsort(np.take_along_axis(key, part, axis=1), axis=1)
        best = np.take_along_axis(part, order, axis=1)
        idx_out[q0 : q0 + rows] = best
        dist_out[q0 : q0 + rows] = np.take_along_axis(h, best, axis=1)
    return idx_out, dist_out
