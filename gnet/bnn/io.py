"""The ``.bnn`` file: a packed BNN (:class:`gnet.bnn.PackedBNN`) in an :mod:`hdc.io` container.

One uncompressed ``.npz`` (no pickle): a JSON header and the arrays, with format name ``gnet-bnn``, a version and a
SHA-256 over everything. The header holds ``method``, ``n_classes``, ``input_shape`` (or null), ``meta`` and one
record per stage; the arrays of stage ``i`` are named after it:

============================ ============================================ =======================================
stage record                 arrays                                       meaning
============================ ============================================ =======================================
``layer`` (kind linear /     ``words_i`` uint64 (O, n_words(C)) linear;   sign weights, bit 1 = +1, tail bits 0
conv1d / conv2d, in_channels ``(O, prod(kernel) * n_words(C))`` conv
out_units, kernel, stride,   ``threshold_i`` (sign layers): int32 (O,)    unit fires where ``dot >= threshold``
padding, dilation, sign,     for binary inputs, float64 (O,) for real
input_binary,                ``alpha_i`` float64 (O,) if ``scale``        real outputs: ``BN(alpha * dot)``
binarize_input, scale,       ``bn_mean_i``, ``bn_inv_i``, ``bn_beta_i``   (layers without sign)
batch_norm)                  float64 (O,) if ``batch_norm``
``batchnorm`` (channels)     ``bn_mean_i``, ``bn_inv_i``, ``bn_beta_i``   ``(y - mean) * inv + beta``
``binarize``, ``flatten``,   none
``pool`` (dims, kernel,
stride, padding, dilation,
ceil_mode), ``relu``,
``hardtanh`` (min_val,
max_val)
============================ ============================================ =======================================

Every file is untrusted. Before any array is read, the header is checked against every array's declared dtype and
shape (:class:`hdc.io.ArraySpec`): types and ranges of every field, finite numbers, that the stages fit together
(binary and real states, channels, and with an ``input_shape`` every spatial size down to the logits), that the
arrays are exactly the ones the stages need, and that what the predictor would allocate (the +-1 weights, and
with an ``input_shape`` the activations of a batch of 256) stays under ``max_bytes``. After reading, the values
are checked: zero tail bits, thresholds in range and not NaN, finite scales.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnet.bnn._packed_layer import PackedLayer, weights_from_words
from gnet.bnn._schema import BNNFileError, Schema
from gnet.bnn._stages import BatchNormStage, Binarize, Flatten, Pool, RealActivation
from gnet.bnn.packed import PackedBNN
from hdc.io import ContainerError, load_container, max_load_bytes, save_container
from hdc.packed import WORD_BITS, pack_bits, tail_mask

__all__ = ["EXTENSION", "FORMAT", "VERSION", "BNNFileError", "load_packed_bnn", "save_packed_bnn"]

FORMAT = "gnet-bnn"
VERSION = 1
EXTENSION = ".bnn"


def _layer_record(layer: PackedLayer) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": "layer",
        "kind": layer.kind,
        "in_channels": layer.in_channels,
        "out_units": layer.out_units,
        "kernel": list(layer.kernel),
        "sign": layer.sign,
        "input_binary": layer.input_binary,
        "binarize_input": layer.binarize_input,
        "scale": layer.alpha is not None,
        "batch_norm": layer.bn is not None,
    }
    for key in ("stride", "padding", "dilation"):
        rec[key] = list(layer.conv.get(key, ()))
    return rec


def _layer_arrays(i: int, layer: PackedLayer) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {f"words_{i}": np.ascontiguousarray(layer.words, dtype=np.uint64)}
    if layer.sign:
        assert layer.threshold is not None  # folded at conversion
        dtype = np.int32 if layer.input_binary else np.float64
        arrays[f"threshold_{i}"] = layer.threshold.numpy().astype(dtype)
    if layer.alpha is not None:
        arrays[f"alpha_{i}"] = layer.alpha.numpy().astype(np.float64)
    if layer.bn is not None:
        arrays.update(_bn_arrays(i, layer.bn))
    return arrays


def _bn_arrays(i: int, bn: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
    return {f"bn_{name}_{i}": t.numpy().astype(np.float64) for name, t in zip(("mean", "inv", "beta"), bn, strict=True)}


def save_packed_bnn(model: PackedBNN, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (a ``.bnn`` file; ``.bnn`` is appended to a path without a suffix);
    returns the path.

    Raises:
        ValueError: ``model`` carries activation faults (they act at inference and are not stored).
    """
    if not isinstance(model, PackedBNN):
        raise ValueError(f"save_packed_bnn expects a PackedBNN (gnet.bnn.convert), got {type(model).__name__}")
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(EXTENSION)
    stages: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for i, stage in enumerate(model.stages):
        if isinstance(stage, PackedLayer):
            if stage.input_fault is not None:
                raise ValueError("a model with activation faults cannot be saved: they act at inference")
            stages.append(_layer_record(stage))
            arrays.update(_layer_arrays(i, stage))
        else:
            stages.append(stage.record())
            if isinstance(stage, BatchNormStage):
                arrays.update(_bn_arrays(i, (stage.mean, stage.inv, stage.beta)))
    header = {
        "method": model.method,
        "n_classes": model.n_classes,
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "meta": model.meta,
        "stages": stages,
    }
    return save_container(path, FORMAT, VERSION, header, arrays)


