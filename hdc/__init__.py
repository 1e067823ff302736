"""hdc: packed binary hyperdimensional computing.

Submodules: :mod:`hdc.packed` (storage layout), :mod:`hdc.ops` (bind, bundle, permute,
similarities), :mod:`hdc.hamming` (exact all-pairs Hamming kernels, top-k),
:mod:`hdc.memory` (item memory), :mod:`hdc.encoders` (scalar codebooks, records, n-grams),
:mod:`hdc.projection` (seeded sign projections; imports torch, so it is not imported here).

``import hdc`` does not import torch, so :func:`prefer_passive_openmp` can still set the OpenMP
wait policy before torch loads.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version

from hdc._kernels.runtime import prefer_passive_openmp
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

try:
    __version__: str = _package_version("gnet-hdc")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = [
    "WORD_BITS",
    "__version__",
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
    "prefer_passive_openmp",
    "random",
    "similarity",
    "tail_mask",
    "to_bipolar",
    "unpack_bits",
]
