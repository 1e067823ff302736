"""Binary layers (larq style): ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` with latent float weights.

Training forward: ``y = op(Q_in(x), Q_w(w) * alpha)`` with the quantizers' pseudo-gradients; ``alpha`` is XNOR-Net's
per-output-channel ``mean |w|`` (detached) when ``scale="channel"``, else 1. Latent weights are kept in
``[-clip_value, clip_value]`` by :meth:`clip_latent_` (call it after each optimizer step).

Eval forward is the deployed binary network computed **in float64**: ``y = op(x, sign(w)) * alpha`` with
``sign(0) = +1``. With binary inputs every ``op`` sum is an exact integer, and float64 makes the real-valued first
layer's sums exact for ordinary float32 inputs. The BatchNorm modules here evaluate in float64 too, so the
threshold ``BN(y) >= 0`` that :mod:`gnet.bnn.packed` folds into an integer comparison reproduces these predictions
bit for bit. Eval outputs are float64; :class:`gnet.bnn.models.BNN` returns float32 logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from gnet.bnn.quantizers import FDA, NoiseAdaptation, Quantizer, get, hard_sign
from gnet.layers.glayers import check_conv_input
from hdc._validate import check_choice, check_number

__all__ = [
    "SCALES",
    "BatchNorm1d",
    "BatchNorm2d",
    "BinaryActivation",
    "BinaryConv1d",
    "BinaryConv2d",
    "BinaryLinear",
    "bn_eval64",
]

SCALES = ("none", "channel")


def _noise_module(q: Quantizer | None, dim: int, generator: torch.Generator | None) -> NoiseAdaptation | None:
    """FDA's noise-adaptation module for a quantizer that uses one (``fda`` with ``alpha > 0``), else None."""
    if isinstance(q, FDA) and q.alpha > 0:
        return NoiseAdaptation(dim, generator=generator)
    return None


def _quantize(q: Quantizer, x: torch.Tensor, noise: NoiseAdaptation | None, training: bool) -> torch.Tensor:
    """Q(x), plus ``noise_scale * NAM(x)`` over the channel axis 1 while training (FDA)."""
    out = q(x, training)
    if training and noise is not None and q.noise_scale > 0:
        moved = x.movedim(1, -1) if x.ndim > 2 else x
        out = out + q.noise_scale * (noise(moved).movedim(-1, 1) if x.ndim > 2 else noise(moved))
    return out


