"""Packed inference of a trained BNN: sign weights in uint64 words, XNOR-popcount layers, integer thresholds.

:func:`convert` turns a :class:`gnet.bnn.models.BNN` into a :class:`PackedBNN` that computes, batch by batch:

- a layer whose input is binary: ``dot = fan_in - 2 * Hamming(bits(x), bits(sign w))`` on the ``hdc`` kernels
  (:func:`hdc.hamming_distance`); convolutions pad with +1 bits and subtract a precomputed border correction, so the
  result equals the model's zero padding;
- a layer whose input is real (the first layer, or BinaryConnect's hidden layers): the float64 convolution /
  matmul with the +-1 weights, as the model's eval forward computes it;
- a stride-1 convolution + BatchNorm + sign, with binary or real input: one fused kernel
  (:mod:`hdc._kernels.binconv`) that writes the output bits per position; the real one only where the batch's
  float64 sums are exact in any order (:func:`hdc._kernels.binconv.exact_float64_sums`), else the model's float64
  convolution as above;
- binary layer + BatchNorm + sign: one comparison per unit, ``dot >= T_o`` (a unit whose folded scale is negative
  decides ``dot < T_o``; its weight row is stored negated, so that it too compares ``>=``), with ``T_o`` found
  exactly: the model's float64 ``BN(alpha * y)`` is a monotone function of ``y`` (every float op rounds
  monotonically), so the smallest ``y`` whose output is ``>= 0`` is found by bisection over the ordered float64
  values and, for integer ``dot``, rounded up; :func:`convert` checks every integer of ``[-fan_in, fan_in]``
  against it;
- binary convolution activations packed per position (:class:`ChannelBits`: the channel bits of each pixel in
  uint64 words), so im2col gathers words and max-pooling is an OR of words over the window;
- the last layer's real logits as in the model.

So ``PackedBNN.predict`` equals the torch model's eval-mode argmax exactly (ties included), whenever the model's own
float64 sums for real-valued inputs are exact (true for float32 inputs whose magnitudes span fewer than about
``52 - log2(fan_in)`` binary orders, e.g. any 8-bit image scaled to [-1, 1]).

A :class:`PackedBNN` is a deployed model (:class:`gnet.deployed.DeployedModel`): it saves to a ``.bnn`` file
(:mod:`gnet.bnn.io`), takes bit faults on its sign weights and on its binary activations
(:meth:`PackedBNN.with_faults`, :mod:`gnet.bnn.deploy`) and counts its cost from its layer shapes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from gnet.bnn._packed_layer import PackedLayer, float_thresholds, words_from_weights
from gnet.bnn._stages import BatchNormStage, Binarize, ChannelBits, Flatten, Pool, RealActivation, to_real
from gnet.bnn._stages import _or_pool as _or_pool  # re-exported: the tests of the OR pooling import it here
from gnet.bnn.layers import BatchNorm1d, BatchNorm2d, BinaryActivation, BinaryConv1d, BinaryConv2d, BinaryLinear
from gnet.bnn.models import BNN, swap_pool
from hdc._validate import check_int
from hdc.packed import pack_bits

__all__ = ["ChannelBits", "PackedBNN", "PackedLayer", "convert", "float_thresholds"]

_BINARY = (BinaryLinear, BinaryConv1d, BinaryConv2d)
_BN = (BatchNorm1d, BatchNorm2d)
_Layer = PackedLayer  # the name the tests and older code use


class PackedBNN:
    """A converted BNN, a deployed model of family ``"bnn"``.

    ``stages`` run in order on a state that is a float64 torch tensor (real values), a numpy bool array (B, F) of
    bits (True = +1), or :class:`ChannelBits` (binary convolution activations).

    Attributes:
        n_classes: number of classes (the last layer's units).
        method: the training method (``bnn``, ``bnn++``, ...).
        input_shape: shape of one input item, checked by :meth:`predict`, or None where unknown.
        meta: provenance (dataset, val_fraction, data_seed, scaling, faults applied), JSON-serialisable.
    """

    family = "bnn"

    def __init__(
        self,
        stages: list[Any],
        n_classes: int,
        method: str,
        *,
        input_shape: Sequence[int] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.stages = stages
        self.n_classes = int(n_classes)
        self.method = method
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.meta = dict(meta or {})

    @property
    def layers(self) -> list[PackedLayer]:
        return [s for s in self.stages if isinstance(s, PackedLayer)]

    def logits(self, x: Any, batch_size: int = 256) -> torch.Tensor:
        """float32 logits (B, n_classes) of inputs x (B, *input_shape) (torch tensor or numpy array)."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        if not x.is_floating_point() or x.ndim < 2:
            raise ValueError(f"x must be a float array (batch, *input_shape), got {x.dtype} {tuple(x.shape)}")
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"x has items of shape {tuple(x.shape[1:])}, but this model takes {self.input_shape} "
                f"(x must be (batch, {', '.join(map(str, self.input_shape))}))"
            )
        check_int(batch_size, "batch_size", 1)
        outs = []
        for i in range(0, len(x), batch_size):
            state: Any = x[i : i + batch_size].detach().cpu()
            for stage in self.stages:
                state = stage(state, i) if isinstance(stage, PackedLayer) else stage(state)
            outs.append(to_real(state).float())
        return torch.cat(outs) if outs else torch.zeros(0, self.n_classes)

    def predict(self, x: Any, batch_size: int = 256) -> NDArray[np.int64]:
        """Argmax class (B,) int64, equal to the torch model's eval-mode predictions (any ``batch_size``)."""
        return self.logits(x, batch_size).argmax(dim=1).numpy()

    def weight_bytes(self) -> int:
        """Bytes of the packed binary weights."""
        return sum(layer.words.nbytes for layer in self.layers)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to a ``.bnn`` file (:func:`gnet.bnn.io.save_packed_bnn`); returns the path."""
        from gnet.bnn.io import save_packed_bnn

        return save_packed_bnn(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, max_bytes: int | None = None) -> PackedBNN:
        """Read a ``.bnn`` file (:func:`gnet.bnn.io.load_packed_bnn`)."""
        from gnet.bnn.io import load_packed_bnn

        return load_packed_bnn(path, max_bytes=max_bytes)

    def fault_targets(self) -> tuple[str, ...]:
        """``("weights", "activations")``; ``("weights",)`` where no layer has binary inputs (BinaryConnect)."""
        from gnet.bnn.deploy import fault_targets

        return fault_targets(self)

    def with_faults(self, p: float, target: str, seed: int, kind: str = "flip") -> PackedBNN:
        """A copy with bit faults at rate ``p`` (see :func:`gnet.bnn.deploy.with_faults`)."""
        from gnet.bnn.deploy import with_faults

        return with_faults(self, p, target, seed, kind)

    def cost(self) -> Any:
        """:class:`gnet.deployed.ModelCost` counted from the layer shapes (see :func:`gnet.bnn.deploy.cost`)."""
        from gnet.bnn.deploy import cost

        return cost(self)


def _make_layer(
    layer: BinaryLinear | BinaryConv1d | BinaryConv2d,
    bn: BatchNorm1d | BatchNorm2d | None,
    sign: bool,
    binary_in: bool,
) -> PackedLayer:
    kind = {BinaryLinear: "linear", BinaryConv1d: "conv1d", BinaryConv2d: "conv2d"}[type(layer)]
    conv: dict[str, tuple[int, ...]] = {}
    if not isinstance(layer, BinaryLinear):
        if isinstance(layer.padding, str):
            raise ValueError(f"{type(layer).__name__}: string padding {layer.padding!r} is not supported")
        conv = {"stride": tuple(layer.stride), "padding": tuple(layer.padding), "dilation": tuple(layer.dilation)}
    weight_pm1 = layer.binary_weight().cpu().double()
    packed = PackedLayer(
        kind=kind,
        weight_pm1=weight_pm1,
        words=words_from_weights(weight_pm1),
        alpha=layer.alpha().cpu().double() if layer.scale == "channel" else None,
        bn=None if bn is None else _cpu_affine(bn),
        sign=sign,
        input_binary=binary_in or layer.input_quantizer is not None,
        binarize_input=layer.input_quantizer is not None and not binary_in,
        conv=conv,
        pad_word=pack_bits(np.ones(weight_pm1.shape[1], dtype=bool)) if kind != "linear" else None,
    )
    if sign:
        packed.fold()
    return packed


def _input_shape(model: BNN, input_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """The argument, else the model config's ``input_shape``, else ``(in_features,)`` of a linear first layer."""
    if input_shape is None:
        input_shape = model.config.get("input_shape")
    if input_shape is None:
        first = model.binary_layers()[0]
        return (first.in_features,) if isinstance(first, BinaryLinear) else None
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or not input_shape:
        raise ValueError(f"input_shape must be a non-empty sequence of ints, got {input_shape!r}")
    return tuple(check_int(v, "input_shape entries", 1) for v in input_shape)


