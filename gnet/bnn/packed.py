"""Packed inference of a trained BNN: sign weights in uint64 words, XNOR-popcount layers, integer thresholds.

:func:`convert` turns a :class:`gnet.bnn.models.BNN` into a :class:`PackedBNN` that computes, batch by batch:

- a layer whose input is binary: ``dot = fan_in - 2 * Hamming(bits(x), bits(sign w))`` on the ``hdc`` kernels
  (:func:`hdc.hamming_distance`); convolutions pad with +1 bits and subtract a precomputed border correction, so the
  result equals the model's zero padding;
- a layer whose input is real (the first layer, or BinaryConnect's hidden layers): the float64 convolution /
  matmul with the +-1 weights, as the model's eval forward computes it;
- binary layer + BatchNorm + sign: one comparison per unit, ``dot >= T_o`` (or ``<=`` where the folded scale is
  negative), with ``T_o`` found exactly: the model's float64 ``BN(alpha * y)`` is a monotone function of ``y``
  (every float op rounds monotonically), so the smallest ``y`` whose output is ``>= 0`` is found by bisection over
  the ordered float64 values and, for integer ``dot``, rounded up; :func:`convert` checks every integer of
  ``[-fan_in, fan_in]`` against it;
- max-pooling of binary activations as OR over the window; the last layer's real logits as in the model.

So ``PackedBNN.predict`` equals the torch model's eval-mode argmax exactly (ties included), whenever the model's own
float64 sums for real-valued inputs are exact (true for float32 inputs whose magnitudes span fewer than about
``52 - log2(fan_in)`` binary orders, e.g. any 8-bit image scaled to [-1, 1]).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from torch import nn

from gnet.bnn.layers import (
    BatchNorm1d,
    BatchNorm2d,
    BinaryActivation,
    BinaryConv1d,
    BinaryConv2d,
    BinaryLinear,
    bn_eval64,
)
from gnet.bnn.models import BNN
from hdc._validate import check_int
from hdc.hamming import hamming_distance
from hdc.packed import pack_bits, pack_sign

__all__ = ["PackedBNN", "convert", "float_thresholds"]

_BINARY = (BinaryLinear, BinaryConv1d, BinaryConv2d)
_BN = (BatchNorm1d, BatchNorm2d)
_SIGN_BIT = -(2**63)
_MAX_KEY = int(np.array(np.finfo(np.float64).max).view(np.int64))  # ordered key of the largest finite float64


def _from_key(key: torch.Tensor) -> torch.Tensor:
    """Ordered int64 key -> float64 (key 0 is +0.0; negative keys are negative floats, larger key = larger)."""
    bits = torch.where(key >= 0, key, (-key) | _SIGN_BIT)
    return bits.view(torch.float64)


def float_thresholds(
    decide: Callable[[torch.Tensor], torch.Tensor], n_channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-channel thresholds of a monotone decision.

    Args:
        decide: maps float64 (K, C) values to bool (K, C), non-decreasing in each value (False then True).

    Returns:
        ``t`` float64 (C,): the smallest finite float64 where ``decide`` is True (``-inf`` if it is True
        everywhere, ``+inf`` if nowhere), so ``decide(y) == (y >= t)`` for every finite ``y``.
    """
    lo = torch.full((n_channels,), -_MAX_KEY, dtype=torch.int64)
    hi = torch.full((n_channels,), _MAX_KEY, dtype=torch.int64)
    at_lo = decide(_from_key(lo)[None])[0]
    at_hi = decide(_from_key(hi)[None])[0]
    # invariant for the channels still searched: decide(lo) False, decide(hi) True
    for _ in range(70):
        open_ = (hi > lo + 1) & ~at_lo & at_hi  # not hi - lo: it overflows int64
        if not bool(open_.any()):
            break
        mid = (lo & hi) + ((lo ^ hi) >> 1)  # floor((lo + hi) / 2) without overflow
        up = decide(_from_key(mid)[None])[0]
        hi = torch.where(open_ & up, mid, hi)
        lo = torch.where(open_ & ~up, mid, lo)
    t = _from_key(hi)
    t = torch.where(at_lo, torch.tensor(-math.inf, dtype=torch.float64), t)
    return torch.where(~at_hi, torch.tensor(math.inf, dtype=torch.float64), t)


