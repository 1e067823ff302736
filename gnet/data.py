"""Datasets as torch tensors for G-Net training: train/val/test splits, scaled the way the paper scales them.

Built on :mod:`hdc.datasets` (numpy, offline). Every split holds float32 inputs and int64 labels:

- images (N, C, H, W) mapped to [-1, 1] from their raw pixel range (the paper's ``Normalize(0.5, 0.5)``);
- time series (N, C, L) z-scored per channel with the training part's mean and std (for univariate data this
  is the paper's global train z-score);
- tabular (N, F) standardised per feature with the training part's mean and std.

"Training part" means the training split minus the validation items, so nothing held out leaks into the scaling.

``scaling="unit"`` is the input convention of models that read inputs as probabilities or threshold them (DiffLogic,
:mod:`gnet.logic`): images mapped to [0, 1] from their raw pixel range, other data left raw (such a model brings its
own encoder for them, e.g. quantile thermometer thresholds). The default ``"standard"`` is the G-Net scaling above.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from hdc import datasets as hdc_datasets
from hdc._validate import check_choice, check_int

DEFAULT_VAL_FRACTION = 0.1
SCALINGS = ("standard", "unit")


@dataclass(frozen=True)
class DataSplits:
    """Scaled train / val / test splits of one dataset.

    train, val, test: TensorDataset of (x float32 (N, *input_shape), y int64 (N,)); val may hold 0 items.
    mean, std: float32 arrays broadcastable to input_shape with x_scaled = (x_raw - mean) / std, so the same
    scaling can be applied to new raw inputs.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    n_classes: int
    class_names: tuple[str, ...]
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    mean: np.ndarray
    std: np.ndarray

    def scale(self, x_raw: np.ndarray) -> torch.Tensor:
        """Apply this dataset's scaling to raw inputs (N, *input_shape) -> float32 tensor."""
        x_raw = np.asarray(x_raw)
        if x_raw.shape[1:] != self.input_shape:
            raise ValueError(f"x_raw must have shape (N, {', '.join(map(str, self.input_shape))}), got {x_raw.shape}")
        return torch.from_numpy(((x_raw.astype(np.float32) - self.mean) / self.std).astype(np.float32))


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    download: bool = True,
    scaling: str = "standard",
) -> DataSplits:
    """Load ``name`` (any :func:`hdc.datasets.load` name) and split off ``val_fraction`` of train with ``seed``.

    The paper's MNIST protocol (58,000 / 2,000 / 10,000) is ``val_fraction=2000 / 60000``. ``scaling``: one of
    :data:`SCALINGS` (see the module docstring).
    """
    dataset = hdc_datasets.load(name, root, download=download)
    return split_dataset(dataset, val_fraction=val_fraction, seed=seed, scaling=scaling)


def load_for_model(
    source: Mapping[str, Any], dataset: str | None = None, root: str | os.PathLike | None = None
) -> DataSplits:
    """The splits a model was trained on, from its checkpoint config or EHD ``meta`` (``source``).

    ``source`` names the ``dataset`` (overridden by the argument), its ``val_fraction`` (default
    :data:`DEFAULT_VAL_FRACTION`) and ``data_seed`` (default 0); the scaling of non-image data depends on both.
    Its ``scaling`` (default ``"standard"``) is the input scaling the model was trained with.
    """
    name = dataset or source.get("dataset")
    if name is None:
        raise ValueError("the model names no dataset; pass one (--dataset)")
    return load_dataset(
        name,
        root,
        val_fraction=source.get("val_fraction", DEFAULT_VAL_FRACTION),
        seed=source.get("data_seed", 0),
        scaling=source.get("scaling", "standard"),
    )


def load_test_split(
    source: Mapping[str, Any],
    dataset: str | None = None,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
) -> tuple[str, torch.Tensor, torch.Tensor]:
    """(dataset name, x float32 (B, *input_shape), y int64 (B,)): the test split a model was trained on (see
    :func:`load_for_model`), its first ``limit`` items if given."""
    if limit is not None:
        limit = check_int(limit, "limit", minimum=1)
    data = load_for_model(source, dataset, root)
    x, y = data.test.tensors
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return data.name, x, y


