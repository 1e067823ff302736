"""Binary versions of the G-Net architectures: the same layer specs, built as BNNs.

Each G-layer (``conv2d``, ``conv1d``, ``linear``, ``classifier``) becomes a binary layer followed by a BatchNorm;
each G-Net activation (``rasu``, ``tasu``) becomes the method's sign activation (or a real one for BinaryConnect),
so the BatchNorm is the learned per-unit threshold of the sign. The first layer's input stays real and the last
layer's output (the logits, after its BatchNorm) stays real, as in BinaryConnect, BNN and FDA. Pooling and
flattening are kept; dropout is dropped unless ``keep_dropout=True`` (the binarization is the regulariser in these
papers). G-Net-only keys (``bias_init``, ``weight_std``, ``batch_norm``, ``alpha``, ``scale``) are ignored.

Layer order (``pool_first``, default True): a layer followed by an activation and a max-pool is built as layer ->
pool -> BatchNorm -> activation, the order of BinaryNet and of Anderson & Berg's networks, so that the pooling's
gradient goes to the largest pre-activation, not to an arbitrary one of four tied signs (the G-Net order, layer ->
BatchNorm -> sign -> pool, learned more slowly: on MNIST after 15,000 images, 94.7 % validation accuracy against
95.8 % pool-first, 96.4 % with the fixed scale below; benchmarks/ablate_bnn_order.py). The BatchNorms in front of an
activation have a fixed scale of 1 (``bn_scale="fixed"``, as larq's ``scale=False``): the sign only needs a
threshold, and a positive scale makes the two orders compute the same function, so :func:`gnet.bnn.convert` packs a
pool-first network exactly (threshold, then OR over the pool window). The last BatchNorm (the logits) keeps a
learned scale. Checkpoints written before these options rebuild with the G-Net order and learned scales.

Methods (the quantizers are defaults; every one can be overridden):

=============== =================================== ================================== ======= ================
method          weights                             activations                        scale   source
=============== =================================== ================================== ======= ================
binaryconnect   ``ste`` (identity backward)         real: ReLU (rasu), Hardtanh (tasu) none    Courbariaux 2015
bnn             ``htanh``                           ``htanh``                          none    Hubara 2016
bnn++           ``swish_sign`` smooth, b 5 -> 50,   ``htanh`` [3]                      channel Lu 2023 [1]
                sign from progress 0.3
pc++            ``pc++`` toward_pm1, mu 0 -> 1.25   ``htanh``                          channel Lu 2023 [1]
                (binary from progress 0.8)
fda             ``fda`` N 10 -> 18, NAM             ``fda`` N 10 -> 18, NAM            channel Xu 2021 [2]
=============== =================================== ================================== ======= ================

[1] the BNN++ forward (sign-Swish annealed toward sign) and the PC++ pair are built from the paper's published
description; its exact schedules were not available, so they are parameters here. Both reach the sign forward
before training ends so that the BatchNorm statistics are collected with the binary weights the eval forward uses
(a smooth forward to the end left them mismatched and cost 1-2 points on digits). BNN++ switches at 0.3: Glorot
latent weights are small (|w| ~ 0.05), so SS_b stays nearly linear for them until b is large, and the network
trains as a real one until the switch (on MNIST 21-46 % validation accuracy with the eval sign forward before it,
98.25-98.5 % right after); the sign phase is where it becomes a good binary network (MNIST, 3 seeds: switch 0.5
98.997 %, switch 0.3 99.06 %; docs/bnn.md).
[2] FDA's constants (omega 0.1, N 10 -> 18, alpha 0.1 cosine-decayed) follow a public re-implementation (BiBench),
not the authors' code.
[3] PC++ / BNN++ concern the weights; the activations use BNN's quantizer. BNN+'s ``swish_sign`` (b = 5) on
BatchNorm outputs puts 51-71 % of the activations where SS_5' < 0 (MNIST), so their pseudo-gradient points against
the loss; with ``htanh`` instead BNN++ scored 98.997 % against 98.92 % (MNIST, 3 seeds, switch 0.5).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from gnet.bnn.layers import BatchNorm1d, BatchNorm2d, BinaryActivation, BinaryConv1d, BinaryConv2d, BinaryLinear
from gnet.bnn.quantizers import Quantizer, get
from hdc._validate import as_seed, check_choice, check_int, check_number

__all__ = ["BN_SCALES", "BNN", "METHODS", "build_bnn", "progress_for_epoch", "swap_pool"]

BN_SCALES = ("fixed", "learned")

LayerSpec = dict[str, Any]

METHODS: dict[str, dict[str, Any]] = {
    "binaryconnect": {"weight": {"name": "ste"}, "activation": None, "scale": "none"},
    "bnn": {"weight": {"name": "htanh"}, "activation": {"name": "htanh"}, "scale": "none"},
    "bnn++": {
        "weight": {"name": "swish_sign", "beta": 5.0, "beta_end": 50.0, "smooth_forward": True, "hard_from": 0.3},
        "activation": {"name": "htanh"},
        "scale": "channel",
    },
    "pc++": {
        "weight": {"name": "pc++", "prox": "toward_pm1", "backward": "identity", "mu": 0.0, "mu_end": 1.25},
        "activation": {"name": "htanh"},
        "scale": "channel",
    },
    "fda": {"weight": {"name": "fda"}, "activation": {"name": "fda"}, "scale": "channel"},
}

_LAYER_TYPES = ("conv2d", "conv1d", "linear", "classifier")
_SKIPPED = ("dropout", "dropout1d", "dropout2d")
SPEC_TYPES = (*_LAYER_TYPES, "rasu", "tasu", "maxpool2d", "maxpool1d", "flatten", *_SKIPPED)


def progress_for_epoch(epoch: int, epochs: int) -> float:
    """Annealing progress of 0-based ``epoch`` out of ``epochs``: 0 in the first epoch, 1 in the last."""
    return 1.0 if epochs <= 1 else min(1.0, max(0.0, epoch / (epochs - 1)))


class BNN(nn.Sequential):
    """A binary network: an ``nn.Sequential`` of binary layers, BatchNorms, activations and pooling.

    ``forward`` maps (B, *input_shape) to float32 logits (B, n_classes). The annealing position lives in the buffer
    ``anneal_progress`` (so it is saved in every ``state_dict`` / checkpoint and restored on resume) and is passed
    to every quantizer before each forward. With ``auto_clip`` the latent weights are clipped at the start of each
    training forward, which equals clipping after each optimizer step for a trainer that knows nothing of BNNs.
    :func:`gnet.train.train` calls :meth:`set_progress` at each epoch start and :meth:`clip_latent_` after each
    step (its generic model hooks).
    """

    anneal_progress: torch.Tensor  # a registered buffer (float64 scalar)

    def __init__(self, modules: Sequence[nn.Module], config: dict[str, Any], auto_clip: bool = True) -> None:
        super().__init__(*modules)
        self.config = copy.deepcopy(config)
        self.auto_clip = bool(auto_clip)
        self.register_buffer("anneal_progress", torch.zeros((), dtype=torch.float64))
        self._synced = -1.0

    def __getitem__(self, idx: int | slice) -> nn.Module:
        """A module, or for a slice a plain ``nn.Sequential`` of those modules (eval outputs stay float64)."""
        if isinstance(idx, slice):
            return nn.Sequential(*list(self._modules.values())[idx])
        return super().__getitem__(idx)

    @property
    def method(self) -> str:
        return self.config["method"]

    def binary_layers(self) -> list[BinaryLinear | BinaryConv1d | BinaryConv2d]:
        return [m for m in self if isinstance(m, (BinaryLinear, BinaryConv1d, BinaryConv2d))]

    def quantizers(self) -> list[Quantizer]:
        """Every quantizer object of the network (weights, layer inputs, activations), each once."""
        found: dict[int, Quantizer] = {}
        for m in self:
            for q in (
                getattr(m, "weight_quantizer", None),
                getattr(m, "input_quantizer", None),
                getattr(m, "quantizer", None),
            ):
                if isinstance(q, Quantizer):
                    found[id(q)] = q
        return list(found.values())

    def set_progress(self, t: float) -> None:
        """Annealing position ``t`` in [0, 1] for every quantizer (see :func:`progress_for_epoch`)."""
        self.anneal_progress.fill_(check_number(t, "progress", 0.0, 1.0))
        self._sync()

    def _sync(self) -> None:
        t = float(self.anneal_progress)
        if t != self._synced:
            for q in self.quantizers():
                q.set_progress(t)
            self._synced = t

    def annealer(self, epochs: int) -> Callable[[dict[str, float]], None]:
        """An ``on_epoch`` callback for :func:`gnet.train.train`: after epoch ``e`` (1-based ``record["epoch"]``)
        it sets the progress of the next epoch, ``progress_for_epoch(e, epochs)``."""

        def on_epoch(record: dict[str, float]) -> None:
            self.set_progress(progress_for_epoch(int(record["epoch"]), epochs))

        return on_epoch

    def clip_latent_(self) -> None:
        """Clip every binary layer's latent weights (call after each optimizer step)."""
        for layer in self.binary_layers():
            layer.clip_latent_()

    @torch.no_grad()
    def recalibrate_batchnorm(self, x: torch.Tensor, batch_size: int = 500) -> None:
        """Recompute every BatchNorm's running statistics over ``x`` (N, *input_shape) with the current weights:
        the batch statistics averaged with weights proportional to the batch sizes (the mean is the exact mean over
        ``x``; the variance the weighted mean of the batch variances). Nothing else changes.

        The running statistics of a BNN trained at a high learning rate lag behind its weights (many signs flip
        per step), so the eval network can be far worse than the training one; recalibrating on training data
        after the last step removes that lag. Call it at progress 1, where every method's training forward is
        the binary one.
        """
        check_int(batch_size, "batch_size", 1)
        was = self.training
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        device = next(self.parameters()).device
        saved = [m.momentum for m in norms]
        try:
            self.train()
            for m in self.modules():
                if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
                    m.eval()
            for m in norms:
                m.reset_running_stats()
            for start in range(0, len(x), batch_size):
                batch = x[start : start + batch_size].to(device)
                for m in norms:  # running = (1 - m) running + m batch, m = batch share of all seen so far
                    m.momentum = len(batch) / (start + len(batch))
                super().forward(batch)
        finally:
            for m, momentum in zip(norms, saved, strict=False):
                m.momentum = momentum
            self.train(was)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._sync()
        if self.training and self.auto_clip:
            self.clip_latent_()
        return super().forward(x).float()

    def model_config(self) -> dict[str, Any]:
        """JSON-serialisable config that :func:`build_from_config` rebuilds this network from; the layer specs are
        under ``"architecture"``, as in every G-Net checkpoint config."""
        return copy.deepcopy(self.config)