@dataclass
class _Layer:
    """One binary layer (+ BatchNorm (+ sign)) of the packed network."""

    kind: str  # "linear", "conv1d", "conv2d"
    weight_pm1: torch.Tensor  # float64 (O, C, *k) in {-1, +1} for the real-input path
    words: NDArray[np.uint64]  # (O, n_words(fan_in)) packed sign(w)
    alpha: torch.Tensor | None  # float64 (O,) or None (no scaling)
    bn: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None  # float64 (mean, inv, beta)
    sign: bool  # BN output thresholded to bits
    input_binary: bool
    binarize_input: bool
    conv: dict[str, tuple[int, ...]] = field(default_factory=dict)  # stride, padding, dilation
    threshold: torch.Tensor | None = None  # float64 (O,) for real inputs, int64 (O,) for binary inputs
    flip: torch.Tensor | None = None  # bool (O,): decision is ``<`` instead of ``>=``
    _corr: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)

    @property
    def fan_in(self) -> int:
        return self.weight_pm1[0].numel()

    def affine(self, y: torch.Tensor) -> torch.Tensor:
        """The model's eval ops after the sums: ``BN(alpha * y)`` in float64 (channel axis 1)."""
        if self.alpha is not None:
            y = y * self.alpha.view(1, -1, *([1] * (y.ndim - 2)))
        return bn_eval64(y, *self.bn) if self.bn is not None else y.double()

    def fold(self) -> None:
        """Thresholds of ``affine(y) >= 0`` per unit (see :func:`float_thresholds`)."""
        neg = torch.zeros(self.weight_pm1.shape[0], dtype=torch.bool)
        if self.bn is not None:
            neg = self.bn[1] < 0
        t = float_thresholds(lambda y: (self.affine(y) >= 0) != neg, len(neg))
        # where ``neg``, affine(y) >= 0 <=> y < t
        self.flip = neg
        if not self.input_binary:
            self.threshold = t
            return
        limit = self.fan_in + 1
        self.threshold = torch.ceil(t.clamp(-limit, limit)).to(torch.int64)
        dots = torch.arange(-self.fan_in, self.fan_in + 1, dtype=torch.float64)[:, None].expand(-1, len(neg))
        want = self.affine(dots) >= 0
        got = (dots >= self.threshold) != neg
        if not bool(torch.equal(want, got)):  # pragma: no cover - a non-monotone BN would be a bug
            raise RuntimeError("BatchNorm + sign did not fold into integer thresholds")

    def _corrections(self, spatial: tuple[int, ...]) -> torch.Tensor:
        """(P, O) int64: what the +1 padding bits add to each patch's dot product (removed again)."""
        if spatial not in self._corr:
            pad = self.conv["padding"]
            ind = torch.zeros(1, self.weight_pm1.shape[1], *spatial, dtype=torch.float64)
            ind = F.pad(ind, [p for p in reversed(pad) for _ in (0, 1)], value=1.0)
            op = F.conv2d if self.kind == "conv2d" else F.conv1d
            corr = op(ind, self.weight_pm1, stride=self.conv["stride"], dilation=self.conv["dilation"])
            self._corr[spatial] = corr[0].reshape(corr.shape[1], -1).T.round().to(torch.int64)
        return self._corr[spatial]

    def _binary_dots(self, bits: NDArray[np.bool_]) -> torch.Tensor:
        """Integer pre-activations (B, O, *out) int64 of a binary input (B, C, *spatial) or (B, F)."""
        if self.kind == "linear":
            h = hamming_distance(pack_bits(bits), self.words)
            return torch.from_numpy(self.fan_in - 2 * h.astype(np.int64))
        rows, out_shape = _patches(bits, self.weight_pm1.shape[2:], **self.conv)
        h = torch.from_numpy(hamming_distance(pack_bits(rows), self.words).astype(np.int64))
        dots = self.fan_in - 2 * h.view(bits.shape[0], -1, h.shape[1]) - self._corrections(bits.shape[2:])
        return dots.permute(0, 2, 1).reshape(bits.shape[0], -1, *out_shape)

    def _real_sums(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(x.double(), self.weight_pm1)
        op = F.conv2d if self.kind == "conv2d" else F.conv1d
        return op(x.double(), self.weight_pm1, **self.conv)

    def __call__(self, state: Any) -> Any:
        if self.binarize_input and isinstance(state, torch.Tensor):
            state = (state >= 0).numpy()
        y = self._binary_dots(state) if self.input_binary else self._real_sums(state)
        if not self.sign:
            return self.affine(y.double())
        shape = (1, -1, *([1] * (y.ndim - 2)))
        bits = (y >= self.threshold.view(shape)) != self.flip.view(shape)
        return bits.numpy()


def _patches(
    bits: NDArray[np.bool_], kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[NDArray[np.bool_], tuple[int, ...]]:
    """im2col of (B, C, *spatial) bits padded with True: ((B * P, C * prod(kernel)) in the weight's flatten order,
    output spatial shape)."""
    dims = len(kernel)
    x = np.pad(bits, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=True)
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    win = sliding_window_view(x, span, axis=tuple(range(2, 2 + dims)))
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)
              + tuple(slice(None, None, d) for d in dilation)]
    win = win.transpose((0, *range(2, 2 + dims), 1, *range(2 + dims, 2 + 2 * dims)))
    out_shape = tuple(win.shape[1 : 1 + dims])
    return np.ascontiguousarray(win).reshape(bits.shape[0] * math.prod(out_shape), -1), out_shape


