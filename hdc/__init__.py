"""hdc: packed binary hyperdimensional computing.

Submodules: :mod:`hdc.packed` (storage layout), :mod:`hdc.ops` (bind, bundle, permute,
similarities), :mod:`hdc.hamming` (exact all-pairs Hamming kernels, top-k),
:mod:`hdc.memory` (item memory), :mod:`hdc.encoders` (scalar codebooks, records, n-grams),
:mod:`hdc.projection` (seeded random sign projections).
"""

from hdc.hamming import bipolar_dot, hamming_distance, hamming_similarity, hamming_topk
from hdc.memory import ItemMemory, chance_threshold
from hdc.ops import (
    bind,
    bit_counts,
    bundle,
    bundle_from_counts,
    cosine,
    dot,
    inverse_permute,
    permute,
    random,
    similarity,
)
from hdc.packed import (
    WORD_BITS,
    PackedHV,
    from_bipolar,
    n_words,
    pack_bits,
    pack_sign,
    tail_mask,
    to_bipolar,
    unpack_bits,
)

__all__ = [
    "WORD_BITS",
    "ItemMemory",
    "PackedHV",
    "bind",
    "bipolar_dot",
    "bit_counts",
    "bundle",
    "bundle_from_counts",
    "chance_threshold",
    "cosine",
    "dot",
    "from_bipolar",
    "hamming_distance",
    "hamming_similarity",
    "hamming_topk",
    "inverse_permute",
    "n_words",
    "pack_bits",
    "pack_sign",
    "permute",
    "random",
    "similarity",
    "tail_mask",
    "to_bipolar",
    "unpack_bits",
]
