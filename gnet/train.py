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
- ``model.recalibrate_batchnorm(x)`` is called after every epoch, before validation, with the first
  ``CALIBRATION_ITEMS`` training inputs: a BNN's running BatchNorm statistics lag behind its flipping signs (at
  lr 1e-3 on MNIST the eval network scored 77 % while the same weights with batch statistics scored 97 %), so they
  are recomputed from the final weights of the epoch; deterministic, so resume stays exact.

Data-parallel training: when a process group of more than one rank is active (``gnet.distributed.init_distributed``
under torchrun), the model runs inside ``DistributedDataParallel`` (the hooks are called on the model itself, not on
the wrapper). Every rank draws the same global permutation from the seeded shuffle generator and takes its
:func:`gnet.distributed.shard_range` slice of each global batch of ``batch_size`` items, so the union of the ranks'
micro-batches at step s is the single-process batch s (torch's ``DistributedSampler`` strides the permutation
instead, which would give other batches). Each rank's summed loss is scaled by ``world_size / len(batch)``, so
DDP's gradient average is the gradient of the global batch's mean loss, the partial last batch included: the
learning rate means what it means in one process. Augmentation is drawn for the whole global batch on every rank
(the same draws as one process; the generators stay in step on all ranks, so a checkpoint resumes on any number of
ranks). Validation is split over the ranks and its sums reduced with ``all_reduce``. Dropout masks come from a
per-rank stream seeded by (seed, rank, epoch), so they differ from a single process's; BatchNorm statistics are
those of each rank's micro-batch (DDP broadcasts rank 0's buffers), so a network with BatchNorm or dropout trains
like, but not bit-identically to, one process. Rank 0 writes the checkpoints; the others wait at a barrier.
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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from gnet.augment import AUGMENTATIONS, augment_batch
from gnet.checkpoint import load_checkpoint, match_state_dict, save_checkpoint
from gnet.distributed import all_reduce_sum, barrier, is_active, is_main, rank, shard_range, world_size
from gnet.evaluation import _device, evaluate, predict  # re-exported: gnet.train.evaluate / predict stay
from gnet.train_guard import StopFlag, TrainingInterrupted, check_pair, check_resume_settings, stop_on_sigint
from hdc._validate import check_choice, check_int, check_number
from hdc.io import atomic_write_text

# Training items whose batch statistics set a BNN's BatchNorm after each epoch (model.recalibrate_batchnorm).
CALIBRATION_ITEMS = 10_000

LR_SCHEDULES = ("plateau", "cosine")

__all__ = [
    "CALIBRATION_ITEMS",
    "LR_SCHEDULES",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "annealing_progress",
    "evaluate",
    "predict",
    "train",
]

Pair = tuple[torch.Tensor, ...]  # (x, y), as TensorDataset.tensors holds them