def _check_values(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """The checks that need the data: tail bits, threshold ranges, finite floats."""
    for i, rec in enumerate(header["stages"]):
        if rec["type"] == "layer":
            words = arrays[f"words_{i}"]
            channels = rec["in_channels"]  # a linear layer's words are one position of in_channels bits
            if channels % WORD_BITS and np.any(
                words.reshape(len(words), -1, -(-channels // WORD_BITS))[..., -1] & ~tail_mask(channels)
            ):
                raise BNNFileError(f"{path}: words_{i} has non-zero tail bits")
            fan_in = channels * int(np.prod(rec["kernel"], dtype=np.int64))
            t = arrays.get(f"threshold_{i}")
            if t is not None and rec["input_binary"] and (t.min() < -fan_in - 1 or t.max() > fan_in + 2):
                raise BNNFileError(f"{path}: threshold_{i} lies outside [{-fan_in - 1}, {fan_in + 2}] (fan_in)")
            if t is not None and not rec["input_binary"] and np.isnan(t).any():
                raise BNNFileError(f"{path}: threshold_{i} holds NaN")
        for name in ("alpha", "bn_mean", "bn_inv", "bn_beta"):
            a = arrays.get(f"{name}_{i}")
            if a is not None and not np.isfinite(a).all():
                raise BNNFileError(f"{path}: {name}_{i} holds NaN or inf")


def _stage(rec: dict[str, Any], i: int, arrays: dict[str, np.ndarray]) -> Any:
    kind = rec["type"]
    if kind == "layer":
        return _layer(rec, i, arrays)
    if kind == "batchnorm":
        return BatchNormStage(*(torch.from_numpy(arrays[f"bn_{n}_{i}"]) for n in ("mean", "inv", "beta")))
    if kind == "pool":
        kernel, stride, padding, dilation = (tuple(rec[k]) for k in ("kernel", "stride", "padding", "dilation"))
        return Pool(rec["dims"], kernel, stride, padding, dilation, rec["ceil_mode"])
    if kind in ("relu", "hardtanh"):
        bounds = (float(rec["min_val"]), float(rec["max_val"])) if kind == "hardtanh" else ()
        return RealActivation(kind, *bounds)
    return Binarize() if kind == "binarize" else Flatten()


def _layer(rec: dict[str, Any], i: int, arrays: dict[str, np.ndarray]) -> PackedLayer:
    words = np.ascontiguousarray(arrays[f"words_{i}"], dtype=np.uint64)
    shape = (rec["out_units"], rec["in_channels"], *rec["kernel"])
    threshold = None
    if rec["sign"]:
        t = arrays[f"threshold_{i}"]
        threshold = torch.from_numpy(t.astype(np.int64 if rec["input_binary"] else np.float64))
    bn = None
    if rec["batch_norm"]:
        bn = tuple(torch.from_numpy(arrays[f"bn_{n}_{i}"]) for n in ("mean", "inv", "beta"))
    conv = {k: tuple(rec[k]) for k in ("stride", "padding", "dilation")} if rec["kind"] != "linear" else {}
    return PackedLayer(
        kind=rec["kind"],
        weight_pm1=weights_from_words(words, shape),
        words=words,
        alpha=torch.from_numpy(arrays[f"alpha_{i}"]) if rec["scale"] else None,
        bn=bn,  # type: ignore[arg-type]  # a 3-tuple by construction
        sign=rec["sign"],
        input_binary=rec["input_binary"],
        binarize_input=rec["binarize_input"],
        conv=conv,
        threshold=threshold,
        pad_word=pack_bits(np.ones(rec["in_channels"], dtype=bool)) if rec["kind"] != "linear" else None,
    )


def load_packed_bnn(path: str | os.PathLike, *, max_bytes: int | None = None) -> PackedBNN:
    """Read a ``.bnn`` file written by :func:`save_packed_bnn`, verifying format, version, checksum and schema.

    Args:
        path: the ``.bnn`` file.
        max_bytes: bound on the arrays and on what the predictor would allocate (None: ``$HDC_MAX_LOAD_BYTES``,
            else 2 GiB).

    Raises:
        FileNotFoundError: no file at ``path``.
        BNNFileError: (a ValueError) the file is unreadable, altered, compressed, of another format or version,
            malformed, or too large; the message names the field and the problem.
    """
    path = Path(path)
    bound = max_load_bytes(max_bytes)
    if not path.is_file():
        raise FileNotFoundError(f"packed BNN not found: {path}")
    try:
        header, arrays = load_container(path, FORMAT, (VERSION,), check=Schema(path, bound), max_bytes=bound)
    except BNNFileError:
        raise
    except ContainerError as err:
        raise BNNFileError(str(err).replace(": no header", ": no header; not a .bnn file")) from None
    _check_values(path, header, arrays)
    stages = [_stage(rec, i, arrays) for i, rec in enumerate(header["stages"])]
    return PackedBNN(
        stages, header["n_classes"], header["method"], input_shape=header["input_shape"], meta=header["meta"]
    )
