"""DiffLogic networks as JSON-able specs: input step (flatten, optional crop, thermometer or rounding), ``depth``
:class:`~gnet.logic.layers.LogicLayer` of ``width`` gates, :class:`~gnet.logic.layers.GroupSum`.

``model(x)`` returns class scores (B, n_classes) = group sums / tau, so :func:`gnet.train.train` trains it with
cross-entropy like any other model. Use the paper's optimiser settings (:data:`TRAIN_DEFAULTS`: Adam, lr 0.01, no
weight decay) rather than the G-Net defaults.

Input step:

- ``encoder = {"kind": "thermometer", "k": k, "method": "uniform" | "quantile", "value_range": None | [lo, hi]}``:
  each feature becomes ``k`` bits ``x > t`` (train and eval alike). Quantile thresholds are fitted on training data
  with :meth:`DiffLogicNet.fit_encoder` and saved in the state dict.
- ``encoder = None``: the paper's MNIST recipe: features in [0, 1] are fed as probabilities in training and rounded
  (``x > 0.5``) in eval mode.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gnet.logic.layers import GroupSum, LogicLayer
from hdc._validate import Seed, as_seed, check_choice, check_int, check_number
from hdc.encoders.thermometer import ThermometerEncoder

__all__ = [
    "PRESETS",
    "TRAIN_DEFAULTS",
    "DiffLogicNet",
    "Thermometer",
    "build_difflogic",
    "difflogic_net",
    "difflogic_spec",
    "generic_difflogic_spec",
]

# Official difflogic recipes (bnn_addendum.md, section 3): Adam, lr 0.01, batch 100, no schedule, no weight decay.
TRAIN_DEFAULTS: dict[str, Any] = {"lr": 0.01, "weight_decay": 0.0, "batch_size": 100}

_BASE: dict[str, Any] = {
    "architecture": "difflogic",
    "connections": "unique",
    "init": "gaussian",
    "grad_factor": 1.0,
    "input_shape": None,
    "crop": 0,
    "encoder": None,
    "seed": 0,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's "small" MNIST model: 20x20 crop (400 inputs), 6 x 8,000 gates, tau 10 (97.69 %).
    "difflogic-mnist-small": {
        "in_features": 400,
        "n_classes": 10,
        "width": 8000,
        "depth": 6,
        "tau": 10.0,
        "input_shape": [1, 28, 28],
        "crop": 4,
    },
    # The paper's largest MNIST model: 784 inputs, 6 x 64,000 gates, tau 30 (98.47 %).
    "difflogic-mnist-large": {
        "in_features": 784,
        "n_classes": 10,
        "width": 64000,
        "depth": 6,
        "tau": 30.0,
        "input_shape": [1, 28, 28],
    },
    # sklearn digits (8x8, values 0..16 scaled to [0, 1]); 3 uniform thresholds per pixel (192 bits). Sized for
    # CI: 10 epochs at batch 32 take about 15 s on a loaded 2-core machine (tests/test_logic_train.py).
    "difflogic-digits": {
        "in_features": 64,
        "n_classes": 10,
        "width": 1000,
        "depth": 3,
        "tau": 10.0,
        "encoder": {"kind": "thermometer", "k": 3, "method": "uniform", "value_range": None},
    },
    # sklearn breast cancer (30 features, any range): 8 quantile thresholds per feature; the README's
    # breast-cancer recipe size (width 128, depth 5, tau 20, lr 0.001).
    "difflogic-breast-cancer": {
        "in_features": 30,
        "n_classes": 2,
        "width": 128,
        "depth": 5,
        "tau": 20.0,
        "encoder": {"kind": "thermometer", "k": 8, "method": "quantile", "value_range": None},
    },
}


# Datasets without a preset (UCR/UEA series, other tables): raw features, any range, so quantile thresholds.
GENERIC_THRESHOLDS = 4
GENERIC_WIDTHS = {"small": 1000, "large": 4000}
GENERIC_DEPTH = 4


def generic_difflogic_spec(
    input_shape: Sequence[int], n_classes: int, size: str = "small", seed: int = 0
) -> dict[str, Any]:
    """A DiffLogic spec for data without a preset: every feature of ``input_shape`` (flattened) through
    ``GENERIC_THRESHOLDS`` quantile thresholds (fit with :meth:`DiffLogicNet.fit_encoder`), ``GENERIC_DEPTH``
    layers of 1,000 ("small") or 4,000 ("large") gates, or half the input bits where that is more (unique wiring
    reads every input bit), rounded up to a multiple of ``n_classes`` (the group sum needs equal groups), tau 10.

    Example:
        >>> spec = generic_difflogic_spec([1, 150], n_classes=3)
        >>> encoder = spec["encoder"]
        >>> spec["in_features"], spec["width"], encoder["method"]
        (150, 1002, 'quantile')
    """
    check_choice(size, tuple(GENERIC_WIDTHS), "size")
    n_classes = check_int(n_classes, "n_classes", 2)
    shape = [check_int(side, "input_shape side", 1) for side in input_shape]
    in_bits = math.prod(shape) * GENERIC_THRESHOLDS
    # Unique wiring reads every input bit at least once: a first layer of at least in_bits / 2 gates.
    width = -(-max(GENERIC_WIDTHS[size], -(-in_bits // 2)) // n_classes) * n_classes
    encoder = {"kind": "thermometer", "k": GENERIC_THRESHOLDS, "method": "quantile", "value_range": None}
    spec = {
        **copy.deepcopy(_BASE),
        "in_features": math.prod(shape),
        "n_classes": n_classes,
        "width": width,
        "depth": GENERIC_DEPTH,
        "tau": 10.0,
        "input_shape": shape,
        "encoder": encoder,
        "seed": int(seed),
        "preset": f"generic-{size}",
    }
    _check_spec(spec)
    return spec


def difflogic_spec(name: str, **overrides: Any) -> dict[str, Any]:
    """A preset's full spec (a JSON-able dict) with ``overrides`` applied; unknown preset -> ``ValueError``."""
    check_choice(name, tuple(PRESETS), "difflogic preset")
    spec = {**copy.deepcopy(_BASE), **copy.deepcopy(PRESETS[name]), "preset": name}
    unknown = set(overrides) - set(spec)
    if unknown:
        raise ValueError(f"unknown difflogic spec keys: {', '.join(sorted(unknown))}")
    spec.update(overrides)
    return spec


