"""The G-Net classifier head: logits are scaled cosines with each class column of a weight matrix."""

from __future__ import annotations

import torch
from torch import nn

from gnet.layers._autograd import NORM_EPS

__all__ = ["NormalizedClassifier"]


class NormalizedClassifier(nn.Module):
    """logits_c = scale * cos(h + b, W[:, c]): the cosine with each class **column** of W (in_features, classes).

    The column cosine is the rule the binary classifier estimates (Hamming similarity of sign(G(h + b)) with
    sign(G W[:, c])), so float and EHD predictions are the argmax of the same function. ``scale`` only sharpens the
    softmax during training; it does not change the argmax.
    """

    scale: torch.Tensor  # a buffer: moves with .to() and is saved, never trained

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
            ((shifted**2).sum(dim=1, keepdim=True) + NORM_EPS) * ((self.weight**2).sum(dim=0) + NORM_EPS)
        )
        return rho

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scale * self.cosine(h)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.n_classes}, bias_trick={self.bias.item():.3g}, scale={self.scale.item():g}"
