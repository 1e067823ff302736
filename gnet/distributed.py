"""Several processes, one machine or many: ``torch.distributed`` for training, evaluation and (dim, seed) sweeps.

Processes are started by ``torchrun`` (``python3 -m torch.distributed.run``), which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` joins the process group from them
(``gloo`` on CPU, ``nccl`` for CUDA devices). Every helper here works unchanged in a single process (no process
group, or a world of one): it then does the whole job itself, so callers need no second code path.

- :func:`shard_range`: the contiguous slice of ``n_items`` that one rank handles (near-equal sizes).
- :func:`evaluate_sharded`: each rank predicts its slice of the test items; the correct counts are summed with
  ``all_reduce``. Counts are integers, so the accuracy equals the single-process one exactly.
- :func:`sweep_sharded`: the (dim, seed) points of :func:`gnet.ehd.sweep` are dealt to the ranks; every point is
  computed by exactly one rank, the points are gathered and put back in the single-process order.

Data-parallel training lives in :func:`gnet.train.train`, which uses these helpers when a process group of more
than one rank is active.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from hdc._validate import check_int, check_number

__all__ = [
    "ShardedEval",
    "all_gather_objects",
    "all_reduce_sum",
    "barrier",
    "distributed_session",
    "evaluate_sharded",
    "init_distributed",
    "is_active",
    "is_main",
    "launched_by_torchrun",
    "main_first",
    "rank",
    "shard_range",
    "shutdown",
    "sweep_sharded",
    "world_size",
]

_OBJECT_GROUP: Any = None  # a gloo group for object collectives when the default group is nccl


def launched_by_torchrun() -> bool:
    """True when the environment of a ``torchrun`` worker (``RANK`` and ``WORLD_SIZE``) is present."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_active() -> bool:
    """True when a process group of more than one rank is initialised (the data-parallel and sharded paths)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank; 0 without a process group."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of ranks; 1 without a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes files and prints."""
    return rank() == 0


def init_distributed(device: str = "cpu", backend: str | None = None, timeout_s: float | None = None) -> torch.device:
    """Join the process group described by torchrun's environment variables; returns this rank's device.

    Args:
        device: ``"cpu"`` or ``"cuda"``; with ``"cuda"`` each process takes GPU ``LOCAL_RANK`` of its machine.
        backend: ``None`` picks ``nccl`` for CUDA and ``gloo`` for the CPU.
        timeout_s: how long a collective (a barrier) waits for the other ranks; ``None``: torch's default (10 min
            for nccl, 30 min for gloo). Raise it where ranks wait at a barrier while rank 0 works alone (a long
            training stage before a sharded sweep).

    Raises:
        ValueError: not launched by torchrun (no ``RANK`` / ``WORLD_SIZE`` in the environment), an unknown device,
            or ``"cuda"`` without a CUDA device.
    """
    if not launched_by_torchrun():
        raise ValueError(
            "distributed mode needs the torchrun environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); launch "
            "with: python3 -m torch.distributed.run --nproc-per-node K -m gnet ..."
        )
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        kind = backend or ("nccl" if dev.type == "cuda" else "gloo")
        if timeout_s is None:
            dist.init_process_group(backend=kind)
        else:
            seconds = check_number(timeout_s, "timeout_s", minimum=0.0, strict=True)
            dist.init_process_group(backend=kind, timeout=timedelta(seconds=seconds))
    return dev


def shutdown(wait_for_ranks: bool = True) -> None:
    """Leave the process group (a no-op without one).

    Args:
        wait_for_ranks: meet the other ranks at a barrier first (the normal exit). Pass False on an error path,
            where another rank may never arrive.

    Why the barrier and the collection: a rank that tears gloo down while its peer is still in a collective, or
    a DistributedDataParallel reducer (kept alive by a reference cycle) that still holds the group when the
    interpreter finalises, makes gloo's worker threads abort the process (``terminate called without an active
    exception``, SIGABRT), so a finished run would exit non-zero.
    """
    global _OBJECT_GROUP
    if dist.is_available() and dist.is_initialized():
        if wait_for_ranks and dist.get_world_size() > 1:
            dist.barrier()
        _OBJECT_GROUP = None
        gc.collect()  # frees reducers and groups that only a cycle keeps, while the interpreter is whole
        dist.destroy_process_group()
    _OBJECT_GROUP = None


@contextmanager
def distributed_session(requested: bool = False, device: str = "cpu") -> Iterator[bool]:
    """The process group of a command: joined when ``requested`` (``--distributed``) or when torchrun started more
    than one process, left on exit (also on an error). Yields True when the work is to be split (more than one
    rank), False in a single process, where every helper here does the whole job itself.

    Raises:
        ValueError: ``requested`` outside torchrun (see :func:`init_distributed`).
    """
    if requested or (launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1):
        init_distributed(device)
    try:
        yield is_active()
    except BaseException:
        shutdown(wait_for_ranks=False)
        raise
    shutdown()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks once it is done (a download that must happen once); a plain
    block in a single process."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    if is_active():
        dist.barrier()


def shard_range(n_items: int, rank: int, world_size: int) -> tuple[int, int]:
    """(start, stop) of the contiguous slice of ``n_items`` that ``rank`` of ``world_size`` handles.

    Slices are in rank order, cover every item once and differ in size by at most one
    (``start = n_items * rank // world_size``); a rank gets an empty slice when ``n_items < world_size``.
    """
    n_items = check_int(n_items, "n_items", minimum=0)
    world_size = check_int(world_size, "world_size", minimum=1)
    rank = check_int(rank, "rank", minimum=0, maximum=world_size - 1)
    return n_items * rank // world_size, n_items * (rank + 1) // world_size


