"""Input checks and small numerical helpers shared by the :mod:`hdc.theory` modules (private)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray


def check_sizes(values: Any, name: str) -> NDArray[np.int64]:
    """A non-empty, strictly increasing 1-D sequence of positive integers (code lengths, input sizes)."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of integers, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if (arr < 1).any():
        raise ValueError(f"{name} must be positive, got {arr.tolist()}")
    if (np.diff(arr) <= 0).any():
        raise ValueError(f"{name} must be strictly increasing, got {arr.tolist()}")
    return arr.astype(np.int64)


def check_finite(x: Any, name: str, ndim: int | None = None) -> NDArray[np.float64]:
    """``x`` (numpy or torch) as a non-empty finite float64 array, optionally of a given number of axes."""
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def check_rhos(rhos: Any, name: str = "rho") -> NDArray[np.float64]:
    """Correlations in [-1, 1] as a 1-D float64 array."""
    arr = check_finite(np.atleast_1d(rhos), name)
    if (np.abs(arr) > 1).any():
        raise ValueError(f"{name} must lie in [-1, 1], got {arr.tolist()}")
    return arr


def check_ts(ts: Any, name: str = "t") -> NDArray[np.float64]:
    """Positive error thresholds as a 1-D float64 array."""
    arr = check_finite(np.atleast_1d(ts), name)
    if (arr <= 0).any():
        raise ValueError(f"{name} must be positive, got {arr.tolist()}")
    return arr


def check_unit_interval(p: Any, name: str) -> float:
    """A probability strictly inside (0, 1)."""
    p = float(p)
    if not (0.0 < p < 1.0):
        raise ValueError(f"{name} must lie in (0, 1), got {p}")
    return p


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run BLAS single-threaded for the duration (restored afterwards).

    The Monte Carlo loops multiply many small matrices; a multi-threaded BLAS spends most of its time
    synchronising threads there, and on a shared machine it was measured 6x slower than one thread.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, just run as configured
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def sign(x: NDArray[Any]) -> NDArray[np.float32]:
    """+-1 with the project's tie rule (x >= 0 -> +1), as float32."""
    return np.where(x >= 0, np.float32(1.0), np.float32(-1.0))


def rademacher(rng: np.random.Generator, rows: int, cols: int) -> NDArray[np.float32]:
    """+-1 float32 (rows, cols) from random bytes (8 entries per byte: much faster than integers())."""
    nbytes = (cols + 7) // 8
    bits = np.unpackbits(rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8), axis=1, count=cols)
    return bits.astype(np.float32) * 2.0 - 1.0


def gaussian_or_rademacher(rng: np.random.Generator, kind: str, rows: int, cols: int) -> NDArray[np.float32]:
    """Rows of G, float32 (rows, cols): standard Gaussian or +-1 entries."""
    if kind == "gaussian":
        return rng.standard_normal((rows, cols), dtype=np.float32)
    return rademacher(rng, rows, cols)
