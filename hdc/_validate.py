"""Argument checks shared by every public function of :mod:`hdc` and :mod:`gnet` (private).

Each check returns the normalised value or raises ``ValueError`` naming the argument and the problem, so a public
function validates its inputs in one line per argument before it allocates anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Seed", "as_generator", "as_seed", "check_choice", "check_int", "check_number", "check_seed"]

Seed = int | np.integer | np.random.Generator


def check_seed(seed: Any, name: str = "seed") -> int | np.random.Generator:
    """A non-negative int (returned as ``int``) or a ``numpy.random.Generator`` (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{name} must be a non-negative int or a numpy.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int or a numpy.random.Generator, got {seed}")
    return int(seed)


def as_seed(seed: Any, name: str = "seed") -> int:
    """The seed as a non-negative int; a Generator is consumed once to draw one (in ``[0, 2**63 - 1)``)."""
    seed = check_seed(seed, name)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1))
    return seed


def as_generator(seed: Any, name: str = "seed", stream: Sequence[int] = ()) -> np.random.Generator:
    """A Generator: an int seeds ``SeedSequence(seed, spawn_key=stream)`` (``default_rng(seed)`` when ``stream`` is
    empty); a Generator is returned as is, since its owner chose the stream."""
    seed = check_seed(seed, name)
    if isinstance(seed, np.random.Generator):
        return seed
    if not stream:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(stream)))


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError: unknown NAME 'x'; valid: a, b``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(choices)}")
    return value


def check_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a bool) within ``[minimum, maximum]``, returned as a Python ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def check_number(
    value: Any, name: str, minimum: float | None = None, maximum: float | None = None, *, strict: bool = False
) -> float:
    """A finite real number (not a bool) within ``[minimum, maximum]`` (``(minimum, ...`` when ``strict``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value
