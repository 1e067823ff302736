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
- binary convolution activations packed per position (:class:`ChannelBits`: the channel bits of each pixel in
  uint64 words), so im2col gathers words and max-pooling is an OR of words over the window;
- the last layer's real logits as in the model.

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
from hdc.packed import pack_bits, pack_sign, unpack_bits

__all__ = ["ChannelBits", "PackedBNN", "convert", "float_thresholds"]

_BINARY = (BinaryLinear, BinaryConv1d, BinaryConv2d)
_BN = (BatchNorm1d, BatchNorm2d)
_SIGN_BIT = -(2**63)
_MAX_KEY = int(np.array(np.finfo(np.float64).max).view(np.int64))  # ordered key of the largest finite float64


def _from_key(key: torch.Tensor) -> torch.Tensor:
    """Ordered int64 key -> float64 (key 0 is +0.0; negative keys are negative floats, larger key = larger)."""
    bits = torch.where(key >= 0, key, (-key) | _SIGN_BIT)
    return bits.view(torch.float64)


def float_thresholds(decide: Callable[[torch.Tensor], torch.Tensor], n_channels: int) -> torch.Tensor:
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
class ChannelBits:
    """Binary activations of a convolution, packed per position: ``words`` uint64 (B, *spatial,
    n_words(channels)) holds the channel bits of each position (True = +1, tail bits 0)."""

    words: NDArray[np.uint64]
    channels: int

    @classmethod
    def from_bool(cls, bits: NDArray[np.bool_]) -> ChannelBits:
        """From channel-first bits (B, C, *spatial)."""
        return cls(pack_bits(np.moveaxis(bits, 1, -1)), bits.shape[1])

    def to_bool(self) -> NDArray[np.bool_]:
        """Channel-first bits (B, C, *spatial)."""
        return np.ascontiguousarray(np.moveaxis(unpack_bits(self.words, self.channels), -1, 1))


def _as_bool(state: Any) -> NDArray[np.bool_]:
    return state.to_bool() if isinstance(state, ChannelBits) else state


def _to_real(state: Any) -> torch.Tensor:
    """A real state as is; bits as +-1 float64 (channel-first)."""
    if isinstance(state, torch.Tensor):
        return state
    return torch.from_numpy(_as_bool(state)).double() * 2 - 1