def all_reduce_sum(values: Sequence[float], dtype: torch.dtype = torch.float64) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (the values themselves in a single process).

    The tensor travels on the process group's device (CUDA for nccl); ``dtype=torch.int64`` sums counts exactly.
    """
    if not is_active():
        return [float(v) for v in values]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.tensor(list(values), dtype=dtype, device=device)
    dist.all_reduce(t)
    return [float(v) for v in t.cpu().tolist()]


def _object_group() -> Any:
    """The group for ``all_gather_object``: the default one, or a gloo group beside an nccl one (objects travel as
    CPU tensors, which nccl cannot carry)."""
    global _OBJECT_GROUP
    if dist.get_backend() != "nccl":
        return None
    if _OBJECT_GROUP is None:
        _OBJECT_GROUP = dist.new_group(backend="gloo")
    return _OBJECT_GROUP


def all_gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in a single process); picklable objects."""
    if not is_active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj, group=_object_group())
    return out


@dataclass(frozen=True)
class ShardedEval:
    """Correct predictions out of ``n_items``, summed over the ranks; ``accuracy = correct / n_items``."""

    correct: int
    n_items: int
    accuracy: float
    seconds: float


def evaluate_sharded(
    predict_fn: Callable[[torch.Tensor], Any], x: torch.Tensor, y: torch.Tensor | np.ndarray
) -> ShardedEval:
    """Accuracy of ``predict_fn`` on (x, y), each rank predicting its :func:`shard_range` slice of the items.

    Args:
        predict_fn: labels for a slice of ``x``: (b, *input_shape) -> (b,) integer tensor or array, e.g.
            ``lambda xs: ehd.predict(xs, batch_size=256)``. It must not depend on how the items are split (per-item
            predictions, as every model here in eval mode).
        x: inputs (N, *input_shape); y: labels (N,) integer.

    Returns the same counts on every rank, identical to one process calling ``predict_fn(x)``: the correct counts
    are integers summed with ``all_reduce``.
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of items, got {len(x)} and {len(y)}")
    t0 = time.perf_counter()
    start, stop = shard_range(len(x), rank(), world_size())
    correct = 0
    if stop > start:
        pred = np.asarray(predict_fn(x[start:stop])).reshape(-1)
        if len(pred) != stop - start:
            raise ValueError(f"predict_fn returned {len(pred)} labels for {stop - start} items")
        correct = int((pred == np.asarray(y[start:stop]).reshape(-1)).sum())
    (total,) = all_reduce_sum([correct], dtype=torch.int64)
    return ShardedEval(int(total), len(x), int(total) / len(x), time.perf_counter() - t0)


def sweep_sharded(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    dims: Sequence[Any],
    seeds: Sequence[int],
    *,
    done: Iterable[Any] = (),
    on_point: Callable[[Any, Any], None] | None = None,
    stop: Callable[[Any, int], bool] | None = None,
    progress: bool = False,
    **settings: Any,
) -> Any:
    """:func:`gnet.ehd.sweep` with its (dim, seed) points dealt to the ranks; returns the whole
    :class:`gnet.ehd.SweepResult` on every rank (write it from rank 0 only).

    The points still to do (those not in ``done``), in the single-process order (seed-major), are dealt round-robin:
    point ``i`` goes to rank ``i % world_size``, which mixes cheap and costly dims on every rank. Each point is a
    fresh conversion from its own seed, so it does not depend on which rank computes it; after the gather the points
    are put back in the single-process order, so the result file equals a single-process run's (apart from each
    point's ``seconds``).

    Args:
        settings: the other keywords of :func:`gnet.ehd.sweep` (``embedding``, ``conv_projection``, ``precision``,
            ``batch_size``, ``float_accuracy``).
        on_point: called on the rank that computed a point, with that rank's partial result (``done`` and the
            points of this rank) and the point; pass it on rank 0 only to save rank 0's progress, or write a file
            per rank.
        stop: called before each of this rank's points; True ends this rank's share there. The result then holds
            the points every rank computed and ``complete`` is False on every rank.
        progress: a progress bar on rank 0.
    """
    from gnet.ehd.sweep import SweepResult, _key, sweep

    seeds = [check_int(s, "seeds entries", minimum=0) for s in seeds]
    done = list(done)
    # The whole sweep's checks and settings, from a call that measures nothing (its stop hook ends it at once).
    base = sweep(model, x, y, dims, seeds, done=done, **settings, stop=lambda d, s: True)
    have = {(_key(p.dim), p.seed) for p in done}
    todo = [(d, s) for s in seeds for d in dims if (_key(d), s) not in have]
    me, world = rank(), world_size()
    mine: list[tuple[int, Any, Any]] = []  # (index in todo, point, the precision "auto" resolved to on this rank)
    complete = True
    for i in range(me, len(todo), world):
        dim, seed = todo[i]
        if stop is not None and stop(dim, seed):
            complete = False
            break
        part = sweep(model, x, y, [dim], [seed], **settings, progress=progress and me == 0)
        point = part.points[0]
        mine.append((i, point, part.settings.get("precision_resolved")))
        if on_point is not None:
            local = SweepResult(base.dims, base.seeds, dict(part.settings), base.n_test, base.float_accuracy)
            local.points = done + [p for _, p, _ in mine]
            on_point(local, point)
    gathered = all_gather_objects((mine, complete))
    by_index = sorted(((i, p, r) for share, _ in gathered for i, p, r in share), key=lambda t: t[0])
    result = SweepResult(base.dims, base.seeds, dict(base.settings), base.n_test, base.float_accuracy)
    result.points = done + [p for _, p, _ in by_index]
    if by_index:  # as in one process: what "auto" chose for the last point computed
        result.settings["precision_resolved"] = by_index[-1][2]
    result.complete = all(ok for _, ok in gathered)
    return result
