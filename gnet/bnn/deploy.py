"""A packed BNN as a deployed model: bit faults on its sign weights and binary activations, and its cost.

Fault targets (the :class:`hdc.faults.BitFaults` model, exactly ``round(p * bits)`` distinct bits per row):

- ``"weights"``: every binary layer's packed sign-weight rows (one row per output unit, ``fan_in`` bits: for a
  convolution the bits of all kernel positions together) get ``round(p * fan_in)`` faults each, once, in a copy.
  Layer ``l`` (index into :attr:`PackedBNN.layers`) draws from ``SeedSequence(seed, spawn_key=(0, l))``. The
  faulty copy is the network with those sign bits changed; what is derived from them (the +-1 weights of a
  real-input layer, the padding corrections of a convolution) follows, so the zero padding stays exact.
- ``"activations"``: at inference the binary input of every layer that has one (the bits after the previous
  sign, pooling and flatten: ``C * prod(spatial)`` bits per item for a convolution, ``in_features`` for a linear
  layer) gets ``round(p * bits)`` faults per item. Layer ``l`` uses the key of stream ``(1, l)`` and the
  counter-based row sampler keyed by the item's index in the array given to ``predict`` (see
  :func:`hdc.faults.row_fault_mask`), so an item's faults do not depend on the batch size.

:func:`cost` counts model bits and work per image from the layer shapes (see :class:`gnet.deployed.ModelCost`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gnet.bnn._packed_layer import PackedLayer
from gnet.bnn._stages import BatchNormStage, ChannelBits, Flatten, Pool
from gnet.bnn.packed import PackedBNN
from gnet.deployed import ModelCost
from hdc._validate import check_int, check_number
from hdc.faults import BitFaults, fault_key, row_fault_mask
from hdc.packed import pack_bits, unpack_bits

__all__ = ["TARGETS", "ActivationFaults", "cost", "fault_targets", "layer_shapes", "with_faults"]

TARGETS = ("weights", "activations")
_WEIGHT_STREAM = 0
_ACTIVATION_STREAM = 1


def fault_targets(model: PackedBNN) -> tuple[str, ...]:
    """``("weights", "activations")``, or ``("weights",)`` where no layer has binary inputs (BinaryConnect)."""
    return TARGETS if any(layer.input_binary for layer in model.layers) else TARGETS[:1]


def _row_bits(layer: PackedLayer) -> NDArray[np.bool_]:
    """The sign bits of each weight row (O, fan_in), kernel positions in order, channels within."""
    per_pos = layer.words.reshape(layer.out_units, math.prod(layer.kernel), -1)
    return unpack_bits(per_pos, layer.in_channels).reshape(layer.out_units, layer.fan_in)


def _rows_to_words(layer: PackedLayer, bits: NDArray[np.bool_]) -> NDArray[np.uint64]:
    per_pos = bits.reshape(layer.out_units, math.prod(layer.kernel), layer.in_channels)
    return pack_bits(per_pos).reshape(layer.out_units, -1)


def _faulty_words(layer: PackedLayer, faults: BitFaults, seed: int, index: int) -> NDArray[np.uint64]:
    rows = pack_bits(_row_bits(layer))
    faulty = faults.apply(rows, layer.fan_in, seed, (_WEIGHT_STREAM, index))
    return _rows_to_words(layer, unpack_bits(faulty, layer.fan_in))


def _apply(bits: NDArray[np.bool_], mask: NDArray[np.bool_], kind: str) -> NDArray[np.bool_]:
    if kind == "flip":
        return bits ^ mask
    return bits & ~mask if kind == "stuck0" else bits | mask


class ActivationFaults:
    """The ``input_fault`` of one layer: ``(bits, start) -> faulty bits``, ``round(p * bits)`` per item, keyed by
    the item's index ``start + b`` (independent of the batch size)."""

    def __init__(self, faults: BitFaults, seed: int, index: int) -> None:
        self.faults = faults
        self.index = int(index)
        self.key = fault_key(int(seed), (_ACTIVATION_STREAM, self.index))

    def _fault_rows(self, rows: NDArray[np.bool_], start: int) -> NDArray[np.bool_]:
        n_bits = rows.shape[1]
        k = self.faults.count(n_bits)
        if k == 0:
            return rows
        ids = np.arange(start, start + len(rows), dtype=np.int64)
        mask = row_fault_mask(ids, n_bits, k, self.key, replace=self.faults.replace)
        return _apply(rows, unpack_bits(mask, n_bits), self.faults.kind)

    def __call__(self, state: Any, start: int) -> Any:
        if isinstance(state, np.ndarray) and state.ndim > 2:
            state = ChannelBits.from_bool(state)
        if isinstance(state, ChannelBits):
            bits = unpack_bits(state.words, state.channels)  # (B, *spatial, C)
            faulty = self._fault_rows(bits.reshape(len(bits), -1), start).reshape(bits.shape)
            return ChannelBits(pack_bits(faulty), state.channels)
        return self._fault_rows(np.asarray(state, dtype=bool), start)


