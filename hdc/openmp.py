"""OpenMP wait policy for processes that run torch ops and numba kernels one after the other.

With ``OMP_WAIT_POLICY`` unset, the OpenMP runtime that torch bundles keeps its worker threads spinning for a while
after every parallel region. In EHD inference torch ops (im2col, pooling) alternate with numba kernels (sign packing,
popcounts) whose own threads then compete with the spinning ones for the same cores: on this project's 2-core
machine the MNIST EHD net ran at 154 img/s with the policy unset and 216 img/s with ``OMP_WAIT_POLICY=PASSIVE``
(medians of 3 processes each, ``PYTHONPATH=. python3 benchmarks/bench_omp_wait.py``). The policy is read once, when torch loads its OpenMP runtime, so it must be set
before ``import torch``; the ``gnet`` command does so.
"""

from __future__ import annotations

import os
import sys

__all__ = ["prefer_passive_openmp"]


def prefer_passive_openmp() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy.

    Returns:
        True when the setting can still take effect (torch is not imported yet), False otherwise.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return "torch" not in sys.modules