class Thermometer(nn.Module):
    """Torch form of :class:`hdc.encoders.thermometer.ThermometerEncoder`: (B, F) -> (B, F k) float {0, 1}.

    Buffer ``thresholds`` float32 (F, k) (or (1, k), shared). With ``strict_range`` inputs outside [0, 1] raise.
    """

    thresholds: torch.Tensor

    def __init__(self, thresholds: torch.Tensor, strict_range: bool = True) -> None:
        super().__init__()
        self.register_buffer("thresholds", thresholds.detach().to(torch.float32).clone())
        self.strict_range = strict_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.strict_range and x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError("inputs must lie in [0, 1]; scale them or give the encoder a value_range")
        return (x.unsqueeze(-1) > self.thresholds).flatten(1).to(x.dtype)


def _check_spec(spec: dict[str, Any]) -> None:
    if spec.get("architecture") != "difflogic":
        raise ValueError(f"not a difflogic spec (architecture {spec.get('architecture')!r})")
    missing = {"in_features", "n_classes", "width", "depth", "tau"} - set(spec)
    unknown = set(spec) - set(_BASE) - {"in_features", "n_classes", "width", "depth", "tau", "preset"}
    if missing or unknown:
        raise ValueError(f"difflogic spec: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
    for key in ("in_features", "n_classes", "width", "depth"):
        check_int(spec[key], key, 1)
    check_number(spec["tau"], "tau", 0.0, strict=True)
    if spec["width"] % spec["n_classes"]:
        raise ValueError(f"width {spec['width']} must be a multiple of n_classes {spec['n_classes']} (GroupSum)")
    crop = check_int(spec.get("crop", 0), "crop", 0)
    shape = spec.get("input_shape")
    if crop and (shape is None or len(shape) < 2 or min(shape[-2:]) <= 2 * crop):
        raise ValueError(f"crop={crop} needs an input_shape whose last two sides exceed {2 * crop}")
    cropped = math.prod(shape) if shape else spec["in_features"]
    if crop and shape is not None:
        cropped = math.prod(shape[:-2]) * (shape[-2] - 2 * crop) * (shape[-1] - 2 * crop)
    if cropped != spec["in_features"]:
        raise ValueError(f"in_features {spec['in_features']} does not match input_shape {shape} with crop {crop}")


class DiffLogicNet(nn.Module):
    """A DiffLogic classifier built from a spec (see module docstring and :func:`difflogic_spec`).

    Shapes: input (B, *input_shape) or (B, raw features) float32 -> scores (B, n_classes) float32.
    """

    layers: nn.Sequential
    group_sum: GroupSum
    encoder: Thermometer | None

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        spec = {**copy.deepcopy(_BASE), **copy.deepcopy(spec)}
        _check_spec(spec)
        self.spec = spec
        self.input_shape = tuple(spec["input_shape"]) if spec["input_shape"] else None
        self.crop = int(spec["crop"])
        self.encoder = self._make_encoder(spec["encoder"], spec["in_features"])
        bits = spec["in_features"] * (spec["encoder"]["k"] if spec["encoder"] else 1)
        seed = as_seed(spec["seed"])
        widths = [bits] + [spec["width"]] * spec["depth"]
        self.layers = nn.Sequential(
            *[
                LogicLayer(
                    widths[i],
                    widths[i + 1],
                    connections=spec["connections"],
                    seed=np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1)[0].item(),
                    init=spec["init"],
                    grad_factor=spec["grad_factor"],
                )
                for i in range(spec["depth"])
            ]
        )
        self.group_sum = GroupSum(spec["n_classes"], spec["tau"])

    @staticmethod
    def _make_encoder(cfg: dict[str, Any] | None, in_features: int) -> Thermometer | None:
        if cfg is None:
            return None
        check_choice(cfg.get("kind"), ("thermometer",), "encoder kind")
        enc = ThermometerEncoder(cfg["k"], cfg.get("method", "uniform"), cfg.get("value_range"))
        if enc.thresholds is not None:
            thresholds = torch.from_numpy(enc.thresholds)
        else:  # quantile: placeholder until fit_encoder
            thresholds = torch.full((in_features, enc.k), float("nan"))
        return Thermometer(thresholds, strict_range=enc.strict_range)

    @property
    def n_classes(self) -> int:
        return int(self.spec["n_classes"])

    def fit_encoder(self, x_train: torch.Tensor) -> DiffLogicNet:
        """Fit quantile thresholds on training inputs (no-op for uniform thresholds or no encoder)."""
        cfg = self.spec["encoder"]
        if cfg is not None and cfg.get("method") == "quantile" and self.encoder is not None:
            enc = ThermometerEncoder(cfg["k"], "quantile", cfg.get("value_range")).fit(self.features(x_train))
            self.encoder.thresholds.copy_(torch.from_numpy(enc.thresholds))
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened (and cropped) raw features (B, in_features)."""
        if self.input_shape is not None:
            x = x.reshape(x.shape[0], *self.input_shape)
            if self.crop:
                x = x[..., self.crop : -self.crop, self.crop : -self.crop]
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.spec["in_features"]:
            raise ValueError(f"expected {self.spec['in_features']} input features, got {x.shape[1]}")
        return x

    def input_bits(self, x: torch.Tensor) -> torch.Tensor:
        """The first logic layer's input (B, bits): thermometer bits, or (no encoder) the features in training
        and ``x > 0.5`` in eval mode."""
        x = self.features(x)
        if self.encoder is not None:
            if torch.isnan(self.encoder.thresholds).any():
                raise ValueError("quantile thresholds are not fitted; call model.fit_encoder(x_train) first")
            return self.encoder(x)
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError("inputs must lie in [0, 1] for a model without encoder (scale them or add one)")
        return x if self.training else (x > 0.5).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.group_sum(self.layers(self.input_bits(x)))


def build_difflogic(spec: dict[str, Any]) -> DiffLogicNet:
    """The model of a spec (e.g. from :func:`difflogic_spec` or a checkpoint's model config)."""
    return DiffLogicNet(spec)


def difflogic_net(
    in_features: int, n_classes: int, width: int, depth: int, tau: float, seed: Seed = 0, **options: Any
) -> DiffLogicNet:
    """A DiffLogic net of ``depth`` layers of ``width`` gates; ``options``: connections, init, grad_factor,
    input_shape, crop, encoder (see the module docstring)."""
    unknown = set(options) - set(_BASE)
    if unknown:
        raise ValueError(f"unknown difflogic options: {', '.join(sorted(unknown))}")
    return DiffLogicNet(
        {
            **_BASE,
            "in_features": in_features,
            "n_classes": n_classes,
            "width": width,
            "depth": depth,
            "tau": tau,
            "seed": as_seed(seed),
            **options,
        }
    )
