"""Anderson & Berg's high-dimensional geometry measurements on a trained BNN.

Per binary layer (weights ``w_o`` of dimension ``d = fan_in``, one per output unit):

- the angle between each latent weight vector and its sign, ``arccos(sum |w| / (sqrt(d) ||w||))``: mean and
  standard deviation over the units, against the Gaussian limit ``arccos(sqrt(2 / pi)) = 37.07`` degrees, against
  ``arccos(E|w| / sqrt(E w^2))`` computed from the layer's own weights (the limit for i.i.d. weights of that
  distribution: 30 degrees for uniform, 45 for Laplace), against the Gaussian spread ``20.18 / sqrt(d)``
  degrees (delta method), and against the delta-method mean and sd for i.i.d. entries with the layer's own
  moments (:func:`hdc.theory.formulas.angle_delta_method`; it equals the Gaussian values for Gaussian weights);
- dot-product preservation: the Pearson correlation, pooled over activation vectors and units, between ``A . w``
  and ``A . sign(w)``, with ``A`` the layer's real-valued activations (``corr_real``: the pre-sign BatchNorm
  outputs carried through the same pooling, or the real input of the first layer) and with its binarized
  activations (``corr_binary``: what the layer actually sees); ``corr_activation`` correlates ``A_real . sign(w)``
  with ``A_binary . sign(w)``; ``corr_permuted`` repeats ``corr_binary`` (``corr_real`` where the input is real)
  with each activation vector's entries randomly permuted, the paper's control: for isotropic activations the
  correlation is ``cos(w, sign w)``, so values above the control show activations aligned with the weights.

Convolutions use the layer's receptive-field patches (im2col) as activation vectors, subsampled to ``max_rows``.
With ``keep_samples`` the dot products themselves (a random subset) are kept for 2-D histograms
(:attr:`GeometryReport.samples`, not part of :meth:`GeometryReport.to_dict`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnet.bnn.layers import BinaryActivation, BinaryConv1d, BinaryConv2d, BinaryLinear
from gnet.bnn.models import BNN
from hdc._validate import as_seed, check_int
from hdc.theory.formulas import angle_delta_method

__all__ = [
    "GAUSSIAN_ANGLE_DEG",
    "GAUSSIAN_SD_DEG",
    "GeometryReport",
    "LayerGeometry",
    "angles_to_sign",
    "delta_method_angle",
    "measure_geometry",
    "predicted_angle",
]

GAUSSIAN_ANGLE_DEG = math.degrees(math.acos(math.sqrt(2.0 / math.pi)))  # 37.07
# sd of the angle for i.i.d. Gaussian w times sqrt(d): sqrt(1 - 3/pi) / sqrt(1 - 2/pi) rad
GAUSSIAN_SD_DEG = math.degrees(math.sqrt(1.0 - 3.0 / math.pi) / math.sqrt(1.0 - 2.0 / math.pi))  # 20.18
_BINARY = (BinaryLinear, BinaryConv1d, BinaryConv2d)
_CARRY = (nn.MaxPool1d, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)


@dataclass
class LayerGeometry:
    """Measurements of one binary layer; angles in degrees, correlations in [-1, 1] (None: not applicable)."""

    index: int
    layer: str
    fan_in: int
    n_units: int
    angle_mean_deg: float
    angle_sd_deg: float
    angle_predicted_deg: float
    angle_gaussian_deg: float = GAUSSIAN_ANGLE_DEG
    angle_sd_gaussian_deg: float = 0.0
    angle_delta_mean_deg: float | None = None
    angle_delta_sd_deg: float | None = None
    input_binary: bool = False
    corr_real: float | None = None
    corr_binary: float | None = None
    corr_activation: float | None = None
    corr_permuted: float | None = None
    n_rows: int = 0


@dataclass
class GeometryReport:
    """Per-layer :class:`LayerGeometry`; ``samples[index]`` maps ``"real"`` / ``"binary"`` to float64 arrays
    (2, K) of (``A . w``, ``A . sign(w)``) pairs when :func:`measure_geometry` kept them."""

    method: str
    n_samples: int
    layers: list[LayerGeometry] = field(default_factory=list)
    samples: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "n_samples": self.n_samples, "layers": [asdict(g) for g in self.layers]}


def angles_to_sign(weight: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between each row of ``weight`` (O, ...) flattened and its sign: float64 (O,)."""
    w = weight.detach().reshape(weight.shape[0], -1).double()
    cos = w.abs().sum(1) / (math.sqrt(w.shape[1]) * w.norm(dim=1))
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def predicted_angle(weight: torch.Tensor) -> float:
    """``arccos(E|w| / sqrt(E w^2))`` in degrees over every entry of ``weight``."""
    w = weight.detach().double()
    return math.degrees(math.acos(min(1.0, float(w.abs().mean() / w.pow(2).mean().sqrt()))))


