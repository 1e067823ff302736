"""Model-level verification: the theory of :mod:`hdc.theory`, measured on a trained G-Net and its real inputs.

For every G-layer (and the normalised classifier) the float model is run on real data, and each layer's inputs
(shifted by the bias trick, cut into receptive-field patches) and its folded weights w~ are taken as they are:

- **Concentration** (:func:`layer_concentration`): many draws of G on a sample of units and patches, failure
  frequency of |z_hat - z| >= t against the per-unit Hoeffding bound and the layer's union bound.
- **EHD layers** (:func:`check_ehd`): the actual converted EHD model (:func:`gnet.ehd.convert`) for several N and
  seeds. Each EHD layer is fed the float layer's input (so the error is that layer's alone) and its z_hat is
  compared with the float z: rms error against the exact (pi/2) sqrt((1 - mu^2)/N), failure fraction against
  Hoeffding. The whole EHD network is run too: deviation of its logits from the float ones, and accuracy, vs N.
- **Anderson & Berg** (:func:`layer_angles`): angle(w~, sign w~) per unit against the formula from the layer's own
  weight moments, and corr(a . w~, a . sign w~) on the real activations, with a permutation control and the
  random-rotation variant.

:func:`run_model_report` writes all of it as ``report.md`` + ``report.json`` + PNG plots.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gnet.ehd import convert
from gnet.ehd.convert import geometry_of
from gnet.layers import GConv1d, GConv2d, GLinear, NormalizedClassifier
from hdc import theory as T
from hdc.theory_report import Report, Verdict, fmt, layer_verdict, new_figure, plot_layer_concentration, save_figure

__all__ = [
    "EHDLayerErrors",
    "LayerAngles",
    "NetworkCheck",
    "LayerData",
    "check_ehd",
    "collect_layer_data",
    "g_layers",
    "layer_angles",
    "layer_concentration",
    "run_model_report",
]

_G_TYPES = (GLinear, GConv1d, GConv2d, NormalizedClassifier)


# ============================================================================================ layer data
def g_layers(model: nn.Module) -> list[nn.Module]:
    """The code-carrying layers of a G-Net in forward order (the order :func:`gnet.ehd.convert` indexes them)."""
    layers = [m for m in model.modules() if isinstance(m, _G_TYPES)]
    if not layers or not isinstance(layers[-1], NormalizedClassifier):
        raise ValueError("model must be a G-Net ending in a NormalizedClassifier")
    return layers


def layer_name(index: int, layer: nn.Module) -> str:
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
    ``weights``: folded w~ per unit, float64 (m, fan_in); ``z``: the float pre-activation arcsin(cos),
    (B, m, *spatial)."""

    index: int
    name: str
    layer: nn.Module
    inputs: torch.Tensor
    weights: np.ndarray
    z: torch.Tensor

    @property
    def units(self) -> int:
        return self.weights.shape[0]

    @property
    def fan_in(self) -> int:
        return self.weights.shape[1]

    @property
    def positions(self) -> int:
        """Receptive-field positions per input item (1 for linear layers)."""
        return int(np.prod(self.z.shape[2:])) if self.z.ndim > 2 else 1

    def patches(self, items: int | None = None) -> np.ndarray:
        """Shifted receptive fields (x + b)_p, float64 (items * positions, fan_in), item-major."""
        x = self.inputs if items is None else self.inputs[:items]
        rows, _ = geometry_of(self.layer).patches(x.to(torch.float64) + float(self.layer.bias.detach()))
        return rows.numpy()


def _weights(layer: nn.Module) -> np.ndarray:
    if isinstance(layer, NormalizedClassifier):
        return layer.weight.detach().T.to(torch.float64).numpy()  # class columns are the units
    return layer.effective_weight().reshape(layer.out_units, -1).to(torch.float64).numpy()


@torch.no_grad()
def _float_z(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, NormalizedClassifier):
        return torch.asin(layer.cosine(x).clamp(-1.0, 1.0))
    return layer(x)


