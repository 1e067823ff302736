"""CentroidHD: bundled class prototypes, inference by Hamming distance."""

from __future__ import annotations

import numpy as np

from hdc.classifiers._base import HammingClassifier
from hdc.ops import bit_counts, bundle_from_counts

__all__ = ["CentroidHD", "class_bit_counts"]


def class_bit_counts(codes: np.ndarray, y: np.ndarray, n_classes: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class count of 1 bits and of samples.

    Args:
        codes: uint64 ``(n_samples, n_words(dim))``; y: int ``(n_samples,)`` in ``[0, n_classes)``.

    Returns:
        ``(counts, totals)``: int64 ``(n_classes, dim)`` and int64 ``(n_classes,)``.
    """
    counts = np.zeros((n_classes, dim), dtype=np.int64)
    totals = np.bincount(y, minlength=n_classes).astype(np.int64)
    for c in np.flatnonzero(totals):
        counts[c] = bit_counts(codes[y == c], dim)
    return counts, totals


class CentroidHD(HammingClassifier):
    """Centroid (prototype) classifier on binary hypervectors.

    Each class prototype is the bit-wise majority (bundle) of its training codes, i.e. the sign of
    the sum of their bipolar forms, with ties at 0 going to +1.  A sample is assigned to the class
    whose prototype is nearest in Hamming distance.

    Args:
        dim: hypervector dimension ``D``.
        encoder: ``"kernel"`` (default), ``"projection"``, ``"level"`` or ``"precomputed"``
            (``X`` is uint64 packed codes ``(n_samples, ceil(dim / 64))``); see :mod:`hdc.encoders.features`.
        encoder_params: extra keyword arguments of the encoder (e.g. ``{"kernel": "rbf"}``).
        seed: int seed (or a Generator, from which one int is drawn per fit) of the encoder.
        verbose: unused here (bundling is a single pass); kept for a uniform interface.

    Fitted attributes: ``classes_``, ``prototypes_`` (uint64 ``(n_classes, n_words)``),
    ``counts_`` (int64 ``(n_classes, dim)`` per-class number of 1 bits), ``class_count_``,
    ``encoder_`` (the fitted encoder, ``None`` for precomputed), ``dim_``, ``n_features_in_``.
    ``partial_fit`` accumulates ``counts_``, so any split into batches gives the same prototypes.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> CentroidHD(dim=2048).fit(X, y).score(X, y) > 0.8
        True
    """

    def __init__(
        self,
        dim: int = 10000,
        encoder: str = "kernel",
        encoder_params: dict | None = None,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.dim = dim
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.seed = seed
        self.verbose = verbose

    def _set_prototypes(self) -> None:
        self.prototypes_ = bundle_from_counts(self.counts_, self.class_count_, ties="deterministic")

    def _fit_codes(self, codes: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.counts_, self.class_count_ = class_bit_counts(codes, y, len(self.classes_), self.dim_)
        self._set_prototypes()

    def _partial_fit_codes(self, codes: np.ndarray, y: np.ndarray, first: bool) -> None:
        counts, totals = class_bit_counts(codes, y, len(self.classes_), self.dim_)
        if first:
            self.counts_, self.class_count_ = counts, totals
        else:
            self.counts_ = self.counts_ + counts
            self.class_count_ = self.class_count_ + totals
        self._set_prototypes()
