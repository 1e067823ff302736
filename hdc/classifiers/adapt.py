"""AdaptHD-style retraining: add the sample to its class, subtract it from the predicted one."""

from __future__ import annotations

import math

import numpy as np

from hdc._validate import check_number
from hdc.classifiers._retrain import RetrainedHD

__all__ = ["AdaptHD"]

WIDE_KERNEL_MAX_FEATURES = 64  # fit's median-wide kernel default applies up to this many input features


class AdaptHD(RetrainedHD):
    """Retrained centroid classifier with the AdaptHD / perceptron rule.

    For a misclassified sample ``x`` (bipolar) of class ``t`` predicted as ``p``:
    ``W[t] += lr * x`` and ``W[p] -= lr * x`` (Imani et al., "AdaptHD", 2019; the rate decays over
    passes, see :class:`RetrainedHD`).  The float prototypes ``W`` start as the class means of the bipolar
    codes and are binarised with ``sign`` for inference (see :class:`RetrainedHD` for the loop).

    Two defaults differ from :class:`OnlineHD` and :class:`CentroidHD`, both because the perceptron rule
    updates by a fixed step, whatever the sample, and so memorises the samples it corrects:

    * ``margin``: a sample also updates (against its nearest other class) while it is correct by fewer
      than ``margin * sqrt(dim)`` bits of Hamming distance.  ``sqrt(D) / 2`` is the standard deviation of
      the Hamming distance between a code and an unrelated prototype, so a training sample won by less
      than about two of those is won by the draw of the random codebooks, not by the kernel; without
      the margin, training stops at the first binary model that separates the training set, however
      narrowly.  (OnlineHD's rule already scales each step by how badly the sample is matched.)
    * for inputs of at most :data:`WIDE_KERNEL_MAX_FEATURES` features, the kernel encoder's bandwidth in
      ``fit`` (not ``partial_fit``, which starts from zero prototypes), unless ``encoder_params`` sets
      ``bandwidth`` or ``bandwidth_scale``, is the median pairwise distance (the textbook median
      heuristic) instead of half of it: the centroid model needs a narrow kernel because the kernel alone
      shapes its class boundaries, while the retrained model builds the boundary from corrections, and
      with a narrow kernel those corrections fit single overlapping samples.  Images keep the half-median
      kernel: with hundreds of pixels the pairwise distances concentrate near their median, and a kernel
      that wide gives every pair nearly the same similarity.

    ``margin=0`` and ``encoder_params={"bandwidth_scale": 0.5}`` give the plain rule back.  The accuracy
    each default buys, with the commands that measured it, is in the classifiers section of the docs
    ("AdaptHD defaults").

    Args:
        dim: hypervector dimension ``D``.
        encoder: ``"kernel"`` (default), ``"projection"``, ``"level"`` or ``"precomputed"``.
        encoder_params: extra keyword arguments of the encoder.
        epochs: maximum retraining passes.
        lr: learning rate of the first pass, relative to class means in ``[-1, 1]``.
        margin: also update correctly classified samples whose Hamming gap to the nearest other
            class is below ``margin * sqrt(dim)`` bits (0: only mistakes, the plain AdaptHD rule).
        batch_size: samples per update step (the prototypes are re-binarised after each).
        seed: int seed (or Generator) of the encoder and the shuffling.
        verbose: show a tqdm progress bar over epochs.

    Fitted attributes: those of :class:`CentroidHD` except the counts, plus ``weights_`` (float32
    ``(n_classes, dim)``), ``n_iter_`` and ``train_errors_`` (mistakes per pass).
    """

    def __init__(
        self,
        dim: int = 10000,
        encoder: str = "kernel",
        encoder_params: dict | None = None,
        epochs: int = 10,
        lr: float = 0.1,
        margin: float = 1.0,
        batch_size: int = 64,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.dim = dim
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.epochs = epochs
        self.lr = lr
        self.margin = margin
        self.batch_size = batch_size
        self.seed = seed
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        check_number(self.margin, "margin", 0.0)

    def _margin_bits(self) -> float:
        return float(self.margin) * math.sqrt(self.dim_)

    def _encoder_defaults(self, online: bool, in_features: int) -> dict:
        params = self.encoder_params or {}
        # Only for fit: partial_fit starts from zero prototypes, not the class means, and there the
        # wider kernel's codes share a large common component that the sign of a few perceptron
        # updates cannot separate (measured on the partial_fit test's blobs: 70 % against 99 %).
        # Only for low-dimensional inputs: in many dimensions pairwise distances concentrate near their
        # median, so a kernel as wide as the median gives every pair nearly the same similarity.
        if (
            not online
            and self.encoder == "kernel"
            and "bandwidth" not in params
            and in_features <= WIDE_KERNEL_MAX_FEATURES
        ):
            return {"bandwidth_scale": 1.0}
        return {}

    def _coefficients(
        self, weights: np.ndarray, x: np.ndarray, target: np.ndarray, pred: np.ndarray, lr: float
    ) -> tuple[np.ndarray, np.ndarray]:
        step = np.full(len(x), lr, dtype=np.float32)
        return step, step