def delta_method_angle(weight: torch.Tensor) -> tuple[float, float] | None:
    """Delta-method mean and sd (degrees) of the angle for i.i.d. entries with the moments of ``weight`` (O, d)
    (all entries pooled), at ``d`` = its row length; None for a degenerate (constant-magnitude) distribution."""
    w = weight.detach().reshape(weight.shape[0], -1).double().abs()
    moments = [float(w.pow(k).mean()) for k in (1, 2, 3, 4)]
    if moments[1] - moments[0] ** 2 <= 1e-12 * moments[1]:
        return None  # every |w| alike: the angle is 0 with no spread
    mean, sd = angle_delta_method(moments, w.shape[1])
    return math.degrees(mean), math.degrees(float(sd))


def _pairs(a: torch.Tensor, w: torch.Tensor, wb: torch.Tensor, keep: int, gen: torch.Generator) -> np.ndarray:
    """(2, <= keep) float64: a random subset of the (A . w, A . sign w) pairs."""
    x, y = (a @ w.T).reshape(-1), (a @ wb.T).reshape(-1)
    pick = torch.randperm(len(x), generator=gen)[:keep]
    return torch.stack([x[pick], y[pick]]).numpy()


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float | None:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 else None


def _rows(layer: BinaryLinear | BinaryConv1d | BinaryConv2d, x: torch.Tensor) -> torch.Tensor:
    """Activation vectors (N, fan_in) float64: the input itself (linear) or its im2col patches (conv)."""
    x = x.double()
    if isinstance(layer, BinaryLinear):
        return x
    args: dict[str, Any]  # F.unfold's keyword arguments
    if isinstance(layer, BinaryConv1d):
        x = x.unsqueeze(2)
        args = {
            "kernel_size": (1, *layer.kernel_size),
            "dilation": (1, *layer.dilation),
            "padding": (0, *layer.padding),
            "stride": (1, *layer.stride),
        }
    else:
        args = {
            "kernel_size": layer.kernel_size,
            "dilation": layer.dilation,
            "padding": layer.padding,
            "stride": layer.stride,
        }
    cols = F.unfold(x, **args)  # (B, fan_in, P)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _capture(model: BNN, x: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Eval-mode inputs of every binary layer and of every BinaryActivation (pre-sign) for one batch."""
    layer_in: dict[int, torch.Tensor] = {}
    act_in: dict[int, torch.Tensor] = {}
    hooks = []
    for i, m in enumerate(model):
        store = layer_in if isinstance(m, _BINARY) else act_in if isinstance(m, BinaryActivation) else None
        if store is not None:
            hooks.append(m.register_forward_pre_hook(lambda mod, args, i=i, store=store: store.__setitem__(i, args[0])))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return layer_in, act_in


def _real_input(model: BNN, index: int, act_in: dict[int, torch.Tensor]) -> torch.Tensor | None:
    """The pre-sign activations feeding layer ``index`` carried through the pooling/flatten in between, or None."""
    j = index - 1
    while j >= 0 and isinstance(model[j], _CARRY):
        j -= 1
    if j < 0 or not isinstance(model[j], BinaryActivation):
        return None
    t = act_in[j]
    with torch.no_grad():
        for k in range(j + 1, index):
            t = t if isinstance(model[k], (nn.Dropout, nn.Dropout1d, nn.Dropout2d)) else model[k](t)
    return t


