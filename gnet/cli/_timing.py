"""Steady-state throughput: one-off warm-up (numba JIT compilation or cache load, oneDNN's first calls) is run and
timed apart, so an img/s figure measures the model, not the first call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["WARMUP_ITEMS", "Timing", "steady_state"]

T = TypeVar("T")

WARMUP_ITEMS = 32  # items run once before the timed pass: enough to reach every kernel, cheap after compilation


@dataclass(frozen=True)
class Timing:
    """``seconds`` of the timed pass over ``n_items``; ``warmup_seconds`` of the untimed first call before it."""

    n_items: int
    seconds: float
    warmup_seconds: float

    @property
    def images_per_second(self) -> float:
        return self.n_items / self.seconds if self.seconds > 0 else float("inf")


def steady_state(run: Callable[[int], T], n_items: int, warmup_items: int = WARMUP_ITEMS) -> tuple[T, Timing]:
    """``run(k)`` processes the first ``k`` items: call it once on ``min(warmup_items, n_items)`` (warm-up, timed
    apart), then on all ``n_items`` (timed); returns the second result and the :class:`Timing`."""
    t0 = time.perf_counter()
    run(min(warmup_items, n_items))
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run(n_items)
    return result, Timing(n_items, time.perf_counter() - t0, warm)
