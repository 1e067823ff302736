"""G-Net architectures as plain data: a list of layer specs that builds an ``nn.Sequential``.

A spec is a dict with a ``type`` and that layer's arguments, so architectures can live in a JSON file::

    [{"type": "conv2d", "in": 1, "out": 32, "kernel": 3, "padding": 1},
     {"type": "rasu"}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
     {"type": "linear", "in": 1568, "out": 10}, ...,
     {"type": "classifier", "in": 512, "classes": 10}]

The named builders reproduce the architectures of the G-Net paper (arXiv 2511.21063, Sec. 4.2).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from gnet.layers import RASU, TASU, GConv1d, GConv2d, GLinear, NormalizedClassifier

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCHITECTURE",
    "DEFAULT_DIFFLOGIC",
    "FAMILIES",
    "LAYER_TYPES",
    "METHODS",
    "architecture",
    "architecture_for",
    "build_for_method",
    "build_model",
    "check_input_shape",
    "family_of",
    "input_scaling",
    "load_architecture",
]

LayerSpec = dict[str, Any]

# Softmax temperature on the classifier's cosines. The paper trains on raw cosines (scale 1), whose softmax can
# never exceed e/(e + 9/e) = 0.45 for 10 classes; on MNIST that run lost a whole class (val 98.5% -> 89% by epoch 3)
# while the loss kept falling. A scale of 10, as in NormFace, trains stably; it never changes the argmax, so the
# EHD classifier's decision rule is the same.
CLASSIFIER_SCALE = 10.0


def _act(activation: str) -> LayerSpec:
    if activation not in ("rasu", "tasu"):
        raise ValueError(f"unknown activation {activation!r}; valid: rasu, tasu")
    return {"type": activation}


def mnist_net(n_classes: int = 10, activation: str = "rasu", in_channels: int = 1) -> list[LayerSpec]:
    """Paper's MNIST net: GConv(1->32,k3,p1)+act+pool -> GConv(32->64,k5,p2)+act+pool -> GLinear(3136->512)+act
    + Dropout(0.5) -> classifier(512->classes). Input (1, 28, 28)."""
    a = _act(activation)
    return [
        {"type": "conv2d", "in": in_channels, "out": 32, "kernel": 3, "padding": 1, "bias_init": 1e-3},
        a,
        {"type": "maxpool2d", "kernel": 2},
        {"type": "conv2d", "in": 32, "out": 64, "kernel": 5, "padding": 2, "bias_init": 1e-2},
        a,
        {"type": "maxpool2d", "kernel": 2},
        {"type": "flatten"},
        {"type": "linear", "in": 3136, "out": 512, "bias_init": 5e-5},
        a,
        {"type": "dropout", "p": 0.5},
        {"type": "classifier", "in": 512, "classes": n_classes, "bias_init": 5e-5, "scale": CLASSIFIER_SCALE},
    ]


def fashion_mnist_net(n_classes: int = 10, activation: str = "rasu") -> list[LayerSpec]:
    """Paper's Fashion-MNIST net: GConv(1->32,k3,p1)+act+pool+Dropout2d(0.25) -> GLinear(6272->512)+act ->
    classifier(512->classes). Input (1, 28, 28)."""
    a = _act(activation)
    return [
        {"type": "conv2d", "in": 1, "out": 32, "kernel": 3, "padding": 1, "bias_init": 1e-3},
        a,
        {"type": "maxpool2d", "kernel": 2},
        {"type": "dropout2d", "p": 0.25},
        {"type": "flatten"},
        {"type": "linear", "in": 6272, "out": 512, "bias_init": 5e-5},
        a,
        {"type": "classifier", "in": 512, "classes": n_classes, "bias_init": 5e-5, "scale": CLASSIFIER_SCALE},
    ]


def cifar10_net(n_classes: int = 10, activation: str = "rasu") -> list[LayerSpec]:
    """Paper's CIFAR-10 net: GConv(3->32,k5,p2)+act+pool -> GConv(32->64,k3,p1)+act+pool+Dropout2d(0.3) ->
    GLinear(4096->512)+act -> classifier. Input (3, 32, 32)."""
    a = _act(activation)
    return [
        {"type": "conv2d", "in": 3, "out": 32, "kernel": 5, "padding": 2, "bias_init": 1e-3},
        a,
        {"type": "maxpool2d", "kernel": 2},
        {"type": "conv2d", "in": 32, "out": 64, "kernel": 3, "padding": 1, "bias_init": 1e-2},
        a,
        {"type": "maxpool2d", "kernel": 2},
        {"type": "dropout2d", "p": 0.3},
        {"type": "flatten"},
        {"type": "linear", "in": 4096, "out": 512, "bias_init": 5e-5},
        a,
        {"type": "classifier", "in": 512, "classes": n_classes, "bias_init": 5e-5, "scale": CLASSIFIER_SCALE},
    ]


def timeseries_net(
    in_channels: int = 1, length: int = 150, n_classes: int = 2, activation: str = "rasu"
) -> list[LayerSpec]:
    """The paper's Epilepsy/WSS shape: GConv1d(C->64,k11,p5)+act+pool2 -> GConv1d(64->48,k7,p3)+act+pool2 ->
    classifier(48 * (L // 4) -> classes). Input (C, L)."""
    a = _act(activation)
    flat = 48 * ((length // 2) // 2)
    return [
        {"type": "conv1d", "in": in_channels, "out": 64, "kernel": 11, "padding": 5, "bias_init": 1.5e-3},
        a,
        {"type": "maxpool1d", "kernel": 2},
        {"type": "conv1d", "in": 64, "out": 48, "kernel": 7, "padding": 3, "bias_init": 1.5e-3},
        a,
        {"type": "maxpool1d", "kernel": 2},
        {"type": "flatten"},
        {"type": "classifier", "in": flat, "classes": n_classes, "bias_init": 5e-5, "scale": CLASSIFIER_SCALE},
    ]


def mlp(in_features: int = 64, hidden: Sequence[int] = (256,), n_classes: int = 10, activation: str = "rasu"):
    """GLinear layers with activations, then the normalised classifier. Input (in_features,) or any shape
    (it is flattened)."""
    specs: list[LayerSpec] = [{"type": "flatten"}]
    width = in_features
    for h in hidden:
        specs += [{"type": "linear", "in": width, "out": int(h), "bias_init": 5e-5}, _act(activation)]
        width = int(h)
    specs.append(
        {"type": "classifier", "in": width, "classes": n_classes, "bias_init": 5e-5, "scale": CLASSIFIER_SCALE}
    )
    return specs


def digits_net(n_classes: int = 10, activation: str = "rasu") -> list[LayerSpec]:
    """Small conv net for 8x8 digits: GConv(1->16,k3,p1)+act -> GConv(16->32,k3,p1)+act+pool2 ->
    GLinear(512->128)+act -> classifier. Input (1, 8, 8)."""
    a = _act(activation)
    return [
        {"type": "conv2d", "in": 1, "out": 16, "kernel": 3, "padding": 1, "bias_init": 1e-3},
        a,
        {"type": "conv2d", "in": 16, "out": 32, "kernel": 3, "padding": 1, "bias_init": 1e-2},
        a,
        {"type": "maxpool2d", "kernel": 2},
        {"type": "flatten"},
        {"type": "linear", "in": 512, "out": 128, "bias_init": 5e-5},
        a,
        {"type": "classifier", "in": 128, "classes": n_classes, "bias_init": 5e-5, "scale": CLASSIFIER_SCALE},
    ]


ARCHITECTURES: dict[str, Callable[..., list[LayerSpec]]] = {
    "mnist": mnist_net,
    "fashion-mnist": fashion_mnist_net,
    "cifar10": cifar10_net,
    "timeseries": timeseries_net,
    "mlp": mlp,
    "digits": digits_net,
}


def architecture(name: str, **kwargs: Any) -> list[LayerSpec]:
    """The named architecture's layer specs, e.g. ``architecture("mnist", activation="tasu")``."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; valid: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name](**kwargs)


def load_architecture(path: str | os.PathLike) -> list[LayerSpec]:
    """Read a list of layer specs from a JSON file."""
    with open(path) as fh:
        specs = json.load(fh)
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ValueError(f"{path}: an architecture file must hold a JSON list of layer objects")
    return specs


# The architecture a dataset gets when none is named; other image sets fall back to "mlp", time series to
# "timeseries".
DEFAULT_ARCHITECTURE = {"digits": "digits", "mnist": "mnist", "fashion-mnist": "fashion-mnist"}


class DatasetInfo(Protocol):
    """What :func:`architecture_for` reads of a dataset (a :class:`gnet.data.DataSplits` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def input_shape(self) -> tuple[int, ...]: ...
    @property
    def n_classes(self) -> int: ...


def architecture_for(dataset: DatasetInfo, arch: str | None = None, activation: str = "rasu") -> list[LayerSpec]:
    """Layer specs for ``dataset``: from a JSON file (``arch`` ending in .json), a named architecture, or the
    dataset's default (:data:`DEFAULT_ARCHITECTURE`, else "timeseries" or "mlp"), sized to the dataset's input
    shape and number of classes where the architecture allows it."""
    if arch is not None and arch.endswith(".json"):
        return load_architecture(arch)
    name = arch or DEFAULT_ARCHITECTURE.get(dataset.name) or ("timeseries" if dataset.kind == "timeseries" else "mlp")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; valid: {', '.join(sorted(ARCHITECTURES))} or a .json file")
    shape, k = dataset.input_shape, dataset.n_classes
    if name == "timeseries":
        return architecture(name, in_channels=shape[0], length=shape[-1], n_classes=k, activation=activation)
    if name == "mlp":
        return architecture(name, in_features=math.prod(shape), n_classes=k, activation=activation)
    return architecture(name, n_classes=k, activation=activation)


def _req(spec: LayerSpec, key: str) -> Any:
    if key not in spec:
        raise ValueError(f"layer spec {spec} lacks required key {key!r}")
    return spec[key]


def _conv_kwargs(spec: LayerSpec) -> dict[str, Any]:
    return {
        "stride": spec.get("stride", 1),
        "padding": spec.get("padding", 0),
        "dilation": spec.get("dilation", 1),
        "bias_init": spec.get("bias_init", 1e-3),
        "batch_norm": spec.get("batch_norm", False),
        "weight_std": spec.get("weight_std"),
    }


LAYER_TYPES: dict[str, Callable[[LayerSpec, torch.Generator], nn.Module]] = {
    "conv2d": lambda s, g: GConv2d(_req(s, "in"), _req(s, "out"), _req(s, "kernel"), **_conv_kwargs(s), generator=g),
    "conv1d": lambda s, g: GConv1d(_req(s, "in"), _req(s, "out"), _req(s, "kernel"), **_conv_kwargs(s), generator=g),
    "linear": lambda s, g: GLinear(
        _req(s, "in"),
        _req(s, "out"),
        bias_init=s.get("bias_init", 5e-5),
        batch_norm=s.get("batch_norm", False),
        weight_std=s.get("weight_std"),
        generator=g,
    ),
    "classifier": lambda s, g: NormalizedClassifier(
        _req(s, "in"),
        _req(s, "classes"),
        bias_init=s.get("bias_init", 5e-5),
        scale=s.get("scale", 1.0),
        weight_std=s.get("weight_std", 0.6),
        generator=g,
    ),
    "rasu": lambda s, g: RASU(s.get("alpha", 5.0)),
    "tasu": lambda s, g: TASU(s.get("alpha", 10.0)),
    "maxpool2d": lambda s, g: nn.MaxPool2d(s.get("kernel", 2)),
    "maxpool1d": lambda s, g: nn.MaxPool1d(s.get("kernel", 2)),
    "flatten": lambda s, g: nn.Flatten(),
    "dropout": lambda s, g: nn.Dropout(s.get("p", 0.5)),
    "dropout2d": lambda s, g: nn.Dropout2d(s.get("p", 0.25)),
    "dropout1d": lambda s, g: nn.Dropout1d(s.get("p", 0.25)),
}


def build_model(specs: Sequence[LayerSpec], seed: int = 0) -> nn.Sequential:
    """Build an ``nn.Sequential`` from layer specs; weights are drawn from a generator seeded with ``seed``."""
    if not specs:
        raise ValueError("an architecture needs at least one layer")
    gen = torch.Generator().manual_seed(int(seed))
    layers = []
    for i, spec in enumerate(specs):
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in LAYER_TYPES:
            raise ValueError(f"layer {i}: unknown type {kind!r}; valid: {', '.join(sorted(LAYER_TYPES))}")
        layers.append(LAYER_TYPES[kind](spec, gen))
    if not isinstance(layers[-1], NormalizedClassifier):
        raise ValueError("the last layer of a G-Net must be a 'classifier' (NormalizedClassifier)")
    return nn.Sequential(*layers)


def check_input_shape(model: nn.Module, input_shape: Sequence[int], n_classes: int | None = None) -> None:
    """Run one zero sample through ``model`` and raise ValueError naming the mismatch, before any training."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape))
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"the architecture does not accept inputs of shape {tuple(input_shape)}: {err}") from err
    finally:
        model.train(was_training)
    if n_classes is not None and out.shape[-1] != n_classes:
        raise ValueError(f"the architecture outputs {out.shape[-1]} classes but the dataset has {n_classes}")


# Training methods by family: the float G-Net, the binary networks of gnet.bnn (its METHODS, same order) and the
# logic gate networks of gnet.logic. The family names the builder of a checkpoint (gnet.checkpoint.BUILDERS).
FAMILIES: dict[str, tuple[str, ...]] = {
    "gnet": ("gnet",),
    "bnn": ("binaryconnect", "bnn", "bnn++", "pc++", "fda"),
    "difflogic": ("difflogic",),
    "cnn": ("cnn",),  # the plain float CNN of the same shape (gnet.cnn), the reference of comparisons
}
METHODS: tuple[str, ...] = tuple(m for methods in FAMILIES.values() for m in methods)

# The DiffLogic preset (gnet.logic.PRESETS) a dataset gets when none is named; any other dataset gets
# gnet.logic.generic_difflogic_spec (quantile thresholds on every feature).
DEFAULT_DIFFLOGIC = {
    "mnist": "difflogic-mnist-small",
    "fashion-mnist": "difflogic-mnist-small",
    "digits": "difflogic-digits",
    "breast_cancer": "difflogic-breast-cancer",
}


def family_of(method: str) -> str:
    """The family (a key of :data:`FAMILIES`) of a training method; unknown method -> ValueError listing them."""
    for family, methods in FAMILIES.items():
        if method in methods:
            return family
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def input_scaling(method: str) -> str:
    """The input scaling (a :data:`gnet.data.SCALINGS` name) a method trains on: DiffLogic reads inputs as
    probabilities or thresholds them, so it gets images in [0, 1] ("unit"); every other method "standard"."""
    return "unit" if family_of(method) == "difflogic" else "standard"


def build_for_method(
    method: str, dataset: DatasetInfo, arch: str | None = None, activation: str = "rasu", seed: int = 0
) -> tuple[nn.Module, dict[str, Any]]:
    """(model, model config) for training ``method`` on ``dataset``.

    ``gnet``, ``cnn`` (a plain float CNN, :mod:`gnet.cnn`) and the binary methods build the layer specs of
    :func:`architecture_for` (a BNN via :func:`gnet.bnn.build_bnn`); ``difflogic`` builds the
    :data:`gnet.logic.PRESETS` entry named by ``arch``, by default the dataset's :data:`DEFAULT_DIFFLOGIC` (for a
    dataset without one, :func:`gnet.logic.generic_difflogic_spec`).
    The config holds ``family``, ``method`` and ``architecture``
    (layer specs, or the DiffLogic spec), enough for :func:`gnet.checkpoint.build_from_config` to rebuild it.
    """
    family = family_of(method)
    if family == "difflogic":
        from gnet.logic.models import PRESETS, build_difflogic, difflogic_spec, generic_difflogic_spec

        name = arch or DEFAULT_DIFFLOGIC.get(dataset.name)
        if name is None:  # no preset for this data: the generic small net (quantile thresholds, fit by the caller)
            spec = generic_difflogic_spec(dataset.input_shape, dataset.n_classes, "small", seed)
            return build_difflogic(spec), {"family": family, "method": method, "architecture": spec}
        if name not in PRESETS:
            raise ValueError(f"unknown difflogic architecture {name!r}; valid: {', '.join(PRESETS)}")
        spec = difflogic_spec(name, seed=seed)
        return build_difflogic(spec), {"family": family, "method": method, "architecture": spec}
    specs = architecture_for(dataset, arch, activation)
    if family == "bnn":
        from gnet.bnn.models import build_bnn

        bnn = build_bnn(specs, method, seed)
        return bnn, {"family": family, **bnn.model_config()}
    if family == "cnn":
        from gnet.cnn import build_plain_cnn

        return build_plain_cnn(specs, seed), {"family": family, "method": method, "architecture": specs}
    return build_model(specs, seed), {"family": family, "method": method, "architecture": specs}