def _quantizer_config(value: Any, default: Any) -> dict[str, Any] | None:
    if value is None:
        return None if default is None else get(default).to_config()
    return get(value).to_config()  # validates the name and parameters; a Quantizer instance keeps its params


def _check_specs(specs: Sequence[LayerSpec]) -> list[LayerSpec]:
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence) or not specs:
        raise ValueError("specs must be a non-empty list of layer spec dicts (see gnet.models.architecture)")
    for i, spec in enumerate(specs):
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in SPEC_TYPES:
            raise ValueError(f"layer {i}: unknown or unsupported type {kind!r}; valid: {', '.join(SPEC_TYPES)}")
        for key in ("in", "out") if kind in ("conv2d", "conv1d", "linear") else ("in", "classes"):
            if kind in _LAYER_TYPES and key not in spec:
                raise ValueError(f"layer {i}: spec {spec} lacks required key {key!r}")
    last = [s for s in specs if s["type"] in _LAYER_TYPES]
    if not last or specs[-1]["type"] not in ("classifier", "linear"):
        raise ValueError("the last layer spec of a BNN must be a 'classifier' or 'linear' layer (real logits)")
    return list(specs)


def build_bnn(
    specs: Sequence[LayerSpec],
    method: str = "bnn",
    seed: Any = 0,
    *,
    weight_quantizer: Any = None,
    activation_quantizer: Any = None,
    scale: str | None = None,
    clip_value: float | None = 1.0,
    keep_dropout: bool = False,
    auto_clip: bool = True,
    pool_first: bool = True,
    bn_scale: str = "fixed",
) -> BNN:
    """The binary version of a G-Net architecture.

    Args:
        specs: G-Net layer specs (``gnet.models.architecture("digits")`` etc.).
        method: ``binaryconnect``, ``bnn``, ``bnn++``, ``pc++`` or ``fda`` (see the module table).
        seed: int or numpy Generator; one ``torch.Generator`` seeded from it draws every weight.
        weight_quantizer: overrides the method's weight quantizer (name, config dict or object).
        activation_quantizer: overrides the method's activation quantizer (likewise).
        scale: override the method's weight scaling (``"none"`` or ``"channel"``).
        clip_value: latent-weight clip of every binary layer (None: no clip).
        pool_first: build layer -> pool -> BatchNorm -> activation where the specs pool after an activation
            (module docstring); False keeps the G-Net order.
        bn_scale: ``"fixed"`` (scale 1, not trained) or ``"learned"`` for the BatchNorms before an activation.

    Returns:
        A :class:`BNN` in training mode with progress 0.
    """
    method = check_choice(method, tuple(METHODS), "method")
    specs = _check_specs(specs)
    defaults = METHODS[method]
    config: dict[str, Any] = {
        "architecture": copy.deepcopy(specs),
        "method": method,
        "seed": as_seed(seed),
        "weight_quantizer": _quantizer_config(weight_quantizer, defaults["weight"]),
        "activation_quantizer": _quantizer_config(activation_quantizer, defaults["activation"]),
        "scale": scale if scale is not None else defaults["scale"],
        "clip_value": clip_value,
        "keep_dropout": bool(keep_dropout),
        "auto_clip": bool(auto_clip),
        "pool_first": bool(pool_first),
        "bn_scale": check_choice(bn_scale, BN_SCALES, "bn_scale"),
    }
    gen = torch.Generator().manual_seed(config["seed"])
    w_q = get(config["weight_quantizer"])
    a_q = None if config["activation_quantizer"] is None else get(config["activation_quantizer"])
    modules: list[nn.Module] = []
    channels: int | None = None
    for spec in specs:
        kind = spec["type"]
        if kind in _LAYER_TYPES:
            layer, channels, bn = _binary_layer(spec, w_q, config, gen)
            modules += [layer, bn]
        elif kind in ("rasu", "tasu"):
            if channels is None:
                raise ValueError(f"activation {kind!r} before any layer: nothing to threshold")
            if a_q is None:
                modules.append(nn.ReLU() if kind == "rasu" else nn.Hardtanh())
            else:
                modules.append(BinaryActivation(a_q, channels=channels, generator=gen))
        elif kind == "maxpool2d":
            modules.append(nn.MaxPool2d(spec.get("kernel", 2)))
        elif kind == "maxpool1d":
            modules.append(nn.MaxPool1d(spec.get("kernel", 2)))
        elif kind == "flatten":
            modules.append(nn.Flatten())
        elif keep_dropout:
            cls = {"dropout": nn.Dropout, "dropout1d": nn.Dropout1d, "dropout2d": nn.Dropout2d}[kind]
            modules.append(cls(spec.get("p", 0.5 if kind == "dropout" else 0.25)))  # gnet.models' defaults
    if config["pool_first"]:
        modules = swap_pool(modules, to_pool_first=True)
    if config["bn_scale"] == "fixed":
        for bn, nxt in zip(modules, modules[1:], strict=False):
            if isinstance(bn, nn.modules.batchnorm._BatchNorm) and isinstance(nxt, _ACTIVATIONS):
                bn.weight.requires_grad_(False)  # stays 1: a threshold, not a scale
    return BNN(modules, config, auto_clip=auto_clip)


