"""EHD accuracy over code lengths and seeds: convert a float G-Net at every (dim, seed) point and evaluate it.

Each point is a fresh draw of every G (``convert(model, dim=..., seed=seed)``). Because G for a smaller dim is a
prefix of G for a larger one, the points of one seed are nested, as in the paper's accuracy-vs-N figures.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from gnet.ehd.convert import convert
from hdc._validate import check_int

__all__ = ["DimSetting", "SweepPoint", "SweepResult", "SweepRow", "sweep"]

DimSetting = int | float | list[int] | str  # one dim, a fan-in ratio, one per code-carrying layer, or a preset


def _key(dim: DimSetting) -> str:
    """A hashable, JSON-stable key of a dim setting (lists and scalars alike)."""
    return ",".join(map(str, dim)) if isinstance(dim, (list, tuple)) else str(dim)


@dataclass(frozen=True)
class SweepPoint:
    """One (dim, seed) measurement: ``dim`` as given, the resolved ``dim_per_layer``, accuracy and seconds."""

    dim: DimSetting
    seed: int
    dim_per_layer: list[int]
    accuracy: float
    seconds: float


@dataclass(frozen=True)
class SweepRow:
    """All seeds of one dim setting: accuracies (one per seed), their mean and population std."""

    dim: DimSetting
    dim_per_layer: list[int]
    mean_dim: float
    seeds: list[int]
    accuracies: list[float]
    accuracy_mean: float
    accuracy_std: float


@dataclass
class SweepResult:
    """Points of a sweep, grouped into :attr:`rows` in the order of ``dims``; ``to_dict()`` is JSON-ready."""

    dims: list[DimSetting]
    seeds: list[int]
    settings: dict[str, Any]
    n_test: int
    float_accuracy: float | None
    points: list[SweepPoint] = field(default_factory=list)
    complete: bool = True

    @property
    def rows(self) -> list[SweepRow]:
        out = []
        for dim in self.dims:
            mine = [p for p in self.points if _key(p.dim) == _key(dim)]
            if not mine:
                continue
            accs = [p.accuracy for p in mine]
            per_layer = mine[0].dim_per_layer
            out.append(
                SweepRow(
                    dim,
                    per_layer,
                    statistics.mean(per_layer),
                    [p.seed for p in mine],
                    accs,
                    statistics.mean(accs),
                    statistics.pstdev(accs),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Settings, ``float_accuracy``, ``n_test``, ``dims``, ``seeds``, ``rows`` and ``points`` as plain data."""
        return {
            **self.settings,
            "dims": self.dims,
            "seeds": self.seeds,
            "n_test": self.n_test,
            "float_accuracy": self.float_accuracy,
            "complete": self.complete,
            "rows": [asdict(r) for r in self.rows],
            "points": [asdict(p) for p in self.points],
        }


def sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    dims: Sequence[DimSetting],
    seeds: Sequence[int],
    *,
    embedding: str | Sequence[str] = "gaussian",
    conv_projection: str = "shared",
    precision: str | Sequence[str] = "auto",
    batch_size: int = 256,
    float_accuracy: float | None = None,
    done: Iterable[SweepPoint] = (),
    on_point: Callable[[SweepResult, SweepPoint], None] | None = None,
    stop: Callable[[DimSetting, int], bool] | None = None,
    progress: bool = False,
) -> SweepResult:
    """EHD test accuracy of ``model`` (a float G-Net) for every dim in ``dims`` and seed in ``seeds``.

    Args:
        model: the float G-Net, in eval mode.
        x, y: test inputs (B, *input_shape) float32 and labels (B,) int64.
        dims: dim settings as :func:`gnet.ehd.convert` takes them (int, fan-in ratio, or a per-layer list).
        seeds: projection seeds; each (dim, seed) point is a fresh conversion.
        embedding, conv_projection, precision: passed to :func:`gnet.ehd.convert`.
        float_accuracy: the float model's accuracy on (x, y), stored with the result (not computed here).
        done: points measured before (e.g. read back from an interrupted run); they are not measured again.
        on_point: called after each new point with the result so far (e.g. to save it).
        stop: called before each new point with (dim, seed); True ends the sweep there (``complete`` = False).
        progress: show a progress bar.

    Points run seed-major (all dims of the first seed, then the next), so a sweep stopped early still covers
    every dim.
    """
    if not len(dims):
        raise ValueError("dims is empty")
    if not len(seeds):
        raise ValueError("seeds is empty")
    seeds = [check_int(s, "seeds entries", minimum=0) for s in seeds]
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of items, got {len(x)} and {len(y)}")
    settings = {
        "embedding": embedding if isinstance(embedding, str) else ",".join(embedding),
        "conv_projection": conv_projection,
        "precision": precision if isinstance(precision, str) else ",".join(precision),
    }
    result = SweepResult(list(dims), seeds, settings, len(x), float_accuracy, points=list(done))
    have = {(_key(p.dim), p.seed) for p in result.points}
    todo = [(d, s) for s in seeds for d in dims if (_key(d), s) not in have]
    bar = tqdm(total=len(todo), desc="sweep", disable=not progress, leave=False)
    for dim, seed in todo:
        if stop is not None and stop(dim, seed):
            result.complete = False
            break
        t0 = time.perf_counter()
        ehd = convert(
            model, dim=dim, embedding=embedding, conv_projection=conv_projection, seed=seed, precision=precision
        )
        result.settings["precision_resolved"] = ehd.meta["precision"]  # what "auto" chose on this CPU
        acc = ehd.evaluate(x, y, batch_size=batch_size).accuracy
        point = SweepPoint(dim, seed, ehd.dim_per_layer, acc, time.perf_counter() - t0)
        result.points.append(point)
        bar.update()
        if on_point is not None:
            on_point(result, point)
    bar.close()
    return result