@torch.no_grad()
def collect_layer_data(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> list[LayerData]:
    """Run the float model (eval mode) on ``x`` and keep every G-layer's input and pre-activation z."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch tensor, got {type(x).__name__} {getattr(x, 'shape', None)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    layers = g_layers(model)
    captured: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}
    hooks = [layer.register_forward_pre_hook(lambda mod, args, i=i: captured[i].append(args[0].detach()))
             for i, layer in enumerate(layers)]
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


def _sample_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=min(n, k), replace=False))


def _nonzero_rows(rows: np.ndarray) -> np.ndarray:
    # A patch that is exactly zero (x + b = 0 everywhere in it) has no angle; the layer's eps makes z = 0 there.
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
) -> T.LayerConcentrationCheck:
    """:func:`hdc.theory.check_layer_concentration` on a random sample of the layer's units and real patches."""
    rng = np.random.default_rng([seed, 7, data.index])
    units = _sample_rows(data.units, max_units, rng)
    rows = _nonzero_rows(data.patches())
    patches = rows[_sample_rows(len(rows), max_patches, rng)]
    return T.check_layer_concentration(
        data.weights[units], patches, t=t, delta=delta, kind=kind, n_draws=n_draws, seed=seed,
        name=data.name, progress=progress,
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
    fan_in: int
    mean_deg: float
    sd_deg: float
    pred_mean_deg: float
    pred_sd_deg: float
    limit_deg: float
    excess_kurtosis: float
    dot: T.DotProductCheck


def layer_angles(data: LayerData, max_samples: int = 2000, seed: int = 0, rotate: bool = True) -> LayerAngles:
    """Anderson & Berg's measurements for one layer on its real (shifted) input patches."""
    w = data.weights
    rng = np.random.default_rng([seed, 8, data.index])
    rows = _nonzero_rows(data.patches())
    acts = rows[_sample_rows(len(rows), max_samples, rng)]
    angles = np.degrees(T.binarization_angles(w))
    scaled = w / np.sqrt((w**2).mean(axis=1, keepdims=True))
    moments = T.sample_moments(scaled)
    mean, sd = T.angle_delta_method(moments, float(data.fan_in))
    return LayerAngles(
        name=data.name,
        units=data.units,
        fan_in=data.fan_in,
        mean_deg=float(angles.mean()),
        sd_deg=float(angles.std(ddof=1)) if len(angles) > 1 else 0.0,
        pred_mean_deg=math.degrees(float(mean)),
        pred_sd_deg=math.degrees(float(sd)),
        limit_deg=math.degrees(math.acos(moments[0] / math.sqrt(moments[1]))),
        excess_kurtosis=moments[3] / moments[1] ** 2 - 3.0,
        dot=T.dot_product_correlation(w, acts, seed=rng, name=data.name, rotate=rotate),
    )


# ============================================================================================ EHD model
@dataclass
class EHDLayerErrors:
    """Per-layer error of the real EHD layer fed the float layer's input, indexed [N, seed].

    ``rms`` = sqrt(mean (z_hat - z)^2) over items, units and positions; ``theory_rms`` = (pi/2) sqrt(mean(1 - mu^2)
    / N) with mu = 2 z / pi (exact for Gaussian G); ``frac_fail`` = fraction of cells with |z_hat - z| >= t, whose
    expectation is at most ``hoeffding``; ``max_error`` = max over cells (the union bound ``union`` bounds
    P(max >= t) for this many cells).
    """

    name: str
    units: int
    positions: int
    items: int
    t: float
    ns: list[int]
    seeds: list[int]
    rms: list[list[float]]
    theory_rms: list[float]
    frac_fail: list[list[float]]
    hoeffding: list[float]
    max_error: list[list[float]]
    union: list[float]


@dataclass
class NetworkCheck:
    """The whole EHD network against the float one on ``items`` test items, indexed [N, seed].

    ``logit_rms`` = rms of z_hat_c - arcsin(cos_c) over items and classes (errors of every layer propagate into
    it); ``classifier_rms`` = the exact rms of the classifier's own estimate, (pi/2) sqrt(mean(1 - mu^2)/N), the
    floor it would reach if all earlier layers were exact. ``agreement`` = fraction of items where the EHD and
    float predictions agree.
    """

    items: int
    ns: list[int]
    seeds: list[int]
    embedding: str
    float_accuracy: float
    accuracy: list[list[float]]
    agreement: list[list[float]]
    logit_rms: list[list[float]]
    classifier_rms: list[float]
    seconds: list[list[float]]


def check_ehd(
    model: nn.Module,
    layer_data: Sequence[LayerData],
    x: torch.Tensor,
    y: torch.Tensor,
    ns: Sequence[int] = (256, 512, 1024, 2048, 4096),
    seeds: Sequence[int] = (0, 1),
    embedding: str = "gaussian",
    t: float = 0.15,
    layer_items: int = 16,
    batch_size: int = 128,
    progress: bool = False,
) -> tuple[list[EHDLayerErrors], NetworkCheck]:
    """Convert ``model`` for every N and seed; measure each EHD layer (teacher-forced) and the whole network.

    ``layer_data`` is :func:`collect_layer_data` on ``x``; the first ``layer_items`` of its items feed the per-layer
    measurement, and all of ``x`` the network one.
    """
    ns_a = [int(n) for n in ns]
    if not ns_a or any(n < 1 for n in ns_a) or sorted(set(ns_a)) != ns_a:
        raise ValueError(f"ns must be strictly increasing positive integers, got {list(ns)}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"t must be a positive number, got {t}")
    with torch.no_grad():
        float_logits = model.eval()(x.to(torch.float32))
    clf = g_layers(model)[-1]
    float_z = torch.asin((float_logits / clf.scale).clamp(-1.0, 1.0)).to(torch.float64)
    float_pred = float_logits.argmax(dim=1)
    y = torch.as_tensor(y)

    shape = (len(ns_a), len(seeds))
    layer_rms = [np.zeros(shape) for _ in layer_data]
    layer_fail = [np.zeros(shape) for _ in layer_data]
    layer_max = [np.zeros(shape) for _ in layer_data]
    acc, agree, logit_rms, secs = (np.zeros(shape) for _ in range(4))
    bar = tqdm(total=len(ns_a) * len(seeds), desc="EHD check", disable=not progress)
    for i, n in enumerate(ns_a):
        for j, seed in enumerate(seeds):
            t0 = time.perf_counter()
            ehd = convert(model, n=n, embedding=embedding, seed=seed)
            for k, (data, layer) in enumerate(zip(layer_data, ehd.layers)):
                with torch.no_grad():
                    zh = layer.z_hat(data.inputs[:layer_items]).to(torch.float64)
                err = (zh - data.z[:layer_items].to(torch.float64)).abs()
                layer_rms[k][i, j] = float(err.pow(2).mean().sqrt())
                layer_fail[k][i, j] = float((err >= t).double().mean())
                layer_max[k][i, j] = float(err.max())
            z_hat = torch.cat([ehd.forward(x[a : a + batch_size]) for a in range(0, len(x), batch_size)])
            z_hat = z_hat.to(torch.float64)
            pred = z_hat.argmax(dim=1)
            acc[i, j] = float((pred == y).double().mean())
            agree[i, j] = float((pred == float_pred).double().mean())
            logit_rms[i, j] = float((z_hat - float_z).pow(2).mean().sqrt())
            secs[i, j] = time.perf_counter() - t0
            bar.update()
    bar.close()

    n_arr = np.array(ns_a, dtype=np.float64)
    layers = []
    for k, data in enumerate(layer_data):
        z = data.z[:layer_items].to(torch.float64).numpy()
        mu = 2.0 * z / math.pi
        cells = z.size
        layers.append(EHDLayerErrors(
            name=data.name, units=data.units, positions=data.positions, items=int(z.shape[0]), t=t, ns=ns_a,
            seeds=seeds, rms=layer_rms[k].tolist(),
            theory_rms=((math.pi / 2) * np.sqrt(np.mean(1 - mu**2) / n_arr)).tolist(),
            frac_fail=layer_fail[k].tolist(), hoeffding=T.hoeffding_unit_bound(n_arr, t).tolist(),
            max_error=layer_max[k].tolist(), union=T.union_bound(n_arr, t, cells).tolist(),
        ))
    mu_clf = 2.0 * float_z.numpy() / math.pi
    network = NetworkCheck(
        items=len(x), ns=ns_a, seeds=seeds, embedding=embedding,
        float_accuracy=float((float_pred == y).double().mean()), accuracy=acc.tolist(), agreement=agree.tolist(),
        logit_rms=logit_rms.tolist(), classifier_rms=((math.pi / 2) * np.sqrt(np.mean(1 - mu_clf**2) / n_arr)).tolist(),
        seconds=secs.tolist(),
    )
    return layers, network


# ============================================================================================ plots
def plot_ehd_layers(layers: Sequence[EHDLayerErrors], path: Path) -> Path:
    """Left: per-layer rms error of the real EHD layers vs N with the exact std.
    Right: failure fraction vs Hoeffding."""
    fig, (a, b) = new_figure()
    for k, le in enumerate(layers):
        c = f"C{k % 10}"
        ns = np.array(le.ns)
        rms = np.array(le.rms)
        a.loglog(ns, rms.mean(axis=1), "o", color=c, label=f"{le.name}")
        a.loglog(ns, le.theory_rms, "-", color=c, alpha=0.6)
        frac = np.array(le.frac_fail).mean(axis=1)
        b.semilogy(ns[frac > 0], frac[frac > 0], "o-", color=c, label=le.name)
    a.plot([], [], "k-", alpha=0.6, label=r"exact $(\pi/2)\sqrt{\overline{1-\mu^2}/N}$")
    a.set(xlabel="N", ylabel=r"rms of $\hat z - z$ (rad)", title="EHD layers on real inputs (teacher-forced)")
    a.legend(fontsize=7)
    b.semilogy(layers[0].ns, layers[0].hoeffding, "k--", label=rf"Hoeffding $2e^{{-2Nt^2/\pi^2}}$, t={layers[0].t:g}")
    b.set_xscale("log")
    b.set(xlabel="N", ylabel=r"fraction of cells with $|\hat z - z| \geq t$", title="per-unit failure fraction")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def plot_network(net: NetworkCheck, path: Path) -> Path:
    """Left: EHD accuracy vs N beside the float accuracy. Right: logit deviation vs N with the classifier floor."""
    fig, (a, b) = new_figure()
    ns = np.array(net.ns)
    acc = np.array(net.accuracy)
    a.semilogx(ns, acc.mean(axis=1), "o-", color="C0", label=f"EHD ({net.embedding} G), mean of {len(net.seeds)} seeds")
    if acc.shape[1] > 1:
        a.fill_between(ns, acc.min(axis=1), acc.max(axis=1), color="C0", alpha=0.2, label="range over seeds")
    a.semilogx(ns, np.array(net.agreement).mean(axis=1), "s:", color="C2", label="agreement with float predictions")
    a.axhline(net.float_accuracy, color="k", ls="--", label=f"float G-Net {net.float_accuracy:.4f}")
    a.set(xlabel="N (every layer)", ylabel="accuracy", title=f"network level, {net.items} test items")
    a.legend(fontsize=7)
    rms = np.array(net.logit_rms).mean(axis=1)
    b.loglog(ns, rms, "o", color="C3", label="measured rms of logit z_hat - z")
    b.loglog(ns, net.classifier_rms, "-", color="C3", alpha=0.6, label="classifier alone (exact), earlier layers exact")
    fit = math.exp(np.mean(np.log(rms) + 0.5 * np.log(ns)))  # least squares for c in c / sqrt(N)
    b.loglog(ns, fit / np.sqrt(ns), ":", color="k", label=f"fit {fit:.2f}/sqrt(N)")
    b.set(xlabel="N (every layer)", ylabel="rms deviation (rad)", title="logit deviation from the float network")
    b.legend(fontsize=7)
    return save_figure(fig, path)


def plot_angles(angles: Sequence[LayerAngles], path: Path) -> Path:
    """Left: per-layer angle(w~, sign w~) with its moment-based prediction and the reference limits.
    Right: correlation of continuous and binarised dot products on real activations."""
    fig, (a, b) = new_figure()
    idx = np.arange(len(angles))
    a.errorbar(idx, [g.mean_deg for g in angles], yerr=[g.sd_deg for g in angles], fmt="o", color="C3",
               capsize=3, label="measured mean ± sd over units")
    a.errorbar(idx + 0.15, [g.pred_mean_deg for g in angles], yerr=[g.pred_sd_deg for g in angles], fmt="s",
               mfc="none", color="k", capsize=3, label="delta method from the layer's own moments")
    for name, c in (("gaussian", "C0"), ("uniform", "C1"), ("laplace", "C2")):
        lim = math.degrees(math.acos(T.binarization_cosine_limit(name)))
        a.axhline(lim, color=c, ls="--", lw=1, label=f"{name} limit {lim:.1f} deg")
    a.set_xticks(idx, [g.name.split(" ", 1)[0] for g in angles])
    a.set(ylabel="angle(w, sign w) [deg]", title="trained weights vs their binarisation")
    a.legend(fontsize=6)
    w = 0.2
    b.bar(idx - 1.5 * w, [g.dot.r for g in angles], w, label="corr(a.w, a.sign w), real a")
    b.bar(idx - 0.5 * w, [g.dot.r_permuted for g in angles], w, label="same, permuted a (control)")
    b.bar(idx + 0.5 * w, [g.dot.isotropic for g in angles], w, label="isotropic prediction cos angle")
    if angles[0].dot.r_rotated is not None:
        b.bar(idx + 1.5 * w, [g.dot.r_rotated for g in angles], w, label="rotated binarisation R' sign(R w)")
    b.set_xticks(idx, [g.name.split(" ", 1)[0] for g in angles])
    b.set_ylim(min(0.5, min(g.dot.r_permuted for g in angles) - 0.05), 1.0)
    b.set(ylabel="Pearson r", title="dot-product proportionality")
    b.legend(fontsize=6, loc="lower right")
    return save_figure(fig, path)


def plot_dot_scatter(layer_data: Sequence[LayerData], path: Path, max_points: int = 4000, seed: int = 0) -> Path:
    """Anderson & Berg's 2-D histogram per layer: a . w~ against a . sign(w~) on real activations."""
    fig, axes = new_figure(ncols=len(layer_data), width=3.2, height=3.2)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.17, top=0.9, wspace=0.4)
    rng = np.random.default_rng([seed, 9])
    for ax, data in zip(axes, layer_data):
        rows = _nonzero_rows(data.patches())
        acts = rows[_sample_rows(len(rows), 500, rng)]
        cont = (acts @ data.weights.T).ravel()
        binw = (acts @ np.where(data.weights >= 0, 1.0, -1.0).T).ravel()
        pick = _sample_rows(len(cont), max_points, rng)
        ax.hexbin(cont[pick], binw[pick], gridsize=30, bins="log", cmap="viridis")
        r = np.corrcoef(cont, binw)[0, 1]
        ax.set(title=f"{data.name.split(' ', 1)[0]}: r = {r:.3f}", xlabel="a . w", ylabel="a . sign(w)")
    return save_figure(fig, path)


# ============================================================================================ report
def _required_table(layer_data: Sequence[LayerData], t: float, delta: float) -> str:
    lines = ["| layer | units m | positions P per item | fan-in | N required per item (t, delta) |",
             "|---|---|---|---|---|"]
    total = 0
    for d in layer_data:
        total += d.units * d.positions
        lines.append(f"| {d.name} | {d.units} | {d.positions} | {d.fan_in} | "
                     f"{T.required_n(t, delta, d.units, d.positions):,} |")
    lines.append(f"| whole network (union over all {total:,} estimates) | | | | "
                 f"{T.required_n(t, delta, total):,} |")
    return "\n".join(lines)


def _ehd_layer_verdicts(layers: Sequence[EHDLayerErrors], embedding: str) -> list[Verdict]:
    out = []
    for le in layers:
        ratio = np.array(le.rms).mean(axis=1) / np.array(le.theory_rms)
        frac = np.array(le.frac_fail).mean(axis=1)
        over = frac > np.array(le.hoeffding) + 1e-12
        out.append(Verdict(
            f"EHD {le.name}: rms error = exact std", f"ratio in [{ratio.min():.3f}, {ratio.max():.3f}]",
            "1" + (" (exact for Gaussian G)" if embedding == "gaussian" else " (Gaussian formula)"), None,
            f"{len(le.seeds)} draws of G per N: cells share G, so no tolerance is derived",
        ))
        out.append(Verdict(
            f"EHD {le.name}: failure fraction <= Hoeffding", f"{int(over.sum())} of {len(frac)} N above",
            f"2 exp(-2 N t^2/pi^2), t={le.t:g}", bool(not over.any()),
        ))
    return out


def run_model_report(
    model: nn.Module,
    config: dict[str, Any],
    x: torch.Tensor,
    y: torch.Tensor,
    out_dir: str | Path,
    *,
    title: str = "Theory verification: trained model",
    ns: Sequence[int] = (256, 1024, 4096),
    seeds: Sequence[int] = (0, 1),
    embedding: str = "gaussian",
    t: float = 0.15,
    delta: float = 0.05,
    n_draws: int = 50,
    max_units: int = 64,
    max_patches: int = 128,
    layer_items: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> Report:
    """Run every model-level check on ``model`` with real inputs ``x`` (labels ``y``) and write the report."""
    rep = Report(out_dir, title, (
        f"Model: {config.get('dataset', '?')} G-Net, {len(x)} test items, G {embedding}, seed {seed}. "
        "Every layer is measured on its real inputs (the float model's activations, shifted by the bias trick and "
        "cut into receptive fields) with its folded weights."))
    rep.meta = {"dataset": config.get("dataset"), "items": len(x), "ns": list(ns), "seeds": list(seeds),
                "embedding": embedding, "t": t, "delta": delta, "n_draws": n_draws, "max_units": max_units,
                "max_patches": max_patches, "layer_items": layer_items, "seed": seed}
    t0 = time.perf_counter()
    data = collect_layer_data(model, x)
    rep.add("layers", "Layers and the N-required calculator", (
        f"N >= pi^2/(2 t^2) log(2 m P / delta) makes every estimate of one item within t = {t:g} with probability "
        f"1 - delta = {1 - delta:g} (union bound; it uses marginals only, so a G shared by the units is fine).\n\n"
        + _required_table(data, t, delta)), data=[
            {"name": d.name, "units": d.units, "positions": d.positions, "fan_in": d.fan_in,
             "n_required": T.required_n(t, delta, d.units, d.positions)} for d in data],
        seconds=time.perf_counter() - t0)

    # Concentration on real inputs, many draws of G.
    for d in data:
        chk, secs = _timed(lambda d=d: layer_concentration(
            d, t=t, delta=delta, kind=embedding, n_draws=n_draws, max_units=max_units, max_patches=max_patches,
            seed=seed, progress=progress))
        fig = plot_layer_concentration(chk, rep.figure_path(f"concentration_{d.index}"))
        rep.add(f"concentration_{d.index}", f"Concentration on real inputs: {d.name}", (
            f"{chk.units} of {d.units} units x {chk.patches} real input patches (sampled), {chk.n_draws} draws of "
            f"a shared {embedding} G per N; z spans [{chk.z_range[0]:.2f}, {chk.z_range[1]:.2f}]."),
            [fig], chk, layer_verdict(chk), secs)

    # The real EHD model.
    (ehd_layers, net), secs = _timed(lambda: check_ehd(
        model, data, x, y, ns=ns, seeds=seeds, embedding=embedding, t=t, layer_items=layer_items,
        progress=progress))
    fig_l = plot_ehd_layers(ehd_layers, rep.figure_path("ehd_layers"))
    rows = "\n".join(
        f"| {le.name} | " + " | ".join(f"{np.mean(r):.4f} / {th:.4f}" for r, th in zip(le.rms, le.theory_rms)) + " |"
        for le in ehd_layers)
    rep.add("ehd_layers", "EHD layers: error of each layer on its real inputs", (
        "`gnet.ehd.convert(model, n=N, embedding, seed)` for each N and seed; each EHD layer is fed the float "
        f"layer's input for the first {layer_items} items, so the error is that layer's alone. "
        "Table: measured rms / exact rms.\n\n"
        f"| layer | " + " | ".join(f"N={n}" for n in net.ns) + " |\n|---|" + "---|" * len(net.ns) + "\n" + rows),
        [fig_l], ehd_layers, _ehd_layer_verdicts(ehd_layers, embedding), None)
    fig_n = plot_network(net, rep.figure_path("network"))
    acc = np.array(net.accuracy)
    rows = "\n".join(
        f"| {n} | {acc[i].mean():.4f} | {np.mean(net.agreement[i]):.4f} | {np.mean(net.logit_rms[i]):.4f} | "
        f"{net.classifier_rms[i]:.4f} | {np.mean(net.seconds[i]):.1f} |" for i, n in enumerate(net.ns))
    ratio = np.array(net.logit_rms).mean(axis=1) * np.sqrt(net.ns)
    rep.add("network", "Network level: logits and accuracy as N grows", (
        f"Float accuracy on these {net.items} items: {net.float_accuracy:.4f}. The logit deviation includes the "
        "errors of every earlier layer, so it sits above the classifier-alone floor, which falls exactly like "
        "1/sqrt(N); the dotted line fits c/sqrt(N) to the measurements for comparison (at small N the propagated "
        "errors are not yet in that regime).\n\n"
        "| N | EHD accuracy | agreement with float | logit rms | classifier-alone rms | seconds per conversion+run |\n"
        "|---|---|---|---|---|---|\n" + rows),
        [fig_n], net, [
            Verdict("network logit deviation ~ c / sqrt(N)",
                    f"rms * sqrt(N) in [{ratio.min():.2f}, {ratio.max():.2f}]", "constant c", None,
                    f"classifier-alone c = {net.classifier_rms[0] * math.sqrt(net.ns[0]):.2f}"),
            Verdict("EHD accuracy approaches float accuracy",
                    f"{acc[-1].mean():.4f} at N={net.ns[-1]}", f"{net.float_accuracy:.4f} (float)", None,
                    f"agreement with float predictions {np.mean(net.agreement[-1]):.4f}"),
        ], secs)

    # Anderson & Berg.
    angles, secs = _timed(lambda: [layer_angles(d, seed=seed) for d in data])
    fig_a = plot_angles(angles, rep.figure_path("binarization_angles"))
    fig_s = plot_dot_scatter(data, rep.figure_path("dot_products"), seed=seed)
    rows = "\n".join(
        f"| {g.name} | {g.fan_in} | {g.mean_deg:.2f} ± {g.sd_deg:.2f} | {g.pred_mean_deg:.2f} ± {g.pred_sd_deg:.2f} "
        f"| {g.excess_kurtosis:+.2f} | {g.dot.r:.3f} | {g.dot.r_permuted:.3f} | {g.dot.isotropic:.3f} | "
        f"{fmt(g.dot.r_rotated)} | {fmt(g.dot.angle_rotated_deg, 4)} |" for g in angles)
    rep.add("binarization", "Anderson & Berg: the angle to sign(w) and dot-product proportionality", (
        "Per layer: angle(w~, sign w~) over units (mean ± sd) against the delta-method prediction from the layer's "
        "own weight moments (each unit scaled to unit rms); the correlation of a.w~ with a.sign(w~) over real "
        "(shifted) input patches a, with permuted activations as a control and cos angle as the isotropic "
        "prediction; and the rotated binarisation R' sign(R w~) for one Haar R.\n\n"
        "| layer | d | angle [deg] | predicted [deg] | excess kurtosis | r | r permuted | cos angle | r rotated "
        "| angle rotated [deg] |\n|---|---|---|---|---|---|---|---|---|---|\n" + rows),
        [fig_a, fig_s], angles, [
            Verdict(f"angle(w, sign w): {g.name}", f"{g.mean_deg:.2f} ± {g.sd_deg:.2f} deg",
                    f"{g.pred_mean_deg:.2f} ± {g.pred_sd_deg:.2f} deg from the layer's moments", None,
                    f"r = {g.dot.r:.3f} vs permuted {g.dot.r_permuted:.3f}") for g in angles], secs)
    rep.write()
    return rep


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