_ACTIVATIONS = (BinaryActivation, nn.ReLU, nn.Hardtanh)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d)


_LAYER_NORM_ACT_POOL = (
    (BinaryLinear, BinaryConv1d, BinaryConv2d),
    nn.modules.batchnorm._BatchNorm,
    _ACTIVATIONS,
    _POOLS,
)


def swap_pool(modules: list[nn.Module], to_pool_first: bool) -> list[nn.Module]:
    """Move each max-pool that sits after a layer's BatchNorm and activation to right after the layer
    (``to_pool_first``), or back; every other module stays where it is. The two orders agree only where every
    BatchNorm scale is positive; :func:`gnet.bnn.convert` checks that before it packs."""
    # positions of (layer, BatchNorm, activation, pool) in the source order, and the permutation to the target
    source, target = ((0, 1, 2, 3), (0, 3, 1, 2)) if to_pool_first else ((0, 3, 1, 2), (0, 1, 2, 3))
    kinds = [_LAYER_NORM_ACT_POOL[k] for k in source]
    out: list[nn.Module] = []
    i = 0
    while i < len(modules):
        window = modules[i : i + 4]
        if len(window) == 4 and all(isinstance(m, kind) for m, kind in zip(window, kinds, strict=True)):
            by_kind = dict(zip(source, window, strict=True))
            out += [by_kind[k] for k in target]
            i += 4
        else:
            out.append(modules[i])
            i += 1
    return out


