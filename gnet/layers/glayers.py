"""G-Net layers: each output is the arcsine of a cosine, z = arcsin(<w~, x + b> / (||w~|| ||x + b||)).

Because z = pi/2 - angle(w~, x + b), a G-Net layer is a function of directions only, which is what a random sign
embedding preserves (Grothendieck's identity); :mod:`gnet.ehd` turns these layers into Hamming-distance layers.

Shapes: ``GLinear`` (B, in) -> (B, out); ``GConv1d`` (B, C, L) -> (B, out, L'); ``GConv2d`` (B, C, H, W) ->
(B, out, H', W'). All dtypes follow the input (float32 or float64).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gnet.layers._autograd import (
    NORM_EPS,
    RHO_LIMIT,
    arcsin_cosine_normed,
    channel_sum_of_squares,
    inverse_norms,
)

__all__ = ["GConv1d", "GConv2d", "GLayer", "GLinear", "check_conv_input", "safe_arcsin_cosine"]


def safe_arcsin_cosine(dot: torch.Tensor, w_norm_sq: torch.Tensor, x_norm_sq: torch.Tensor) -> torch.Tensor:
    """arcsin(dot / (||w|| ||x||)) with no NaN value or gradient at ||x|| = 0 or |rho| -> 1."""
    rho = dot * torch.rsqrt((w_norm_sq + NORM_EPS) * (x_norm_sq + NORM_EPS))
    return torch.asin(rho.clamp(-RHO_LIMIT, RHO_LIMIT))


def check_conv_input(x: torch.Tensor, dims: int, in_channels: int, layer_name: str) -> None:
    """Refuse an input that is not ``(batch, C, L)`` (dims 1) or ``(batch, C, H, W)`` (dims 2) with C = in_channels."""
    if x.ndim != dims + 2 or x.shape[1] != in_channels:
        expected = "(batch, C, L)" if dims == 1 else "(batch, C, H, W)"
        raise ValueError(f"{layer_name} expects {expected} with C={in_channels}, got {tuple(x.shape)}")


class GLayer(nn.Module):
    """Shared parts: the weight, the scalar bias trick b, and an optional folded BatchNorm scale.

    With ``batch_norm=True`` a per-unit scale s_o = gamma_o / sqrt(var_o + eps) multiplies w_o (batch statistics in
    training, running statistics in eval). After normalisation only sign(s_o) survives, but it is kept so that
    models trained with BatchNorm convert exactly; :meth:`effective_weight` returns the folded w~.
    """

    weight: nn.Parameter

    def __init__(self, out_units: int, bias_init: float, batch_norm: bool) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))
        self.bn = nn.BatchNorm1d(out_units, affine=True) if batch_norm else None
        if self.bn is not None:
            self.bn.bias.requires_grad_(False)  # a shift cannot pass through a normalised dot product

    @property
    def fan_in(self) -> int:
        return self.weight[0].numel()

    @property
    def out_units(self) -> int:
        return self.weight.shape[0]

    def _bn_scale(self, raw: torch.Tensor | None) -> torch.Tensor | None:
        """Per-unit BN scale; ``raw`` is the pre-normalisation output (B, out, *positions) in training."""
        bn = self.bn
        if bn is None:
            return None
        running_var, running_mean = bn.running_var, bn.running_mean
        assert running_var is not None and running_mean is not None  # track_running_stats is on
        if self.training and raw is not None:
            momentum = bn.momentum
            assert momentum is not None and bn.num_batches_tracked is not None
            flat = raw.detach().transpose(0, 1).reshape(raw.shape[1], -1)
            var = flat.var(dim=1, unbiased=False)
            with torch.no_grad():
                n = flat.shape[1]
                running_var.mul_(1 - momentum).add_(momentum * var * n / max(n - 1, 1))
                running_mean.mul_(1 - momentum).add_(momentum * flat.mean(dim=1))
                bn.num_batches_tracked += 1
        else:
            var = running_var
        return bn.weight * torch.rsqrt(var + bn.eps)

    def effective_weight(self) -> torch.Tensor:
        """w~ = s * w with the BatchNorm scale folded in (eval statistics); same shape as ``weight``."""
        scale = self._bn_scale(None) if self.bn is not None else None
        if scale is None:
            return self.weight.detach()
        return (self.weight * scale.view(-1, *([1] * (self.weight.ndim - 1)))).detach()

    def _unit_sign(self, raw: torch.Tensor) -> torch.Tensor | None:
        """sign(s_o) broadcast over (B, out, *positions), or None without BatchNorm."""
        scale = self._bn_scale(raw)
        if scale is None:
            return None
        sign = torch.where(scale >= 0, 1.0, -1.0).to(raw.dtype)
        return sign.view(1, -1, *([1] * (raw.ndim - 2)))


class GLinear(GLayer):
    """z_o = arcsin(<w~_o, x + b> / (||w~_o|| ||x + b||)); (B, in_features) -> (B, out_features)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias_init: float = 5e-5,
        batch_norm: bool = False,
        weight_std: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(out_features, bias_init, batch_norm)
        self.in_features, self.out_features = int(in_features), int(out_features)
        std = weight_std if weight_std is not None else 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.randn(out_features, in_features, generator=generator) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"GLinear expects (batch, {self.in_features}), got {tuple(x.shape)}")
        shifted = x + self.bias
        inv_w = inverse_norms(self.weight)
        dot = shifted @ self.weight.T
        # 1/||w|| scales the (batch, out) result, not the (out, in) weight, which is usually far larger.
        sign = self._unit_sign(dot)  # None without BatchNorm
        scale = inv_w if sign is None else sign.view(-1) * inv_w
        return arcsin_cosine_normed(dot * scale, channel_sum_of_squares(shifted))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias_trick={self.bias.item():.3g}"