def split_dataset(
    dataset: hdc_datasets.Dataset,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    scaling: str = "standard",
) -> DataSplits:
    """Split a :class:`hdc.datasets.Dataset` into train/val (see :func:`hdc.datasets.train_val_split`) and scale
    (``scaling``: one of :data:`SCALINGS`, see the module docstring)."""
    check_choice(scaling, SCALINGS, "scaling")
    for split in ("train", "test"):
        if not np.isfinite(getattr(dataset, f"x_{split}")).all():
            raise ValueError(f"dataset {dataset.name!r}: x_{split} contains NaN or inf")
    train_idx, val_idx = hdc_datasets.train_val_split(len(dataset.y_train), val_fraction, seed)
    x_fit = dataset.x_train[train_idx]
    mean, std = _scaling(dataset, x_fit) if scaling == "standard" else _unit_scaling(dataset)

    def tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        return TensorDataset(
            torch.from_numpy(((x - mean) / std).astype(np.float32, copy=False)), torch.from_numpy(y.astype(np.int64))
        )

    return DataSplits(
        name=dataset.name,
        kind=dataset.kind,
        input_shape=tuple(dataset.shape),
        n_classes=dataset.n_classes,
        class_names=dataset.class_names,
        mean=mean,
        std=std,
        train=tensors(x_fit, dataset.y_train[train_idx]),
        val=tensors(dataset.x_train[val_idx], dataset.y_train[val_idx]),
        test=tensors(dataset.x_test, dataset.y_test),
    )


def _scaling(dataset: hdc_datasets.Dataset, x_fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float32 for x_scaled = (x - mean) / std, broadcastable to the per-sample shape."""
    if dataset.kind == "image":
        low, high = dataset.value_range if dataset.value_range is not None else (0.0, 255.0)
        # [low, high] -> [-1, 1], i.e. ToTensor then Normalize(0.5, 0.5) for 8-bit pixels.
        mean, std = np.array((low + high) / 2), np.array((high - low) / 2)
    else:
        # Statistics over samples (and time steps): one value per feature / channel, shape (F,) or (C, 1).
        axes = (0,) if dataset.kind == "tabular" else (0, 2)
        mean = x_fit.mean(axis=axes, dtype=np.float64, keepdims=True)[0]
        std = x_fit.std(axis=axes, dtype=np.float64, keepdims=True)[0]
        std = np.where(std > 0, std, 1.0)  # a constant feature stays constant (0) instead of becoming NaN
    return mean.astype(np.float32), std.astype(np.float32)


def _unit_scaling(dataset: hdc_datasets.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float32 mapping an image's raw pixel range to [0, 1]; identity for other kinds."""
    if dataset.kind != "image":
        return np.zeros((), np.float32), np.ones((), np.float32)
    low, high = dataset.value_range if dataset.value_range is not None else (0.0, 255.0)
    return np.array(low, np.float32), np.array(high - low, np.float32)


def make_loader(
    dataset: Dataset | tuple[torch.Tensor, torch.Tensor], batch_size: int, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """DataLoader over ``dataset`` (a torch Dataset or an (x, y) tensor pair), single process.

    The shuffle order comes from a private ``torch.Generator`` seeded with ``seed``: the same seed gives the same
    batches, and the global torch RNG is neither read nor advanced.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    if isinstance(dataset, tuple):
        if len(dataset) != 2 or not all(isinstance(t, torch.Tensor) for t in dataset):
            raise ValueError("dataset given as a tuple must be (x, y) tensors")
        if len(dataset[0]) != len(dataset[1]):
            raise ValueError(f"dataset x has {len(dataset[0])} items but y has {len(dataset[1])}")
        dataset = TensorDataset(*dataset)
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(dataset, batch_size=int(batch_size), shuffle=bool(shuffle), generator=generator, num_workers=0)
