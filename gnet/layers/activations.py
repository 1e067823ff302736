"""Activations of G-Nets: RASU (ReLU-ArcSin) and TASU (Tanh-ArcSin), each with a learnable scale alpha.

Shapes: any (B, *) -> the same shape and dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from gnet.layers._autograd import scaled_relu

__all__ = ["RASU", "TASU"]


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
        return scaled_relu(z, self.alpha)


class TASU(_ScaledActivation):
    """Tanh-ArcSin unit: tanh(alpha * z), alpha learnable (init 10); the EHD network replaces it by sign."""

    def __init__(self, alpha_init: float = 10.0) -> None:
        super().__init__(alpha_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh_(self.alpha * z)  # in place: the product is not needed by its own backward