class _BinaryLayer:
    """Shared parts of the binary layers (mixed into the torch layer classes)."""

    weight: torch.Tensor
    training: bool
    _op: Any  # the layer's F.linear / F.conv call, defined by each class

    if TYPE_CHECKING:  # provided by the torch layer class each binary layer also derives from

        def extra_repr(self) -> str: ...

    def _setup(
        self,
        weight_quantizer: Any,
        input_quantizer: Any,
        scale: str,
        clip_value: float | None,
        generator: torch.Generator | None,
        in_channels: int,
    ) -> None:
        self.weight_quantizer = get(weight_quantizer)
        self.input_quantizer = None if input_quantizer is None else get(input_quantizer)
        self.scale = check_choice(scale, SCALES, "scale")
        self.clip_value = None if clip_value is None else check_number(clip_value, "clip_value", 0.0, strict=True)
        fan_out = self.weight.shape[0] * math.prod(self.weight.shape[2:])
        bound = math.sqrt(6.0 / (self.fan_in + fan_out))  # Glorot uniform, as BinaryNet and larq
        with torch.no_grad():
            self.weight.copy_((torch.rand(self.weight.shape, generator=generator) * 2.0 - 1.0) * bound)
        self.weight_noise = _noise_module(self.weight_quantizer, self.fan_in, generator)
        self.input_noise = _noise_module(self.input_quantizer, in_channels, generator)

    def reset_parameters(self) -> None:
        """No default torch init (it would draw from the global RNG); weights are drawn from the layer's generator
        in ``__init__``."""

    @property
    def fan_in(self) -> int:
        return self.weight[0].numel()

    @property
    def out_units(self) -> int:
        return self.weight.shape[0]

    def _bcast(self, v: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * (self.weight.ndim - 1)))

    def clip_latent_(self) -> None:
        """Clamp the latent weights to ``[-clip_value, clip_value]`` in place (no-op without a clip)."""
        if self.clip_value is not None:
            with torch.no_grad():
                self.weight.clamp_(-self.clip_value, self.clip_value)

    def alpha(self) -> torch.Tensor:
        """Per-output-channel scale (O,) float32: ``mean |clip(w)|`` with ``scale="channel"``, else ones."""
        w = self.weight.detach()
        if self.scale == "none":
            return torch.ones(w.shape[0], dtype=w.dtype, device=w.device)
        if self.clip_value is not None:
            w = w.clamp(-self.clip_value, self.clip_value)
        return w.abs().reshape(w.shape[0], -1).mean(dim=1)

    def binary_weight(self) -> torch.Tensor:
        """sign(w) in {-1, +1}, float32, same shape as ``weight``."""
        return hard_sign(self.weight.detach())

    def _train_weight(self) -> torch.Tensor:
        w = self.weight
        q = self.weight_quantizer(w, True)
        if self.weight_noise is not None and self.weight_quantizer.noise_scale > 0:
            flat = self.weight_noise(w.reshape(w.shape[0], -1)).view_as(w)
            q = q + self.weight_quantizer.noise_scale * flat
        if self.scale == "channel":
            q = q * self._bcast(self.alpha())
        return q

    def binary_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training: quantized float32 op; eval: the exact float64 op of the deployed network."""
        if self.training:
            if self.input_quantizer is not None:
                x = _quantize(self.input_quantizer, x, self.input_noise, True)
            return self._op(x, self._train_weight())
        if self.input_quantizer is not None:
            x = hard_sign(x)
        y = self._op(x.double(), self.binary_weight().double())
        if self.scale == "channel":
            y = y * self.alpha().double().view(1, -1, *([1] * (y.ndim - 2)))
        return y

    def quant_repr(self) -> str:
        return (
            f"weight_quantizer={self.weight_quantizer!r}, input_quantizer={self.input_quantizer!r}, "
            f"scale={self.scale!r}, clip_value={self.clip_value}"
        )


class BinaryLinear(_BinaryLayer, nn.Linear):
    """Binary-weight linear layer (no bias: a BatchNorm follows): (B, in_features) -> (B, out_features).

    Args:
        weight_quantizer: a name, config or :class:`~gnet.bnn.quantizers.Quantizer` object for the weights.
        input_quantizer: the same for the input; ``None`` keeps the input real.
        scale: ``"none"`` or ``"channel"`` (XNOR-Net alpha).
        clip_value: latent-weight clip (None: no clip).
        generator: draws the Glorot-uniform latent weights (and FDA's noise modules).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        weight_quantizer: Any = "htanh",
        input_quantizer: Any = None,
        scale: str = "none",
        clip_value: float | None = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=False)
        self._setup(weight_quantizer, input_quantizer, scale, clip_value, generator, in_features)

    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.linear(x, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"BinaryLinear expects (batch, {self.in_features}), got {tuple(x.shape)}")
        return self.binary_forward(x)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, {self.quant_repr()}"


class _BinaryConvNd(_BinaryLayer):
    _dims: int
    in_channels: int
    stride: tuple[int, ...]
    padding: str | tuple[int, ...]
    dilation: tuple[int, ...]

    def _init_conv(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        quant: tuple[Any, Any, str, float | None, torch.Generator | None],
    ) -> None:
        conv_init: Callable[..., None] = nn.Conv2d.__init__ if self._dims == 2 else nn.Conv1d.__init__
        conv_init(
            self, in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False
        )
        self._setup(*quant, in_channels)

    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        conv = F.conv2d if self._dims == 2 else F.conv1d
        return conv(x, w, stride=self.stride, padding=self.padding, dilation=self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_conv_input(x, self._dims, self.in_channels, type(self).__name__)
        return self.binary_forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.quant_repr()}"


