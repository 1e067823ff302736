"""The schema of a checkpoint's config, checked before any model is built: a ``.pt`` file is untrusted input.

``torch.load(weights_only=True)`` stops code execution, not config-driven allocation: a few hundred bytes of JSON
can declare a 23000 x 23000 layer or an architecture of 10**6 x 10**6 units. :func:`check_config` reads the config
as plain data, for every family (float G-Net layer specs, binary networks on the same specs, the DiffLogic spec),
and returns an :class:`Estimate` of what building and running the model would allocate, computed from the specs
alone:

- every key the builders read has the right type and range (ints for units and geometry, finite numbers, known
  names); unknown keys in a layer spec are ignored, as the builders ignore them;
- the shapes chain through the layers when the config records its ``input_shape`` (a conv layer's input channels,
  a linear layer's input width after ``flatten``), and the last layer's outputs equal ``n_classes``;
- the parameters and buffers of the built model (bytes, an upper bound) plus the largest activation of a batch of
  :data:`EVAL_BATCH` items stay within :func:`hdc.io.max_load_bytes` (2 GiB unless ``HDC_MAX_LOAD_BYTES`` or the
  ``max_bytes`` argument says otherwise);
- :attr:`Estimate.min_stored` is a lower bound on the values a matching ``state_dict`` holds (the main weight
  matrices), so a loader can refuse a file whose weights are far smaller than the model it declares before
  spending time on building it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gnet.models import FAMILIES, LAYER_TYPES, METHODS
from hdc._validate import check_choice, check_int, check_number
from hdc.io import MAX_BYTES_ENV, max_load_bytes

__all__ = ["EVAL_BATCH", "MAX_LAYERS", "CheckpointError", "Estimate", "check_config", "config_family"]

EVAL_BATCH = 256  # the batch whose activations the bound includes (gnet eval and predict run batches of this order)
MAX_LAYERS = 4096  # layer specs in one architecture (the paper's nets have about 12)
_MAX_INT = 2**31 - 1  # any unit count or geometry value beyond this is absurd for a torch layer
_FLOAT = 4  # bytes of a float32 value
_BIN_TYPES = ("conv2d", "conv1d", "linear", "classifier")
_BNN_TYPES = (*_BIN_TYPES, "rasu", "tasu", "maxpool2d", "maxpool1d", "flatten", "dropout", "dropout1d", "dropout2d")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, or its config, sizes or weights do not pass the checks."""


@dataclass
class Estimate:
    """What the model a config declares would allocate, from the specs alone.

    Attributes:
        param_bytes: its parameters and buffers (an upper bound).
        activation_bytes: its largest activation for one item (float32; 0 without an ``input_shape``).
        min_stored: values a ``state_dict`` that fits the model holds at least (its main weights).
    """

    param_bytes: int = 0
    activation_bytes: int = 0
    min_stored: int = 0

    @property
    def total_bytes(self) -> int:
        """Parameters plus the largest activation of a batch of :data:`EVAL_BATCH` items."""
        return self.param_bytes + EVAL_BATCH * self.activation_bytes


def _int(value: Any, where: str, minimum: int = 1) -> int:
    try:
        return check_int(value, where, minimum=minimum, maximum=_MAX_INT)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def _num(value: Any, where: str, minimum: float | None = None, maximum: float | None = None, strict=False) -> float:
    try:
        return check_number(value, where, minimum, maximum, strict=strict)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise CheckpointError(f"{where} must be true or false, got {value!r}")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    try:
        return check_choice(value, choices, where)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def _ints(value: Any, where: str, dims: int, minimum: int) -> tuple[int, ...]:
    """An int, or a list of ``dims`` ints, each >= ``minimum`` (torch's kernel / stride / padding arguments)."""
    if isinstance(value, (list, tuple)):
        if len(value) != dims:
            raise CheckpointError(f"{where} must be an int or a list of {dims}, got {value!r}")
        return tuple(_int(v, where, minimum) for v in value)
    return (_int(value, where, minimum),) * dims