@dataclass
class TrainConfig:
    """Hyper-parameters. Defaults follow the paper's recipe (Adam, ReduceLROnPlateau factor 0.1, patience 10).

    ``lr_schedule``: ``"plateau"`` (ReduceLROnPlateau on the validation loss, ``plateau_factor`` / ``_patience``) or
    ``"cosine"`` (per epoch, ``lr * (1 + cos(pi * epoch / anneal_epochs)) / 2``; it ignores the validation loss,
    which an annealed binary network's smooth phase makes misleading).
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    lr_schedule: str = "plateau"
    early_stopping: int | None = None  # epochs without val-accuracy gain before stopping; None = never
    seed: int = 0
    eval_batch_size: int = 1000
    augment: str | None = None  # None, "flip", "shift" or "flip+shift" (image data only; see gnet.augment)
    # Annealing horizon of model.set_progress (None: epochs). A run planned for 30 epochs and stopped after 10 (to
    # be resumed with epochs=30) sets epochs=10, anneal_epochs=30, so its schedule is that of the whole run.
    anneal_epochs: int | None = None

    def __post_init__(self) -> None:
        # Every field is checked and normalised to a plain int / float (a numpy scalar would not serialise).
        for name in ("epochs", "batch_size", "eval_batch_size"):
            setattr(self, name, check_int(getattr(self, name), name, minimum=1))
        self.lr = check_number(self.lr, "lr", minimum=0.0, strict=True)
        self.weight_decay = check_number(self.weight_decay, "weight_decay", minimum=0.0)
        self.plateau_factor = check_number(self.plateau_factor, "plateau_factor")
        if not 0.0 < self.plateau_factor < 1.0:  # ReduceLROnPlateau needs (0, 1)
            raise ValueError(f"plateau_factor must lie in (0, 1), got {self.plateau_factor}")
        self.plateau_patience = check_int(self.plateau_patience, "plateau_patience", minimum=0)
        check_choice(self.lr_schedule, LR_SCHEDULES, "lr_schedule")
        if self.early_stopping is not None:
            self.early_stopping = check_int(self.early_stopping, "early_stopping", minimum=1)
        self.seed = check_int(self.seed, "seed", minimum=0, maximum=2**64 - 2)  # seed + 1 seeds the augmentation
        if self.anneal_epochs is not None:
            self.anneal_epochs = check_int(self.anneal_epochs, "anneal_epochs", minimum=1)
        if self.augment is not None:
            check_choice(self.augment, tuple(a for a in AUGMENTATIONS if a is not None), "augment")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = float("nan")
    stopped_early: bool = False
    # settings changed on a resume (allow_changed_settings): {"epoch": first epoch run with them, "setting", "old",
    # "new"}
    changes: list[dict[str, Any]] = field(default_factory=list)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf."""


def annealing_progress(epoch: int, epochs: int) -> float:
    """Progress of 0-based ``epoch`` out of ``epochs`` for ``model.set_progress``: ``epoch / (epochs - 1)``,
    0 in the first epoch and 1 in the last (1 throughout a one-epoch run)."""
    return 1.0 if epochs <= 1 else min(1.0, max(0.0, epoch / (epochs - 1)))


def _hook(model: nn.Module, name: str) -> Callable[..., Any] | None:
    hook = getattr(model, name, None)
    return hook if callable(hook) else None


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


def _load_resume(resume: str | Path) -> dict[str, Any]:
    """A ``last.pt`` (every check of :func:`gnet.checkpoint.load_checkpoint`) that holds the loop's state."""
    payload = load_checkpoint(resume)
    missing = [k for k in ("optimizer", "scheduler", "epoch", "result", "shuffle_rng", "torch_rng") if k not in payload]
    if missing:
        raise ValueError(f"{resume}: not a resumable checkpoint (use last.pt, not best.pt; lacks {', '.join(missing)})")
    return payload


