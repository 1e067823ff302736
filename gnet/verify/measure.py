"""Model-level measurements: the theory of :mod:`hdc.theory`, measured on a trained G-Net and its real inputs.

For every G-layer (and the normalised classifier) the float model is run on real data, and each layer's inputs
(shifted by the bias trick, cut into receptive-field patches) and its folded weights w~ are taken as they are:

- **Concentration** (:func:`layer_concentration`): many draws of G on a sample of units and patches, failure
  frequency of |z_hat - z| >= t against the per-unit Hoeffding bound and the layer's union bound.
- **EHD layers** (:func:`check_ehd`): the actual converted EHD model (:func:`gnet.ehd.convert`) for several code
  lengths ``dims`` and seeds. Each EHD layer is fed the float layer's input (so the error is that layer's alone)
  and its z_hat is compared with the float z: rms error against the exact (pi/2) sqrt((1 - mu^2)/N), failure
  fraction against Hoeffding. The whole EHD network is run too: deviation of its logits from the float ones, and
  accuracy, vs the code length.
- **Anderson & Berg** (:func:`layer_angles`): angle(w~, sign w~) per unit against the formula from the layer's own
  weight moments, and corr(a . w~, a . sign w~) on the real activations, with a permutation control and the
  random-rotation variant.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from tqdm.auto import tqdm

from gnet.ehd import convert
from gnet.ehd.convert import geometry_of
from gnet.layers import GConv1d, GConv2d, GLinear, NormalizedClassifier
from hdc._validate import check_int, check_number
from hdc.theory import (
    DotProductCheck,
    LayerConcentrationCheck,
    angle_delta_method,
    binarization_angles,
    check_layer_concentration,
    dot_product_correlation,
    hoeffding_unit_bound,
    sample_moments,
    union_bound,
)

__all__ = [
    "EHDLayerErrors",
    "LayerAngles",
    "LayerData",
    "NetworkCheck",
    "check_ehd",
    "collect_layer_data",
    "g_layers",
    "layer_angles",
    "layer_concentration",
    "layer_name",
    "nonzero_rows",
    "sample_rows",
]

_G_TYPES = (GLinear, GConv1d, GConv2d, NormalizedClassifier)


# ============================================================================================ layer data
def g_layers(model: nn.Module) -> list[nn.Module]:
    """The code-carrying layers of a G-Net in forward order (the order :func:`gnet.ehd.convert` indexes them)."""
    layers: list[nn.Module] = [m for m in model.modules() if isinstance(m, _G_TYPES)]
    if not layers or not isinstance(layers[-1], NormalizedClassifier):
        raise ValueError("model must be a G-Net ending in a NormalizedClassifier")
    return layers


def layer_name(index: int, layer: nn.Module) -> str:
    """A short label such as ``"L1 conv2d 16->32 k3x3"`` for reports."""
    g = geometry_of(layer)
    if isinstance(layer, NormalizedClassifier):
        return f"L{index} classifier {g.in_channels}->{g.out_units}"
    if g.kind == "linear":
        return f"L{index} linear {g.in_channels}->{g.out_units}"
    k = "x".join(map(str, g.kernel))
    return f"L{index} {g.kind} {g.in_channels}->{g.out_units} k{k}"


@dataclass
class LayerData:
    """One layer on real data. ``inputs``: the float layer's input (B, *in) as it arrives (before the bias trick);
    ``weights``: folded w~ per unit, float64 (units, in_features); ``z``: the float pre-activation arcsin(cos),
    (B, units, *spatial)."""

    index: int
    name: str
    layer: nn.Module
    inputs: torch.Tensor
    weights: NDArray[np.float64]
    z: torch.Tensor

    @property
    def units(self) -> int:
        """Number of units m (output channels, or classes for the classifier)."""
        return int(self.weights.shape[0])

    @property
    def in_features(self) -> int:
        """Length of one receptive field (the fan-in of a unit)."""
        return int(self.weights.shape[1])

    @property
    def positions(self) -> int:
        """Receptive-field positions per input item (1 for linear layers)."""
        return int(np.prod(self.z.shape[2:])) if self.z.ndim > 2 else 1

    def patches(self, n_items: int | None = None) -> NDArray[np.float64]:
        """Shifted receptive fields (x + b)_p of the first ``n_items`` items (all by default), float64
        (n_items * positions, in_features), item-major."""
        x = self.inputs if n_items is None else self.inputs[:n_items]
        layer: Any = self.layer  # a G-layer: its scalar bias shifts the input (the bias trick)
        rows, _ = geometry_of(layer).patches(x.to(torch.float64) + float(layer.bias.detach()))
        return rows.numpy()


def _weights(module: nn.Module) -> NDArray[np.float64]:
    layer: Any = module  # a G-layer or the classifier (see g_layers)
    if isinstance(layer, NormalizedClassifier):
        return layer.weight.detach().T.to(torch.float64).numpy()  # class columns are the units
    return layer.effective_weight().reshape(layer.out_units, -1).to(torch.float64).numpy()


@torch.no_grad()
def _float_z(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    layer: Any = module  # a G-layer or the classifier (see g_layers)
    if isinstance(layer, NormalizedClassifier):
        return torch.asin(layer.cosine(x).clamp(-1.0, 1.0))
    return layer(x)


@torch.no_grad()
def collect_layer_data(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> list[LayerData]:
    """Run the float model (eval mode) on ``x`` (B, *input_shape) and keep every G-layer's input and z."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch tensor, got {type(x).__name__} {getattr(x, 'shape', None)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    layers = g_layers(model)
    captured: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}
    hooks = [
        layer.register_forward_pre_hook(lambda mod, args, i=i: captured[i].append(args[0].detach()))
        for i, layer in enumerate(layers)
    ]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size].to(torch.float32))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    out = []
    for i, layer in enumerate(layers):
        inp = torch.cat(captured[i])
        out.append(LayerData(i, layer_name(i, layer), layer, inp, _weights(layer), _float_z(layer, inp)))
    return out