def with_faults(model: PackedBNN, p: float, target: str, seed: int, kind: str = "flip") -> PackedBNN:
    """A copy of ``model`` with faults at rate ``p`` in ``target`` (see the module docstring).

    Args:
        p: fault rate in [0, 1]; exactly ``round(p * bits)`` distinct bits per row.
        target: one of ``model.fault_targets()``.
        seed: non-negative int.
        kind: ``"flip"``, ``"stuck0"`` or ``"stuck1"`` (:data:`hdc.faults.FAULT_KINDS`).

    Raises:
        ValueError: a bad rate, target, seed or kind, or activation faults on a copy that already has them.
    """
    faults = BitFaults(check_number(p, "p", 0.0, 1.0), kind)
    targets = fault_targets(model)
    if target not in targets:
        why = " (this model has no binary activations)" if target in TARGETS else ""
        raise ValueError(f"target must be one of {', '.join(targets)}, got {target!r}{why}")
    seed = check_int(seed, "seed", minimum=0)
    stages: list[Any] = []
    index = 0
    for stage in model.stages:
        if not isinstance(stage, PackedLayer):
            stages.append(stage)
            continue
        words = _faulty_words(stage, faults, seed, index) if target == "weights" else stage.words
        layer = stage.with_words(words)
        if target == "activations" and layer.input_binary:
            if layer.input_fault is not None:
                raise ValueError(f"layer {index} already has activation faults; they do not stack")
            layer.input_fault = ActivationFaults(faults, seed, index)
        stages.append(layer)
        index += 1
    meta = dict(model.meta)
    record = {"target": target, "p": faults.p, "kind": faults.kind, "seed": seed}
    meta["faults"] = [*meta.get("faults", []), record]
    return PackedBNN(stages, model.n_classes, model.method, input_shape=model.input_shape, meta=meta)


def _conv_out(spatial: tuple[int, ...], layer: PackedLayer) -> tuple[int, ...]:
    out = []
    for n, k, s, p, d in zip(
        spatial, layer.kernel, layer.conv["stride"], layer.conv["padding"], layer.conv["dilation"], strict=True
    ):
        out.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(out)


def layer_shapes(model: PackedBNN) -> list[tuple[int, ...]]:
    """Output shape (per item) of every stage, from :attr:`PackedBNN.input_shape`.

    Raises:
        ValueError: the input shape is unknown (a convolutional net converted without one), or the stages do
            not fit it.
    """
    if model.input_shape is None:
        raise ValueError("the model has no input_shape (convert(model, input_shape=...)); its shapes are unknown")
    shape = model.input_shape
    out = []
    for i, stage in enumerate(model.stages):
        if isinstance(stage, PackedLayer):
            want = stage.in_channels if stage.kind != "linear" else stage.fan_in
            dims = {"linear": 0, "conv1d": 1, "conv2d": 2}[stage.kind]
            if shape[0] != want or len(shape) != dims + 1:
                raise ValueError(f"stage {i} ({stage.kind}, input {want} channels) does not fit shape {shape}")
            spatial = _conv_out(shape[1:], stage) if dims else ()
            if any(n < 1 for n in spatial):
                raise ValueError(f"stage {i} ({stage.kind}) leaves no output positions for input shape {shape}")
            shape = (stage.out_units, *spatial)
        elif isinstance(stage, Pool):
            shape = (shape[0], *stage.out_shape(shape[1:]))
        elif isinstance(stage, Flatten):
            shape = (math.prod(shape),)
        out.append(shape)
    return out


def cost(model: PackedBNN) -> ModelCost:
    """Model bits and work per image, counted from the layer shapes.

    ``model_bits``: the sign weights as stored, in whole 64-bit words (a linear row pads its fan-in to a word, a
    conv row each kernel position's input channels: 16 channels take a word of 64 bits), the thresholds at their
    stored width (int32 for integer dots, float64 for real sums), and float64 scales (alpha) and BatchNorm (mean,
    inv, beta) of the layers not followed by a sign. This is exactly what the ``.bnn`` file stores: 8 x its
    arrays' payload bytes. ``bit_ops_per_image``: one per
    XNOR bit and one per popcounted bit of every binary-input layer (``2 * fan_in * units * positions``).
    ``float_macs_per_image``: ``fan_in * units * positions`` of every real-input layer, plus one per output for
    each float scale and BatchNorm applied to real outputs.
    """
    # a linear net has one position per unit whatever its input shape; a convolutional one needs the shape
    shapes = None if model.input_shape is None and _all_linear(model) else layer_shapes(model)
    parts = {"sign weight words": 0, "int32 thresholds": 0, "float64 thresholds": 0, "float64 scales and BatchNorm": 0}
    bit_ops = macs = 0
    for i, stage in enumerate(model.stages):
        if isinstance(stage, BatchNormStage):
            parts["float64 scales and BatchNorm"] += 3 * 64 * len(stage.mean)
            continue
        if not isinstance(stage, PackedLayer):
            continue
        units = stage.out_units
        positions = 1 if shapes is None else math.prod(shapes[i][1:])
        parts["sign weight words"] += 64 * stage.words.size
        if stage.sign:
            parts["int32 thresholds" if stage.input_binary else "float64 thresholds"] += units * (
                32 if stage.input_binary else 64
            )
        n_affine = (stage.alpha is not None) + (stage.bn is not None)
        parts["float64 scales and BatchNorm"] += 64 * units * ((stage.alpha is not None) + 3 * (stage.bn is not None))
        macs += n_affine * units * positions
        if stage.input_binary:
            bit_ops += 2 * stage.fan_in * units * positions
        else:
            macs += stage.fan_in * units * positions
    return ModelCost(
        model_bits=sum(parts.values()),
        bit_ops_per_image=bit_ops,
        float_macs_per_image=macs,
        bits_by_part={k: v for k, v in parts.items() if v},
    )


def _all_linear(model: PackedBNN) -> bool:
    return all(layer.kind == "linear" for layer in model.layers)
