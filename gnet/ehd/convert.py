"""Convert a trained float G-Net into an EHD G-Net."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from gnet.ehd.layers import PROJECTIONS, EHDClassifier, EHDGLayer, Geometry, check_embedding
from gnet.ehd.model import EHDModel, Flatten, Pool
from gnet.layers import RASU, TASU, GConv1d, GConv2d, GLinear, NormalizedClassifier
from hdc.projection import as_seed

__all__ = ["convert", "convert_layer", "resolve_n", "resolve_per_layer", "geometry_of"]

_IGNORED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)  # identities at inference


def _flatten_modules(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [m for child in model for m in _flatten_modules(child)]
    return [model]


def geometry_of(layer: nn.Module) -> Geometry:
    """The :class:`Geometry` of a G-layer or classifier."""
    if isinstance(layer, (GConv1d, GConv2d)):
        return Geometry(
            "conv2d" if isinstance(layer, GConv2d) else "conv1d", layer.in_channels, layer.out_channels,
            layer.kernel_size, layer.stride, layer.padding, layer.dilation,
        )
    if isinstance(layer, GLinear):
        return Geometry("linear", layer.in_features, layer.out_features)
    if isinstance(layer, NormalizedClassifier):
        return Geometry("linear", layer.in_features, layer.n_classes)
    raise ValueError(f"{type(layer).__name__} is not a G-Net layer")


def resolve_n(n: int | float | Sequence[int], fan_ins: Sequence[int]) -> list[int]:
    """N per code-carrying layer: one int for all, a list (one per layer), or a float ratio of each fan-in."""
    if isinstance(n, bool):
        raise ValueError(f"n must be an int, a list of ints or a float ratio, got {n!r}")
    if isinstance(n, (int, np.integer)):
        ns = [int(n)] * len(fan_ins)
    elif isinstance(n, float):
        if not n > 0:
            raise ValueError(f"a ratio n must be > 0, got {n}")
        ns = [max(1, math.ceil(n * f)) for f in fan_ins]
    else:
        ns = [int(v) for v in n]
        if len(ns) != len(fan_ins):
            raise ValueError(f"n lists {len(ns)} values but the model has {len(fan_ins)} G-layers (classifier included)")
    if any(v < 1 for v in ns):
        raise ValueError(f"every N must be >= 1, got {ns}")
    return ns


def resolve_per_layer(value: str | Sequence[str], layers: int, name: str) -> list[str]:
    """One string for every code-carrying layer, or a list with one per layer."""
    if isinstance(value, str):
        return [value] * layers
    values = [str(v) for v in value]
    if len(values) != layers:
        raise ValueError(f"{name} lists {len(values)} values but the model has {layers} G-layers (classifier included)")
    return values


def convert_layer(
    layer: nn.Module,
    n: int,
    *,
    embedding: str = "gaussian",
    seed: int = 0,
    index: int = 0,
    projection: str = "shared",
    activation: str | None = None,
    alpha: float = 1.0,
    precision: str = "float32",
) -> EHDGLayer:
    """One G-layer (or the classifier) to its EHD counterpart, with weight codes phi(w~) packed."""
    geometry = geometry_of(layer)
    if isinstance(layer, NormalizedClassifier):
        weights = layer.weight.detach().T  # class columns -> rows
        codes = EHDGLayer.weight_codes(weights, n, embedding, seed, index, "shared")
        return EHDClassifier(
            geometry.in_channels, geometry.out_units, n, codes, layer.bias.item(),
            embedding=embedding, seed=seed, index=index, precision=precision,
        )
    weights = layer.effective_weight().reshape(geometry.out_units, -1)
    codes = EHDGLayer.weight_codes(weights, n, embedding, seed, index, projection)
    return EHDGLayer(
        geometry, n, codes, layer.bias.item(), embedding=embedding, seed=seed, index=index,
        projection=projection, activation=activation, alpha=alpha, precision=precision,
    )


def convert(
    model: nn.Module,
    n: int | float | Sequence[int] = 10_000,
    embedding: str | Sequence[str] = "gaussian",
    conv_projection: str = "shared",
    seed: int | np.random.Generator = 0,
    precision: str | Sequence[str] = "float32",
    meta: dict[str, Any] | None = None,
) -> EHDModel:
    """Convert a float G-Net (G-layers, RASU/TASU, max-pooling, flatten, dropout, normalised classifier).

    Args:
        n: N for every G-layer and the classifier: an int, a list (one per code-carrying layer), or a float
            ratio of each layer's fan-in.
        embedding: "gaussian" or "rademacher" (dense G, the paper's), "orthogonal" (dense Gaussian rows
            orthogonalised in groups: same expectation, lower variance), or "hadamard" (structured orthogonal G,
            :class:`hdc.structured_projection.HadamardProjection`: O(N log fan_in) per patch instead of
            O(N fan_in)); one name for all layers or a list with one per code-carrying layer.
        conv_projection: "shared" (one G per layer) or "per_channel" (one G per output channel, the paper's code).
        seed: all G are regenerated from this seed and the layer index, so it is stored with the model.
        precision: arithmetic of the data projection: "float32", "bfloat16", or "int8" (Rademacher only); one
            for all layers or a list with one per layer. A Hadamard layer runs in float32.
        meta: extra entries for :attr:`EHDModel.meta` (e.g. input_shape, n_classes, dataset).
    """
    if conv_projection not in PROJECTIONS:
        raise ValueError(f"unknown conv_projection {conv_projection!r}; valid: {', '.join(PROJECTIONS)}")
    seed = as_seed(seed)
    modules = _flatten_modules(model)
    g_layers = [m for m in modules if isinstance(m, (GLinear, GConv1d, GConv2d, NormalizedClassifier))]
    if not g_layers or not isinstance(modules[-1], NormalizedClassifier):
        raise ValueError("the model must end with a NormalizedClassifier")
    ns = resolve_n(n, [geometry_of(m).fan_in for m in g_layers])
    embeddings = resolve_per_layer(embedding, len(g_layers), "embedding")
    precisions = resolve_per_layer(precision, len(g_layers), "precision")
    for e, p in zip(embeddings, precisions):
        check_embedding(e, p)

    stages: list = []
    index = 0
    for i, module in enumerate(modules):
        if isinstance(module, (GLinear, GConv1d, GConv2d, NormalizedClassifier)):
            activation, alpha = None, 1.0
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            if isinstance(nxt, (RASU, TASU)):
                activation, alpha = ("rasu" if isinstance(nxt, RASU) else "tasu"), nxt.alpha.item()
            projection = conv_projection if isinstance(module, (GConv1d, GConv2d)) else "shared"
            stages.append(convert_layer(
                module, ns[index], embedding=embeddings[index], seed=seed, index=index, projection=projection,
                activation=activation, alpha=alpha, precision=precisions[index],
            ))
            index += 1
        elif isinstance(module, (RASU, TASU)):
            prev = modules[i - 1] if i > 0 else None
            if not isinstance(prev, (GLinear, GConv1d, GConv2d)):
                raise ValueError(f"module {i}: an activation must directly follow a G-layer to convert")
        elif isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)):
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = module.stride if isinstance(module.stride, int) else module.stride[0]
            if s != k or module.padding not in (0, (0, 0)) or module.dilation not in (1, (1, 1)):
                raise ValueError(f"module {i}: only max-pooling with stride = kernel and no padding converts")
            stages.append(Pool(2 if isinstance(module, nn.MaxPool2d) else 1, int(k)))
        elif isinstance(module, nn.Flatten):
            stages.append(Flatten())
        elif isinstance(module, _IGNORED):
            continue
        else:
            raise ValueError(
                f"module {i} ({type(module).__name__}) cannot be converted; supported: GLinear, GConv1d, GConv2d, "
                "RASU, TASU, MaxPool1d/2d, Flatten, Dropout, NormalizedClassifier"
            )
    info = {
        "embedding": embedding if isinstance(embedding, str) else ",".join(embeddings),
        "conv_projection": conv_projection, "seed": seed,
        "precision": precision if isinstance(precision, str) else ",".join(precisions),
        "n_per_layer": ns, **(meta or {}),
    }
    return EHDModel(stages, info)
