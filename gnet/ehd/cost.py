"""What an EHD G-Net costs, counted from its layer shapes: stored bits, bit operations and float multiply-adds.

The counting rules (the same ones ``docs/compare.md`` states for every family):

- **Model bits** are what the deployed model stores: every layer's packed weight codes at 64 bits per uint64 word,
  the padding bits of a last partial word included (``out_units * ceil(dim / 64) * 64``: exactly the bytes of the
  ``codes_i`` arrays of the ``.ehd`` file, times 8), plus the float scalars inference reads, at the width they are
  stored with (float64: the ``.ehd`` header keeps them as JSON doubles): every layer's bias ``b``, and ``alpha``
  of a RASU layer (a TASU layer and the classifier never read theirs). The structure (geometry, dims, the
  embedding name, and the seed and layer index from which every G is regenerated at load) is not counted, as no
  family's architecture is.
- **Bit operations per image**: every (output unit, patch) Hamming product XORs and popcounts the whole words of
  two codes, so it counts ``2 * 64 * ceil(dim / 64)`` (one per XOR bit plus one per popcounted bit).
- **Float multiply-adds per image**: the projection of every patch, ``G (x_p + b)``: ``dim * fan_in`` for a dense G
  (Gaussian, Rademacher, orthogonal; in whatever precision the layer runs, int8 included), and for the structured
  Hadamard G ``3 * d * log2(d)`` additions per block of ``d`` rows (``d`` the power of two >= max(fan_in, 64);
  ``ceil(dim / d)`` blocks), each addition counted as one multiply-add; its +-1 diagonals are sign flips and not
  counted. A per-channel layer projects every patch once per output unit. Elementwise work (the shift by ``b``,
  the ``z_hat`` scale, RASU/TASU, max-pooling, signs of the projections) is O(activations) and not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gnet.deployed import ModelCost

if TYPE_CHECKING:
    from gnet.ehd.layers import EHDGLayer
    from gnet.ehd.model import EHDModel

__all__ = ["SCALAR_BITS", "LayerCost", "ehd_cost", "layer_costs", "projection_macs"]

SCALAR_BITS = 64  # the .ehd header stores b and alpha as JSON doubles


@dataclass(frozen=True)
class LayerCost:
    """One code-carrying layer's share of :func:`ehd_cost` (per image; ``patches`` = output positions)."""

    index: int
    patches: int
    code_bits: int
    scalar_bits: int
    bit_ops: int
    float_macs: int


def projection_macs(kind: str, fan_in: int, dim: int) -> int:
    """Multiply-adds of one projection ``G x`` with G (dim, fan_in) of ``kind`` (see the module docstring)."""
    if kind != "hadamard":
        return dim * fan_in
    block = 64
    while block < fan_in:
        block *= 2
    return -(-dim // block) * 3 * block * int(math.log2(block))


def _layer_cost(index: int, layer: EHDGLayer, patches: int) -> LayerCost:
    g = layer.geometry
    words = -(-layer.dim // 64)
    scalars = 1 + (layer.activation == "rasu")  # b, and alpha where RASU reads it
    projections = g.out_units if layer.projection == "per_channel" else 1
    return LayerCost(
        index=index,
        patches=patches,
        code_bits=g.out_units * words * 64,
        scalar_bits=scalars * SCALAR_BITS,
        bit_ops=patches * g.out_units * 2 * 64 * words,
        float_macs=patches * projections * projection_macs(layer.embedding, g.fan_in, layer.dim),
    )


def layer_costs(model: EHDModel) -> list[LayerCost]:
    """Per code-carrying layer costs, following the shape of one input item through the stages.

    Raises:
        ValueError: the model has no ``input_shape`` (patch counts of a convolution depend on it).
    """
    from gnet.ehd.layers import EHDGLayer
    from gnet.ehd.model import Flatten, Pool

    if model.input_shape is None:
        raise ValueError("the model has no input_shape; cost() needs it to count the patches of each layer")
    shape: tuple[int, ...] = tuple(model.input_shape)
    out: list[LayerCost] = []
    for stage in model.stages:
        if isinstance(stage, Pool):
            shape = (shape[0], *(s // stage.kernel for s in shape[1:]))
        elif isinstance(stage, Flatten):
            shape = (math.prod(shape),)
        elif isinstance(stage, EHDGLayer):
            spatial = stage.geometry.output_spatial(tuple(shape[1:])) if stage.geometry.kind != "linear" else ()
            out.append(_layer_cost(len(out), stage, math.prod(spatial)))
            shape = (stage.geometry.out_units, *spatial)
    return out


def ehd_cost(model: EHDModel) -> ModelCost:
    """The :class:`~gnet.deployed.ModelCost` of an EHD model (rules in the module docstring)."""
    layers = layer_costs(model)
    codes = sum(c.code_bits for c in layers)
    scalars = sum(c.scalar_bits for c in layers)
    return ModelCost(
        model_bits=codes + scalars,
        bit_ops_per_image=sum(c.bit_ops for c in layers),
        float_macs_per_image=sum(c.float_macs for c in layers),
        bits_by_part={"codes": codes, "float64 scalars": scalars},
    )
