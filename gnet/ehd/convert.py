"""Convert a trained float G-Net into an EHD G-Net."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from gnet.ehd.layers import PROJECTIONS, EHDClassifier, EHDGLayer, Geometry, check_embedding
from gnet.ehd.model import EHDModel, Flatten, Pool, Stage
from gnet.ehd.presets import DIM_PRESETS, dim_preset
from gnet.layers import RASU, TASU, GConv1d, GConv2d, GLinear, NormalizedClassifier
from hdc._validate import as_seed, check_choice, check_int

__all__ = [
    "convert",
    "convert_layer",
    "fan_ins",
    "geometry_of",
    "parse_dim",
    "resolve_dim",
    "resolve_n",
    "resolve_per_layer",
]

_CODE_CARRYING = (GLinear, GConv1d, GConv2d, NormalizedClassifier)
_IGNORED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)  # identities at inference


def _flatten_modules(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [m for child in model for m in _flatten_modules(child)]
    return [model]


def geometry_of(layer: nn.Module) -> Geometry:
    """The :class:`Geometry` of a G-layer or classifier."""
    if isinstance(layer, (GConv1d, GConv2d)):
        return Geometry(
            "conv2d" if isinstance(layer, GConv2d) else "conv1d",
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
        )
    if isinstance(layer, GLinear):
        return Geometry("linear", layer.in_features, layer.out_features)
    if isinstance(layer, NormalizedClassifier):
        return Geometry("linear", layer.in_features, layer.n_classes)
    raise ValueError(f"{type(layer).__name__} is not a G-Net layer")


def fan_ins(model: nn.Module) -> list[int]:
    """The fan-in of every code-carrying layer of a float G-Net (G-layers and the classifier), in order: what a
    ratio ``dim`` multiplies."""
    return [geometry_of(m).fan_in for m in _flatten_modules(model) if isinstance(m, _CODE_CARRYING)]


def resolve_dim(dim: float | Sequence[int], fan_ins: Sequence[int]) -> list[int]:
    """dim per code-carrying layer: one int for all, a list (one per layer), or a float ratio of each fan-in."""
    if isinstance(dim, (bool, np.bool_)):
        raise ValueError(f"dim must be an int, a list of ints or a float ratio, got {dim!r}")
    if isinstance(dim, (int, np.integer)):
        dims = [int(dim)] * len(fan_ins)
    elif isinstance(dim, (float, np.floating)):
        if not (math.isfinite(dim) and dim > 0):
            raise ValueError(f"a ratio dim must be finite and > 0, got {dim}")
        dims = [max(1, math.ceil(dim * f)) for f in fan_ins]
    else:
        dims = [check_int(v, "dim entries") for v in dim]
        if len(dims) != len(fan_ins):
            raise ValueError(
                f"dim lists {len(dims)} values but the model has {len(fan_ins)} G-layers (classifier included)"
            )
    if any(v < 1 for v in dims):
        raise ValueError(f"every dim must be >= 1, got {dims}")
    return dims


def parse_dim(text: str) -> int | float | list[int] | str:
    """Parse a dim setting: '6000' -> 6000; '6000,15000' -> [6000, 15000]; '2.5x' -> 2.5 (a ratio of each layer's
    fan-in), as :func:`resolve_dim` takes it; a preset name ('mnist-fast', :data:`gnet.ehd.DIM_PRESETS`) as is."""
    text = text.strip()
    if text in DIM_PRESETS:
        return text
    try:
        if text.endswith("x"):
            return float(text[:-1])
        if "," in text:
            return [int(v) for v in text.split(",")]
        return int(text)
    except ValueError:
        raise ValueError(
            f"dim must be an int, a comma list of ints, a ratio like '2.5x' or a preset ({', '.join(DIM_PRESETS)}), "
            f"got {text!r}"
        ) from None


def resolve_n(n: float | Sequence[int], fan_ins: Sequence[int]) -> list[int]:
    """Deprecated name of :func:`resolve_dim`."""
    warnings.warn("resolve_n is deprecated; use resolve_dim", DeprecationWarning, stacklevel=2)
    return resolve_dim(n, fan_ins)


def resolve_per_layer(value: str | Sequence[str], layers: int, name: str) -> list[str]:
    """One string for every code-carrying layer, or a list with one per layer."""
    if isinstance(value, str):
        return [value] * layers
    values = [str(v) for v in value]
    if len(values) != layers:
        raise ValueError(f"{name} lists {len(values)} values but the model has {layers} G-layers (classifier included)")
    return values


def convert_layer(
    layer: GLinear | GConv1d | GConv2d | NormalizedClassifier,
    dim: int,
    *,
    embedding: str = "gaussian",
    seed: int = 0,
    index: int = 0,
    projection: str = "shared",
    activation: str | None = None,
    alpha: float = 1.0,
    precision: str = "auto",
) -> EHDGLayer:
    """One G-layer (or the classifier) to its EHD counterpart, with weight codes phi(w~) packed; ``precision``
    as for :func:`convert` (the layer keeps the concrete one in ``.precision``)."""
    geometry = geometry_of(layer)
    if isinstance(layer, NormalizedClassifier):
        weights = layer.weight.detach().T  # class columns -> rows
        codes = EHDGLayer.weight_codes(weights, dim, embedding, seed, index, "shared")
        return EHDClassifier(
            geometry.in_channels,
            geometry.out_units,
            dim,
            codes,
            layer.bias.item(),
            embedding=embedding,
            seed=seed,
            index=index,
            precision=precision,
        )
    weights = layer.effective_weight().reshape(geometry.out_units, -1)
    codes = EHDGLayer.weight_codes(weights, dim, embedding, seed, index, projection)
    return EHDGLayer(
        geometry,
        dim,
        codes,
        layer.bias.item(),
        embedding=embedding,
        seed=seed,
        index=index,
        projection=projection,
        activation=activation,
        alpha=alpha,
        precision=precision,
    )


# module of another family's model class -> (class name, the converter to use instead)
_OTHER_FAMILIES = {
    "gnet.bnn.models": ("BNN", "gnet.bnn.convert (packed XNOR-popcount inference)"),
    "gnet.logic.models": ("DiffLogicNet", "gnet.logic.convert (a hard logic circuit)"),
}


def _refuse_other_families(model: nn.Module) -> None:
    """ValueError for a binary or logic network: those have their own deployed form. A module not yet imported
    cannot have built ``model``, so nothing is imported here."""
    for module_name, (cls_name, converter) in _OTHER_FAMILIES.items():
        module = sys.modules.get(module_name)
        if module is not None and isinstance(model, getattr(module, cls_name)):
            raise ValueError(
                f"gnet.ehd.convert converts float G-Nets; this is a {cls_name} from {module_name.rsplit('.', 1)[0]}: "
                f"use {converter}"
            )


def convert(
    model: nn.Module,
    dim: float | Sequence[int] | str = 10_000,
    embedding: str | Sequence[str] | None = None,
    conv_projection: str = "shared",
    seed: int | np.random.Generator = 0,
    precision: str | Sequence[str] = "auto",
    meta: dict[str, Any] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    n: float | Sequence[int] | None = None,
) -> EHDModel:
    """Convert a float G-Net (G-layers, RASU/TASU, max-pooling, flatten, dropout, normalised classifier).

    Args:
        dim: the code length of every G-layer and the classifier: an int, a list (one per code-carrying layer),
            a float ratio of each layer's fan-in, or the name of a preset (:data:`gnet.ehd.DIM_PRESETS`, e.g.
            ``"mnist-fast"``: measured dims of the MNIST paper net for the fast G).
        embedding: "gaussian" or "rademacher" (dense G, the paper's), "orthogonal" (dense Gaussian rows
            orthogonalised in groups: same expectation, lower variance), or "hadamard" (structured orthogonal G:
            O(dim log fan_in) per patch instead of O(dim fan_in)); one name for all layers or a list with one per
            code-carrying layer. ``None`` (default): the preset's embeddings when ``dim`` names one, else
            "gaussian".
        conv_projection: "shared" (one G per layer) or "per_channel" (one G per output channel, the paper's code).
        seed: all G are regenerated from this seed and the layer index, so it is stored with the model.
        precision: arithmetic of the data projection: "auto" (default: the fastest on this CPU, see
            :func:`hdc.cpu.preferred_precision`; int8 only for a Rademacher G and only where int8 GEMM is fast,
            bfloat16 only where that is fast, else float32), "float32", "bfloat16", or "int8" (Rademacher only);
            one for all layers or a list with one per layer. A Hadamard layer runs in float32. Each layer keeps
            the concrete precision (``layer.precision``, ``meta["precision"]``, saved in the .ehd file); an
            explicit reduced precision that is slow on this CPU warns once (``RuntimeWarning``).
        meta: extra provenance for :attr:`EHDModel.meta` (e.g. dataset, val_fraction, data_seed).
        input_shape: the shape of one input item, checked at inference (:attr:`EHDModel.input_shape`).
        n: deprecated name of ``dim`` (DeprecationWarning); kept for one release.
    """
    if n is not None:
        warnings.warn("convert(n=...) is deprecated; use convert(dim=...)", DeprecationWarning, stacklevel=2)
        dim = n
    _refuse_other_families(model)
    check_choice(conv_projection, PROJECTIONS, "conv_projection")
    seed = as_seed(seed)
    modules = _flatten_modules(model)
    g_layers = [m for m in modules if isinstance(m, _CODE_CARRYING)]
    if not g_layers or not isinstance(modules[-1], NormalizedClassifier):
        raise ValueError("the model must end with a NormalizedClassifier")
    preset_name = None
    if isinstance(dim, str):
        preset_name, preset = dim, dim_preset(dim)
        if len(preset.dims) != len(g_layers):
            raise ValueError(
                f"dim preset {dim!r} is for the {preset.network} network's {len(preset.dims)} code-carrying layers; "
                f"this model has {len(g_layers)}"
            )
        dim, embedding = list(preset.dims), list(preset.embedding) if embedding is None else embedding
    embedding = "gaussian" if embedding is None else embedding
    dims = resolve_dim(dim, [geometry_of(m).fan_in for m in g_layers])
    embeddings = resolve_per_layer(embedding, len(g_layers), "embedding")
    requested = resolve_per_layer(precision, len(g_layers), "precision")
    precisions = []
    fan_ins = [geometry_of(m).fan_in for m in g_layers]
    for e, p, k in zip(embeddings, requested, fan_ins, strict=True):  # a slow-precision warning names the caller
        precisions.append(check_embedding(e, p, k))
    stages = _convert_stages(modules, dims, embeddings, precisions, conv_projection, seed)
    info = {
        "embedding": embedding if isinstance(embedding, str) else ",".join(embeddings),
        "conv_projection": conv_projection,
        "seed": seed,
        "precision": precisions[0] if len(set(precisions)) == 1 else ",".join(precisions),
        "precision_requested": precision if isinstance(precision, str) else ",".join(requested),
        "dim_per_layer": dims,
        **({"dim_preset": preset_name} if preset_name else {}),
        **(meta or {}),
    }
    return EHDModel(stages, info, input_shape=input_shape)


def _convert_stages(
    modules: list[nn.Module],
    dims: list[int],
    embeddings: list[str],
    precisions: list[str],
    conv_projection: str,
    seed: int,
) -> list[Stage]:
    """The EHD stages for a flat list of float modules (validated settings, one per code-carrying layer)."""
    stages: list[Stage] = []
    index = 0
    for i, module in enumerate(modules):
        if isinstance(module, _CODE_CARRYING):
            activation, alpha = None, 1.0
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            if isinstance(nxt, (RASU, TASU)):
                activation, alpha = ("rasu" if isinstance(nxt, RASU) else "tasu"), nxt.alpha.item()
            projection = conv_projection if isinstance(module, (GConv1d, GConv2d)) else "shared"
            stages.append(
                convert_layer(
                    module,
                    dims[index],
                    embedding=embeddings[index],
                    seed=seed,
                    index=index,
                    projection=projection,
                    activation=activation,
                    alpha=alpha,
                    precision=precisions[index],
                )
            )
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
    return stages