def sample_rows(n_rows: int, n_pick: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Sorted indices of ``min(n_rows, n_pick)`` distinct rows out of ``n_rows``."""
    return np.sort(rng.choice(n_rows, size=min(n_rows, n_pick), replace=False))


def nonzero_rows(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """The rows that are not all zero (an all-zero patch has no angle; the layer's eps makes z = 0 there)."""
    return rows[np.linalg.norm(rows, axis=1) > 0]


# ============================================================================================ concentration
def layer_concentration(
    data: LayerData,
    t: float = 0.15,
    delta: float = 0.05,
    kind: str = "gaussian",
    n_draws: int = 50,
    max_units: int = 64,
    max_patches: int = 128,
    seed: int = 0,
    progress: bool = False,
) -> LayerConcentrationCheck:
    """:func:`hdc.theory.check_layer_concentration` on a random sample of the layer's units and real patches."""
    rng = np.random.default_rng([seed, 7, data.index])
    units = sample_rows(data.units, max_units, rng)
    rows = nonzero_rows(data.patches())
    patches = rows[sample_rows(len(rows), max_patches, rng)]
    return check_layer_concentration(
        data.weights[units],
        patches,
        t=t,
        delta=delta,
        kind=kind,
        n_draws=n_draws,
        seed=seed,
        name=data.name,
        progress=progress,
    )


# ============================================================================================ Anderson & Berg
@dataclass
class LayerAngles:
    """angle(w~_o, sign w~_o) over the units of one layer (degrees), and the dot-product correlations.

    ``pred_*`` come from :func:`hdc.theory.angle_delta_method` with the moments of the layer's weights after each
    unit is scaled to unit rms (so units of different scale share one distribution): if a unit's entries were
    i.i.d. draws from it, the angle would be pred_mean ± pred_sd. ``excess_kurtosis`` of those scaled weights
    says which reference applies (0: Gaussian 37.1 deg; -1.2: uniform 30 deg; 3: Laplace 45 deg).
    """

    name: str
    units: int
    in_features: int
    mean_deg: float
    sd_deg: float
    pred_mean_deg: float
    pred_sd_deg: float
    limit_deg: float
    excess_kurtosis: float
    dot: DotProductCheck


def layer_angles(data: LayerData, max_samples: int = 2000, seed: int = 0, rotate: bool = True) -> LayerAngles:
    """Anderson & Berg's measurements for one layer on its real (shifted) input patches."""
    w = data.weights
    rng = np.random.default_rng([seed, 8, data.index])
    rows = nonzero_rows(data.patches())
    acts = rows[sample_rows(len(rows), max_samples, rng)]
    angles = np.degrees(binarization_angles(w))
    scaled = w / np.sqrt((w**2).mean(axis=1, keepdims=True))
    moments = sample_moments(scaled)
    mean, sd = angle_delta_method(moments, float(data.in_features))
    return LayerAngles(
        name=data.name,
        units=data.units,
        in_features=data.in_features,
        mean_deg=float(angles.mean()),
        sd_deg=float(angles.std(ddof=1)) if len(angles) > 1 else 0.0,
        pred_mean_deg=math.degrees(float(mean)),
        pred_sd_deg=math.degrees(float(sd)),
        limit_deg=math.degrees(math.acos(moments[0] / math.sqrt(moments[1]))),
        excess_kurtosis=moments[3] / moments[1] ** 2 - 3.0,
        dot=dot_product_correlation(w, acts, seed=rng, name=data.name, rotate=rotate),
    )


# ============================================================================================ EHD model
@dataclass
class EHDLayerErrors:
    """Per-layer error of the real EHD layer fed the float layer's input, indexed [dim, seed].

    ``rms`` = sqrt(mean (z_hat - z)^2) over items, units and positions; ``theory_rms`` = (pi/2) sqrt(mean(1 - mu^2)
    / N) with mu = 2 z / pi (exact for Gaussian G); ``frac_fail`` = fraction of cells with |z_hat - z| >= t, whose
    expectation is at most ``hoeffding``; ``max_error`` = max over cells (the union bound ``union`` bounds
    P(max >= t) for this many cells).
    """

    name: str
    units: int
    positions: int
    n_items: int
    t: float
    dims: list[int]
    seeds: list[int]
    rms: list[list[float]]
    theory_rms: list[float]
    frac_fail: list[list[float]]
    hoeffding: list[float]
    max_error: list[list[float]]
    union: list[float]


@dataclass
class NetworkCheck:
    """The whole EHD network against the float one on ``n_items`` test items, indexed [dim, seed].

    ``logit_rms`` = rms of z_hat_c - arcsin(cos_c) over items and classes (errors of every layer propagate into
    it); ``classifier_rms`` = the exact rms of the classifier's own estimate, (pi/2) sqrt(mean(1 - mu^2)/N), the
    floor it would reach if all earlier layers were exact. ``agreement`` = fraction of items where the EHD and
    float predictions agree.
    """

    n_items: int
    dims: list[int]
    seeds: list[int]
    embedding: str
    float_accuracy: float
    accuracy: list[list[float]]
    agreement: list[list[float]]
    logit_rms: list[list[float]]
    classifier_rms: list[float]
    seconds: list[list[float]]


def _check_ehd_args(dims: Sequence[int], seeds: Sequence[int], x: Any, y: Any, t: float) -> tuple[list[int], list[int]]:
    dims_a = [check_int(d, "dims", minimum=1) for d in dims]
    if not dims_a or sorted(set(dims_a)) != dims_a:
        raise ValueError(f"dims must be strictly increasing positive integers, got {list(dims)}")
    seeds_a = [check_int(s, "seed", minimum=0) for s in seeds]
    if not seeds_a:
        raise ValueError("seeds must not be empty")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    check_number(t, "t", minimum=0.0, strict=True)
    return dims_a, seeds_a


def _measure_conversion(
    ehd: Any,
    layer_data: Sequence[LayerData],
    x: torch.Tensor,
    float_z: torch.Tensor,
    t: float,
    layer_items: int,
    batch_size: int,
) -> tuple[list[tuple[float, float, float]], torch.Tensor, float]:
    """Per layer (rms, failure fraction, max error) teacher-forced; the network's predictions and logit rms."""
    per_layer = []
    for data, layer in zip(layer_data, ehd.layers, strict=False):
        with torch.no_grad():
            zh = layer.z_hat(data.inputs[:layer_items]).to(torch.float64)
        err = (zh - data.z[:layer_items].to(torch.float64)).abs()
        per_layer.append((float(err.pow(2).mean().sqrt()), float((err >= t).double().mean()), float(err.max())))
    z_hat = torch.cat([ehd.forward(x[a : a + batch_size]) for a in range(0, len(x), batch_size)])
    z_hat = z_hat.to(torch.float64)
    return per_layer, z_hat.argmax(dim=1), float((z_hat - float_z).pow(2).mean().sqrt())


def check_ehd(
    model: nn.Module,
    layer_data: Sequence[LayerData],
    x: torch.Tensor,
    y: torch.Tensor,
    dims: Sequence[int] = (256, 512, 1024, 2048, 4096),
    seeds: Sequence[int] = (0, 1),
    embedding: str = "gaussian",
    t: float = 0.15,
    layer_items: int = 16,
    batch_size: int = 128,
    progress: bool = False,
) -> tuple[list[EHDLayerErrors], NetworkCheck]:
    """Convert ``model`` for every code length in ``dims`` and seed; measure each EHD layer (teacher-forced) and
    the whole network.

    ``layer_data`` is :func:`collect_layer_data` on ``x``; the first ``layer_items`` of its items feed the per-layer
    measurement, and all of ``x`` the network one.
    """
    dims_a, seeds_a = _check_ehd_args(dims, seeds, x, y, t)
    with torch.no_grad():
        float_logits = model.eval()(x.to(torch.float32))
    float_z = torch.asin((float_logits / g_layers(model)[-1].scale).clamp(-1.0, 1.0)).to(torch.float64)
    float_pred = float_logits.argmax(dim=1)
    y = torch.as_tensor(y)

    shape = (len(dims_a), len(seeds_a))
    per_layer = np.zeros((len(layer_data), 3, *shape))  # (layer, [rms, frac_fail, max], dim, seed)
    acc, agree, logit_rms, secs = (np.zeros(shape) for _ in range(4))
    bar = tqdm(total=len(dims_a) * len(seeds_a), desc="EHD check", disable=not progress)
    for i, dim in enumerate(dims_a):
        for j, seed in enumerate(seeds_a):
            t0 = time.perf_counter()
            # positional code length: the keyword is being renamed (n -> dim) in gnet.ehd.convert
            ehd = convert(model, dim, embedding=embedding, seed=seed)
            layers_ij, pred, logit_rms[i, j] = _measure_conversion(
                ehd, layer_data, x, float_z, t, layer_items, batch_size
            )
            per_layer[:, :, i, j] = layers_ij
            acc[i, j] = float((pred == y).double().mean())
            agree[i, j] = float((pred == float_pred).double().mean())
            secs[i, j] = time.perf_counter() - t0
            bar.update()
    bar.close()

    dim_arr = np.array(dims_a, dtype=np.float64)
    layers = []
    for k, data in enumerate(layer_data):
        z = data.z[:layer_items].to(torch.float64).numpy()
        mu = 2.0 * z / math.pi
        layers.append(
            EHDLayerErrors(
                name=data.name,
                units=data.units,
                positions=data.positions,
                n_items=int(z.shape[0]),
                t=t,
                dims=dims_a,
                seeds=seeds_a,
                rms=per_layer[k, 0].tolist(),
                theory_rms=((math.pi / 2) * np.sqrt(np.mean(1 - mu**2) / dim_arr)).tolist(),
                frac_fail=per_layer[k, 1].tolist(),
                hoeffding=hoeffding_unit_bound(dim_arr, t).tolist(),
                max_error=per_layer[k, 2].tolist(),
                union=union_bound(dim_arr, t, z.size).tolist(),
            )
        )
    mu_clf = 2.0 * float_z.numpy() / math.pi
    network = NetworkCheck(
        n_items=len(x),
        dims=dims_a,
        seeds=seeds_a,
        embedding=embedding,
        float_accuracy=float((float_pred == y).double().mean()),
        accuracy=acc.tolist(),
        agreement=agree.tolist(),
        logit_rms=logit_rms.tolist(),
        seconds=secs.tolist(),
        classifier_rms=((math.pi / 2) * np.sqrt(np.mean(1 - mu_clf**2) / dim_arr)).tolist(),
    )
    return layers, network
