"""The ``.logic`` file: a hard logic circuit (:class:`gnet.logic.LogicCircuit`) in an :mod:`hdc.io` container.

Format ``"gnet-logic"``, version 1: one uncompressed ``.npz`` (no pickle) with a JSON header, written atomically,
with a SHA-256 over the header and every array. The arrays hold the circuit at its deployed size:

- ``gate_ids`` uint8 ``(ceil(n_gates / 2),)``: two 4-bit gate ids per byte (gate ``2 i`` in the low nibble,
  ``2 i + 1`` in the high one; layers concatenated; the unused high nibble of an odd count is zero);
- ``index_<l>`` ``(2, width_l)``: the two input indices of layer ``l``'s gates into the previous layer (the input
  bits for layer 0), in the smallest unsigned type holding the previous width (:func:`index_dtype`: uint8 up to
  256, uint16 up to 65,536, else uint32);
- ``input_source`` ``(n_input_bits,)``: the raw feature each input bit reads (smallest unsigned type holding
  ``raw_features``), and ``input_threshold`` float32 ``(n_input_bits,)``: input bit = ``x[source] > threshold``;
- ``tau`` float64 ``(1,)``: the GroupSum temperature.

The header holds ``n_classes``, ``raw_features``, ``strict_range``, ``input_shape``, the layer ``widths``,
``n_input_bits`` and a free-form ``meta`` object (provenance: dataset, scaling, preset, checkpoint).
:meth:`LogicCircuit.cost` counts exactly these arrays, so ``cost().model_bits == 8 *`` their bytes.

Loading treats the file as untrusted: the header is checked against every array's declared dtype and shape before
any data is read (types and ranges, widths, ``n_classes`` dividing the last width, the exact index dtypes), and
refused if what the engine would then allocate (the unpacked circuit, its plan and a batch of 256) exceeds
``max_bytes``; after reading, the values are checked (vectorised) before use: indices within the previous layer's
width, sources within ``raw_features``, finite thresholds and tau > 0, a zero tail nibble.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numba
import numpy as np

from gnet.deployed import ModelCost
from gnet.logic.convert import DEFAULT_BLOCK, LogicCircuit, convert
from hdc.io import MAX_BYTES_ENV, ArraySpec, ContainerError, load_container, max_load_bytes, peek_format, save_container

__all__ = [
    "EXTENSION",
    "FORMAT",
    "READABLE_VERSIONS",
    "VERSION",
    "LogicFileError",
    "circuit_cost",
    "convert_checkpoint",
    "index_dtype",
    "load_circuit",
    "save_circuit",
]

FORMAT = "gnet-logic"
VERSION = 1
READABLE_VERSIONS = (1,)
EXTENSION = ".logic"
_BATCH = 256  # the batch the allocation bound assumes (the protocol's default batch_size)
_MAX_LAYERS = 2**16
_MAX_WIDTH = 2**31


class LogicFileError(ContainerError):
    """A ``.logic`` file is unreadable, altered, of another format or version, malformed, or too large."""


def index_dtype(fan_in: int) -> np.dtype:
    """The stored dtype of indices below ``fan_in``: little-endian uint8, uint16 or uint32, the smallest that fits."""
    for dtype in ("|u1", "<u2", "<u4"):
        if fan_in <= np.iinfo(np.dtype(dtype)).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"fan-in {fan_in} exceeds 2**32")


def _arrays(c: LogicCircuit) -> dict[str, np.ndarray]:
    ids = np.concatenate(c.ids).astype(np.uint8)
    if len(ids) % 2:
        ids = np.append(ids, np.uint8(0))
    arrays = {"gate_ids": (ids[0::2] | (ids[1::2] << 4)).astype(np.uint8)}
    fan_in = c.n_input_bits
    for layer, (a, b) in enumerate(zip(c.index_a, c.index_b, strict=True)):
        arrays[f"index_{layer}"] = np.stack([a, b]).astype(index_dtype(fan_in))
        fan_in = len(a)
    arrays["input_source"] = c.input_source.astype(index_dtype(c.raw_features))
    arrays["input_threshold"] = c.input_threshold.astype("<f4")
    arrays["tau"] = np.array([c.tau], "<f8")
    return arrays


def save_circuit(circuit: LogicCircuit, path: str | os.PathLike) -> Path:
    """Write ``circuit`` atomically to ``path`` (``.logic`` appended when the name has no suffix); returns the path.

    A circuit with per-sample (runtime) faults cannot be saved: those are drawn at prediction time, not stored.
    """
    if not isinstance(circuit, LogicCircuit):
        raise TypeError(f"save_circuit expects a LogicCircuit, got {type(circuit).__name__}")
    if circuit.runtime_faults:
        raise ValueError("a circuit with per-sample faults (with_faults on gate_outputs or inputs) cannot be saved")
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(EXTENSION)
    header = {
        "n_classes": circuit.n_classes,
        "raw_features": circuit.raw_features,
        "strict_range": circuit.strict_range,
        "input_shape": list(circuit.input_shape or (circuit.raw_features,)),
        "widths": [len(g) for g in circuit.ids],
        "n_input_bits": circuit.n_input_bits,
        "meta": circuit.meta,
    }
    return save_container(path, FORMAT, VERSION, header, _arrays(circuit))


def circuit_cost(circuit: LogicCircuit) -> ModelCost:
    """What ``circuit`` costs, counted from its shapes as the ``.logic`` file stores it.

    ``model_bits``: gate ids at 4 bits (rounded up to whole bytes), every gate's two input indices at their stored
    width (:func:`index_dtype` of the previous layer's width), the input step (source index and float32 threshold
    per input bit) and tau (float64); equal to 8 x the bytes of the saved file's arrays. ``bit_ops_per_image``:
    one per gate (as stored, before pruning) plus one per popcounted output bit of the GroupSum (the last layer).
    ``float_macs_per_image``: the input step's float comparisons, one per input bit (no multiply-adds at all;
    counted here so that the float work is not hidden).
    """
    widths = [len(g) for g in circuit.ids]
    fan_ins = [circuit.n_input_bits, *widths[:-1]]
    parts = {
        "gate ids": 8 * math.ceil(circuit.n_gates / 2),
        "gate input indices": sum(16 * w * index_dtype(f).itemsize for w, f in zip(widths, fan_ins, strict=True)),
        "input sources": 8 * circuit.n_input_bits * index_dtype(circuit.raw_features).itemsize,
        "float32 thresholds": 32 * circuit.n_input_bits,
        "float64 tau": 64,
    }
    return ModelCost(
        model_bits=sum(parts.values()),
        bit_ops_per_image=circuit.n_gates + widths[-1],
        float_macs_per_image=circuit.n_input_bits,
        bits_by_part=parts,
    )


def _engine_bytes(widths: list[int], n_input_bits: int, raw_features: int) -> int:
    """What loading and predicting a batch of :data:`_BATCH` allocates: the unpacked circuit (9 bytes per gate:
    uint8 id, two int32 indices) and its plan (17 per gate), the input step, a float32 batch, its packed input
    words and each thread's two layer buffers."""
    n_gates = sum(widths)
    rows = max(n_input_bits, *widths)
    circuit = 26 * n_gates + 28 * n_input_bits
    batch = _BATCH * 4 * raw_features + 8 * n_input_bits * math.ceil(_BATCH / 64)
    buffers = numba.get_num_threads() * 2 * rows * DEFAULT_BLOCK * 8
    return circuit + batch + buffers