def build_from_config(config: dict[str, Any]) -> BNN:
    """Rebuild a :class:`BNN` from :meth:`BNN.model_config` (extra keys such as ``"train"`` are ignored)."""
    if not isinstance(config, dict) or "architecture" not in config or "method" not in config:
        raise ValueError("a BNN config needs the keys 'architecture' (layer specs) and 'method'")
    keys = (
        "method",
        "seed",
        "weight_quantizer",
        "activation_quantizer",
        "scale",
        "clip_value",
        "keep_dropout",
        "auto_clip",
    )
    # Configs written before the layer-order options hold the G-Net order and learned scales.
    legacy = {"pool_first": config.get("pool_first", False), "bn_scale": config.get("bn_scale", "learned")}
    return build_bnn(config["architecture"], **{k: config[k] for k in keys if k in config}, **legacy)


def _binary_layer(
    spec: LayerSpec, w_q: Quantizer, config: dict[str, Any], gen: torch.Generator
) -> tuple[nn.Module, int, nn.Module]:
    """(binary layer, its output channels, its BatchNorm) for one layer spec."""
    common = {
        "weight_quantizer": w_q,
        "input_quantizer": None,
        "scale": config["scale"],
        "clip_value": config["clip_value"],
        "generator": gen,
    }
    kind = spec["type"]
    if kind in ("linear", "classifier"):
        out = int(spec["out"] if kind == "linear" else spec["classes"])
        return BinaryLinear(int(spec["in"]), out, **common), out, BatchNorm1d(out)
    conv_args = {k: spec.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))}
    cls, bn = (BinaryConv2d, BatchNorm2d) if kind == "conv2d" else (BinaryConv1d, BatchNorm1d)
    out = int(spec["out"])
    return cls(int(spec["in"]), out, spec["kernel"], **conv_args, **common), out, bn(out)
