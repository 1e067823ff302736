"""The state of packed BNN inference and its layer-free stages (binarize, pooling, flatten, real activations,
BatchNorm), each a small object that the ``.bnn`` file describes by a record.

A state is a float64 torch tensor (real values), a numpy bool array (B, F) of bits (True = +1), or
:class:`ChannelBits` (binary convolution activations packed per position).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from torch import nn

from gnet.bnn.layers import bn_eval64
from hdc.packed import pack_bits, unpack_bits

__all__ = ["BatchNormStage", "Binarize", "ChannelBits", "Flatten", "Pool", "RealActivation", "as_bool", "to_real"]


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


def as_bool(state: Any) -> Any:
    """ChannelBits as channel-first bool; any other state as is."""
    return state.to_bool() if isinstance(state, ChannelBits) else state


def to_real(state: Any) -> torch.Tensor:
    """A real state as is; bits as +-1 float64 (channel-first)."""
    if isinstance(state, torch.Tensor):
        return state
    return torch.from_numpy(as_bool(state)).double() * 2 - 1


def binarize(x: torch.Tensor) -> Any:
    """sign(x) as bits: (B, F) bool, or ChannelBits for (B, C, *spatial)."""
    bits = (x >= 0).numpy()
    return ChannelBits.from_bool(bits) if bits.ndim > 2 else bits


def patches(
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


def _tuple(value: Any, dims: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * dims


class Binarize:
    """sign of a real state as bits (bits pass through)."""

    def __call__(self, state: Any) -> Any:
        return binarize(state) if isinstance(state, torch.Tensor) else state

    def record(self) -> dict[str, Any]:
        return {"type": "binarize"}


class Flatten:
    """(B, C, *spatial) -> (B, C * prod(spatial)) in channel-first order, as ``nn.Flatten``."""

    def __call__(self, state: Any) -> Any:
        state = as_bool(state)  # channel-first, as the model flattens
        return state.reshape(state.shape[0], -1)

    def record(self) -> dict[str, Any]:
        return {"type": "flatten"}


@dataclass(frozen=True)
class Pool:
    """Max-pooling: an OR of words for bits, ``nn.MaxPool1d/2d`` for real values."""

    dims: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool = False

    @classmethod
    def from_module(cls, pool: nn.MaxPool1d | nn.MaxPool2d) -> Pool:
        dims = 2 if isinstance(pool, nn.MaxPool2d) else 1
        args = (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
        kernel, stride, padding, dilation = (_tuple(v, dims) for v in args)
        return cls(dims, kernel, stride, padding, dilation, bool(pool.ceil_mode))

    @property
    def module(self) -> nn.Module:
        cls = nn.MaxPool2d if self.dims == 2 else nn.MaxPool1d
        return cls(self.kernel, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode)

    def __call__(self, state: Any) -> Any:
        pool = self.module
        return pool(state) if isinstance(state, torch.Tensor) else _or_pool(state, pool)

    def out_shape(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Output spatial shape for an input spatial shape (torch's formula)."""
        out = []
        for n, k, s, p, d in zip(spatial, self.kernel, self.stride, self.padding, self.dilation, strict=True):
            span = n + 2 * p - d * (k - 1) - 1
            m = (-(-span // s) if self.ceil_mode else span // s) + 1
            if self.ceil_mode and (m - 1) * s >= n + p:
                m -= 1
            out.append(m)
        return tuple(out)

    def record(self) -> dict[str, Any]:
        return {
            "type": "pool",
            "dims": self.dims,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "ceil_mode": self.ceil_mode,
        }


@dataclass(frozen=True)
class RealActivation:
    """ReLU or Hardtanh(min_val, max_val) on real values (BinaryConnect's hidden activations); bits become +-1."""

    kind: str  # "relu" or "hardtanh"
    min_val: float = -1.0
    max_val: float = 1.0

    def __call__(self, state: Any) -> Any:
        x = to_real(state)
        return torch.relu(x) if self.kind == "relu" else torch.clamp(x, self.min_val, self.max_val)

    def record(self) -> dict[str, Any]:
        if self.kind == "relu":
            return {"type": "relu"}
        return {"type": "hardtanh", "min_val": self.min_val, "max_val": self.max_val}


@dataclass
class BatchNormStage:
    """A BatchNorm that follows no binary layer: :func:`gnet.bnn.layers.bn_eval64` on the real state."""

    mean: torch.Tensor  # float64 (C,)
    inv: torch.Tensor
    beta: torch.Tensor

    def __call__(self, state: Any) -> Any:
        return bn_eval64(to_real(state), self.mean, self.inv, self.beta)

    def record(self) -> dict[str, Any]:
        return {"type": "batchnorm", "channels": len(self.mean)}