def _collect(
    model: BNN, x: torch.Tensor, max_rows: int, batch_size: int, gen: torch.Generator
) -> dict[int, tuple[torch.Tensor, torch.Tensor | None]]:
    """Per binary layer: (activation vectors it sees (R, fan_in), the real-valued ones at the same places or
    None), a random subset of about ``max_rows`` rows drawn evenly from every batch (memory: one batch)."""
    layers = [(i, m) for i, m in enumerate(model) if isinstance(m, _BINARY)]
    per_batch = math.ceil(max_rows / math.ceil(len(x) / batch_size))
    parts: dict[int, tuple[list, list]] = {i: ([], []) for i, _ in layers}
    for start in range(0, len(x), batch_size):
        layer_in, act_in = _capture(model, x[start : start + batch_size])
        for i, m in layers:
            seen = _rows(m, layer_in[i].cpu())
            real = _real_input(model, i, act_in)
            real = None if real is None else real.cpu()
            if m.input_quantizer is not None:  # the layer binarizes its own (real) input
                real, seen = seen, torch.where(seen >= 0, 1.0, -1.0).double()
            elif real is not None:
                real = _rows(m, real)
            pick = torch.randperm(len(seen), generator=gen)[:per_batch]
            parts[i][0].append(seen[pick])
            parts[i][1].append(None if real is None else real[pick])
    out: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
    for i, (seen_parts, real_parts) in parts.items():
        keep = slice(0, max_rows)
        out[i] = (torch.cat(seen_parts)[keep], None if real_parts[0] is None else torch.cat(real_parts)[keep])
    return out


def measure_geometry(
    model: BNN,
    x: torch.Tensor,
    *,
    max_rows: int = 4096,
    batch_size: int = 500,
    seed: Any = 0,
    keep_samples: int = 0,
) -> GeometryReport:
    """Anderson & Berg's measurements on ``model`` with inputs ``x`` (N, *input_shape) (e.g. test images).

    Args:
        max_rows: activation vectors used per layer (a seeded random subset of all patches/samples).
        batch_size: inputs per forward pass (memory holds one batch's activations).
        seed: int or numpy Generator for the subsets and the permutation control.
        keep_samples: dot-product pairs kept per layer and kind of activation (0: none), see
            :attr:`GeometryReport.samples`.
    """
    if not isinstance(model, BNN):
        raise ValueError(f"measure_geometry expects a BNN from gnet.bnn.build_bnn, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2 or len(x) == 0:
        raise ValueError("x must be a non-empty float tensor (N, *input_shape)")
    check_int(max_rows, "max_rows", 1)
    check_int(batch_size, "batch_size", 1)
    check_int(keep_samples, "keep_samples", 0)
    base = as_seed(seed)
    gen = torch.Generator().manual_seed(base)
    keep_gen = torch.Generator().manual_seed(base + 1)  # its own stream: keeping samples changes no measurement
    rows = _collect(model, x, max_rows, batch_size, gen)
    report = GeometryReport(method=model.method, n_samples=len(x))
    for i, m in enumerate(model):
        if not isinstance(m, _BINARY):
            continue
        w = m.weight.detach().cpu().reshape(m.weight.shape[0], -1).double()
        angles = angles_to_sign(w)
        seen, real = rows[i]
        geo = LayerGeometry(
            index=i,
            layer=type(m).__name__,
            fan_in=w.shape[1],
            n_units=w.shape[0],
            angle_mean_deg=float(angles.mean()),
            angle_sd_deg=float(angles.std()) if len(angles) > 1 else 0.0,
            angle_predicted_deg=predicted_angle(w),
            angle_sd_gaussian_deg=GAUSSIAN_SD_DEG / math.sqrt(w.shape[1]),
            input_binary=real is not None,
            n_rows=len(seen),
        )
        wb = torch.where(w >= 0, 1.0, -1.0).double()
        a_real = real if real is not None else seen
        geo.corr_real = _pearson(a_real @ w.T, a_real @ wb.T)
        if real is not None:
            geo.corr_binary = _pearson(seen @ w.T, seen @ wb.T)
            geo.corr_activation = _pearson(a_real @ wb.T, seen @ wb.T)
        control = seen if real is not None else a_real
        perm = torch.argsort(torch.rand(control.shape, generator=gen), dim=1)
        shuffled = torch.gather(control, 1, perm)
        geo.corr_permuted = _pearson(shuffled @ w.T, shuffled @ wb.T)
        delta = delta_method_angle(w)
        if delta is not None:
            geo.angle_delta_mean_deg, geo.angle_delta_sd_deg = delta
        if keep_samples:
            kept = {"real": _pairs(a_real, w, wb, keep_samples, keep_gen)}
            if real is not None:
                kept["binary"] = _pairs(seen, w, wb, keep_samples, keep_gen)
            report.samples[i] = kept
        report.layers.append(geo)
    return report
