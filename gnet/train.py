"""Training loop for float G-Nets, following the paper's recipe by default.

Adam with ReduceLROnPlateau on the validation loss, a validation split, early stopping, the best checkpoint kept,
and exact resume. Randomness (initial weights, shuffling, dropout) comes from ``seed`` only: the loop runs inside
``torch.random.fork_rng`` so the caller's global RNG is left untouched, and the dropout RNG state is saved in
checkpoints so a resumed run continues identically.

Two optional model hooks let other families train in the same loop without the loop knowing them:

- ``model.set_progress(t)`` is called at the start of every epoch with ``t = annealing_progress(epoch, epochs)``
  (0 in the first epoch, 1 in the last; ``epochs`` is ``TrainConfig.anneal_epochs`` when set): methods that anneal
  (a BNN's quantizers) follow it. The model keeps the value in its state (a buffer), so it is saved in every
  checkpoint.
- ``model.clip_latent_()`` is called after every optimizer step (a BNN clips its latent weights).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gnet.augment import AUGMENTATIONS, augment_batch
from gnet.checkpoint import load_checkpoint, save_checkpoint
from hdc._validate import check_int, check_number
from hdc.io import atomic_write_text

__all__ = ["NonFiniteLossError", "TrainConfig", "TrainResult", "annealing_progress", "evaluate", "predict", "train"]

Pair = tuple[torch.Tensor, ...]  # (x, y), as TensorDataset.tensors holds them


@dataclass
class TrainConfig:
    """Hyper-parameters. Defaults follow the paper's recipe (Adam, ReduceLROnPlateau factor 0.1, patience 10)."""

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    early_stopping: int | None = None  # epochs without val-accuracy gain before stopping; None = never
    seed: int = 0
    eval_batch_size: int = 1000
    augment: str | None = None  # None, "flip", "shift" or "flip+shift" (image data only; see gnet.augment)
    # Annealing horizon of model.set_progress (None: epochs). A run planned for 30 epochs and stopped after 10 (to
    # be resumed with epochs=30) sets epochs=10, anneal_epochs=30, so its schedule is that of the whole run.
    anneal_epochs: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        check_number(self.lr, "lr", minimum=0.0, strict=True)
        check_number(self.weight_decay, "weight_decay", minimum=0.0)
        if not 0.0 < check_number(self.plateau_factor, "plateau_factor") < 1.0:  # ReduceLROnPlateau needs (0, 1)
            raise ValueError(f"plateau_factor must lie in (0, 1), got {self.plateau_factor}")
        check_int(self.plateau_patience, "plateau_patience", minimum=0)
        if self.early_stopping is not None:
            check_int(self.early_stopping, "early_stopping", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        if self.anneal_epochs is not None:
            check_int(self.anneal_epochs, "anneal_epochs", minimum=1)
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augment {self.augment!r}; valid: {', '.join(str(a) for a in AUGMENTATIONS)}")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = float("nan")
    stopped_early: bool = False


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf."""


def annealing_progress(epoch: int, epochs: int) -> float:
    """Progress of 0-based ``epoch`` out of ``epochs`` for ``model.set_progress``: ``epoch / (epochs - 1)``,
    0 in the first epoch and 1 in the last (1 throughout a one-epoch run)."""
    return 1.0 if epochs <= 1 else min(1.0, max(0.0, epoch / (epochs - 1)))


def _hook(model: nn.Module, name: str) -> Callable[..., Any] | None:
    hook = getattr(model, name, None)
    return hook if callable(hook) else None


def _check_pair(name: str, pair: Pair) -> Pair:
    x, y = pair
    if len(x) == 0:
        raise ValueError(f"{name} set is empty")
    if len(x) != len(y):
        raise ValueError(f"{name} set: {len(x)} inputs but {len(y)} labels")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} set contains NaN or inf inputs")
    return x, y.long()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Argmax predictions (N,) int64 in eval mode."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]).argmax(dim=1) for i in range(0, len(x), batch_size)])
    model.train(was)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) in eval mode."""
    was = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        loss += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
        correct += (logits.argmax(dim=1) == y[i : i + batch_size]).sum().item()
    model.train(was)
    return loss / len(x), correct / len(x)


def _state(model, optimizer, scheduler, epoch, result, shuffle_gen, augment_gen) -> dict[str, Any]:
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "result": json.dumps(dataclasses.asdict(result)),
        "shuffle_rng": shuffle_gen.get_state(),
        "augment_rng": augment_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def _restore(
    resume: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    shuffle_gen: torch.Generator,
    augment_gen: torch.Generator,
) -> tuple[TrainResult, int]:
    """Load a ``last.pt`` into the model, optimizer, scheduler and generators; returns (result so far, next epoch)."""
    payload = load_checkpoint(resume)
    if "optimizer" not in payload:
        raise ValueError(f"{resume}: not a resumable checkpoint (use last.pt, not best.pt)")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # torch reports missing / unexpected keys and shape mismatches this way
        raise ValueError(f"{resume}: the checkpoint does not fit this model ({err})") from err
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    shuffle_gen.set_state(payload["shuffle_rng"])
    if "augment_rng" in payload:  # checkpoints from before augmentation existed have none
        augment_gen.set_state(payload["augment_rng"])
    torch.set_rng_state(payload["torch_rng"])
    return TrainResult(**json.loads(payload["result"])), int(payload["epoch"]) + 1


def _train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    shuffle_gen: torch.Generator,
    augment_gen: torch.Generator,
    progress: bool,
) -> tuple[float, float]:
    """One pass over (x, y) in shuffled batches; returns (mean training loss, training accuracy)."""
    model.train()
    n = len(x)
    steps = math.ceil(n / config.batch_size)
    order = torch.randperm(n, generator=shuffle_gen)
    total, correct, seen = 0.0, 0, 0
    clip = _hook(model, "clip_latent_")
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
    for step in bar:
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        logits = model(augment_batch(x[idx], config.augment, augment_gen))
        loss = F.cross_entropy(logits, y[idx])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"loss became {loss.item()} at epoch {epoch + 1}, batch {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if clip is not None:
            clip()
        total += loss.item() * len(idx)
        correct += (logits.argmax(dim=1) == y[idx]).sum().item()
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{correct / seen:.4f}")
    return total / seen, correct / seen


