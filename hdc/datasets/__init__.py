"""Offline dataset loading as numpy arrays (no torch): sklearn toys, MNIST-style IDX files, UCR/UEA via aeon.

``load(name)`` returns a :class:`Dataset` with raw-scale float32 inputs and int64 labels; scaling to the
network's input range is the caller's job (``gnet.data`` does it for G-Nets). Names:

- ``"digits"`` (1, 8, 8) images, ``"iris"``, ``"wine"``, ``"breast_cancer"`` tabular: shipped with
  scikit-learn, split once into a stratified 70/30 train/test split with seed 0.
- ``"mnist"``, ``"fashion-mnist"``: the four standard IDX files (gzipped or raw), searched in the places
  :func:`search_places` lists (:mod:`hdc.datasets.places`: ``root=``, environment variables, the shared folder
  beside the source checkout, the OS dataset packages, the user cache); downloaded into the user cache when
  ``download=True`` and none has them.
- ``"ucr:NAME"``: a UCR/UEA problem through ``aeon.datasets.load_classification`` (optional extra
  ``gnet-hdc[timeseries]``); the ones bundled inside the aeon wheel load offline (:func:`bundled_ucr_names`).

``python3 -m hdc.datasets NAME ...`` prints a summary row per dataset.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray

from hdc._validate import check_int, check_number
from hdc.datasets.base import KINDS, Dataset, DatasetNotFoundError
from hdc.datasets.idx import FASHION_MNIST_CLASSES, IDX_DOWNLOAD_URLS, IDX_FILES, IDX_NAMES, read_idx
from hdc.datasets.idx import load_idx_dataset as _load_idx_dataset
from hdc.datasets.places import DATA_DIR_ENV_VAR, DATASET_ENV_VARS, OS_PACKAGE_DIRS, cache_dir, search_places
from hdc.datasets.ucr import UCR_PREFIX, bundled_ucr_names
from hdc.datasets.ucr import load_ucr as _load_ucr

__all__ = [
    "BUILTIN_NAMES",
    "DATASET_ENV_VARS",
    "DATA_DIR_ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "IDX_DOWNLOAD_URLS",
    "IDX_FILES",
    "IDX_NAMES",
    "KINDS",
    "OS_PACKAGE_DIRS",
    "SKLEARN_NAMES",
    "UCR_PREFIX",
    "Dataset",
    "DatasetNotFoundError",
    "bundled_ucr_names",
    "cache_dir",
    "load",
    "read_idx",
    "search_places",
    "train_val_split",
    "valid_names",
]

SKLEARN_NAMES = ("digits", "iris", "wine", "breast_cancer")
BUILTIN_NAMES = SKLEARN_NAMES + IDX_NAMES

# 70/30 stratified with seed 0: the split the torchhd baseline table in the reference notes was measured on,
# so our numbers on these sets compare with it directly.
SKLEARN_TEST_FRACTION = 0.3
SKLEARN_SPLIT_SEED = 0


def load(name: str, root: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    """Load dataset ``name`` (see the module docstring for the names).

    root: for mnist / fashion-mnist the directory holding the IDX files (then the only place looked, and the
    download target); for ucr:NAME a directory holding NAME/NAME_TRAIN.ts and NAME/NAME_TEST.ts; ignored for
    the sklearn sets. download: whether a missing MNIST-style or UCR set may be fetched from the network.
    """
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {type(name).__name__}")
    if name.lower().startswith(UCR_PREFIX):
        return _load_ucr(name[len(UCR_PREFIX) :].strip(), root, download)
    key = name.strip().lower()
    if key in SKLEARN_NAMES:
        return _load_sklearn(key)
    if key in IDX_NAMES:
        return _load_idx_dataset(key, root, download)
    raise ValueError(f"unknown dataset name {name!r}; valid names: {', '.join(valid_names())}")


def valid_names() -> list[str]:
    """Every accepted name: the built-in ones, then 'ucr:NAME' for each UCR/UEA set bundled with aeon."""
    ucr = bundled_ucr_names()
    if ucr:
        tail = [f"{UCR_PREFIX}{problem}" for problem in ucr]
        tail.append(f"{UCR_PREFIX}NAME (any UCR/UEA problem; non-bundled ones need download=True and network)")
    else:
        tail = [f"{UCR_PREFIX}NAME (needs aeon: pip install gnet-hdc[timeseries])"]
    return list(BUILTIN_NAMES) + tail


def train_val_split(n_items: int, val_fraction: float, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Split indices ``0 .. n_items - 1`` into ``(train_idx, val_idx)``, int64, each sorted ascending.

    The validation set has ``round(n_items * val_fraction)`` items (at least 1 when ``val_fraction > 0``), drawn
    without replacement by ``numpy.random.default_rng(seed)``; the training set keeps at least one item.
    """
    n_items = check_int(n_items, "n_items", minimum=1)
    val_fraction = check_number(val_fraction, "val_fraction", 0.0, 1.0)
    if val_fraction == 1.0:
        raise ValueError("val_fraction must be < 1, got 1.0")
    seed = check_int(seed, "seed", minimum=0)
    n_val = round(n_items * val_fraction)
    if val_fraction > 0:
        n_val = max(n_val, 1)
    if n_val >= n_items:
        raise ValueError(f"val_fraction={val_fraction} of n_items={n_items} leaves no training items")
    perm = np.random.default_rng(seed).permutation(n_items)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def _load_sklearn(name: str) -> Dataset:
    from sklearn import datasets as skd
    from sklearn.model_selection import train_test_split

    bunch = getattr(skd, f"load_{name}")()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    shape: tuple[int, ...]
    if name == "digits":
        kind, shape, value_range = "image", (1, 8, 8), (0.0, 16.0)
    else:
        kind, shape, value_range = "tabular", (x.shape[1],), None
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=SKLEARN_TEST_FRACTION, stratify=y, random_state=SKLEARN_SPLIT_SEED
    )
    return Dataset(
        name=name,
        kind=kind,
        shape=shape,
        n_classes=len(bunch.target_names),
        class_names=tuple(str(c) for c in bunch.target_names),
        value_range=value_range,
        x_train=np.ascontiguousarray(x_tr.reshape(-1, *shape)),
        y_train=y_tr,
        x_test=np.ascontiguousarray(x_te.reshape(-1, *shape)),
        y_test=y_te,
    )