class _GConvNd(GLayer):
    """Shared convolution logic; per receptive-field patch p, z_o(p) = arcsin(cos(w~_o, (x + b)_p)).

    The shift by b happens before zero padding, as in the paper: padded border positions stay 0.
    """

    _dims: int

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        bias_init: float = 1e-3,
        batch_norm: bool = False,
        weight_std: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(out_channels, bias_init, batch_norm)

        def tup(v: int | tuple[int, ...]) -> tuple[int, ...]:
            return tuple(int(i) for i in v) if isinstance(v, (tuple, list)) else (int(v),) * self._dims

        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = tup(kernel_size), tup(stride)
        self.padding, self.dilation = tup(padding), tup(dilation)
        fan_in = in_channels * math.prod(self.kernel_size)
        std = weight_std if weight_std is not None else 1.0 / math.sqrt(fan_in)
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = nn.Parameter(torch.randn(*shape, generator=generator) * std)

    def _conv(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        conv = F.conv2d if self._dims == 2 else F.conv1d
        return conv(x, w, stride=self.stride, padding=self.padding, dilation=self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_conv_input(x, self._dims, self.in_channels, type(self).__name__)
        shifted = x + self.bias
        inv_w = inverse_norms(self.weight).view(-1, *([1] * (self._dims + 1)))
        # 1/||w|| folded into the small weight; with BatchNorm the statistics are those of the raw dot products.
        weight = self.weight * inv_w if self.bn is None else self.weight
        shift = None
        if x.requires_grad:
            dot = self._conv(shifted, weight)
        else:
            # An input without gradient (a first layer): conv(x + b) = conv(x) + b conv(1) with zero padding, which
            # spares the backward pass a full input-gradient convolution that would only serve the scalar b.
            ones = torch.ones((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
            dot, shift = self._conv(x, weight), self.bias * self._conv(ones, weight)
        if self.bn is not None:
            if shift is not None:
                dot, shift = dot + shift, None
            sign = self._unit_sign(dot)
            assert sign is not None  # BatchNorm is on
            dot = dot * (sign * inv_w.view(1, -1, *([1] * self._dims)))
        x_sq = self._patch_sum(channel_sum_of_squares(shifted))
        return arcsin_cosine_normed(dot, x_sq, shift)

    def _patch_sum(self, sq: torch.Tensor) -> torch.Tensor:
        """Sum of ``sq`` (B, 1, *spatial) over every receptive field: (B, 1, *output spatial).

        A separable box sum over shifted slices (any stride, padding, dilation): on one channel it is several
        times cheaper, forward and backward, than a convolution with an all-ones filter or a sum-pool.
        """
        pad = [v for p in reversed(self.padding) for v in (p, p)]  # F.pad lists the last axis first
        x = F.pad(sq, pad) if any(pad) else sq
        for axis, (k, d, st) in enumerate(zip(self.kernel_size, self.dilation, self.stride, strict=False)):
            dim = 2 + axis
            n = x.shape[dim] - d * (k - 1)  # stride-1 output length along this axis
            acc = x.narrow(dim, 0, n)
            for j in range(1, k):
                acc = acc + x.narrow(dim, j * d, n)
            x = acc if st == 1 else acc[(slice(None),) * dim + (slice(None, None, st),)]
        return x

    def output_length(self, size: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial output size for an input of spatial ``size``."""
        return tuple(
            (s + 2 * p - d * (k - 1) - 1) // st + 1
            for s, p, d, k, st in zip(size, self.padding, self.dilation, self.kernel_size, self.stride, strict=False)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, bias_trick={self.bias.item():.3g}"
        )


class GConv1d(_GConvNd):
    """G-Net 1-D convolution: (B, C_in, L) -> (B, C_out, L')."""

    _dims = 1


class GConv2d(_GConvNd):
    """G-Net 2-D convolution: (B, C_in, H, W) -> (B, C_out, H', W')."""

    _dims = 2
