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
        dot = shifted @ self.weight.T
        sign = self._unit_sign(dot)
        if sign is not None:
            dot = dot * sign
        w_sq = (self.weight**2).sum(dim=1)
        x_sq = (shifted**2).sum(dim=1, keepdim=True)
        return safe_arcsin_cosine(dot, w_sq, x_sq)

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
        dot = self._conv(shifted, self.weight)
        sign = self._unit_sign(dot)
        if sign is not None:
            dot = dot * sign
        # Patch norms: sum the squares over channels first, then one all-ones filter per patch.
        ones = torch.ones((1, 1, *self.kernel_size), dtype=x.dtype, device=x.device)
        x_sq = self._conv((shifted**2).sum(dim=1, keepdim=True), ones)
        w_sq = (self.weight**2).flatten(1).sum(dim=1).view(1, -1, *([1] * self._dims))
        return safe_arcsin_cosine(dot, w_sq, x_sq)

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
        return F.relu(self.alpha * z)


class TASU(_ScaledActivation):
    """Tanh-ArcSin unit: tanh(alpha * z), alpha learnable (init 10); the EHD network replaces it by sign."""

    def __init__(self, alpha_init: float = 10.0) -> None:
        super().__init__(alpha_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.alpha * z)


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