def train(
    model: nn.Module,
    train_data: Pair,
    val_data: Pair,
    config: TrainConfig,
    model_config: dict[str, Any],
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place; returns the history. With ``out_dir``, writes ``last.pt`` (resumable, every
    epoch), ``best.pt`` (best validation accuracy) and ``history.json``.

    Args:
        train_data: (x float32 (N, *input_shape), y int64 (N,)).
        val_data: the same for the validation split.
        model_config: JSON-serialisable config that rebuilds the model (must hold ``architecture``).
        resume: a ``last.pt`` written by an earlier call; training continues exactly where it stopped.
        on_epoch: called with each epoch's record after that epoch's checkpoints are written, so an exception
            raised there (an interruption) leaves a ``last.pt`` to resume from.
    """
    x_tr, y_tr = _check_pair("training", train_data)
    x_va, y_va = _check_pair("validation", val_data)
    out = Path(out_dir) if out_dir is not None else None
    full_config = {**model_config, "train": dataclasses.asdict(config)}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
        )
        shuffle_gen = torch.Generator().manual_seed(config.seed)
        augment_gen = torch.Generator().manual_seed(config.seed + 1)  # its own stream: shuffling is unchanged
        result, start_epoch, since_best = TrainResult(), 0, 0
        if resume is not None:
            result, start_epoch = _restore(resume, model, optimizer, scheduler, shuffle_gen, augment_gen)
            since_best = start_epoch - 1 - result.best_epoch

        set_progress = _hook(model, "set_progress")
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            if set_progress is not None:
                set_progress(annealing_progress(epoch, config.anneal_epochs or config.epochs))
            train_loss, train_acc = _train_epoch(
                model, x_tr, y_tr, config, optimizer, epoch, shuffle_gen, augment_gen, progress
            )
            val_loss, val_acc = evaluate(model, x_va, y_va, config.eval_batch_size)
            scheduler.step(val_loss)
            record = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
            result.history.append(record)
            improved = not (val_acc <= result.best_val_accuracy)  # first epoch: best is NaN
            if improved:
                result.best_epoch, result.best_val_accuracy, since_best = epoch, val_acc, 0
            else:
                since_best += 1
            if progress:
                tqdm.write(
                    f"epoch {epoch + 1}: loss {record['train_loss']:.4f} train {record['train_accuracy']:.4f} "
                    f"val {val_acc:.4f} ({record['seconds']:.1f}s)"
                )
            stop = config.early_stopping is not None and since_best >= config.early_stopping
            result.stopped_early = stop
            if out is not None:
                if improved:
                    save_checkpoint(out / "best.pt", model, full_config, epoch=epoch)
                state = _state(model, optimizer, scheduler, epoch, result, shuffle_gen, augment_gen)
                save_checkpoint(out / "last.pt", model, full_config, **state)
                atomic_write_text(out / "history.json", json.dumps(dataclasses.asdict(result), indent=1))
            if on_epoch is not None:
                on_epoch(record)
            if stop:
                break
    return result
