"""One packed binary layer (+ BatchNorm (+ sign)): XNOR-popcount on uint64 words, thresholds folded exactly.

See :mod:`gnet.bnn.packed` for the scheme. Here also the word layout of the sign weights
(:func:`words_from_weights`, :func:`weights_from_words`) that the ``.bnn`` file stores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from gnet.bnn._stages import ChannelBits, as_bool, binarize, patches
from gnet.bnn.layers import bn_eval64
from hdc.hamming import hamming_distance
from hdc.packed import n_words, pack_bits, unpack_bits

__all__ = ["KINDS", "PackedLayer", "exact_sums", "float_thresholds", "weights_from_words", "words_from_weights"]

KINDS = ("linear", "conv1d", "conv2d")
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


def words_from_weights(weight_pm1: torch.Tensor) -> NDArray[np.uint64]:
    """Packed rows of +-1 weights (O, C, *k): linear (O, n_words(C)); conv per kernel position, the channel bits
    in words as the activations are packed: (O, prod(k) * n_words(C)). True (bit 1) = +1; tail bits 0."""
    w = weight_pm1.detach().cpu()
    if w.ndim > 2:
        w = w.permute(0, *range(2, w.ndim), 1)
    return pack_bits((w > 0).numpy()).reshape(w.shape[0], -1)


def weights_from_words(words: NDArray[np.uint64], shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`words_from_weights`: float64 +-1 weights of ``shape`` (O, C, *k)."""
    out, channels, kernel = shape[0], shape[1], tuple(shape[2:])
    per_pos = words.reshape(out, math.prod(kernel), -1)
    bits = unpack_bits(per_pos, channels).reshape(out, *kernel, channels)
    w = torch.from_numpy(np.ascontiguousarray(bits)).double() * 2 - 1
    return w.permute(0, w.ndim - 1, *range(1, w.ndim - 1)).contiguous() if kernel else w


def exact_sums(x: NDArray[np.floating], n_terms: int) -> bool:
    """Whether every signed sum of at most ``n_terms`` entries of the float32 or float64 array ``x`` is exact in
    float64 whatever the order of the additions (:func:`hdc._kernels.binconv.exact_float64_sums`)."""
    from hdc._kernels.binconv import exact_float64_sums

    x = np.ascontiguousarray(x)
    if x.dtype == np.float32:
        return bool(exact_float64_sums(x.view(np.int32), 23, 0xFF, 150, n_terms))
    return bool(exact_float64_sums(x.astype(np.float64, copy=False).view(np.int64), 52, 0x7FF, 1075, n_terms))


