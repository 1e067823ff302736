"""The one place that configures the runtimes behind the kernels: numba's threading layer, numba's on-disk cache,
and the OpenMP wait policy of torch's runtime.

- **Threading layer.** numba's default OpenMP layer and torch's bundled OpenMP runtime stall each other: after one
  parallel numba call, every threaded torch op (unfold, matmul) was measured to wait about 1 s. The workqueue
  layer has no such interaction. A user's explicit ``NUMBA_THREADING_LAYER`` is respected.
- **Cache.** Kernels are compiled with ``cache=True`` so the JIT cost is paid once per machine. Where the package
  directory is read-only (a root-owned site-packages, a read-only image), numba finds no place to cache and would
  refuse to compile; :func:`jit` then points numba at a writable user cache directory, and if none is writable it
  compiles without a cache, with one warning.
- **OpenMP wait policy.** See :func:`prefer_passive_openmp`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numba

__all__ = ["jit", "prefer_passive_openmp", "user_cache_dir"]

F = TypeVar("F", bound=Callable[..., Any])

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

_cache_state = {"warned": False}


def prefer_passive_openmp() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy.

    With the policy unset, the OpenMP runtime that torch bundles keeps its workers spinning after every parallel
    region; in EHD inference torch ops (im2col, pooling) alternate with numba kernels whose threads then compete
    with the spinning ones for the same cores (``benchmarks/bench_omp_wait.py`` measures it). The policy is read
    once, when torch loads its OpenMP runtime, so this must run before ``import torch``; the ``gnet`` command and
    the test suite do so.

    Returns:
        True when the setting can still take effect (torch is not imported yet), False otherwise.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return "torch" not in sys.modules


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gnet-hdc/numba`` (``~/.cache`` by default), else a per-user folder in the temp dir."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gnet-hdc" / "numba"


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _use_user_cache() -> bool:
    """Point numba's cache at the first writable user location; False if there is none."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    for path in (user_cache_dir(), Path(tempfile.gettempdir()) / f"gnet-hdc-numba-{uid}"):
        if _writable(path):
            numba.config.CACHE_DIR = str(path)
            return True
    return False


def jit(**options: Any) -> Callable[[F], F]:
    """``numba.njit(cache=True, nogil=True, **options)`` that degrades instead of failing where no cache is writable.

    Example:
        >>> from hdc._kernels.runtime import jit
        >>> @jit(fastmath=True)
        ... def twice(x):
        ...     return 2 * x
        >>> twice(21)
        42
    """
    options.setdefault("nogil", True)

    def decorate(fn: F) -> F:
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError as err:  # "cannot cache function ...: no locator available"
            if "cache" not in str(err):
                raise
        if _use_user_cache():
            try:
                return numba.njit(cache=True, **options)(fn)
            except RuntimeError:
                pass
        if not _cache_state["warned"]:
            _cache_state["warned"] = True
            warnings.warn(
                "gnet-hdc: no writable numba cache (package dir, $XDG_CACHE_HOME, temp dir); kernels are compiled "
                "anew in every process. Set NUMBA_CACHE_DIR to a writable directory to keep them.",
                RuntimeWarning,
                stacklevel=2,
            )
        return numba.njit(cache=False, **options)(fn)

    return decorate
