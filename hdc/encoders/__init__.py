"""Encoders into packed hypervectors: scalar codebooks, records, n-grams, and the scikit-learn feature encoders.

The feature encoders (:mod:`hdc.encoders.features`: ``KernelEncoder``, ``ProjectionEncoder``, ``LevelEncoder``,
``make_encoder``) are loaded on first use, so ``import hdc.encoders`` does not import scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hdc.encoders.ngram import ngram, ngrams
from hdc.encoders.record import RecordEncoder, encode_records
from hdc.encoders.scalar import (
    KINDS,
    ScalarEncoder,
    circular_codebook,
    level_codebook,
    thermometer_codebook,
    value_to_level,
)

if TYPE_CHECKING:
    from hdc.encoders.features import ENCODERS, KernelEncoder, LevelEncoder, ProjectionEncoder, make_encoder

_FEATURE_ENCODERS = ("ENCODERS", "KernelEncoder", "LevelEncoder", "ProjectionEncoder", "make_encoder")

__all__ = [
    "ENCODERS",
    "KINDS",
    "KernelEncoder",
    "LevelEncoder",
    "ProjectionEncoder",
    "RecordEncoder",
    "ScalarEncoder",
    "circular_codebook",
    "encode_records",
    "level_codebook",
    "make_encoder",
    "ngram",
    "ngrams",
    "thermometer_codebook",
    "value_to_level",
]


def __getattr__(name: str) -> Any:
    if name in _FEATURE_ENCODERS:
        from hdc.encoders import features

        return getattr(features, name)
    raise AttributeError(f"module 'hdc.encoders' has no attribute {name!r}")
