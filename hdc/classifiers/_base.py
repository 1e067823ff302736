"""Shared machinery of the Hamming classifiers: validation, encoding, packed inference."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from hdc._validate import as_seed, check_choice, check_seed
from hdc.encoders.features import CHUNK_ROWS, ENCODERS, make_encoder
from hdc.hamming import hamming_distance
from hdc.packed import PackedHV, check_dim, validate_words

__all__ = ["HammingClassifier"]


def _column_or_1d(y: Any) -> np.ndarray:
    return column_or_1d(y, warn=True)


class HammingClassifier(ClassifierMixin, BaseEstimator):
    """Base class: binary class prototypes, prediction by the smallest Hamming distance.

    Subclasses set ``prototypes_`` (uint64 ``(n_classes, n_words(dim))``) in ``_fit_codes`` and
    ``_partial_fit_codes``.  Inputs are encoded by ``encoder`` (see :mod:`hdc.encoders.features`);
    with ``encoder="precomputed"`` ``X`` is already packed: uint64 ``(n_samples, n_words(dim))`` (or a
    :class:`hdc.packed.PackedHV` of dimension ``dim``).
    """

    # ------------------------------------------------------------------ parameters
    def _check_common_params(self) -> None:
        check_dim(self.dim)
        check_choice(self.encoder, ENCODERS, "encoder")
        if self.encoder_params is not None and not isinstance(self.encoder_params, dict):
            raise ValueError(f"encoder_params must be a dict or None, got {type(self.encoder_params).__name__}")
        if self.encoder == "precomputed" and self.encoder_params:
            raise ValueError("encoder_params must be empty when encoder='precomputed'")
        check_seed(self.seed)
        if not isinstance(self.verbose, (bool, np.bool_, int, np.integer)):
            raise ValueError(f"verbose must be a bool, got {self.verbose!r}")
        self._check_params()

    def _check_params(self) -> None:
        """Subclass hook for its own parameters."""

    def _encoder_defaults(self, online: bool, in_features: int) -> dict:
        """Subclass hook: encoder keyword defaults that ``encoder_params`` may override
        (``online``: the encoder is fitted by the first ``partial_fit`` call, not by ``fit``;
        ``in_features``: the length of an input vector)."""
        return {}

    def _seed_int(self) -> int:
        """The int seed for this fit (a Generator is consumed once)."""
        return as_seed(self.seed)

    # ------------------------------------------------------------------ inputs
    def _precomputed_codes(self, X: Any, reset: bool) -> np.ndarray:
        dim = int(self.dim)
        if isinstance(X, PackedHV):
            if X.dim != dim:
                raise ValueError(f"X is a PackedHV of dim {X.dim} but the classifier has dim={dim}")
            X = X.words
        if hasattr(X, "toarray") or hasattr(X, "tocsr"):
            raise ValueError("X is sparse; encoder='precomputed' needs a dense uint64 array of packed codes")
        arr = np.asarray(X)
        if arr.dtype != np.uint64:
            raise ValueError(f"X must be uint64 packed codes when encoder='precomputed', got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_words) packed codes, got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError("X is empty (0 samples)")
        arr = validate_words(arr, dim, name="X")
        if reset:
            self.n_features_in_ = arr.shape[1]
        elif arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {arr.shape[1]} words, but {type(self).__name__} is expecting {self.n_features_in_} (dim={dim})"
            )
        return np.ascontiguousarray(arr)

    def _fit_encoder_and_encode(self, X: Any, seed: int, online: bool = False) -> np.ndarray:
        """Validate ``X``, fit ``encoder_`` on it and return its codes uint64 ``(n_samples, n_words(dim))``."""
        if self.encoder == "precomputed":
            self.encoder_ = None
            return self._precomputed_codes(X, reset=True)
        x = validate_data(self, X, dtype=[np.float64, np.float32])
        params = {**self._encoder_defaults(online, x.shape[1]), **(self.encoder_params or {})}
        self.encoder_ = make_encoder(self.encoder, int(self.dim), seed, params)
        return self.encoder_.fit(x).transform(x)

    def _validated_input(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "prototypes_")
        if self.encoder == "precomputed":
            return self._precomputed_codes(X, reset=False)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def _codes(self, x: np.ndarray) -> np.ndarray:
        return x if self.encoder_ is None else self.encoder_.transform(x)

    def encode(self, X: Any) -> np.ndarray:
        """Packed codes of ``X``: uint64 ``(n_samples, n_words(dim))`` (the fitted encoder's output)."""
        return self._codes(self._validated_input(X))

    def _targets(self, y: Any) -> np.ndarray:
        y = _column_or_1d(y)
        check_classification_targets(y)
        return y

    def _check_xy(self, codes: np.ndarray, y: np.ndarray) -> None:
        if len(codes) != len(y):
            raise ValueError(f"X and y have different numbers of samples: {len(codes)} and {len(y)}")

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> HammingClassifier:
        """Encode ``X`` (float ``(n_samples, in_features)``, or packed codes with ``encoder="precomputed"``) and fit
        the class prototypes to the labels ``y`` ``(n_samples,)``. Returns self."""
        self._check_common_params()
        y = self._targets(y)
        seed = self._seed_int()
        codes = self._fit_encoder_and_encode(X, seed)
        self._check_xy(codes, y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        self.dim_ = int(self.dim)
        self._fit_codes(codes, y_idx.astype(np.int64), seed)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> HammingClassifier:
        """Update the prototypes with one batch.

        The first call needs ``classes`` (every label that will ever appear) and fits the encoder
        on this first batch; later calls reuse it.  Returns self.
        """
        first = not hasattr(self, "prototypes_")
        if first:
            self._check_common_params()
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            classes_arr = np.unique(_column_or_1d(classes))
            check_classification_targets(classes_arr)
            y = self._targets(y)
            self._partial_seed = self._seed_int()
            codes = self._fit_encoder_and_encode(X, self._partial_seed, online=True)
            self.classes_ = classes_arr
            self.dim_ = int(self.dim)
        else:
            if classes is not None and not np.array_equal(np.unique(_column_or_1d(classes)), self.classes_):
                raise ValueError(f"classes {np.unique(classes)!r} differ from the first call's {self.classes_!r}")
            y = self._targets(y)
            codes = self._codes(self._validated_input(X))
        self._check_xy(codes, y)
        y_idx = np.searchsorted(self.classes_, y)
        y_idx = np.clip(y_idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[y_idx] != y
        if np.any(unknown):
            raise ValueError(f"y has labels not in classes: {np.unique(y[unknown])!r}")
        self._partial_fit_codes(codes, y_idx.astype(np.int64), first)
        return self

    def _fit_codes(self, codes: np.ndarray, y: np.ndarray, seed: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _partial_fit_codes(self, codes: np.ndarray, y: np.ndarray, first: bool) -> None:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ inference
    def hamming(self, X: Any) -> np.ndarray:
        """Hamming distance of each sample's code to each class prototype: int32 ``(n_samples, n_classes)``.

        Encodes and compares in chunks of rows, so memory stays bounded for any number of samples.
        """
        x = self._validated_input(X)
        parts = [
            hamming_distance(self._codes(x[i : i + CHUNK_ROWS]), self.prototypes_) for i in range(0, len(x), CHUNK_ROWS)
        ]
        return np.concatenate(parts, axis=0)

    def similarity(self, X: Any) -> np.ndarray:
        """Bipolar cosine ``1 - 2 H / D`` of each code with each prototype: float64 ``(n_samples, n_classes)``."""
        h = self.hamming(X).astype(np.float64)
        return 1.0 - 2.0 * h / self.dim_

    def decision_function(self, X: Any) -> np.ndarray:
        """``similarity(X)`` ``(n_samples, n_classes)``; for two classes ``(n_samples,)``, positive for
        ``classes_[1]``."""
        s = self.similarity(X)
        if len(self.classes_) == 2:
            return s[:, 1] - s[:, 0]
        return s

    def predict(self, X: Any) -> np.ndarray:
        """Class of the nearest prototype in Hamming distance (ties go to the first class)."""
        nearest = np.argmin(self.hamming(X), axis=1)
        return self.classes_[nearest]

    def _logits(self, X: Any) -> np.ndarray:
        s = self.similarity(X)
        logits = np.sqrt(self.dim_) * s
        return logits - logits.max(axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of ``sqrt(D) * similarity`` over classes: float64 ``(n_samples, n_classes)``.

        A monotone confidence score (its argmax is ``predict``), not a calibrated probability;
        wrap the classifier in ``sklearn.calibration.CalibratedClassifierCV`` for that.
        The scale ``sqrt(D)`` makes a similarity gap of one standard deviation of random-code
        noise (``1 / sqrt(D)``) worth one unit of logit.
        """
        logits = self._logits(X)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        logits = self._logits(X)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
