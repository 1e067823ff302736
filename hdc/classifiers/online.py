"""OnlineHD-style retraining: updates weighted by how far the sample is from each prototype."""

from __future__ import annotations

import math

import numpy as np

from hdc.classifiers._retrain import RetrainedHD

__all__ = ["OnlineHD"]


class OnlineHD(RetrainedHD):
    """Retrained centroid classifier with the OnlineHD rule.

    For a misclassified sample ``x`` (bipolar) of class ``t`` predicted as ``p``, with
    ``delta_c = cos(x, W[c])`` the cosine to the float prototypes:
    ``W[t] += lr * (1 - delta_t) * x`` and ``W[p] -= lr * (1 - delta_p) * x``
    (Hernandez-Cane et al., "OnlineHD", DATE 2021; the same rule as torchhd's ``add_online``).
    Samples far from their class move it more; the float prototypes start as the class means
    and are binarised with ``sign`` for inference (see :class:`RetrainedHD` for the loop).

    Args:
        dim: hypervector dimension ``D``.
        encoder: ``"kernel"`` (default), ``"projection"``, ``"level"`` or ``"precomputed"``.
        encoder_params: extra keyword arguments of the encoder.
        epochs: maximum retraining passes.
        lr: learning rate of the first pass, relative to class means in ``[-1, 1]``.
        batch_size: samples per update step (the prototypes are re-binarised after each).
        seed: int seed (or Generator) of the encoder and the shuffling.
        verbose: show a tqdm progress bar over epochs.

    Fitted attributes: as :class:`AdaptHD`.
    """

    def __init__(
        self,
        dim: int = 10000,
        encoder: str = "kernel",
        encoder_params: dict | None = None,
        epochs: int = 10,
        lr: float = 0.1,
        batch_size: int = 64,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.dim = dim
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.verbose = verbose

    def _coefficients(
        self, weights: np.ndarray, x: np.ndarray, target: np.ndarray, pred: np.ndarray, lr: float
    ) -> tuple[np.ndarray, np.ndarray]:
        norms = np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-12)
        # |x| = sqrt(D) for a bipolar x, so the cosine needs no per-sample norm.
        cos = np.einsum("kd,cd->kc", x, weights / norms) / np.float32(math.sqrt(x.shape[1]))
        rows = np.arange(len(x))
        step = np.float32(lr)
        return step * (1 - cos[rows, target]), step * (1 - cos[rows, pred])
