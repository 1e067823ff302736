"""The plain float CNN of a G-Net's shape: the reference line of every comparison.

The same layer specs as :func:`gnet.models.architecture` build an ordinary network: Conv/Linear layers with biases
(PyTorch's default initialisation), ReLU for each G-Net activation, the same pooling, flattening and dropout, and a
plain Linear classifier. ``gnet train --method cnn`` trains it like any other method, and ``gnet compare`` draws it
beside the binary families.

Examples:
    >>> from gnet.cnn import build_plain_cnn
    >>> from gnet.models import architecture
    >>> net = build_plain_cnn(architecture("digits"), seed=0)
    >>> type(net[0]).__name__
    'Conv2d'
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["build_plain_cnn"]


def _plain_layer(spec: dict[str, Any]) -> nn.Module:
    kind = spec.get("type")
    conv = {"stride": spec.get("stride", 1), "padding": spec.get("padding", 0), "dilation": spec.get("dilation", 1)}
    if kind == "conv2d":
        return nn.Conv2d(spec["in"], spec["out"], spec["kernel"], **conv)
    if kind == "conv1d":
        return nn.Conv1d(spec["in"], spec["out"], spec["kernel"], **conv)
    if kind == "linear":
        return nn.Linear(spec["in"], spec["out"])
    if kind == "classifier":
        return nn.Linear(spec["in"], spec["classes"])
    if kind in ("rasu", "tasu"):
        return nn.ReLU()
    simple: dict[str, Any] = {
        "maxpool2d": lambda: nn.MaxPool2d(spec.get("kernel", 2)),
        "maxpool1d": lambda: nn.MaxPool1d(spec.get("kernel", 2)),
        "flatten": nn.Flatten,
        "dropout": lambda: nn.Dropout(spec.get("p", 0.5)),
        "dropout2d": lambda: nn.Dropout2d(spec.get("p", 0.25)),
        "dropout1d": lambda: nn.Dropout1d(spec.get("p", 0.25)),
    }
    if kind not in simple:
        raise ValueError(f"layer type {kind!r} has no plain-CNN counterpart")
    return simple[kind]()


def build_plain_cnn(specs: list[dict[str, Any]], seed: int = 0) -> nn.Sequential:
    """A plain float network with the layer shapes of G-Net ``specs`` (PyTorch's default initialisation, drawn
    from ``seed`` without touching the caller's global RNG).

    Args:
        specs: G-Net layer specs (:func:`gnet.models.architecture`).
        seed: seed of the initial weights.

    Returns:
        An ``nn.Sequential`` taking float32 (B, *input_shape) and returning logits float32 (B, n_classes).
    """
    if not isinstance(specs, list) or not specs:
        raise ValueError("specs must be a non-empty list of layer spec dicts (see gnet.models.architecture)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return nn.Sequential(*[_plain_layer(s) for s in specs])
