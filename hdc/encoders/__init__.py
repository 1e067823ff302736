"""Encoders into packed hypervectors: scalar codebooks, records, n-grams."""

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

__all__ = [
    "KINDS",
    "RecordEncoder",
    "ScalarEncoder",
    "circular_codebook",
    "encode_records",
    "level_codebook",
    "ngram",
    "ngrams",
    "thermometer_codebook",
    "value_to_level",
]