def _restore(
    resume: str | Path,
    payload: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    shuffle_gen: torch.Generator,
    augment_gen: torch.Generator,
) -> tuple[TrainResult, int]:
    """Load a ``last.pt``'s payload into the model, optimizer, scheduler and generators; returns (result so far,
    next epoch)."""
    try:
        match_state_dict(model, payload["state_dict"])
    except ValueError as err:
        raise ValueError(f"{resume}: the checkpoint does not fit this model ({err})") from None
    try:
        model.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        shuffle_gen.set_state(payload["shuffle_rng"])
        if "augment_rng" in payload:  # checkpoints from before augmentation existed have none
            augment_gen.set_state(payload["augment_rng"])
        torch.set_rng_state(payload["torch_rng"])
        result = TrainResult(**json.loads(payload["result"]))
        epoch = check_int(payload["epoch"], "epoch", minimum=-1)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # a damaged or crafted loop state
        raise ValueError(f"{resume}: not a resumable checkpoint ({' '.join(str(err).split())[:300]})") from None
    return result, epoch + 1


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
    ddp: DistributedDataParallel | None = None,
    stop: StopFlag | None = None,
) -> tuple[float, float] | None:
    """One pass over (x, y) in shuffled batches; returns (mean training loss, training accuracy), or None when
    ``stop`` was requested (Ctrl-C): the epoch ends after the current step and is abandoned.

    With ``ddp`` (the model wrapped in DistributedDataParallel) each rank runs its slice of every global batch.
    """
    model.train()
    n = len(x)
    steps = math.ceil(n / config.batch_size)
    order = torch.randperm(n, generator=shuffle_gen)
    total, correct, seen = 0.0, 0, 0
    clip = _hook(model, "clip_latent_")
    dev = _device(model)
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
    for step in bar:
        if stop is not None and stop.requested:
            bar.close()
            return None
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        xb, yb = augment_batch(x[idx], config.augment, augment_gen).to(dev), y[idx].to(dev)
        if ddp is None:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            batch_loss = loss.item()
            batch_correct = (logits.argmax(dim=1) == yb).sum().item()
        else:
            loss, batch_loss, batch_correct = _ddp_loss(ddp, xb, yb)
        if not math.isfinite(batch_loss):
            raise NonFiniteLossError(f"loss became {batch_loss} at epoch {epoch + 1}, batch {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if clip is not None:
            clip()
        total += batch_loss * len(idx)
        correct += batch_correct
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{correct / seen:.4f}")
    return total / seen, correct / seen


def _ddp_loss(ddp: DistributedDataParallel, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """This rank's share of a global batch (xb, yb): (loss to backpropagate, the global batch's mean loss, its
    correct count), the last two reduced over the ranks (so every rank sees the same, and raises together).

    The loss is this rank's summed cross-entropy times ``world_size / len(xb)``: DDP averages gradients over the
    ranks, which then gives the gradient of the global batch's mean loss, whatever the micro-batch sizes.
    """
    n, world = len(xb), world_size()
    start, stop = shard_range(n, rank(), world)
    weight = world / n
    if stop == start:  # fewer items than ranks: a one-item forward weighted 0 keeps this rank in the gradient sync
        start, stop, weight = 0, 1, 0.0
    logits = ddp(xb[start:stop])
    summed = F.cross_entropy(logits, yb[start:stop], reduction="sum")
    local = [summed.item(), (logits.argmax(dim=1) == yb[start:stop]).sum().item()] if weight else [0.0, 0]
    loss_sum, correct = all_reduce_sum(local)
    return summed * weight, loss_sum / n, int(correct)


def _rank_seed(seed: int, epoch: int) -> int:
    """The torch RNG seed (dropout) of this rank in ``epoch`` under data parallelism: its own stream per rank,
    independent of how many epochs ran before (so a resume on any number of ranks is deterministic)."""
    return int(np.random.SeedSequence([seed, rank(), epoch]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _record(
    epoch: int, train_loss: float, train_acc: float, val_loss: float, val_acc: float, lr: float, t0: float
) -> dict[str, float]:
    """One epoch's entry of the history (``seconds`` since ``t0``, a ``time.perf_counter()`` reading)."""
    return {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "lr": lr,
        "seconds": time.perf_counter() - t0,
    }


def _check_world(config: TrainConfig) -> bool:
    """True under an active process group, whose number of ranks must divide the global batch."""
    if is_active() and config.batch_size % world_size() != 0:
        raise ValueError(
            f"batch_size {config.batch_size} is the global batch and must be divisible by the number of ranks "
            f"({world_size()}); each rank runs batch_size / ranks items per step"
        )
    return is_active()


def _wrap(model: nn.Module) -> DistributedDataParallel:
    """``model`` in DistributedDataParallel (on its GPU where it has one)."""
    dev = _device(model)
    return DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)


def _write_epoch(
    out: Path, model: nn.Module, config: dict[str, Any], result: TrainResult, state: dict[str, Any], improved: bool
) -> None:
    """``best.pt`` (when ``improved``), ``last.pt`` and ``history.json`` from rank 0; the other ranks wait for them
    (a resume or a reader may need them next)."""
    if is_main():
        if improved:
            save_checkpoint(out / "best.pt", model, config, epoch=state["epoch"])
        save_checkpoint(out / "last.pt", model, config, **state)
        atomic_write_text(out / "history.json", json.dumps(dataclasses.asdict(result), indent=1))
    barrier()


def _end_epoch(
    model: nn.Module,
    val: Pair,
    config: TrainConfig,
    schedule: tuple[torch.optim.Optimizer, Any],
    result: TrainResult,
    epoch: int,
    train_stats: tuple[float, float],
    t0: float,
    progress: bool,
) -> tuple[dict[str, float], bool]:
    """Validate, step the scheduler (``schedule``: optimizer, scheduler), append the epoch's record to ``result``
    and print it (``progress``); returns (record, improved)."""
    optimizer, scheduler = schedule
    val_loss, val_acc = evaluate(model, val[0], val[1], config.eval_batch_size)
    lr = optimizer.param_groups[0]["lr"]  # the epoch's own rate (a cosine step changes it for the next epoch)
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
        lr = optimizer.param_groups[0]["lr"]
    else:
        scheduler.step()
    record = _record(epoch, *train_stats, val_loss, val_acc, lr, t0)
    result.history.append(record)
    improved = not (val_acc <= result.best_val_accuracy)  # first epoch: best is NaN
    if improved:
        result.best_epoch, result.best_val_accuracy = epoch, val_acc
    if progress:
        tqdm.write(
            f"epoch {epoch + 1}: loss {record['train_loss']:.4f} train {record['train_accuracy']:.4f} "
            f"val {val_acc:.4f} ({record['seconds']:.1f}s)"
        )
    return record, improved


def _check_data(model: nn.Module, train_data: Pair, val_data: Pair, model_config: Any) -> tuple[Pair, Pair]:
    """The training and validation pairs checked by :func:`gnet.train_guard.check_pair` (labels below the config's
    ``n_classes`` when it records one)."""
    n_classes = model_config.get("n_classes") if isinstance(model_config, dict) else None
    n_classes = None if n_classes is None else check_int(n_classes, "model_config['n_classes']", minimum=1)
    return check_pair("training", train_data, n_classes, model), check_pair("validation", val_data, n_classes, model)


def _loop_parts(model: nn.Module, config: TrainConfig) -> tuple[Any, Any, torch.Generator, torch.Generator]:
    """(optimizer, scheduler, shuffle generator, augmentation generator), seeded from ``config.seed`` (the torch
    RNG too: it draws dropout masks)."""
    torch.manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler: Any
    if config.lr_schedule == "cosine":
        horizon = config.anneal_epochs or config.epochs
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=horizon)
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
        )
    shuffle_gen = torch.Generator().manual_seed(config.seed)
    augment_gen = torch.Generator().manual_seed(config.seed + 1)  # its own stream: shuffling is unchanged
    return optimizer, scheduler, shuffle_gen, augment_gen


def _interrupted(out: Path | None, epochs_done: int) -> TrainingInterrupted:
    last = out / "last.pt" if out is not None and (out / "last.pt").is_file() else None
    return TrainingInterrupted(last, epochs_done)


def _resumed(
    resume: str | Path, payload: dict[str, Any], parts: tuple[Any, ...], changes: list[dict], full_config: dict
) -> tuple[TrainResult, int, int]:
    """(result so far, first epoch to run, epochs since the best) of a resumed run; records changed settings in
    ``full_config`` (a run that never changed records none)."""
    result, start_epoch = _restore(resume, payload, *parts)
    recorded = [{"epoch": start_epoch + 1, **change} for change in changes]
    result.changes.extend(recorded)
    if recorded or "changes" in payload["config"]:
        full_config["changes"] = [*payload["config"].get("changes", []), *recorded]
    return result, start_epoch, start_epoch - 1 - result.best_epoch


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
    allow_changed_settings: bool = False,
) -> TrainResult:
    """Train ``model`` in place; returns the history. With ``out_dir``, writes ``last.pt`` (resumable, every
    epoch), ``best.pt`` (best validation accuracy) and ``history.json``.

    Args:
        train_data: (x float (N, *input_shape), y integer (N,)); see :func:`gnet.train_guard.check_pair`: labels
            in ``0 .. model_config["n_classes"] - 1``, inputs finite, cast to the model's dtype (float32).
        val_data: the same for the validation split.
        model_config: JSON-serialisable config that rebuilds the model (must hold ``architecture``).
        resume: a ``last.pt`` written by an earlier call; training continues exactly where it stopped. Its
            recorded settings (the model config and ``config``, except ``epochs``) must equal these.
        on_epoch: called with each epoch's record after that epoch's checkpoints are written, so an exception
            raised there (an interruption) leaves a ``last.pt`` to resume from.
        allow_changed_settings: resume with other settings, recorded in ``changes`` (config and result).

    Raises:
        TrainingInterrupted: on Ctrl-C (SIGINT, main thread, one process) after the current step; the epoch in
            progress is abandoned, ``last.pt`` is the last complete epoch's.

    Under a process group (module docstring) every rank calls ``train`` alike; ``config.batch_size`` is the global
    batch; rank 0 writes the files (``out_dir`` and ``resume`` on a file system every rank sees).
    """
    distributed = _check_world(config)
    (x_tr, y_tr), val = _check_data(model, train_data, val_data, model_config)
    out = Path(out_dir) if out_dir is not None else None
    full_config = {**model_config, "train": dataclasses.asdict(config)}
    set_progress = _hook(model, "set_progress")
    payload, changes = None, []
    if resume is not None:
        payload = _load_resume(resume)
        changes = check_resume_settings(
            resume, payload["config"], full_config, set_progress is not None, allow_changed_settings
        )

    with torch.random.fork_rng(devices=[]), stop_on_sigint(enabled=not distributed) as stop:
        optimizer, scheduler, shuffle_gen, augment_gen = _loop_parts(model, config)
        result, start_epoch, since_best = TrainResult(), 0, 0
        if payload is not None and resume is not None:
            parts = (model, optimizer, scheduler, shuffle_gen, augment_gen)
            result, start_epoch, since_best = _resumed(resume, payload, parts, changes, full_config)
        ddp = _wrap(model) if distributed else None  # after the restore: DDP broadcasts rank 0's state
        progress = progress and is_main()

        recalibrate = _hook(model, "recalibrate_batchnorm")
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            if distributed:
                torch.manual_seed(_rank_seed(config.seed, epoch))
            if set_progress is not None:
                set_progress(annealing_progress(epoch, config.anneal_epochs or config.epochs))
            stats = _train_epoch(
                model, x_tr, y_tr, config, optimizer, epoch, shuffle_gen, augment_gen, progress, ddp, stop
            )
            if stats is None:  # Ctrl-C: the epoch in progress is abandoned, last.pt is the previous one's
                raise _interrupted(out, epoch)
            if recalibrate is not None:
                recalibrate(x_tr[:CALIBRATION_ITEMS])
            record, improved = _end_epoch(
                model, val, config, (optimizer, scheduler), result, epoch, stats, t0, progress
            )
            since_best = 0 if improved else since_best + 1
            finished = config.early_stopping is not None and since_best >= config.early_stopping
            result.stopped_early = finished
            if out is not None:
                state = _state(model, optimizer, scheduler, epoch, result, shuffle_gen, augment_gen)
                _write_epoch(out, model, full_config, result, state, improved)
            if on_epoch is not None:
                on_epoch(record)
            if finished:
                break
            if stop.requested and epoch + 1 < config.epochs:
                raise _interrupted(out, epoch + 1)
    return result
