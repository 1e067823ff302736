"""Float reference models of the comparison: the trained float G-Net, and a plain CNN of the same shape.

:func:`build_plain_cnn` turns G-Net layer specs into an ordinary network (Conv/Linear with biases, ReLU for RASU or
TASU, the classifier a Linear layer), so the table has a float line of the same shape that is not a G-Net.
:class:`FloatModel` gives either one the ``predict``/``cost`` part of :class:`gnet.deployed.DeployedModel`; a float
model has no bit-fault model (``fault_targets()`` is empty).

Counting rules of :func:`float_cost`: model bits are every floating tensor of the ``state_dict`` at its dtype's
width (integer bookkeeping buffers such as BatchNorm's ``num_batches_tracked`` are not read at inference and not
counted). Float multiply-adds per image: ``out_elements * fan_in`` of every convolution and linear layer (G-layers
and the normalised classifier included), plus, for a G-layer, the input norms it needs: one multiply-add per input
element (its square) and one per patch element (the patch sum of squares). Elementwise work (biases, arcsin,
activations, pooling) is not counted, as for every family.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gnet.cnn import build_plain_cnn
from gnet.deployed import ModelCost
from gnet.layers import GConv1d, GConv2d, GLinear, NormalizedClassifier

__all__ = ["FloatModel", "build_plain_cnn", "float_cost"]


def _module_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-adds of one module for one item (batch 1), by the rules in the module docstring."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        return out.numel() * fan_in
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, (GConv1d, GConv2d)):
        kernel = math.prod(module.kernel_size)
        patches = out.numel() // module.out_channels
        return out.numel() * module.in_channels * kernel + inp.numel() + patches * kernel
    if isinstance(module, GLinear):
        return out.numel() * module.in_features + inp.numel()
    if isinstance(module, NormalizedClassifier):
        return out.numel() * module.in_features + inp.numel()
    return 0


def float_cost(model: nn.Module, input_shape: tuple[int, ...]) -> ModelCost:
    """The :class:`~gnet.deployed.ModelCost` of a float network (rules in the module docstring), found by running
    one zero item through it with forward hooks (shapes only)."""
    macs = 0

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal macs
        if isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
            macs += _module_macs(module, args[0], out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    parts: dict[str, int] = {}
    for tensor in model.state_dict().values():
        if torch.is_floating_point(tensor):
            key = f"{str(tensor.dtype).removeprefix('torch.')} parameters"
            parts[key] = parts.get(key, 0) + tensor.numel() * tensor.element_size() * 8
    return ModelCost(sum(parts.values()), 0, macs, parts)


class FloatModel:
    """A trained float network behind the ``predict``/``cost`` part of the deployed-model interface.

    Args:
        model: the network (put in eval mode).
        input_shape: shape of one input item.
        n_classes: number of classes.
        config: the checkpoint config (layer specs), written by :meth:`save`.
        name: the compare method name (``gnet-float`` or ``cnn-float``); ``family`` is ``"float"`` for both.
    """

    def __init__(
        self, model: nn.Module, input_shape: tuple[int, ...], n_classes: int, config: dict[str, Any], name: str
    ) -> None:
        self.model = model.eval()
        self.family = "float"
        self.name = name
        self.input_shape: tuple[int, ...] | None = tuple(input_shape)
        self.n_classes = int(n_classes)
        self.config = config

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Labels (B,) int64 of inputs (B, *input_shape) float32 (torch or numpy), in batches of ``batch_size``."""
        x = torch.as_tensor(x, dtype=torch.float32)
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                out.append(self.model(x[i : i + batch_size]).argmax(dim=1))
        return torch.cat(out).numpy().astype(np.int64)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the network as a float checkpoint (:func:`gnet.checkpoint.save_checkpoint`); returns the path."""
        from gnet.checkpoint import save_checkpoint

        return save_checkpoint(path, self.model, self.config)

    def fault_targets(self) -> tuple[str, ...]:
        """Empty: a float model has no bit-fault model."""
        return ()

    def with_faults(self, p: float, target: str, seed: int, kind: str = "flip") -> FloatModel:
        """Always ValueError: a float model has no bit-fault model."""
        raise ValueError(f"{self.name} is a float model: it has no bit-fault model")

    def cost(self) -> ModelCost:
        """Model bits and work per image (see :func:`float_cost`)."""
        assert self.input_shape is not None
        return float_cost(self.model, self.input_shape)