def _or_pool(bits: NDArray[np.bool_], pool: nn.Module) -> NDArray[np.bool_]:
    """Max-pooling of +-1 activations = OR of their bits."""
    dims = 2 if isinstance(pool, nn.MaxPool2d) else 1
    tup = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * dims
    k, s, p, d = tup(pool.kernel_size), tup(pool.stride), tup(pool.padding), tup(pool.dilation)
    if s == k and not any(p) and all(i == 1 for i in d) and not pool.ceil_mode:
        trimmed = bits[(..., *(slice(0, (n // kk) * kk) for n, kk in zip(bits.shape[2:], k)))]
        out = None
        for offset in itertools.product(*(range(kk) for kk in k)):  # OR of k strided views: no 2k-D reduction
            view = trimmed[(..., *(slice(o, None, kk) for o, kk in zip(offset, k)))]
            out = view.copy() if out is None else np.logical_or(out, view, out=out)
        return out
    pm1 = torch.from_numpy(bits).to(torch.float32) * 2 - 1
    return (pool(pm1) > 0).numpy()


class PackedBNN:
    """A converted BNN. ``stages`` run in order on a state that is either a numpy bool array of bits (binary
    activations, True = +1) or a float64 torch tensor (real values)."""

    def __init__(self, stages: list[Any], n_classes: int, method: str) -> None:
        self.stages = stages
        self.n_classes = n_classes
        self.method = method

    @property
    def layers(self) -> list[_Layer]:
        return [s for s in self.stages if isinstance(s, _Layer)]

    def logits(self, x: Any, batch_size: int = 256) -> torch.Tensor:
        """float32 logits (B, n_classes) of inputs x (B, *input_shape) (torch tensor or numpy array)."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        if not x.is_floating_point() or x.ndim < 2:
            raise ValueError(f"x must be a float array (batch, *input_shape), got {x.dtype} {tuple(x.shape)}")
        check_int(batch_size, "batch_size", 1)
        outs = []
        for i in range(0, len(x), batch_size):
            state: Any = x[i : i + batch_size].detach().cpu()
            for stage in self.stages:
                state = stage(state)
            if not isinstance(state, torch.Tensor):
                state = torch.from_numpy(state).double() * 2 - 1
            outs.append(state.float())
        return torch.cat(outs)

    def predict(self, x: Any, batch_size: int = 256) -> NDArray[np.int64]:
        """Argmax class (B,) int64, equal to the torch model's eval-mode predictions."""
        return self.logits(x, batch_size).argmax(dim=1).numpy()

    def weight_bytes(self) -> int:
        """Bytes of the packed binary weights."""
        return sum(layer.words.nbytes for layer in self.layers)


def _bits_module(module: nn.Module) -> Callable[[Any], Any]:
    """Stage for a non-binary module: bits become +-1 float64 first; the module runs on real values."""

    def run(state: Any) -> Any:
        if not isinstance(state, torch.Tensor):
            state = torch.from_numpy(state).double() * 2 - 1
        return module(state)

    return run


def _pool_stage(pool: nn.Module) -> Callable[[Any], Any]:
    return lambda state: pool(state) if isinstance(state, torch.Tensor) else _or_pool(state, pool)


def _flatten_stage(state: Any) -> Any:
    return state.reshape(state.shape[0], -1)


def _binarize_stage(state: Any) -> Any:
    return (state >= 0).numpy() if isinstance(state, torch.Tensor) else state


def _make_layer(layer: nn.Module, bn: nn.Module | None, sign: bool, binary_in: bool) -> _Layer:
    kind = {BinaryLinear: "linear", BinaryConv1d: "conv1d", BinaryConv2d: "conv2d"}[type(layer)]
    conv = {} if kind == "linear" else {"stride": tuple(layer.stride), "padding": tuple(layer.padding),
                                        "dilation": tuple(layer.dilation)}
    if kind != "linear" and isinstance(layer.padding, str):
        raise ValueError(f"{type(layer).__name__}: string padding {layer.padding!r} is not supported")
    w = layer.weight.detach().cpu()
    packed = _Layer(
        kind=kind, weight_pm1=layer.binary_weight().cpu().double(), words=pack_sign(w.reshape(w.shape[0], -1)),
        alpha=layer.alpha().cpu().double() if layer.scale == "channel" else None,
        bn=None if bn is None else tuple(t.cpu() for t in bn.eval_affine()), sign=sign,
        input_binary=binary_in or layer.input_quantizer is not None,
        binarize_input=layer.input_quantizer is not None and not binary_in, conv=conv,
    )
    if sign:
        packed.fold()
    return packed


def convert(model: nn.Module) -> PackedBNN:
    """Pack a trained :class:`~gnet.bnn.models.BNN` (any mode; it is read, not changed).

    Raises:
        ValueError: ``model`` is not a BNN (a G-Net goes to ``gnet.ehd.convert``), or holds a module that the
            packed path does not know.
    """
    if not isinstance(model, BNN):
        raise ValueError(
            f"gnet.bnn.convert expects a BNN from gnet.bnn.build_bnn, got {type(model).__name__}"
            " (a float G-Net converts with gnet.ehd.convert)"
        )
    mods = list(model)
    stages: list[Any] = []
    binary, i = False, 0
    with torch.no_grad():
        while i < len(mods):
            m = mods[i]
            if isinstance(m, _BINARY):
                bn = mods[i + 1] if i + 1 < len(mods) and isinstance(mods[i + 1], _BN) else None
                j = i + 1 + (bn is not None)
                sign = j < len(mods) and isinstance(mods[j], BinaryActivation)
                stages.append(_make_layer(m, bn, sign, binary))
                binary, i = sign, j + sign
                continue
            if isinstance(m, BinaryActivation):
                stages.append(_binarize_stage)
                binary = True
            elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
                stages.append(_pool_stage(m))
            elif isinstance(m, nn.Flatten):
                stages.append(_flatten_stage)
            elif isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)):
                pass
            elif isinstance(m, (nn.ReLU, nn.Hardtanh, *_BN)):
                stages.append(_bits_module(m) if not isinstance(m, _BN) else _bn_stage(m))
                binary = False
            else:
                raise ValueError(f"module {i} ({type(m).__name__}) has no packed implementation")
            i += 1
    n_classes = model.binary_layers()[-1].weight.shape[0]
    return PackedBNN(stages, n_classes, model.method)


def _bn_stage(bn: nn.Module) -> Callable[[Any], Any]:
    affine = tuple(t.cpu() for t in bn.eval_affine())
    return lambda state: bn_eval64(_bits_module(nn.Identity())(state), *affine)
