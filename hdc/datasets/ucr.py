"""UCR / UEA time-series problems through ``aeon.datasets.load_classification`` (optional extra
``gnet-hdc[timeseries]``); the problems bundled inside the aeon wheel load offline."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from hdc.datasets.base import Dataset, DatasetNotFoundError

__all__ = ["UCR_PREFIX", "bundled_ucr_names", "load_ucr"]

UCR_PREFIX = "ucr:"


_AEON_HINT = "pip install gnet-hdc[timeseries]"


def bundled_ucr_names() -> list[str]:
    """Classification problems shipped inside the installed aeon wheel (load offline); [] without aeon.

    A problem counts when aeon/datasets/data/<dir> holds <name>_TRAIN.ts and <name>_TEST.ts whose header says
    ``@classLabel true``; ``<dir>_eq`` entries are aeon's equal-length versions of unequal-length sets.
    """
    data_dir = _aeon_data_dir()
    if data_dir is None or not data_dir.is_dir():
        return []
    names = []
    for sub in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        for stem in (sub.name, f"{sub.name}_eq"):
            train, test = sub / f"{stem}_TRAIN.ts", sub / f"{stem}_TEST.ts"
            if train.is_file() and test.is_file() and _ts_is_classification(train):
                names.append(stem)
    return names


def _aeon_data_dir() -> Path | None:
    # find_spec locates aeon without importing it (importing aeon costs seconds).
    try:
        spec = importlib.util.find_spec("aeon")
    except (ImportError, ValueError):  # ValueError: sys.modules["aeon"] is None or has no spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def _ucr_available(base: str, root: str | os.PathLike | None) -> bool:
    """Whether aeon would load problem `base` without downloading."""
    if root is not None:
        folder = Path(root).expanduser() / base
        return (folder / f"{base}_TRAIN.ts").is_file() and (folder / f"{base}_TEST.ts").is_file()
    try:  # also sees aeon's download cache; absent from older aeon releases
        from aeon.datasets.dataset_collections import get_downloaded_tsc_tsr_datasets
    except ImportError:
        return base in {stem.removesuffix("_eq") for stem in bundled_ucr_names()}
    return base in get_downloaded_tsc_tsr_datasets()


def _ts_is_classification(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            low = line.strip().lower()
            if low.startswith("@data"):
                return False
            if low.startswith("@classlabel"):
                return low.split()[1:2] == ["true"]
    return False


def _class_order(labels: np.ndarray) -> list[str]:
    """Distinct labels, numerically ordered when all are numbers ('2' before '10'), else alphabetically."""
    distinct = sorted({str(v) for v in labels})
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def load_ucr(problem: str, root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """UCR/UEA problem ``problem`` (without the ``ucr:`` prefix); ``root`` holds ``PROBLEM/PROBLEM_TRAIN.ts`` and
    ``PROBLEM/PROBLEM_TEST.ts`` (default: aeon's bundled data and download cache)."""
    if not problem:
        raise ValueError("ucr: needs a problem name, e.g. 'ucr:GunPoint'; bundled: " + ", ".join(bundled_ucr_names()))
    try:
        from aeon.datasets import load_classification
    except ImportError as e:
        raise ImportError(f"loading 'ucr:{problem}' needs the optional dependency aeon: {_AEON_HINT}") from e
    name = f"{UCR_PREFIX}{problem}"
    base = problem.removesuffix("_eq")
    if not download and not _ucr_available(base, root):
        where = f"{Path(root) / base}" if root is not None else "aeon's bundled data or its download cache"
        raise DatasetNotFoundError(
            f"{name}: {base}_TRAIN.ts / {base}_TEST.ts not found in {where} and download=False. Bundled problems: "
            f"{', '.join(bundled_ucr_names())}. Pass root=DIR holding {base}/{base}_TRAIN.ts and "
            f"{base}/{base}_TEST.ts, or download=True to fetch it from Zenodo."
        )
    extract_path = None if root is None else os.fspath(root)
    try:
        x_tr, y_tr = load_classification(problem, split="train", extract_path=extract_path)
        x_te, y_te = load_classification(problem, split="test", extract_path=extract_path)
    except ValueError as e:
        raise ValueError(f"{name}: aeon could not load it: {e}") from e
    if isinstance(x_tr, list) or isinstance(x_te, list):
        eq = f"'ucr:{problem}_eq'" if f"{problem}_eq" in bundled_ucr_names() else "an equal-length version"
        raise ValueError(
            f"{name} has series of unequal length; a fixed (C, L) input is needed. Use {eq} "
            f"(aeon truncates the series to one length) or pad them yourself"
        )
    classes = _class_order(np.concatenate([y_tr, y_te]))
    index = {c: i for i, c in enumerate(classes)}
    return Dataset(
        name=name,
        kind="timeseries",
        shape=tuple(x_tr.shape[1:]),
        n_classes=len(classes),
        class_names=tuple(classes),
        x_train=np.ascontiguousarray(x_tr, dtype=np.float32),
        y_train=np.array([index[str(v)] for v in y_tr], np.int64),
        x_test=np.ascontiguousarray(x_te, dtype=np.float32),
        y_test=np.array([index[str(v)] for v in y_te], np.int64),
    )