class BinaryConv2d(_BinaryConvNd, nn.Conv2d):
    """Binary-weight 2-D convolution (zero padding, no bias): (B, C, H, W) -> (B, O, H', W'). Arguments as
    :class:`BinaryLinear` plus the convolution's ``kernel_size``, ``stride``, ``padding``, ``dilation``."""

    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        weight_quantizer: Any = "htanh",
        input_quantizer: Any = None,
        scale: str = "none",
        clip_value: float | None = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        quant = (weight_quantizer, input_quantizer, scale, clip_value, generator)
        self._init_conv(in_channels, out_channels, kernel_size, stride, padding, dilation, quant)


class BinaryConv1d(_BinaryConvNd, nn.Conv1d):
    """Binary-weight 1-D convolution: (B, C, L) -> (B, O, L'). Arguments as :class:`BinaryConv2d`."""

    _dims = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        weight_quantizer: Any = "htanh",
        input_quantizer: Any = None,
        scale: str = "none",
        clip_value: float | None = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        quant = (weight_quantizer, input_quantizer, scale, clip_value, generator)
        self._init_conv(in_channels, out_channels, kernel_size, stride, padding, dilation, quant)


def bn_eval64(y: torch.Tensor, mean: torch.Tensor, inv: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """The eval BatchNorm ``(y - mean) * inv + beta`` in float64, per channel on axis 1 (every op rounds once,
    so the result is a monotone function of each element of ``y``: thresholds can be found exactly)."""
    shape = (1, -1, *([1] * (y.ndim - 2)))
    return (y.double() - mean.view(shape)) * inv.view(shape) + beta.view(shape)


class _Float64EvalBN:
    """BatchNorm whose eval forward is :func:`bn_eval64` (float64 in, float64 out); training is torch's."""

    # as torch's _NormBase declares them (weight and bias are None at run time when affine=False)
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    weight: nn.Parameter
    bias: nn.Parameter
    eps: float
    training: bool

    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, inv, beta) float64 (C,): ``inv = gamma / sqrt(var + eps)``, ``beta`` the shift."""
        assert self.running_mean is not None and self.running_var is not None  # track_running_stats=True
        mean = self.running_mean.double()
        inv = torch.rsqrt(self.running_var.double() + self.eps)
        beta = torch.zeros_like(mean)
        if self.weight is not None:
            inv = self.weight.detach().double() * inv
            beta = self.bias.detach().double()
        return mean, inv, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x.float())  # type: ignore[misc]
        return bn_eval64(x, *self.eval_affine())


class BatchNorm1d(_Float64EvalBN, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with the exact float64 eval forward (inputs (B, C) or (B, C, L))."""


class BatchNorm2d(_Float64EvalBN, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the exact float64 eval forward (inputs (B, C, H, W))."""


class BinaryActivation(nn.Module):
    """Sign activation with a quantizer's backward: (B, C, ...) -> same shape; eval output float32 in {-1, +1}.

    ``channels`` sizes FDA's noise-adaptation module (applied to the channel vector at each position).
    """

    def __init__(
        self, quantizer: Any = "htanh", channels: int | None = None, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.quantizer = get(quantizer)
        self.noise = _noise_module(self.quantizer, channels, generator) if channels is not None else None
        if self.noise is None and channels is None and isinstance(self.quantizer, FDA) and self.quantizer.alpha > 0:
            raise ValueError("an fda activation with alpha > 0 needs channels= for its noise-adaptation module")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return _quantize(self.quantizer, x.float(), self.noise, True)
        return hard_sign(x).float()

    def extra_repr(self) -> str:
        return f"quantizer={self.quantizer!r}"