@dataclass
class PackedLayer:
    """One binary layer (+ BatchNorm (+ sign)) of the packed network.

    A sign layer keeps only its thresholds: the decision is ``dot >= threshold`` for every unit; where the folded
    BatchNorm scale was negative (``dot < T``) the unit's weight row was negated at :meth:`fold`, so ``-dot >=
    1 - T`` (integer dots) or ``-y >= nextafter(-T, inf)`` (real sums, exact: a sum of negated products is the
    negated sum). ``input_fault`` (set by :meth:`gnet.bnn.PackedBNN.with_faults`) corrupts the layer's binary
    input bits: ``input_fault(bits, start)`` with ``start`` the index of the batch's first item.
    """

    kind: str  # "linear", "conv1d", "conv2d"
    weight_pm1: torch.Tensor  # float64 (O, C, *k) in {-1, +1} for the real-input path
    words: NDArray[np.uint64]  # packed rows, see words_from_weights
    alpha: torch.Tensor | None  # float64 (O,) or None (no scaling); None for sign layers after fold
    bn: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None  # float64 (mean, inv, beta); likewise
    sign: bool  # BN output thresholded to bits
    input_binary: bool
    binarize_input: bool
    conv: dict[str, tuple[int, ...]] = field(default_factory=dict)  # stride, padding, dilation
    threshold: torch.Tensor | None = None  # float64 (O,) for real inputs, int64 (O,) for binary inputs
    pad_word: NDArray[np.uint64] | None = None  # (n_words(C_in),): a padded position, all channel bits +1
    input_fault: Callable[[Any, int], Any] | None = None
    _corr: dict[Any, Any] = field(default_factory=dict)  # per input/output spatial shape: corrections, limits

    @property
    def fan_in(self) -> int:
        return self.weight_pm1[0].numel()

    @property
    def out_units(self) -> int:
        return self.weight_pm1.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight_pm1.shape[1]

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(self.weight_pm1.shape[2:])

    def with_words(self, words: NDArray[np.uint64]) -> PackedLayer:
        """A copy with other sign weights (same layout); caches and faults are not shared."""
        return PackedLayer(
            kind=self.kind,
            weight_pm1=weights_from_words(words, tuple(self.weight_pm1.shape)),
            words=words,
            alpha=self.alpha,
            bn=self.bn,
            sign=self.sign,
            input_binary=self.input_binary,
            binarize_input=self.binarize_input,
            conv=dict(self.conv),
            threshold=self.threshold,
            pad_word=self.pad_word,
            input_fault=self.input_fault,
        )

    def affine(self, y: torch.Tensor) -> torch.Tensor:
        """The model's eval ops after the sums: ``BN(alpha * y)`` in float64 (channel axis 1)."""
        if self.alpha is not None:
            y = y * self.alpha.view(1, -1, *([1] * (y.ndim - 2)))
        return bn_eval64(y, *self.bn) if self.bn is not None else y.double()

    def fold(self) -> None:
        """Thresholds of ``affine(y) >= 0`` per unit (see :func:`float_thresholds`); rows whose decision is
        ``y < T`` are negated (see the class docstring). Afterwards ``alpha`` and ``bn`` are dropped."""
        neg = torch.zeros(self.out_units, dtype=torch.bool)
        if self.bn is not None:
            neg = self.bn[1] < 0
        t = float_thresholds(lambda y: (self.affine(y) >= 0) != neg, len(neg))
        # where ``neg``, affine(y) >= 0 <=> y < t
        if self.input_binary:
            limit = self.fan_in + 1
            t_int = torch.ceil(t.clamp(-limit, limit)).to(torch.int64)
            threshold = torch.where(neg, 1 - t_int, t_int)
            dots = torch.arange(-self.fan_in, self.fan_in + 1, dtype=torch.float64)[:, None].expand(-1, len(neg))
            want = self.affine(dots) >= 0
            got = torch.where(neg, -dots >= threshold, dots >= threshold)
            if not bool(torch.equal(want, got)):  # pragma: no cover - a non-monotone BN would be a bug
                raise RuntimeError("BatchNorm + sign did not fold into integer thresholds")
        else:
            inf = torch.tensor(math.inf, dtype=torch.float64)
            threshold = torch.where(neg, torch.nextafter(-t, inf), t)
        if bool(neg.any()):
            scale = torch.where(neg, -1.0, 1.0).double().view(-1, *([1] * (self.weight_pm1.ndim - 1)))
            self.weight_pm1 = self.weight_pm1 * scale
            self.words = words_from_weights(self.weight_pm1)
        self.threshold, self.alpha, self.bn = threshold, None, None
        self._corr.clear()

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
            return hamming_distance(pack_bits(as_bool(state)), self.words), (), ()
        if not isinstance(state, ChannelBits):
            state = ChannelBits.from_bool(state)
        assert self.pad_word is not None  # set for every conv layer
        rows, out_shape = patches(state.words, self.pad_word, self.kernel, **self.conv)
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

    def _fusable(self) -> bool:
        """Whether the fused kernels (:mod:`hdc._kernels.binconv`) compute this layer: a convolution + sign of
        stride 1."""
        return self.sign and self.kind != "linear" and all(s == 1 for s in self.conv["stride"])

    def _geometry(
        self, spatial: tuple[int, ...]
    ) -> tuple[tuple[int, int, NDArray[np.int64], NDArray[np.int64]], tuple[int, ...]]:
        """The fused kernels' 2-D view of this stride-1 convolution (a 1-D one has height 1): (kh, kw, int64 (2,)
        padding, dilation) and the output spatial shape."""
        c, one_d = self.conv, self.kind == "conv1d"
        out = tuple(
            n + 2 * p - d * (k - 1)
            for n, k, p, d in zip(spatial, self.kernel, c["padding"], c["dilation"], strict=True)
        )
        lead = {"padding": (0,), "dilation": (1,)} if one_d else {}
        padding, dilation = (np.array((*lead.get(n, ()), *c[n]), dtype=np.int64) for n in ("padding", "dilation"))
        kh, kw = (1, *self.kernel) if one_d else self.kernel
        return (kh, kw, padding, dilation), out

    def _fused_weights(self, name: str) -> NDArray[Any]:
        """Cached weights of the fused kernels: ``"bits"`` uint64 (O, n_words(fan_in)), each row's bits in
        (kernel position, channel) order packed tightly; ``"pm1"`` float64 (O, fan_in), +-1 in (C, *kernel) order."""
        key = ("fused", name)
        if key not in self._corr:
            if name == "bits":
                per_pos = self.words.reshape(self.out_units, math.prod(self.kernel), -1)
                bits = unpack_bits(per_pos, self.in_channels).reshape(self.out_units, self.fan_in)
                words = pack_bits(bits)
                rows, cols = (-(-n // 4) * 4 for n in words.shape)  # the kernel takes 4 units x 4 words per pass
                self._corr[key] = np.pad(words, ((0, rows - words.shape[0]), (0, cols - words.shape[1])))
            else:
                self._corr[key] = np.ascontiguousarray(self.weight_pm1.reshape(self.out_units, -1).numpy())
        return self._corr[key]

    def _fused_binary_sign(self, state: ChannelBits) -> ChannelBits:
        """Binary conv + sign on per-position words in one kernel: no im2col array, no distance matrix."""
        from hdc._kernels.binconv import binary_conv_sign

        spatial = tuple(state.words.shape[1:-1])
        geometry, out_shape = self._geometry(spatial)
        words = np.ascontiguousarray(state.words).reshape(len(state.words), -1, spatial[-1], state.words.shape[-1])
        out = np.empty((len(words), *((1,) * (len(out_shape) == 1)), *out_shape, n_words(self.out_units)), np.uint64)
        key = ("limit_t", spatial)
        if key not in self._corr:
            self._corr[key] = np.ascontiguousarray(self._max_hamming(spatial).T)
        assert self.pad_word is not None  # set for every conv layer
        weight = self._fused_weights("bits")
        kh, kw, padding, dilation = geometry
        binary_conv_sign(words, state.channels, self.pad_word, weight, self._corr[key], kh, kw, padding, dilation, out)
        return ChannelBits(out.reshape(len(words), *out_shape, -1), self.out_units)

    def _fused_real_sign(self, x: torch.Tensor) -> ChannelBits | None:
        """Real-input conv + sign in one kernel, or None where the inputs could make a float64 sum inexact (then
        the sums' order matters, and only the model's own convolution reproduces them)."""
        from hdc._kernels.binconv import real_conv_sign

        if x.dtype not in (torch.float32, torch.float64):
            x = x.double()  # exact for every float format narrower than float64
        arr = np.ascontiguousarray(x.numpy())
        if not exact_sums(arr, self.fan_in):
            return None
        spatial = tuple(x.shape[2:])
        geometry, out_shape = self._geometry(spatial)
        arr = arr.reshape(len(arr), x.shape[1], -1, spatial[-1])
        out = np.empty((len(arr), *((1,) * (len(out_shape) == 1)), *out_shape, n_words(self.out_units)), np.uint64)
        assert self.threshold is not None  # set by fold()
        kh, kw, padding, dilation = geometry
        real_conv_sign(arr, self._fused_weights("pm1"), self.threshold.numpy(), kh, kw, padding, dilation, out)
        return ChannelBits(out.reshape(len(arr), *out_shape, -1), self.out_units)

    def _binary_sign(self, state: Any) -> Any:
        """Bits of a binary-input layer + BN + sign, compared on the Hamming distances directly."""
        if self._fusable() and isinstance(state, ChannelBits):
            return self._fused_binary_sign(state)
        h, in_shape, out_shape = self._hamming(state)
        bits = h <= self._max_hamming(in_shape)
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

    def __call__(self, state: Any, start: int = 0) -> Any:
        if self.binarize_input and isinstance(state, torch.Tensor):
            state = binarize(state)
        if self.input_binary and self.input_fault is not None:
            state = self.input_fault(state, start)
        if self.input_binary and self.sign:
            return self._binary_sign(state)
        if self.input_binary:
            y = self._binary_dots(state)
            return self.affine((y.movedim(-1, 1) if self.kind != "linear" else y).double())
        fused = self._fused_real_sign(state) if self._fusable() else None
        if fused is not None:
            return fused
        y = self._real_sums(state)  # (B, O, *out) float64
        if not self.sign:
            return self.affine(y)
        y = y.movedim(1, -1)  # channel-last: the bits are packed per position
        assert self.threshold is not None  # set by fold()
        bits = (y >= self.threshold).contiguous().numpy()
        if self.kind == "linear":
            return bits
        return ChannelBits(pack_bits(bits), bits.shape[-1])