def _pool_last(mods: list[nn.Module]) -> list[nn.Module]:
    """The pool-first order back to layer, BatchNorm, activation, max-pool, the order the packed stages run in
    (threshold, then OR). The same function when every BatchNorm scale after a pool is positive (BatchNorm and the
    activation are then non-decreasing, and so is float rounding, so the max commutes with them exactly)."""
    for i in range(1, len(mods) - 1):
        layer, pool, bn = mods[i - 1], mods[i], mods[i + 1]
        if (
            isinstance(layer, _BINARY)
            and isinstance(pool, (nn.MaxPool1d, nn.MaxPool2d))
            and isinstance(bn, _BN)
            and not bool((_cpu_affine(bn)[1] > 0).all())
        ):
            raise ValueError(
                f"module {i + 1}: a BatchNorm after a pool needs positive scales to be packed "
                "(build the BNN with bn_scale='fixed', or pool_first=False)"
            )
    return swap_pool(mods, to_pool_first=False)


def convert(
    model: nn.Module, *, input_shape: Sequence[int] | None = None, meta: dict[str, Any] | None = None
) -> PackedBNN:
    """Pack a trained :class:`~gnet.bnn.models.BNN` (any mode; it is read, not changed).

    Args:
        model: the BNN.
        input_shape: the shape of one input item (checked at inference, needed for :meth:`PackedBNN.cost` of a
            convolutional net); default: the model config's ``input_shape``, else that of a linear first layer.
        meta: provenance kept in :attr:`PackedBNN.meta` and the ``.bnn`` file (e.g. the dataset).

    Raises:
        ValueError: ``model`` is not a BNN (a G-Net goes to ``gnet.ehd.convert``), or holds a module that the
            packed path does not know.
    """
    if not isinstance(model, BNN):
        raise ValueError(
            f"gnet.bnn.convert expects a BNN from gnet.bnn.build_bnn, got {type(model).__name__}"
            " (a float G-Net converts with gnet.ehd.convert, a DiffLogic network with gnet.logic.convert)"
        )
    if meta is not None and not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    shape = _input_shape(model, input_shape)
    mods = _pool_last(list(model))
    stages: list[Any] = []
    binary, i = False, 0
    with torch.no_grad():
        while i < len(mods):
            m = mods[i]
            if isinstance(m, _BINARY):
                nxt = mods[i + 1] if i + 1 < len(mods) else None
                bn = nxt if isinstance(nxt, _BN) else None
                j = i + 1 + (bn is not None)
                sign = j < len(mods) and isinstance(mods[j], BinaryActivation)
                stages.append(_make_layer(m, bn, sign, binary))
                binary, i = sign, j + sign
                continue
            if isinstance(m, BinaryActivation):
                stages.append(Binarize())
                binary = True
            elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
                stages.append(Pool.from_module(m))
            elif isinstance(m, nn.Flatten):
                stages.append(Flatten())
            elif isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)):
                pass
            elif isinstance(m, nn.ReLU):
                stages.append(RealActivation("relu"))
                binary = False
            elif isinstance(m, nn.Hardtanh):
                stages.append(RealActivation("hardtanh", float(m.min_val), float(m.max_val)))
                binary = False
            elif isinstance(m, _BN):
                stages.append(BatchNormStage(*_cpu_affine(m)))
                binary = False
            else:
                raise ValueError(f"module {i} ({type(m).__name__}) has no packed implementation")
            i += 1
    n_classes = model.binary_layers()[-1].weight.shape[0]
    info = {"method": model.method, **(meta or {})}
    return PackedBNN(stages, n_classes, model.method, input_shape=shape, meta=info)


def _cpu_affine(bn: BatchNorm1d | BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The BatchNorm's eval (mean, inv, beta), float64 on the CPU."""
    mean, inv, beta = bn.eval_affine()
    return mean.cpu(), inv.cpu(), beta.cpu()