def _binarize(x: torch.Tensor) -> Any:
    """sign(x) as bits: (B, F) bool, or ChannelBits for (B, C, *spatial)."""
    bits = (x >= 0).numpy()
    return ChannelBits.from_bool(bits) if bits.ndim > 2 else bits


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
    pad_word: NDArray[np.uint64] | None = None  # (n_words(C_in),): a padded position, all channel bits +1
    _corr: dict[Any, Any] = field(default_factory=dict)  # per input/output spatial shape: corrections, limits

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

    def _hamming(self, state: Any) -> tuple[NDArray[np.int32], tuple[int, ...], tuple[int, ...]]:
        """Hamming distances to the weight rows, (B, O) for linear, (B, P, O) for conv; the input and output
        spatial shapes (empty for linear)."""
        if self.kind == "linear":
            return hamming_distance(pack_bits(_as_bool(state)), self.words), (), ()
        if not isinstance(state, ChannelBits):
            state = ChannelBits.from_bool(state)
        assert self.pad_word is not None  # set for every conv layer
        rows, out_shape = _patches(state.words, self.pad_word, self.weight_pm1.shape[2:], **self.conv)
        h = hamming_distance(rows, self.words).reshape(len(state.words), -1, len(self.words))
        return h, tuple(state.words.shape[1:-1]), out_shape

    def _binary_dots(self, state: Any) -> torch.Tensor:
        """Integer pre-activations int64 of binary inputs: (B, F) bits -> (B, O); conv bits (ChannelBits or
        channel-first bool) -> channel-last (B, *out, O)."""
        h, in_shape, out_shape = self._hamming(state)
        dots = self.fan_in - 2 * h.astype(np.int64)
        if self.kind != "linear":
            dots = (dots - self._corrections(in_shape).numpy()).reshape(len(h), *out_shape, -1)
        return torch.from_numpy(dots)

    def _max_hamming(self, in_shape: tuple[int, ...]) -> NDArray[np.int32]:
        """(P, O) or (1, O) int32: ``dot >= T`` <=> ``H <= (fan_in - corr - T) // 2`` (floor)."""
        key = ("h", in_shape)
        if key not in self._corr:
            corr = self._corrections(in_shape).numpy() if self.kind != "linear" else np.zeros((1, 1), np.int64)
            assert self.threshold is not None  # set by fold()
            limit = (self.fan_in - corr - self.threshold.numpy()[None, :]) // 2
            self._corr[key] = np.clip(limit, -1, self.fan_in + 1).astype(np.int32)
        return self._corr[key]

    def _binary_sign(self, state: Any) -> Any:
        """Bits of a binary-input layer + BN + sign, compared on the Hamming distances directly."""
        h, in_shape, out_shape = self._hamming(state)
        bits = h <= self._max_hamming(in_shape)
        assert self.flip is not None  # set by fold()
        if bool(self.flip.any()):
            bits ^= self.flip.numpy()
        if self.kind == "linear":
            return bits
        return ChannelBits(pack_bits(bits.reshape(len(h), *out_shape, -1)), bits.shape[-1])

    def _real_sums(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(x.double(), self.weight_pm1)
        op = F.conv2d if self.kind == "conv2d" else F.conv1d
        return op(
            x.double(),
            self.weight_pm1,
            stride=self.conv["stride"],
            padding=self.conv["padding"],
            dilation=self.conv["dilation"],
        )

    def __call__(self, state: Any) -> Any:
        if self.binarize_input and isinstance(state, torch.Tensor):
            state = _binarize(state)
        if self.input_binary and self.sign:
            return self._binary_sign(state)
        if self.input_binary:
            y = self._binary_dots(state)
            return self.affine((y.movedim(-1, 1) if self.kind != "linear" else y).double())
        y = self._real_sums(state)  # (B, O, *out) float64
        if not self.sign:
            return self.affine(y)
        y = y.movedim(1, -1)  # channel-last: the bits are packed per position
        assert self.threshold is not None and self.flip is not None  # set by fold()
        bits = ((y >= self.threshold) != self.flip).contiguous().numpy()
        if self.kind == "linear":
            return bits
        return ChannelBits(pack_bits(bits), bits.shape[-1])


def _patches(
    words: NDArray[np.uint64],
    pad_word: NDArray[np.uint64],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[NDArray[np.uint64], tuple[int, ...]]:
    """im2col of per-position words (B, *spatial, Wc), padded with ``pad_word``: ((B * P, prod(kernel) * Wc) in
    the order (*kernel, words) of the packed weights, output spatial shape)."""
    dims, batch, wc = len(kernel), words.shape[0], words.shape[-1]
    spatial = words.shape[1:-1]
    x = np.empty((batch, *(n + 2 * p for n, p in zip(spatial, padding, strict=False)), wc), dtype=np.uint64)
    x[...] = pad_word
    inner = (slice(None), *(slice(p, p + n) for n, p in zip(spatial, padding, strict=False)), slice(None))
    x[inner] = words
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=False))
    axes: Any = tuple(range(1, 1 + dims))  # numpy's stubs allow one axis only; the function takes a tuple
    win = sliding_window_view(x, span, axis=axes)  # (B, *out_full, Wc, *span)
    steps = (
        slice(None),
        *(slice(None, None, s) for s in stride),
        slice(None),
        *(slice(None, None, d) for d in dilation),
    )
    win = win[steps]
    win = win.transpose((0, *range(1, 1 + dims), *range(2 + dims, 2 + 2 * dims), 1 + dims))
    out_shape = tuple(win.shape[1 : 1 + dims])
    return np.ascontiguousarray(win).reshape(batch * math.prod(out_shape), -1), out_shape


