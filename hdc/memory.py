"""Item (clean-up) memory: named packed hypervectors with nearest-neighbour lookup."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc._validate import check_number
from hdc.hamming import hamming_topk
from hdc.packed import PackedHV, check_dim, n_words, validate_words

__all__ = ["ItemMemory", "chance_threshold"]


def chance_threshold(dim: int, k: float = 4.4, p: float = 0.5) -> float:
    """Similarity a match must exceed to be better than chance: ``p + k * sqrt(p (1 - p) / D)``.

    For two independent random hypervectors the normalised Hamming similarity ``1 - H/D`` is
    Binomial(D, p) / D with p = 1/2, i.e. mean p and standard deviation sqrt(p (1 - p) / D);
    ``k`` is how many standard deviations above chance (4.4 leaves a one-sided normal tail of
    about 5e-6 per comparison, vsapy's default).
    """
    dim = check_dim(dim)
    k = check_number(k, "k", minimum=0.0)
    p = check_number(p, "p", minimum=0.0, maximum=1.0, strict=True)
    if p == 1.0:
        raise ValueError("p must be < 1, got 1.0")
    return p + k * math.sqrt(p * (1.0 - p) / dim)


class ItemMemory:
    """Named packed hypervectors of one dimension, searchable by Hamming distance.

    Storage is one contiguous uint64 buffer that grows geometrically, so adding items one at a
    time costs amortised O(W) and lookups never re-stack a Python list.

    Args:
        dim: dimension ``D`` of every item.
        names: optional initial names (unique, hashable).
        words: their packed vectors, uint64 ``(len(names), n_words(dim))``.
    """

    def __init__(self, dim: int, names: Sequence[Hashable] = (), words: Any = None) -> None:
        self.dim = check_dim(dim)
        self._w = n_words(self.dim)
        self._buf = np.zeros((0, self._w), dtype=np.uint64)
        self._names: list[Hashable] = []
        self._index: dict[Hashable, int] = {}
        names = list(names)
        if words is None:
            if names:
                raise ValueError("words is required when names are given")
        else:
            self.extend(names, words)

    # ------------------------------------------------------------------ storage
    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: Hashable) -> bool:
        return name in self._index

    @property
    def names(self) -> list[Hashable]:
        """Names in insertion order (row order of :attr:`words`)."""
        return list(self._names)

    @property
    def words(self) -> NDArray[np.uint64]:
        """uint64 ``(len(self), n_words(dim))`` read-only view of the stored vectors."""
        view = self._buf[: len(self._names)]
        view.flags.writeable = False
        return view

    def _reserve(self, extra: int) -> None:
        need = len(self._names) + extra
        if need <= self._buf.shape[0]:
            return
        cap = max(need, 2 * self._buf.shape[0], 16)
        buf = np.zeros((cap, self._w), dtype=np.uint64)
        buf[: len(self._names)] = self._buf[: len(self._names)]
        self._buf = buf

    def add(self, name: Hashable, hv: Any) -> None:
        """Store one vector ``(W,)`` (or PackedHV) under a new ``name``."""
        self.extend([name], hv.words[None] if isinstance(hv, PackedHV) else np.asarray(hv)[None])

    def extend(self, names: Iterable[Hashable], words: Any) -> None:
        """Store several vectors, uint64 ``(len(names), W)`` (or a PackedHV), under new, unique ``names``."""
        if isinstance(words, PackedHV):
            if words.dim != self.dim:
                raise ValueError(f"words has dim {words.dim}, memory has dim {self.dim}")
            words = words.words
        names = list(names)
        arr = validate_words(words, self.dim, name="words")
        if arr.ndim != 2:
            raise ValueError(f"words must be 2-D (n_items, {self._w}), got shape {arr.shape}")
        if arr.shape[0] != len(names):
            raise ValueError(f"got {len(names)} names for {arr.shape[0]} vectors")
        if not names:
            raise ValueError("names is empty; nothing to add")
        seen = set()
        for nm in names:
            try:
                hash(nm)
            except TypeError as exc:
                raise ValueError(f"name {nm!r} is not hashable") from exc
            if nm in self._index or nm in seen:
                raise ValueError(f"name {nm!r} is already in the memory")
            seen.add(nm)
        self._reserve(len(names))
        start = len(self._names)
        self._buf[start : start + len(names)] = arr
        for i, nm in enumerate(names):
            self._index[nm] = start + i
            self._names.append(nm)

    def index(self, name: Hashable) -> int:
        """Row of ``name``; ValueError if absent."""
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise ValueError(f"name {name!r} is not in the memory") from None

    def get(self, name: Hashable) -> NDArray[np.uint64]:
        """Copy of the vector stored under ``name``: uint64 ``(W,)``."""
        return self._buf[self.index(name)].copy()

    # ------------------------------------------------------------------ lookup
    def _queries(self, queries: Any) -> tuple[np.ndarray, bool]:
        if len(self._names) == 0:
            raise ValueError("the item memory is empty")
        if isinstance(queries, PackedHV):
            if queries.dim != self.dim:
                raise ValueError(f"queries has dim {queries.dim}, memory has dim {self.dim}")
            queries = queries.words
        arr = validate_words(queries, self.dim, name="queries")
        if arr.ndim > 2:
            raise ValueError(f"queries must be (W,) or (Q, W), got shape {arr.shape}")
        single = arr.ndim == 1
        return (arr[None] if single else arr), single

    def topk(self, queries: Any, k: int, *, method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items per query (ties: earlier insertion first).

        Args:
            queries: uint64 ``(W,)`` or ``(Q, W)`` (or PackedHV).
            k: number of neighbours, 1 <= k <= len(self).

        Returns:
            ``(indices, similarities)``: int64 and float64 ``(Q, k)`` (``(k,)`` for one query),
            most similar first; similarity is ``1 - H / D``.  ``self.names[i]`` names row i.
        """
        q, single = self._queries(queries)
        idx, dist = hamming_topk(q, self._buf[: len(self._names)], k, method=method)
        sim = 1.0 - dist / float(self.dim)
        if single:
            return idx[0], sim[0]
        return idx, sim

    def nearest(
        self,
        queries: Any,
        *,
        threshold: float | str | None = None,
        method: str = "auto",
    ) -> tuple[Any, Any]:
        """Name and similarity of the closest item for each query.

        Args:
            queries: uint64 ``(W,)`` or ``(Q, W)`` (or PackedHV).
            threshold: None (always answer), "chance" (:func:`chance_threshold` with k = 4.4),
                or a similarity in [0, 1]; below it the name is ``None``.

        Returns:
            ``(names, similarities)``: a list of names (or None) and float64 ``(Q,)``; for a
            single 1-D query a name and a float.
        """
        if threshold is None:
            thr = -math.inf
        elif isinstance(threshold, str):
            if threshold != "chance":
                raise ValueError(f"threshold must be None, 'chance' or a number, got {threshold!r}")
            thr = chance_threshold(self.dim)
        else:
            thr = check_number(threshold, "threshold", minimum=0.0, maximum=1.0)
        q, single = self._queries(queries)
        idx, dist = hamming_topk(q, self._buf[: len(self._names)], 1, method=method)
        sim = 1.0 - dist[:, 0] / float(self.dim)
        names = [self._names[i] if s > thr else None for i, s in zip(idx[:, 0], sim, strict=False)]
        if single:
            return names[0], float(sim[0])
        return names, sim

    def cleanup(self, queries: Any, *, k_sigma: float = 4.4, method: str = "auto") -> Any:
        """Stored vector(s) closest to ``queries``, or ValueError if a match is not better than chance.

        Returns uint64 ``(W,)`` for one query, ``(Q, W)`` for several.
        """
        q, single = self._queries(queries)
        idx, dist = hamming_topk(q, self._buf[: len(self._names)], 1, method=method)
        sim = 1.0 - dist[:, 0] / float(self.dim)
        thr = chance_threshold(self.dim, k=k_sigma)
        bad = np.flatnonzero(sim <= thr)
        if bad.size:
            raise ValueError(
                f"query {int(bad[0])} matches nothing better than chance "
                f"(similarity {sim[bad[0]]:.4f} <= threshold {thr:.4f})"
            )
        out = self._buf[idx[:, 0]].copy()
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"ItemMemory(dim={self.dim}, items={len(self)})"
