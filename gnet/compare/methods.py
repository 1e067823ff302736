"""The method registry: how each compared model is trained and deployed.

Every method returns a :class:`Deployment` whose ``model`` offers the :class:`gnet.deployed.DeployedModel` interface
(or the parts of it its family has so far; :mod:`gnet.compare.measure` marks the missing columns n/a with the
reason). Torch-trained networks come from :meth:`gnet.compare.context.Context.trained` (checkpoint cache); the float
G-Net is trained once per seed and deployed four ways (``gnet-float``, ``ehd-paper``, ``ehd-fast``,
``hdc-on-ehd-codes``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gnet.compare.config import FAMILY_TRAINING
from gnet.compare.context import Context
from gnet.compare.floatnet import FloatModel, build_plain_cnn
from gnet.compare.hdcmodel import HDCModel
from gnet.compare.training import Trained, recipe_key

__all__ = [
    "METHODS",
    "Deployment",
    "Method",
    "check_batches",
    "recipe_fingerprint",
    "setting_label",
    "settings_of",
    "train_batch_size",
]

HDC_ON_CODES = "adapthd"  # the classifier fitted on the EHD penultimate codes (the paper's binary fine-tuning)


@dataclass
class Deployment:
    """A deployed model and what it took: training (or fitting) and conversion seconds, its input scaling, and the
    trained network it came from (None for the HDC classifiers, which are fitted anew each time)."""

    model: Any
    train_seconds: float
    deploy_seconds: float
    scaling: str = "standard"
    checkpoint: Trained | None = None


@dataclass(frozen=True)
class Method:
    """One row family of the table: ``deploy(ctx, setting, seed)`` trains (or loads) and deploys."""

    name: str
    family: str
    description: str
    uses_dims: bool
    deploy: Callable[[Context, dict[str, Any], int], Deployment]


def settings_of(method: Method, recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """The settings a method runs at: one per dim for EHD/HDC methods, else one empty setting."""
    return [{"dim": int(d)} for d in recipe["dims"]] if method.uses_dims else [{}]


def train_batch_size(method: Method, recipe: dict[str, Any]) -> int | None:
    """The global training batch of ``method``'s torch network under ``recipe``; None for the HDC classifiers,
    which train no network (``hdc-on-ehd-codes`` trains the float G-Net)."""
    if method.family == "hdc":
        return None
    if method.family == "logic":
        from gnet.logic import TRAIN_DEFAULTS

        return int(TRAIN_DEFAULTS.get("batch_size", recipe["batch_size"]))
    return int(recipe["batch_size"])


def check_batches(methods: tuple[str, ...], recipe: dict[str, Any], n_ranks: int) -> None:
    """Refuse, before any work, a comparison whose training batches ``n_ranks`` ranks cannot split evenly
    (data-parallel training needs ``batch_size / n_ranks`` items per rank and step).

    Raises:
        ValueError: naming each method whose global batch ``n_ranks`` does not divide.
    """
    bad = {}
    for name in methods:
        batch = train_batch_size(METHODS[name], recipe)
        if batch is not None and batch % n_ranks != 0:
            bad[name] = batch
    if bad:
        listed = ", ".join(f"{name} (batch {batch})" for name, batch in bad.items())
        raise ValueError(
            f"the global training batch must be divisible by the number of ranks ({n_ranks}): {listed}; launch "
            "with a number of processes that divides every batch"
        )


def recipe_fingerprint(method: Method, recipe: dict[str, Any]) -> str:
    """16 hex digits that change when what ``method`` is trained with changes: the preset's recipe, its family's
    changes to it (:data:`gnet.compare.config.FAMILY_TRAINING`) and, for a BNN, its quantizers and schedule
    (:data:`gnet.bnn.models.METHODS`). Each row records it, and a resumed comparison redoes a row whose recipe
    has changed since (the checkpoint cache then trains anew, since its key changed too)."""
    from gnet.bnn.models import METHODS as BNN_METHODS

    parts = {"recipe": recipe, "family": FAMILY_TRAINING.get(method.family), "method": BNN_METHODS.get(method.name)}
    return recipe_key(parts)


def setting_label(setting: dict[str, Any]) -> str:
    """'dim=1000' for ``{"dim": 1000}``; '-' for no setting."""
    return ",".join(f"{k}={v}" for k, v in sorted(setting.items())) or "-"


# ----------------------------------------------------------------------------------------------- float G-Net family
def _gnet(ctx: Context, seed: int) -> Trained:
    from gnet.models import build_for_method

    data = ctx.data()
    return ctx.trained("gnet", seed, lambda: build_for_method("gnet", data, seed=seed))


def _gnet_float(ctx: Context, setting: dict[str, Any], seed: int) -> Deployment:
    t = _gnet(ctx, seed)
    data = ctx.data()
    model = FloatModel(t.model, data.input_shape, data.n_classes, t.config, "gnet-float")
    return Deployment(model, t.train_seconds, 0.0, checkpoint=t)


def _ehd_model(ctx: Context, embedding: str, dim: int, seed: int) -> tuple[Any, Trained, float]:
    from gnet.ehd import convert

    t = _gnet(ctx, seed)
    data = ctx.data()
    meta = {"dataset": data.name, "val_fraction": ctx.recipe["val_fraction"], "data_seed": 0}
    t0 = time.perf_counter()
    model = convert(t.model, dim=dim, embedding=embedding, seed=seed, meta=meta, input_shape=data.input_shape)
    return model, t, time.perf_counter() - t0


def _ehd(embedding: str) -> Callable[[Context, dict[str, Any], int], Deployment]:
    def deploy(ctx: Context, setting: dict[str, Any], seed: int) -> Deployment:
        model, t, seconds = _ehd_model(ctx, embedding, setting["dim"], seed)
        return Deployment(model, t.train_seconds, seconds, checkpoint=t)

    return deploy


def _hdc_on_codes(ctx: Context, setting: dict[str, Any], seed: int) -> Deployment:
    """The EHD G-Net (paper G) with its class codes replaced by a Hamming classifier fitted on its penultimate
    codes of the training set: an :class:`~gnet.ehd.EHDModel` again, so it saves, counts and faults as one."""
    from gnet.ehd import EHDModel

    model, t, convert_seconds = _ehd_model(ctx, "gaussian", setting["dim"], seed)
    x, y = ctx.data().train.tensors
    t0 = time.perf_counter()
    codes = model.penultimate_codes(x)
    clf = _hdc_classifier(HDC_ON_CODES, model.classifier.dim, seed, ctx.recipe, encoder="precomputed")
    clf.fit(codes, y.numpy())
    fit_seconds = time.perf_counter() - t0
    if not np.array_equal(clf.classes_, np.arange(model.n_classes)):
        raise ValueError(f"the training split lacks classes: fitted {list(clf.classes_)} of {model.n_classes}")
    stages = [*model.stages[:-1], model.classifier.copy(codes=np.ascontiguousarray(clf.prototypes_))]
    meta = {**model.meta, "classifier": f"{HDC_ON_CODES} on the penultimate codes"}
    tuned = EHDModel(stages, meta, input_shape=model.input_shape, n_classes=model.n_classes)
    return Deployment(tuned, t.train_seconds + fit_seconds, convert_seconds, checkpoint=t)


# ----------------------------------------------------------------------------------------------- HDC classifiers
def _hdc_classifier(name: str, dim: int, seed: int, recipe: dict[str, Any], encoder: str = "kernel") -> Any:
    from hdc.classifiers import AdaptHD, CentroidHD, OnlineHD

    if name == "centroidhd":
        return CentroidHD(dim=dim, encoder=encoder, seed=seed)
    cls = AdaptHD if name == "adapthd" else OnlineHD
    return cls(dim=dim, encoder=encoder, epochs=recipe["hdc_epochs"], seed=seed)


def _hdc(name: str) -> Callable[[Context, dict[str, Any], int], Deployment]:
    def deploy(ctx: Context, setting: dict[str, Any], seed: int) -> Deployment:
        data = ctx.data()
        x, y = data.train.tensors
        clf = _hdc_classifier(name, setting["dim"], seed, ctx.recipe)
        t0 = time.perf_counter()
        clf.fit(x.reshape(len(x), -1).numpy(), y.numpy())
        return Deployment(HDCModel(clf, data.input_shape, name), time.perf_counter() - t0, 0.0)

    return deploy


# ----------------------------------------------------------------------------------------------- other families
def _bnn(method: str) -> Callable[[Context, dict[str, Any], int], Deployment]:
    def deploy(ctx: Context, setting: dict[str, Any], seed: int) -> Deployment:
        from gnet.bnn import convert
        from gnet.models import build_for_method

        data = ctx.data()
        overrides = FAMILY_TRAINING["bnn"]
        t = ctx.trained(method, seed, lambda: build_for_method(method, data, seed=seed), overrides=overrides)
        t0 = time.perf_counter()
        model = convert(t.model, input_shape=data.input_shape)
        return Deployment(model, t.train_seconds, time.perf_counter() - t0, checkpoint=t)

    return deploy


def _difflogic_spec(ctx: Context, size: str, seed: int) -> dict[str, Any]:
    """The DiffLogic spec of ``size`` for the dataset: "small" is the dataset's default preset
    (:data:`gnet.models.DEFAULT_DIFFLOGIC`); "large" the paper's large MNIST model for MNIST-like data, else the
    default preset four times as wide. Data without a preset (UCR/UEA series) get
    :func:`gnet.logic.generic_difflogic_spec` of that size."""
    from gnet.logic import difflogic_spec, generic_difflogic_spec
    from gnet.models import DEFAULT_DIFFLOGIC

    data = ctx.data("unit")
    preset = DEFAULT_DIFFLOGIC.get(data.name)
    if preset is None:
        return generic_difflogic_spec(data.input_shape, data.n_classes, size, seed)
    if size == "small":
        return difflogic_spec(preset, seed=seed)
    if preset == "difflogic-mnist-small":
        return difflogic_spec("difflogic-mnist-large", seed=seed)
    base = difflogic_spec(preset, seed=seed)
    return difflogic_spec(preset, seed=seed, width=4 * base["width"])


def _difflogic(size: str) -> Callable[[Context, dict[str, Any], int], Deployment]:
    def deploy(ctx: Context, setting: dict[str, Any], seed: int) -> Deployment:
        from gnet.logic import TRAIN_DEFAULTS, DiffLogicNet, build_difflogic, convert

        spec = _difflogic_spec(ctx, size, seed)

        def build() -> tuple[Any, dict[str, Any]]:
            model = build_difflogic(spec)
            model.fit_encoder(ctx.data("unit").train.tensors[0])  # quantile thresholds; a no-op for the others
            return model, {"family": "difflogic", "method": "difflogic", "architecture": spec}

        t = ctx.trained(f"difflogic-{size}", seed, build, scaling="unit", overrides=dict(TRAIN_DEFAULTS))
        assert isinstance(t.model, DiffLogicNet)  # built above
        t0 = time.perf_counter()
        model = convert(t.model)
        return Deployment(model, t.train_seconds, time.perf_counter() - t0, scaling="unit", checkpoint=t)

    return deploy


def _cnn_float(ctx: Context, setting: dict[str, Any], seed: int) -> Deployment:
    from gnet.models import architecture_for

    data = ctx.data()
    specs = architecture_for(data)
    config = {"family": "cnn", "method": "cnn", "architecture": specs}
    t = ctx.trained("cnn-float", seed, lambda: (build_plain_cnn(specs, seed), config))
    model = FloatModel(t.model, data.input_shape, data.n_classes, config, "cnn-float")
    return Deployment(model, t.train_seconds, 0.0, checkpoint=t)


_REGISTRY = (
    Method("gnet-float", "float", "the trained float G-Net (reference)", False, _gnet_float),
    Method("ehd-paper", "ehd", "EHD G-Net, dense Gaussian G (the paper's)", True, _ehd("gaussian")),
    Method("ehd-fast", "ehd", "EHD G-Net, structured Hadamard G (O(dim log fan_in))", True, _ehd("hadamard")),
    Method("bnn", "bnn", "BNN with the straight-through estimator, packed XNOR-popcount", False, _bnn("bnn")),
    Method("bnn++", "bnn", "BNN++ (ProxConnect++), packed", False, _bnn("bnn++")),
    Method("fda", "bnn", "FDA (Fourier-series gradient), packed", False, _bnn("fda")),
    Method("difflogic-small", "logic", "DiffLogic, the dataset's default size", False, _difflogic("small")),
    Method("difflogic-large", "logic", "DiffLogic, large", False, _difflogic("large")),
    Method("centroidhd", "hdc", "CentroidHD on raw features (kernel encoder)", True, _hdc("centroidhd")),
    Method("adapthd", "hdc", "AdaptHD on raw features (kernel encoder)", True, _hdc("adapthd")),
    Method("onlinehd", "hdc", "OnlineHD on raw features (kernel encoder)", True, _hdc("onlinehd")),
    Method("hdc-on-ehd-codes", "ehd", f"{HDC_ON_CODES} on the EHD penultimate codes", True, _hdc_on_codes),
    Method("cnn-float", "float", "plain float CNN of the G-Net's shape (reference)", False, _cnn_float),
)
METHODS: dict[str, Method] = {m.name: m for m in _REGISTRY}
