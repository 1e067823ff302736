"""Evaluation of a torch model in eval mode: predictions, and (loss, accuracy) split over the ranks of a process
group when one is active (:mod:`gnet.distributed`). :mod:`gnet.train` re-exports both."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gnet.distributed import all_reduce_sum, is_active, rank, shard_range, world_size

__all__ = ["evaluate", "predict"]


def _device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Argmax predictions (N,) int64 in eval mode, on the CPU."""
    was = model.training
    model.eval()
    dev = _device(model)
    out = torch.cat([model(x[i : i + batch_size].to(dev)).argmax(dim=1).cpu() for i in range(0, len(x), batch_size)])
    model.train(was)
    return out


@torch.no_grad()
def _eval_sums(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, int]:
    """(summed cross-entropy loss, correct count) over (x, y) in eval mode."""
    was = model.training
    model.eval()
    dev = _device(model)
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size].to(dev))
        yb = y[i : i + batch_size].to(dev)
        loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == yb).sum().item())
    model.train(was)
    return loss, correct


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) in eval mode.

    Under an active process group each rank evaluates its :func:`gnet.distributed.shard_range` slice and the sums
    are reduced with ``all_reduce`` (the accuracy is exact; the loss may differ from one process's in the last bits,
    being summed in another order). Every rank must call it then.
    """
    if not is_active():
        loss, correct = _eval_sums(model, x, y, batch_size)
        return loss / len(x), correct / len(x)
    start, stop = shard_range(len(x), rank(), world_size())
    loss, correct = _eval_sums(model, x[start:stop], y[start:stop], batch_size) if stop > start else (0.0, 0)
    loss_sum, correct_sum = all_reduce_sum([loss, correct])
    return loss_sum / len(x), correct_sum / len(x)