def _or_pool(state: Any, pool: nn.Module) -> ChannelBits:
    """Max-pooling of +-1 activations = OR of their bits (64 channels per word operation)."""
    if not isinstance(state, ChannelBits):
        state = ChannelBits.from_bool(state)
    dims = 2 if isinstance(pool, nn.MaxPool2d) else 1

    def tup(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * dims

    k, s, p, d = tup(pool.kernel_size), tup(pool.stride), tup(pool.padding), tup(pool.dilation)
    if s == k and not any(p) and all(i == 1 for i in d) and not pool.ceil_mode:
        words = state.words
        trim = (slice(None), *(slice(0, (n // kk) * kk) for n, kk in zip(words.shape[1:-1], k, strict=False)))
        trimmed = words[trim]
        out: NDArray[np.uint64] | None = None
        for offset in itertools.product(*(range(kk) for kk in k)):  # OR of strided views: no 2k-D reduction
            strided = (slice(None), *(slice(o, None, kk) for o, kk in zip(offset, k, strict=False)))
            view = trimmed[strided]
            out = view.copy() if out is None else np.bitwise_or(out, view, out=out)
        assert out is not None  # the pooling window has at least one offset
        return ChannelBits(out, state.channels)
    pm1 = torch.from_numpy(state.to_bool()).to(torch.float32) * 2 - 1
    return ChannelBits.from_bool((pool(pm1) > 0).numpy())


class PackedBNN:
    """A converted BNN. ``stages`` run in order on a state that is a float64 torch tensor (real values), a numpy
    bool array (B, F) of bits (True = +1), or :class:`ChannelBits` (binary convolution activations)."""

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
            outs.append(_to_real(state).float())
        return torch.cat(outs)

    def predict(self, x: Any, batch_size: int = 256) -> NDArray[np.int64]:
        """Argmax class (B,) int64, equal to the torch model's eval-mode predictions."""
        return self.logits(x, batch_size).argmax(dim=1).numpy()

    def weight_bytes(self) -> int:
        """Bytes of the packed binary weights."""
        return sum(layer.words.nbytes for layer in self.layers)


def _bits_module(module: nn.Module) -> Callable[[Any], Any]:
    """Stage for a non-binary module: bits become +-1 float64 first; the module runs on real values."""

    return lambda state: module(_to_real(state))


def _pool_stage(pool: nn.Module) -> Callable[[Any], Any]:
    return lambda state: pool(state) if isinstance(state, torch.Tensor) else _or_pool(state, pool)


def _flatten_stage(state: Any) -> Any:
    state = _as_bool(state)  # channel-first, as the model flattens
    return state.reshape(state.shape[0], -1)


def _binarize_stage(state: Any) -> Any:
    return _binarize(state) if isinstance(state, torch.Tensor) else state


def _make_layer(
    layer: BinaryLinear | BinaryConv1d | BinaryConv2d,
    bn: BatchNorm1d | BatchNorm2d | None,
    sign: bool,
    binary_in: bool,
) -> _Layer:
    kind = {BinaryLinear: "linear", BinaryConv1d: "conv1d", BinaryConv2d: "conv2d"}[type(layer)]
    conv: dict[str, tuple[int, ...]] = {}
    if not isinstance(layer, BinaryLinear):
        if isinstance(layer.padding, str):
            raise ValueError(f"{type(layer).__name__}: string padding {layer.padding!r} is not supported")
        conv = {"stride": tuple(layer.stride), "padding": tuple(layer.padding), "dilation": tuple(layer.dilation)}
    w = layer.weight.detach().cpu()
    if kind != "linear":  # per kernel position, the channel bits in words, as the activations are packed
        w = w.permute(0, *range(2, w.ndim), 1)
    packed = _Layer(
        kind=kind,
        weight_pm1=layer.binary_weight().cpu().double(),
        words=pack_sign(w).reshape(w.shape[0], -1),
        alpha=layer.alpha().cpu().double() if layer.scale == "channel" else None,
        bn=None if bn is None else _cpu_affine(bn),
        sign=sign,
        input_binary=binary_in or layer.input_quantizer is not None,
        binarize_input=layer.input_quantizer is not None and not binary_in,
        conv=conv,
        pad_word=pack_bits(np.ones(w.shape[-1], dtype=bool)) if kind != "linear" else None,
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
                nxt = mods[i + 1] if i + 1 < len(mods) else None
                bn = nxt if isinstance(nxt, _BN) else None
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


def _cpu_affine(bn: BatchNorm1d | BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The BatchNorm's eval (mean, inv, beta), float64 on the CPU."""
    mean, inv, beta = bn.eval_affine()
    return mean.cpu(), inv.cpu(), beta.cpu()


def _bn_stage(bn: BatchNorm1d | BatchNorm2d) -> Callable[[Any], Any]:
    affine = _cpu_affine(bn)
    return lambda state: bn_eval64(_to_real(state), *affine)
