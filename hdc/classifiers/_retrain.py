"""Iterative retraining shared by AdaptHD and OnlineHD: float prototypes, binary-aware updates."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from hdc._validate import check_int, check_number
from hdc.classifiers._base import HammingClassifier
from hdc.classifiers.centroid import class_bit_counts
from hdc.hamming import hamming_distance
from hdc.packed import pack_sign, to_bipolar

__all__ = ["RetrainedHD"]

# Distinguishes the shuffling stream from the encoder's SeedSequence(seed, spawn_key=...) streams.
_SHUFFLE_STREAM = 0x5EED


class RetrainedHD(HammingClassifier):
    """Base of the retrained classifiers.

    ``fit`` starts from the class means of the bipolar codes (the centroid model, scaled to
    ``[-1, 1]``) and makes ``epochs`` shuffled passes in batches of ``batch_size``, pass ``e``
    (from 0) at learning rate ``lr / (1 + e)`` (an iteration-dependent rate in the spirit of
    AdaptHD; it steadies the last passes).  In each batch
    the current prototypes are binarised (``sign``, ties to +1) and the samples they misclassify
    in Hamming distance (and, where the subclass sets a margin, the samples correct by less than
    it) update the float prototypes by the subclass rule.  Predicting with the
    binarised prototypes during training is what the model is used with at inference, so the
    updates correct the binary model's mistakes, not the float one's.  Training stops early after
    an epoch without updates.  Only one batch is ever unpacked to floats, so memory is
    ``O(n_samples * D / 8 + batch_size * D * 4 + n_classes * D * 4)`` bytes.

    ``partial_fit`` runs one pass of the same rule at rate ``lr`` over the given batch, in the
    given order, starting from zero prototypes on the first call (online learning without the
    bundling pass).
    """

    def _check_params(self) -> None:
        check_int(self.epochs, "epochs", minimum=0)
        check_number(self.lr, "lr", 0.0, strict=True)
        check_int(self.batch_size, "batch_size", minimum=1)

    def _margin_bits(self) -> float:
        """Hamming margin below which a correctly classified sample still updates (0: mistakes only)."""
        return 0.0

    def _coefficients(
        self, weights: np.ndarray, x: np.ndarray, target: np.ndarray, pred: np.ndarray, lr: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step sizes ``(a, b)`` (float32 ``(k,)``) of the rule ``W[t] += a x``, ``W[p] -= b x``
        for misclassified bipolar samples ``x`` float32 ``(k, D)`` at learning rate ``lr``."""
        raise NotImplementedError  # pragma: no cover

    def _update(self, weights: np.ndarray, x: np.ndarray, target: np.ndarray, pred: np.ndarray, lr: float) -> None:
        a, b = self._coefficients(weights, x, target, pred, lr)
        # One (C, k) x (k, D) product instead of a scatter-add per sample.  einsum, not BLAS: these
        # products are small, multi-threaded BLAS stalls on them when the CPU is shared (measured
        # 15-35 ms against 1.2 ms for k = 64, D = 10,000), and its result can depend on the thread count.
        coef = np.zeros((weights.shape[0], len(x)), dtype=np.float32)
        rows = np.arange(len(x))
        np.add.at(coef, (target, rows), a)
        np.add.at(coef, (pred, rows), -b)
        weights += np.einsum("ck,kd->cd", coef, x)

    def _pass(
        self, weights: np.ndarray, codes: np.ndarray, y: np.ndarray, order: np.ndarray, lr: float
    ) -> tuple[int, int]:
        """One pass over ``codes[order]`` in batches at learning rate ``lr``.

        A sample updates the prototypes when its Hamming distance to the nearest other class
        minus the distance to its own is below ``_margin_bits()`` (every mistake; with a positive
        margin also narrowly correct samples), against that nearest other class.
        Returns ``(mistakes, updates)``.
        """
        dim = self.dim_
        bs = int(self.batch_size)
        margin = self._margin_bits()
        protos = pack_sign(weights)
        mistakes = updates = 0
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            batch = codes[idx]
            target = y[idx]
            dist = hamming_distance(batch, protos).astype(np.int64)
            rows = np.arange(len(idx))
            own = dist[rows, target]
            dist[rows, target] = np.iinfo(np.int64).max
            # The nearest other class; when the sample is misclassified this is the predicted class
            # (a tie between the own class and another counts as a mistake, as argmin would break it
            # towards the lower index).
            rival = np.argmin(dist, axis=1)
            gap = dist[rows, rival] - own
            wrong = (gap < 0) | ((gap == 0) & (rival < target))
            mistakes += int(np.count_nonzero(wrong))
            move = np.flatnonzero(wrong | (gap < margin))
            if move.size == 0:
                continue
            updates += int(move.size)
            x = to_bipolar(batch[move], dim, np.float32)
            self._update(weights, x, target[move], rival[move], lr)
            protos = pack_sign(weights)
        return mistakes, updates

    def _finish(self, weights: np.ndarray) -> None:
        self.weights_ = weights
        self.prototypes_ = pack_sign(self.weights_)

    def _fit_codes(self, codes: np.ndarray, y: np.ndarray, seed: int) -> None:
        counts, totals = class_bit_counts(codes, y, len(self.classes_), self.dim_)
        denom = np.maximum(totals, 1)[:, None].astype(np.float64)
        weights = ((2 * counts - totals[:, None]) / denom).astype(np.float32)
        rng = np.random.default_rng(np.random.SeedSequence([seed, _SHUFFLE_STREAM]))
        self.train_errors_ = []
        epochs = tqdm(range(int(self.epochs)), disable=not self.verbose, desc=type(self).__name__, unit="epoch")
        for epoch in epochs:
            lr = float(self.lr) / (1 + epoch)
            mistakes, updates = self._pass(weights, codes, y, rng.permutation(len(y)), lr)
            self.train_errors_.append(mistakes)
            if self.verbose:
                epochs.set_postfix(train_error=f"{mistakes / len(y):.4f}")
            if updates == 0:
                break
        self.n_iter_ = len(self.train_errors_)
        self._finish(weights)

    def _partial_fit_codes(self, codes: np.ndarray, y: np.ndarray, first: bool) -> None:
        if first:
            weights = np.zeros((len(self.classes_), self.dim_), dtype=np.float32)
            self.train_errors_ = []
        else:
            weights = self.weights_.copy()
        mistakes, _ = self._pass(weights, codes, y, np.arange(len(y)), float(self.lr))
        self.train_errors_ = list(self.train_errors_) + [mistakes]
        self.n_iter_ = len(self.train_errors_)
        self._finish(weights)
