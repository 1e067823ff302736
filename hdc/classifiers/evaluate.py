"""Fit a Hamming classifier on a dataset's fixed train split and measure it on the test split (what
``hdc classify`` runs)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hdc._validate import check_choice, check_int
from hdc.classifiers.adapt import AdaptHD
from hdc.classifiers.centroid import CentroidHD
from hdc.classifiers.online import OnlineHD

__all__ = ["MODELS", "DatasetEvaluation", "evaluate_on_dataset"]

MODELS = {"centroid": CentroidHD, "adapthd": AdaptHD, "onlinehd": OnlineHD}


@dataclass(frozen=True)
class DatasetEvaluation:
    """The settings and measurements of one :func:`evaluate_on_dataset` run (times in seconds, wall clock)."""

    dataset: str
    model: str
    dim: int
    encoder: str
    scaling: str
    seed: int
    n_train: int
    n_test: int
    in_features: int
    n_classes: int
    epochs: int | None  # retraining passes actually run (None for the centroid model)
    accuracy: float
    load_s: float
    fit_s: float  # encoding the training set included
    predict_s: float  # encoding the test set included

    @property
    def test_samples_per_s(self) -> float | None:
        return self.n_test / self.predict_s if self.predict_s > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields plus ``test_samples_per_s``."""
        return {**asdict(self), "test_samples_per_s": self.test_samples_per_s}


def evaluate_on_dataset(
    dataset: str,
    model: str = "onlinehd",
    *,
    dim: int = 10000,
    encoder: str = "kernel",
    scaling: str | None = None,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 64,
    seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    root: str | None = None,
    download: bool = True,
    verbose: bool = False,
) -> DatasetEvaluation:
    """Load ``dataset`` (:func:`hdc.datasets.load`), fit ``model`` (a key of :data:`MODELS`) on its train split
    (the first ``train_size`` samples when given) and score it on the test split (the first ``test_size``).

    Inputs are flattened to ``(n_samples, in_features)``. ``scaling`` defaults to ``"global"`` for images (pixels
    share one scale) and ``"feature"`` otherwise; ``epochs``, ``lr`` and ``batch_size`` apply to the retrained
    models only.
    """
    from hdc.datasets import load

    check_choice(model, tuple(MODELS), "model")
    for name, value in (("train_size", train_size), ("test_size", test_size)):
        if value is not None:
            check_int(value, name, minimum=1)
    t0 = time.perf_counter()
    data = load(dataset, root=root, download=download)
    load_s = time.perf_counter() - t0
    x_train = data.x_train.reshape(len(data.x_train), -1)[:train_size]
    y_train = data.y_train[:train_size]
    x_test = data.x_test.reshape(len(data.x_test), -1)[:test_size]
    y_test = data.y_test[:test_size]
    scaling = scaling or ("global" if data.kind == "image" else "feature")

    params: dict[str, Any] = {"dim": dim, "encoder": encoder, "encoder_params": {"scaling": scaling}, "seed": seed}
    if model != "centroid":
        params.update(epochs=epochs, lr=lr, batch_size=batch_size, verbose=verbose)
    clf = MODELS[model](**params)
    t0 = time.perf_counter()
    clf.fit(x_train, y_train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = clf.predict(x_test)
    predict_s = time.perf_counter() - t0
    return DatasetEvaluation(
        dataset=data.name,
        model=model,
        dim=dim,
        encoder=encoder,
        scaling=scaling,
        seed=seed,
        n_train=len(x_train),
        n_test=len(x_test),
        in_features=x_train.shape[1],
        n_classes=data.n_classes,
        epochs=getattr(clf, "n_iter_", None),
        accuracy=float(np.mean(pred == y_test)),
        load_s=load_s,
        fit_s=fit_s,
        predict_s=predict_s,
    )