def config_family(config: Any) -> str:
    """The family of a config (a key of :data:`gnet.models.FAMILIES`): its ``family``, else that of its
    ``method``; a config naming neither is a float G-Net's (written before other families existed)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"the config must be a JSON object, got {type(config).__name__}")
    family, method = config.get("family"), config.get("method")
    if family is not None:
        family = _choice(family, tuple(FAMILIES), "model family")
    if method is not None:
        method = _choice(method, METHODS, "method")
        if family is not None and method not in FAMILIES[family]:
            raise CheckpointError(f"method {method!r} is not of family {family!r}")
    if family is None:
        family = next(f for f, methods in FAMILIES.items() if (method or "gnet") in methods)
    return family


class _Walk:
    """The running state of :func:`_layer_estimate`: the shape of one item after each layer."""

    def __init__(self, input_shape: tuple[int, ...] | None) -> None:
        self.shape = input_shape
        self.channels: int | None = None  # a BNN activation's width: the last layer's outputs
        self.est = Estimate(activation_bytes=_FLOAT * math.prod(input_shape) if input_shape else 0)

    def take(self, where: str, dims: int, width: int) -> None:
        """The input of a layer that wants ``dims`` axes (channels first) with ``width`` channels / features."""
        if self.shape is None:
            return
        if len(self.shape) != dims or self.shape[0] != width:
            want = f"({width}, ...)" if dims > 1 else f"({width},)"
            raise CheckpointError(
                f"{where}: expects inputs of shape {want} per item, the layers before give {self.shape}"
            )

    def emit(self, shape: tuple[int, ...] | None, where: str) -> None:
        if shape is None or self.shape is None:  # no input_shape recorded: nothing to follow
            return
        if min(shape) < 1:
            raise CheckpointError(f"{where}: the output of this layer would be empty ({shape})")
        self.shape = shape
        self.est.activation_bytes = max(self.est.activation_bytes, _FLOAT * math.prod(shape))


def _noise(dim: int) -> int:
    """Values of FDA's noise-adaptation module on vectors of length ``dim`` (gnet.bnn.quantizers)."""
    return 2 * dim * max(1, dim // 64)


def _weight_layer(spec: dict, kind: str, where: str, walk: _Walk, family: str, noise: tuple[bool, bool]) -> None:
    """conv1d / conv2d / linear / classifier: parameters, geometry and output shape."""
    bn_values = 4 + 2  # weight, bias, running mean and var per unit; num_batches_tracked (int64) counts as 2
    if kind in ("linear", "classifier"):
        n_in = _int(spec.get("in"), f"{where}.in")
        out_key = "classes" if kind == "classifier" else "out"
        n_out = _int(spec.get(out_key), f"{where}.{out_key}")
        walk.take(where, 1, n_in)
        weights, fan_in = n_in * n_out, n_in
        out_shape: tuple[int, ...] | None = (n_out,) if walk.shape else None
    else:
        dims = 2 if kind == "conv2d" else 1
        n_in, n_out = _int(spec.get("in"), f"{where}.in"), _int(spec.get("out"), f"{where}.out")
        kernel = _ints(spec.get("kernel"), f"{where}.kernel", dims, 1)
        stride = _ints(spec.get("stride", 1), f"{where}.stride", dims, 1)
        padding = _ints(spec.get("padding", 0), f"{where}.padding", dims, 0)
        dilation = _ints(spec.get("dilation", 1), f"{where}.dilation", dims, 1)
        walk.take(where, dims + 1, n_in)
        fan_in = n_in * math.prod(kernel)
        weights = n_out * fan_in
        out_shape = None
        if walk.shape is not None:
            sizes = zip(walk.shape[1:], kernel, stride, padding, dilation, strict=True)
            out_shape = (n_out, *((s + 2 * p - d * (k - 1) - 1) // st + 1 for s, k, st, p, d in sizes))
    for key in ("bias_init", "scale"):
        if key in spec:
            _num(spec[key], f"{where}.{key}")
    if spec.get("weight_std") is not None:
        _num(spec["weight_std"], f"{where}.weight_std", 0.0, strict=True)
    batch_norm = _bool(spec.get("batch_norm", False), f"{where}.batch_norm")
    if family == "gnet":
        values = weights + 2 + (bn_values * n_out if batch_norm else 0)  # + the bias trick b (and a scale buffer)
    elif family == "cnn":
        values = weights + n_out  # plain layers: one bias per unit
    else:
        values = weights + bn_values * n_out + (_noise(fan_in) if noise[0] else 0)
    walk.est.param_bytes += _FLOAT * values
    walk.est.min_stored += weights
    walk.channels = n_out
    walk.emit(out_shape, where)


def _layer_estimate(
    specs: Any, family: str, input_shape: tuple[int, ...] | None, noise: tuple[bool, bool] = (False, False)
) -> tuple[Estimate, int]:
    """(estimate, outputs of the last layer) of a list of G-Net layer specs built as ``family`` (gnet, cnn, bnn);
    ``noise``: (weights, activations) carry FDA noise-adaptation modules."""
    if not isinstance(specs, list) or not specs:
        raise CheckpointError("architecture must be a non-empty list of layer specs")
    if len(specs) > MAX_LAYERS:
        raise CheckpointError(f"architecture has {len(specs)} layers, more than {MAX_LAYERS}")
    types = tuple(LAYER_TYPES) if family in ("gnet", "cnn") else _BNN_TYPES
    walk = _Walk(input_shape)
    for i, spec in enumerate(specs):
        where = f"architecture[{i}]"
        if not isinstance(spec, dict):
            raise CheckpointError(f"{where} must be a layer spec object, got {type(spec).__name__}")
        kind = _choice(spec.get("type"), types, f"{where} layer type")
        if kind in _BIN_TYPES:
            _weight_layer(spec, kind, where, walk, family, noise)
        elif kind in ("rasu", "tasu"):
            if "alpha" in spec:
                _num(spec["alpha"], f"{where}.alpha")
            channels = walk.channels or 0
            walk.est.param_bytes += _FLOAT * (1 + (_noise(channels) if family == "bnn" and noise[1] else 0))
        elif kind in ("maxpool2d", "maxpool1d"):
            dims = 2 if kind == "maxpool2d" else 1
            kernel = _ints(spec.get("kernel", 2), f"{where}.kernel", dims, 1)
            if walk.shape is not None:
                walk.take(where, dims + 1, walk.shape[0])
                walk.emit((walk.shape[0], *(s // k for s, k in zip(walk.shape[1:], kernel, strict=True))), where)
        elif kind == "flatten":
            walk.emit((math.prod(walk.shape),) if walk.shape is not None else None, where)
        elif "p" in spec:  # dropout
            _num(spec["p"], f"{where}.p", 0.0, 1.0)
    last = specs[-1]["type"]
    if last != "classifier" and not (family == "bnn" and last == "linear"):
        need = "a 'classifier' or 'linear'" if family == "bnn" else "a 'classifier'"
        raise CheckpointError(f"the last layer of the architecture must be {need} layer, got {last!r}")
    return walk.est, walk.channels or 0


def _quantizer_noise(value: Any, default_fda: bool, where: str) -> bool:
    """Whether a BNN quantizer config (None: the method's default) is FDA with a noise module (alpha > 0)."""
    if value is None:
        return default_fda
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise CheckpointError(f"{where} must be null or an object with a 'name', got {value!r}")
    return value["name"] == "fda" and _num(value.get("alpha", 0.1), f"{where}.alpha", 0.0) > 0


def _bnn_estimate(config: dict, input_shape: tuple[int, ...] | None) -> tuple[Estimate, int]:
    from gnet.bnn.layers import SCALES

    fda = config.get("method") == "fda"
    if "seed" in config:
        _int(config["seed"], "seed", 0)
    if "scale" in config:
        _choice(config["scale"], SCALES, "scale")
    if config.get("clip_value") is not None:
        _num(config["clip_value"], "clip_value", 0.0, strict=True)
    for key in ("keep_dropout", "auto_clip"):
        if key in config:
            _bool(config[key], key)
    noise = (
        _quantizer_noise(config.get("weight_quantizer"), fda, "weight_quantizer"),
        _quantizer_noise(config.get("activation_quantizer"), fda, "activation_quantizer"),
    )
    est, outputs = _layer_estimate(config["architecture"], "bnn", input_shape, noise)
    est.param_bytes += 8  # the anneal_progress buffer (float64)
    return est, outputs


def _difflogic_estimate(spec: Any, input_shape: tuple[int, ...] | None) -> tuple[Estimate, int]:
    """The DiffLogic spec: its keys, and the logits (16 per gate), wiring (two int64 per gate) and thresholds."""
    from gnet.logic.layers import CONNECTIONS, INITS

    if not isinstance(spec, dict):
        raise CheckpointError(f"a difflogic architecture must be an object, got {type(spec).__name__}")
    if spec.get("architecture") != "difflogic":
        raise CheckpointError(f"not a difflogic spec (architecture {spec.get('architecture')!r})")
    in_features, n_classes = _int(spec.get("in_features"), "in_features"), _int(spec.get("n_classes"), "n_classes")
    width, depth = _int(spec.get("width"), "width"), _int(spec.get("depth"), "depth")
    if depth > MAX_LAYERS:
        raise CheckpointError(f"depth {depth} is more than {MAX_LAYERS} layers")
    _num(spec.get("tau"), "tau", 0.0, strict=True)
    _choice(spec.get("connections", "unique"), CONNECTIONS, "connections")
    _choice(spec.get("init", "gaussian"), INITS, "init")
    _num(spec.get("grad_factor", 1.0), "grad_factor", 0.0, strict=True)
    _int(spec.get("seed", 0), "seed", 0)
    _int(spec.get("crop", 0), "crop", 0)
    shape = _shape(spec.get("input_shape"), "architecture.input_shape")
    encoder, k = spec.get("encoder"), 1
    if encoder is not None:
        if not isinstance(encoder, dict):
            raise CheckpointError(f"encoder must be null or an object, got {encoder!r}")
        _choice(encoder.get("kind"), ("thermometer",), "encoder kind")
        _choice(encoder.get("method", "uniform"), ("uniform", "quantile"), "encoder method")
        k = _int(encoder.get("k"), "encoder.k")
        value_range = encoder.get("value_range")
        if value_range is not None:
            if not isinstance(value_range, list) or len(value_range) != 2:
                raise CheckpointError(f"encoder.value_range must be null or [low, high], got {value_range!r}")
            for v in value_range:
                _num(v, "encoder.value_range")
    gates = width * depth
    est = Estimate(
        param_bytes=gates * (16 * _FLOAT + 2 * 8) + in_features * k * _FLOAT,
        activation_bytes=_FLOAT * max(width, in_features * k, math.prod(shape or input_shape or (1,))),
        min_stored=gates * 16,
    )
    return est, n_classes


def _shape(value: Any, where: str) -> tuple[int, ...] | None:
    """None, or a list of 1 to 4 positive ints: the shape of one input item."""
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= 4:
        raise CheckpointError(f"{where} must be a list of 1 to 4 positive ints, got {value!r}")
    return tuple(_int(v, where) for v in value)


def check_config(config: Any, max_bytes: int | None = None) -> Estimate:
    """Check a checkpoint config (module docstring) without building anything; returns its :class:`Estimate`.

    Raises:
        CheckpointError: naming the key and the problem, or the bytes the model would need against ``max_bytes``
            (default :func:`hdc.io.max_load_bytes`).
    """
    family = config_family(config)
    if "architecture" not in config:
        raise CheckpointError("the config lacks 'architecture' (the layer specs that rebuild the model)")
    for key, kind in (("train", dict), ("changes", list)):
        if key in config and not isinstance(config[key], kind):
            raise CheckpointError(f"config[{key!r}] must be a JSON {kind.__name__}, got {type(config[key]).__name__}")
    input_shape = _shape(config.get("input_shape"), "input_shape")
    if family in ("gnet", "cnn"):
        est, outputs = _layer_estimate(config["architecture"], family, input_shape)
    elif family == "bnn":
        _choice(config.get("method"), tuple(FAMILIES["bnn"]), "bnn method")
        est, outputs = _bnn_estimate(config, input_shape)
    else:
        est, outputs = _difflogic_estimate(config["architecture"], input_shape)
    if "n_classes" in config and _int(config["n_classes"], "n_classes") != outputs:
        raise CheckpointError(f"n_classes is {config['n_classes']} but the architecture outputs {outputs}")
    limit = max_load_bytes(max_bytes)
    if est.total_bytes > limit:
        raise CheckpointError(
            f"the architecture would allocate {est.total_bytes} bytes ({est.param_bytes} of parameters, "
            f"{EVAL_BATCH * est.activation_bytes} of activations for a batch of {EVAL_BATCH}), more than max_bytes "
            f"{limit}; raise it with ${MAX_BYTES_ENV} if the file is trusted"
        )
    return est
