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

__all__ = [
    "GLayer",
    "GLinear",
    "GConv1d",
    "GConv2d",
    "RASU",
    "TASU",
    "NormalizedClassifier",
    "safe_arcsin_cosine",
]

# Keeps |rho| < 1 so arcsin's derivative 1/sqrt(1 - rho^2) stays finite; and keeps 0/0 at x + b = 0 finite.
_RHO_LIMIT = 1.0 - 1e-6
_NORM_EPS = 1e-12


def safe_arcsin_cosine(dot: torch.Tensor, w_norm_sq: torch.Tensor, x_norm_sq: torch.Tensor) -> torch.Tensor:
    """arcsin(dot / (||w|| ||x||)) with no NaN value or gradient at ||x|| = 0 or |rho| -> 1."""
    rho = dot * torch.rsqrt((w_norm_sq + _NORM_EPS) * (x_norm_sq + _NORM_EPS))
    return torch.asin(rho.clamp(-_RHO_LIMIT, _RHO_LIMIT))


class _ArcsinOfProduct(torch.autograd.Function):
    """z = arcsin(clamp(a * s, -limit, limit)) for a (B, out, *) and s > 0 broadcastable to it (B, 1, *).

    The same value and gradient as autograd through ``torch.asin((a * s).clamp(...))``, with fewer output-sized
    temporaries, which is what G-Net training time goes into: autograd through the composed expression (norm
    product, rsqrt, clamp, asin) made about 20 full-size passes per layer and a G-Net train 2x slower than a plain
    CNN. The backward uses d arcsin(rho) / d rho = 1 / sqrt(1 - rho^2) (rsqrt is far cheaper than cos or asin)
    and sum_c g_c a_c = (sum_c g_c rho_c) / s, so ``a`` is not kept alive.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        rho = a * s
        lo, hi = torch.aminmax(rho)
        clipped = None
        if hi > _RHO_LIMIT or lo < -_RHO_LIMIT:  # rare: only then pay for a mask (clamp passes no gradient there)
            clipped = rho.abs() > _RHO_LIMIT
            rho.clamp_(-_RHO_LIMIT, _RHO_LIMIT)
        ctx.save_for_backward(rho, s, clipped)
        return torch.asin(rho)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        rho, s, clipped = ctx.saved_tensors
        g = torch.addcmul(torch.ones((), dtype=rho.dtype, device=rho.device), rho, rho, value=-1.0)  # 1 - rho^2
        g.rsqrt_().mul_(grad)
        if clipped is not None:
            g.masked_fill_(clipped, 0.0)
        grad_a = g * s if ctx.needs_input_grad[0] else None
        grad_s = g.mul_(rho).sum_to_size(s.shape).div_(s) if ctx.needs_input_grad[1] else None
        return grad_a, grad_s


class _ScaledReLU(torch.autograd.Function):
    """relu(alpha * z), keeping only the output: one output-sized temporary in the backward instead of three.

    d/d alpha = sum(g * z over y > 0) = sum(g * y) / alpha, because y = alpha * z wherever y > 0 (and all of
    y is 0 when alpha = 0, where the derivative is 0 too).
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        y = (z * alpha).clamp_min_(0.0)
        ctx.save_for_backward(alpha, y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        alpha, y = ctx.saved_tensors
        g = torch.ops.aten.threshold_backward(grad, y, 0.0)  # grad where y > 0, else 0 (what ReLU's backward does)
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            grad_alpha = torch.where(alpha != 0, torch.dot(g.reshape(-1), y.reshape(-1)) / alpha, 0.0)
        grad_z = g.mul_(alpha) if ctx.needs_input_grad[0] else None
        return grad_z, grad_alpha


def _arcsin_cosine_normed(dot_over_w: torch.Tensor, x_norm_sq: torch.Tensor) -> torch.Tensor:
    """arcsin(<w, x> / (||w|| ||x||)) from <w, x> / ||w|| (B, out, *) and ||x||^2 (B, 1, *)."""
    return _ArcsinOfProduct.apply(dot_over_w, torch.rsqrt(x_norm_sq + _NORM_EPS))


def _inverse_norms(weight: torch.Tensor) -> torch.Tensor:
    """1 / ||w_o|| per output unit (out,), eps-guarded like the input norms."""
    return torch.rsqrt((weight * weight).flatten(1).sum(dim=1) + _NORM_EPS)


def _channel_sum_of_squares(x: torch.Tensor) -> torch.Tensor:
    """sum_c x_c^2, kept: (B, C, *) -> (B, 1, *). (``vector_norm`` over dim 1 is 50x slower on CPU.)"""
    return (x * x).sum(dim=1, keepdim=True)


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
        if self.training and raw is not None:
            flat = raw.detach().transpose(0, 1).reshape(raw.shape[1], -1)
            var = flat.var(dim=1, unbiased=False)
            with torch.no_grad():
                n = flat.shape[1]
                bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * var * n / max(n - 1, 1))
                bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * flat.mean(dim=1))
                bn.num_batches_tracked += 1
        else:
            var = bn.running_var
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
        inv_w = _inverse_norms(self.weight)
        dot = shifted @ self.weight.T
        # 1/||w|| scales the (batch, out) result, not the (out, in) weight, which is usually far larger.
        scale = inv_w if self.bn is None else self._unit_sign(dot).view(-1) * inv_w
        return _arcsin_cosine_normed(dot * scale, _channel_sum_of_squares(shifted))

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
        tup = lambda v: tuple(int(i) for i in v) if isinstance(v, (tuple, list)) else (int(v),) * self._dims
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
        if x.ndim != self._dims + 2 or x.shape[1] != self.in_channels:
            expected = "(batch, C, L)" if self._dims == 1 else "(batch, C, H, W)"
            raise ValueError(
                f"{type(self).__name__} expects {expected} with C={self.in_channels}, got {tuple(x.shape)}"
            )
        shifted = x + self.bias
        inv_w = _inverse_norms(self.weight).view(-1, *([1] * (self._dims + 1)))
        # 1/||w|| folded into the small weight; with BatchNorm the statistics are those of the raw dot products.
        weight = self.weight * inv_w if self.bn is None else self.weight
        if x.requires_grad:
            dot = self._conv(shifted, weight)
        else:
            # An input without gradient (a first layer): conv(x + b) = conv(x) + b conv(1) with zero padding, which
            # spares the backward pass a full input-gradient convolution that would only serve the scalar b.
            ones = torch.ones((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
            dot = self._conv(x, weight).add_(self.bias * self._conv(ones, weight))
        if self.bn is not None:
            dot = dot * (self._unit_sign(dot) * inv_w.view(1, -1, *([1] * self._dims)))
        x_sq = self._patch_sum(_channel_sum_of_squares(shifted))
        return _arcsin_cosine_normed(dot, x_sq)

    def _patch_sum(self, sq: torch.Tensor) -> torch.Tensor:
        """Sum of ``sq`` (B, 1, *spatial) over every receptive field: (B, 1, *output spatial).

        A separable box sum over shifted slices (any stride, padding, dilation): on one channel it is several
        times cheaper, forward and backward, than a convolution with an all-ones filter or a sum-pool.
        """
        pad = [v for p in reversed(self.padding) for v in (p, p)]  # F.pad lists the last axis first
        x = F.pad(sq, pad) if any(pad) else sq
        for axis, (k, d, st) in enumerate(zip(self.kernel_size, self.dilation, self.stride)):
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
            for s, p, d, k, st in zip(size, self.padding, self.dilation, self.kernel_size, self.stride)
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


class _ScaledActivation(nn.Module):
    def __init__(self, alpha_init: float) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha.item():.4g}"


class RASU(_ScaledActivation):
    """ReLU-ArcSin unit: ReLU(alpha * z), alpha learnable (the paper initialises it to 5)."""

    def __init__(self, alpha_init: float = 5.0) -> None:
        super().__init__(alpha_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _ScaledReLU.apply(z, self.alpha)


class TASU(_ScaledActivation):
    """Tanh-ArcSin unit: tanh(alpha * z), alpha learnable (init 10); the EHD network replaces it by sign."""

    def __init__(self, alpha_init: float = 10.0) -> None:
        super().__init__(alpha_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh_(self.alpha * z)  # in place: the product is not needed by its own backward


class NormalizedClassifier(nn.Module):
    """logits_c = scale * cos(h + b, W[:, c]): the cosine with each class **column** of W (in_features, classes).

    The column cosine is the rule the binary classifier estimates (Hamming similarity of sign(G(h + b)) with
    sign(G W[:, c])), so float and EHD predictions are the argmax of the same function. ``scale`` only sharpens the
    softmax during training; it does not change the argmax.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        bias_init: float = 5e-5,
        scale: float = 1.0,
        weight_std: float = 0.6,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.n_classes = int(in_features), int(n_classes)
        self.weight = nn.Parameter(torch.randn(in_features, n_classes, generator=generator) * weight_std)
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def cosine(self, h: torch.Tensor) -> torch.Tensor:
        """cos(h + b, W[:, c]) for every class: (B, in_features) -> (B, n_classes)."""
        if h.ndim != 2 or h.shape[1] != self.in_features:
            raise ValueError(f"NormalizedClassifier expects (batch, {self.in_features}), got {tuple(h.shape)}")
        shifted = h + self.bias
        dot = shifted @ self.weight
        rho = dot * torch.rsqrt(
            ((shifted**2).sum(dim=1, keepdim=True) + _NORM_EPS) * ((self.weight**2).sum(dim=0) + _NORM_EPS)
        )
        return rho

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scale * self.cosine(h)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.n_classes}, bias_trick={self.bias.item():.3g}, scale={self.scale.item():g}"