class _Schema:
    """Checks a file's JSON header against its arrays' declared dtypes and shapes, before any array is read."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes

    def fail(self, problem: str) -> LogicFileError:
        return LogicFileError(f"{self.path}: malformed logic circuit: {problem}")

    def int_(self, value: Any, where: str, minimum: int, maximum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(f"{where} must be an integer in [{minimum}, {maximum}], got {value!r}")
        return value

    def ints(self, value: Any, where: str, minimum: int, maximum: int, max_len: int) -> list[int]:
        if not isinstance(value, list) or not 1 <= len(value) <= max_len:
            raise self.fail(f"{where} must be a list of 1 to {max_len} integers, got {type(value).__name__}")
        return [self.int_(v, f"{where}[{i}]", minimum, maximum) for i, v in enumerate(value)]

    def array(self, specs: Mapping[str, ArraySpec], name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        spec = specs.get(name)
        if spec is None:
            raise self.fail(f"no array {name!r}")
        if spec.dtype != dtype or spec.shape != shape:
            raise self.fail(f"{name} must be {dtype} {shape}, the file has {spec.dtype} {spec.shape}")

    def __call__(self, header: dict[str, Any], specs: dict[str, ArraySpec]) -> None:
        n_classes = self.int_(header.get("n_classes"), "n_classes", 1, _MAX_WIDTH)
        raw = self.int_(header.get("raw_features"), "raw_features", 1, _MAX_WIDTH)
        n_bits = self.int_(header.get("n_input_bits"), "n_input_bits", 1, _MAX_WIDTH)
        widths = self.ints(header.get("widths"), "widths", 1, _MAX_WIDTH, _MAX_LAYERS)
        shape = self.ints(header.get("input_shape"), "input_shape", 1, _MAX_WIDTH, 8)
        if math.prod(shape) != raw:
            raise self.fail(f"input_shape {shape} does not hold raw_features={raw}")
        if not isinstance(header.get("strict_range"), bool):
            raise self.fail(f"strict_range must be true or false, got {header.get('strict_range')!r}")
        if not isinstance(header.get("meta"), dict):
            raise self.fail(f"meta must be an object, got {type(header.get('meta')).__name__}")
        if widths[-1] % n_classes:
            raise self.fail(f"the last width {widths[-1]} is not a multiple of n_classes={n_classes}")
        needed = _engine_bytes(widths, n_bits, raw)
        if needed > self.max_bytes:
            raise self.fail(
                f"the engine would allocate {needed} bytes for it (circuit, plan, a batch of {_BATCH}), above "
                f"max_bytes={self.max_bytes} (raise it with load_circuit(..., max_bytes=) or ${MAX_BYTES_ENV} if "
                "the file is trusted)"
            )
        expected = {"gate_ids", "input_source", "input_threshold", "tau", *(f"index_{i}" for i in range(len(widths)))}
        if set(specs) != expected:
            raise self.fail(f"the arrays do not match the header (unmatched: {sorted(set(specs) ^ expected)[:5]})")
        self.array(specs, "gate_ids", np.dtype("|u1"), (math.ceil(sum(widths) / 2),))
        for layer, (width, fan_in) in enumerate(zip(widths, [n_bits, *widths[:-1]], strict=True)):
            self.array(specs, f"index_{layer}", index_dtype(fan_in), (2, width))
        self.array(specs, "input_source", index_dtype(raw), (n_bits,))
        self.array(specs, "input_threshold", np.dtype("<f4"), (n_bits,))
        self.array(specs, "tau", np.dtype("<f8"), (1,))


def _check_values(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """The checks that need the data, vectorised, before anything uses it (the circuit checks the rest)."""
    widths = header["widths"]
    if sum(widths) % 2 and arrays["gate_ids"][-1] >> 4:
        raise LogicFileError(f"{path}: malformed logic circuit: the unused tail nibble of gate_ids is not zero")
    fan_in = header["n_input_bits"]
    for layer, width in enumerate(widths):
        index = arrays[f"index_{layer}"]
        if int(index.max()) >= fan_in:
            raise LogicFileError(
                f"{path}: malformed logic circuit: layer {layer} input index {int(index.max())} out of range for "
                f"the previous width {fan_in}"
            )
        fan_in = width
    if int(arrays["input_source"].max()) >= header["raw_features"]:
        raise LogicFileError(f"{path}: malformed logic circuit: input_source out of range")
    tau = float(arrays["tau"][0])
    if not (math.isfinite(tau) and tau > 0) or not np.isfinite(arrays["input_threshold"]).all():
        raise LogicFileError(f"{path}: malformed logic circuit: tau must be finite and > 0, thresholds finite")


def _check_format(path: Path, max_bytes: int) -> None:
    """Name a file of another family (or a torch checkpoint) before the full load."""
    try:
        fmt, _ = peek_format(path, max_bytes)
    except ContainerError as err:
        hint = " (a .pt checkpoint? convert it: gnet.logic.io.convert_checkpoint)" if path.suffix == ".pt" else ""
        raise LogicFileError(f"{err}{hint}") from None
    if fmt != FORMAT:
        raise LogicFileError(
            f"{path}: a {fmt!r} file, not a logic circuit ({FORMAT!r}); gnet.deployed.load_deployed reads any family"
        )


def load_circuit(path: str | os.PathLike, *, max_bytes: int | None = None) -> LogicCircuit:
    """Read a ``.logic`` file written by :func:`save_circuit`, verifying format, version, checksum and every value.

    Args:
        path: the file.
        max_bytes: bound on what the file may make the loader and the engine allocate (None:
            ``$HDC_MAX_LOAD_BYTES``, else 2 GiB).

    Raises:
        FileNotFoundError: no file at ``path``.
        LogicFileError: (a ``ValueError``) the file is unreadable, altered, compressed, of another family or
            version, malformed, or too large.
    """
    path = Path(path)
    bound = max_load_bytes(max_bytes)
    if not path.is_file():
        raise FileNotFoundError(f"logic circuit not found: {path}")
    _check_format(path, bound)
    try:
        header, arrays = load_container(path, FORMAT, READABLE_VERSIONS, check=_Schema(path, bound), max_bytes=bound)
    except LogicFileError:
        raise
    except ContainerError as err:
        raise LogicFileError(str(err)) from None
    _check_values(path, header, arrays)
    packed = arrays["gate_ids"]
    ids = np.empty(2 * len(packed), np.uint8)
    ids[0::2], ids[1::2] = packed & 0x0F, packed >> 4
    bounds = np.cumsum([0, *header["widths"]]).tolist()
    try:
        return LogicCircuit(
            [ids[lo:hi] for lo, hi in itertools.pairwise(bounds)],
            [arrays[f"index_{i}"][0] for i in range(len(header["widths"]))],
            [arrays[f"index_{i}"][1] for i in range(len(header["widths"]))],
            n_classes=header["n_classes"],
            tau=float(arrays["tau"][0]),
            input_source=arrays["input_source"],
            input_threshold=arrays["input_threshold"],
            raw_features=header["raw_features"],
            strict_range=header["strict_range"],
            input_shape=tuple(header["input_shape"]),
            meta=header["meta"],
        )
    except ValueError as err:  # the circuit's own checks; the schema and value checks above should catch all
        raise LogicFileError(f"{path}: invalid logic circuit ({err})") from None


def convert_checkpoint(
    checkpoint: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False
) -> tuple[Path, LogicCircuit]:
    """Convert a trained DiffLogic checkpoint (``gnet train --method difflogic``) into a ``.logic`` file.

    The circuit's ``meta`` records the checkpoint's dataset, val_fraction, data_seed and scaling (what
    :func:`gnet.data.load_for_model` needs to find the test split), the preset and the checkpoint path.

    Returns:
        (the written path, the circuit).

    Raises:
        ValueError: the checkpoint is unreadable or not a DiffLogic model.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    from gnet.checkpoint import config_family, load_model

    model, config = load_model(checkpoint)
    family = config_family(config)
    if family != "difflogic":
        raise ValueError(f"{checkpoint}: a {family!r} checkpoint, not a difflogic one (gnet train --method difflogic)")
    path = Path(out)
    if not path.suffix:
        path = path.with_suffix(EXTENSION)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    circuit = convert(model)  # type: ignore[arg-type]  # a difflogic config builds a DiffLogicNet
    keys = ("dataset", "val_fraction", "data_seed", "scaling")
    circuit.meta = {**circuit.meta, **{k: config[k] for k in keys if k in config}, "checkpoint": str(checkpoint)}
    return save_circuit(circuit, path), circuit
