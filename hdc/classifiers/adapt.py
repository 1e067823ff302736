"""AdaptHD-style retraining: add the sample to its class, subtract it from the predicted one."""

from __future__ import annotations

import numpy as np

from hdc.classifiers._retrain import RetrainedHD

__all__ = ["AdaptHD"]


class AdaptHD(RetrainedHD):
    """Retrained centroid classifier with the AdaptHD / perceptron rule.

    For a misclassified sample ``x`` (bipolar) of class ``t`` predicted as ``p``:
    ``W[t] += lr * x`` and ``W[p] -= lr * x`` (Imani et al., "AdaptHD", 2019; the rate decays over
    passes, see :class:`RetrainedHD`).  The float prototypes ``W`` start as the class means of the bipolar
    codes and are binarised with ``sign`` for inference (see :class:`RetrainedHD` for the loop).

    Args:
        dim: hypervector dimension ``D``.
        encoder: ``"kernel"`` (default), ``"projection"``, ``"level"`` or ``"precomputed"``.
        encoder_params: extra keyword arguments of the encoder.
        epochs: maximum retraining passes.
        lr: learning rate of the first pass, relative to class means in ``[-1, 1]``.
        batch_size: samples per update step (the prototypes are re-binarised after each).
        seed: int seed (or Generator) of the encoder and the shuffling.
        verbose: show a tqdm progress bar over epochs.

    Fitted attributes: those of :class:`CentroidHD` except the counts, plus ``weights_`` (float32
    ``(n_classes, dim)``), ``n_iter_`` and ``train_errors_`` (mistakes per pass).
    """

    def __init__(self, dim: int = 10000, encoder: str = "kernel", encoder_params: dict | None = None,
                 epochs: int = 10, lr: float = 0.1, batch_size: int = 64, seed: int = 0,
                 verbose: bool = False) -> None:
        self.dim = dim
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.verbose = verbose

    def _coefficients(self, weights: np.ndarray, x: np.ndarray, target: np.ndarray, pred: np.ndarray,
                      lr: float) -> tuple[np.ndarray, np.ndarray]:
        step = np.full(len(x), lr, dtype=np.float32)
        return step, step
