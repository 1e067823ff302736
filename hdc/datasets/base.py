"""The :class:`Dataset` record every loader returns, and the error for files found nowhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["KINDS", "Dataset", "DatasetNotFoundError"]

KINDS = ("image", "tabular", "timeseries")


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """The data files were found nowhere; the message names every place looked and how to provide them."""


@dataclass(frozen=True)
class Dataset:
    """A fixed train/test split.

    x_train: float32 (n_train, *shape) at raw scale (pixels 0..255, digits 0..16, measured units otherwise).
    y_train: int64 (n_train,) in [0, n_classes). Same for x_test / y_test.
    shape: per-sample shape, (C, H, W) for images, (in_features,) for tabular, (C, L) for time series.
    value_range: (low, high) of the raw pixel scale for images, None otherwise.
    class_names: one string per class index.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    n_classes: int
    x_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float32]
    y_test: NDArray[np.int64]
    class_names: tuple[str, ...]
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Dataset {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if len(self.class_names) != self.n_classes:
            raise ValueError(f"Dataset {self.name!r}: {len(self.class_names)} class_names for {self.n_classes} classes")
        for split in ("train", "test"):
            self._check_split(split)

    def _check_split(self, split: str) -> None:
        x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
        if x.dtype != np.float32 or y.dtype != np.int64:
            raise ValueError(
                f"Dataset {self.name!r}: x_{split} must be float32 and y_{split} int64, got {x.dtype} and {y.dtype}"
            )
        if x.shape[1:] != tuple(self.shape) or y.shape != x.shape[:1]:
            raise ValueError(
                f"Dataset {self.name!r}: x_{split} {x.shape} / y_{split} {y.shape} do not match "
                f"per-sample shape {self.shape}"
            )
        if len(x) == 0:
            raise ValueError(f"Dataset {self.name!r}: the {split} split is empty")
        if not np.isfinite(x).all():
            raise ValueError(
                f"Dataset {self.name!r}: x_{split} contains NaN or inf ({int((~np.isfinite(x)).sum())} values)"
            )
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"Dataset {self.name!r}: y_{split} has labels outside [0, {self.n_classes})")
