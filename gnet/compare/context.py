"""The state one comparison run shares between its methods: data splits, trained networks, deployed models.

Everything here is cached per run, so the float G-Net that ``gnet-float``, ``ehd-paper``, ``ehd-fast`` and
``hdc-on-ehd-codes`` all deploy is trained (or loaded) once per seed, and each dataset scaling is loaded once.
Under a process group every rank holds its own context and calls it alike; rank 0 loads a dataset first (a download
happens once) and rank 0's clock says when the budget is spent (:meth:`Context.out_of_time`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gnet.compare.config import CompareConfig
from gnet.compare.training import Trained, past, train_cached
from gnet.data import DataSplits, load_dataset
from gnet.distributed import main_first
from gnet.train import TrainConfig

__all__ = ["Context"]

# The TrainConfig fields a recipe may set (the seed is the row's).
_TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "seed")


@dataclass
class Context:
    """One run's caches. ``deadline`` is a ``time.monotonic()`` reading after which no new work starts."""

    config: CompareConfig
    checkpoints: Path
    deadline: float
    progress: bool = False
    log: Callable[[str], None] = print
    _data: dict[str, DataSplits] = field(default_factory=dict)
    _trained: dict[tuple[str, int], Trained] = field(default_factory=dict)
    deployed: dict[tuple[str, str], tuple[int, Any, Any]] = field(default_factory=dict)  # (seed, model, test inputs)

    @property
    def recipe(self) -> dict[str, Any]:
        return self.config.recipe

    def time_left(self) -> float:
        """Seconds of the budget left on this process's clock."""
        return self.deadline - time.monotonic()

    def out_of_time(self) -> bool:
        """Whether the budget is spent on rank 0's clock: the same answer on every rank (a collective)."""
        return past(self.deadline)

    def data(self, scaling: str = "standard") -> DataSplits:
        """The dataset's splits in ``scaling`` (split seed 0, the recipe's validation fraction)."""
        if scaling not in self._data:
            with main_first():  # rank 0 fetches the data set first, so that the ranks do not download it at once
                self._data[scaling] = self._load(scaling)
        return self._data[scaling]

    def _load(self, scaling: str) -> DataSplits:
        return load_dataset(
            self.config.dataset,
            self.config.data_dir,
            val_fraction=self.recipe["val_fraction"],
            seed=0,
            scaling=scaling,
        )

    def test_set(self, scaling: str = "standard") -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the test split, its first ``limit`` items if the config sets one."""
        x, y = self.data(scaling).test.tensors
        limit = self.config.limit
        return (x[:limit], y[:limit]) if limit is not None else (x, y)

    def train_config(self, seed: int, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """The recipe's :class:`TrainConfig` for ``seed`` (``overrides`` replace recipe fields)."""
        fields = {k: self.recipe[k] for k in _TRAIN_FIELDS if k in self.recipe}
        return TrainConfig(seed=seed, **{**fields, **(overrides or {})})

    def trained(
        self,
        name: str,
        seed: int,
        build: Callable[[], tuple[nn.Module, dict[str, Any]]],
        scaling: str = "standard",
        overrides: dict[str, Any] | None = None,
    ) -> Trained:
        """The network of training method ``name`` for ``seed``: from this run's cache, the checkpoint cache, or
        trained now (:func:`gnet.compare.training.train_cached`)."""
        key = (name, seed)
        if key not in self._trained:
            data = self.data(scaling)
            data_key = {
                "dataset": self.config.dataset,
                "val_fraction": self.recipe["val_fraction"],
                "split_seed": 0,
                "scaling": scaling,
            }
            self._trained[key] = train_cached(
                self.checkpoints,
                name,
                build,
                data,
                self.train_config(seed, overrides),
                data_key,
                self.deadline,
                self.progress,
            )
        return self._trained[key]
