"""Training with a checkpoint cache: one folder per (method, recipe, data, seed), reused when finished.

The folder name carries a SHA-256 of everything that determines the trained weights (the method, the model config
with its architecture, the :class:`gnet.train.TrainConfig`, the dataset with its split and scaling), so a changed
recipe trains anew and an unchanged one is loaded. A run stopped by the time budget leaves ``last.pt`` and continues
from it next time (:func:`gnet.train.train` resumes exactly); ``done.json`` marks a finished one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from gnet.checkpoint import load_checkpoint
from gnet.data import DataSplits
from gnet.distributed import all_gather_objects, is_main
from gnet.train import TrainConfig, train
from hdc.io import atomic_write_text

__all__ = ["OutOfTime", "Trained", "file_sha256", "from_rank0", "past", "recipe_key", "train_cached"]


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (``value`` itself in a single process); every rank must call it."""
    return all_gather_objects(value)[0]


def past(deadline: float) -> bool:
    """Whether rank 0's ``time.monotonic()`` is past ``deadline``: one answer for every rank (a collective)."""
    return bool(from_rank0(time.monotonic() > deadline))


class OutOfTime(Exception):
    """The comparison's time budget ran out; what is finished is kept and the next run continues."""


@dataclass
class Trained:
    """A trained network in eval mode with the best validation weights, and where it came from."""

    model: nn.Module
    config: dict[str, Any]
    path: Path
    sha256: str
    train_seconds: float
    epochs: int
    reused: bool


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recipe_key(key: dict[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of ``key`` as sorted JSON."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_best(model: nn.Module, folder: Path) -> Path:
    path = folder / "best.pt"
    model.load_state_dict(load_checkpoint(path)["state_dict"])
    model.eval()
    return path


def train_cached(
    root: Path,
    name: str,
    build: Callable[[], tuple[nn.Module, dict[str, Any]]],
    data: DataSplits,
    config: TrainConfig,
    data_key: dict[str, Any],
    deadline: float,
    progress: bool = False,
) -> Trained:
    """Train ``build()``'s model on ``data`` with ``config``, or load it from ``root`` if trained before.

    Args:
        root: the checkpoint cache folder.
        name: the training method's name (the folder's prefix).
        build: returns (untrained model, model config) for this seed.
        data_key: what identifies the data (dataset name, val_fraction, split seed, scaling).
        deadline: a ``time.monotonic()`` reading; after it (on rank 0's clock), training stops between epochs with
            :class:`OutOfTime` (``last.pt`` is kept, and the next call resumes from it).
    """
    model, model_config = build()
    key = {"method": name, "model": model_config, "train": dataclasses.asdict(config), "data": data_key}
    folder = root / f"{name}-seed{config.seed}-{recipe_key(key)}"
    done = folder / "done.json"
    info = from_rank0(json.loads(done.read_text()) if is_main() and done.is_file() else None)
    if info is not None:
        path = _load_best(model, folder)
        return Trained(model, model_config, path, file_sha256(path), info["train_seconds"], info["epochs"], True)
    if past(deadline):
        raise OutOfTime(f"no time left to train {folder.name}")

    def on_epoch(record: dict[str, float]) -> None:
        if record["epoch"] < config.epochs and past(deadline):
            raise OutOfTime(f"time budget spent while training {folder.name} (epoch {int(record['epoch'])})")

    last = folder / "last.pt"
    result = train(
        model,
        data.train.tensors,
        data.val.tensors,
        config,
        model_config,
        out_dir=folder,
        resume=last if from_rank0(last.is_file()) else None,
        progress=progress,
        on_epoch=on_epoch,
    )
    seconds = float(sum(h["seconds"] for h in result.history))
    info = {"train_seconds": seconds, "epochs": len(result.history), "best_epoch": result.best_epoch + 1, "key": key}
    if is_main():
        atomic_write_text(done, json.dumps(info, indent=1, default=str))
    path = _load_best(model, folder)
    return Trained(model, model_config, path, file_sha256(path), seconds, len(result.history), False)
