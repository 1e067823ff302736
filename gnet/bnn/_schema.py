"""The schema check of a ``.bnn`` header against its arrays' declared shapes, run before any array is read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gnet.bnn._packed_layer import KINDS
from gnet.bnn._stages import Pool
from gnet.bnn.models import METHODS
from hdc.io import MAX_BYTES_ENV, ArraySpec, ContainerError
from hdc.packed import WORD_BITS

__all__ = ["BNNFileError", "Schema"]

_MISSING = object()
_STAGES = ("layer", "batchnorm", "binarize", "flatten", "pool", "relu", "hardtanh")
_BOOLS = ("sign", "input_binary", "binarize_input", "scale", "batch_norm")
# Bounds no real model comes near; the byte budget (max_bytes) is the main guard.
_MAX_UNITS = 2**24
_MAX_SIZE = 2**20
_MAX_STAGES = 10_000
_MAX_FAN_IN = 2**31 - 64  # Hamming distances and thresholds are int32
_BATCH = 256  # the predictor's default batch: what one batch's activations may cost is bounded
_U8, _I4, _F8 = np.dtype("<u8"), np.dtype("<i4"), np.dtype("<f8")


class BNNFileError(ContainerError):
    """A ``.bnn`` file is unreadable, truncated, altered, malformed, too large, or of an unsupported version."""


@dataclass
class _Flow:
    """What the checked stages so far produce: binary or real, and the per-item shape where known."""

    binary: bool = False
    shape: tuple[int, ...] | None = None
    channels: int | None = None
    dims: int | None = None  # spatial axes (0 after flatten), None while unknown


class Schema:
    """``Schema(path, max_bytes)(header, specs)`` raises :class:`BNNFileError` naming the first problem."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes
        self.expected: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}

    def fail(self, where: str, problem: str) -> BNNFileError:
        return BNNFileError(f"{self.path}: malformed header: {where} {problem}")

    def int_(self, rec: Mapping[str, Any], key: str, where: str, minimum: int, maximum: int) -> int:
        value = rec.get(key, _MISSING)
        if value is _MISSING:
            raise self.fail(where, f"lacks {key!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{where}.{key}", f"must be an integer, got {value!r}")
        if not minimum <= value <= maximum:
            raise self.fail(f"{where}.{key}", f"must lie in [{minimum}, {maximum}], got {value}")
        return value

    def bool_(self, rec: Mapping[str, Any], key: str, where: str) -> bool:
        value = rec.get(key)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"must be true or false, got {value!r}")
        return value

    def number(self, rec: Mapping[str, Any], key: str, where: str) -> float:
        value = rec.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"{where}.{key}", f"must be a finite number, got {value!r}")
        return float(value)

    def choice(self, rec: Mapping[str, Any], key: str, where: str, choices: tuple[Any, ...]) -> Any:
        value = rec.get(key, _MISSING)
        if value is _MISSING or isinstance(value, (bool, list, dict)) or value not in choices:
            raise self.fail(f"{where}.{key}", f"must be one of {list(choices)}, got {value!r}")
        return value

    def ints(self, rec: Mapping[str, Any], key: str, where: str, length: int, minimum: int) -> tuple[int, ...]:
        values = rec.get(key)
        if not isinstance(values, list) or len(values) != length:
            raise self.fail(f"{where}.{key}", f"must be a list of {length} integers, got {values!r}")
        return tuple(self.int_({key: v}, key, where, minimum, _MAX_SIZE) for v in values)

    def budget(self, where: str, what: str, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            raise self.fail(
                where,
                f"would make the predictor allocate {nbytes} bytes for {what}, above max_bytes={self.max_bytes} "
                f"(raise it with load_packed_bnn(..., max_bytes=) or ${MAX_BYTES_ENV} if the file is trusted)",
            )

    def array(self, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.expected[name] = (dtype, shape)

    def _spatial(self, flow: _Flow, dims: int, where: str) -> tuple[int, ...] | None:
        """The incoming spatial shape (None while unknown); refuses a state of the wrong rank."""
        if flow.dims is not None and flow.dims != dims:
            raise self.fail(where, f"expects {dims} spatial axes, the stages before give {flow.dims}")
        return None if flow.shape is None else flow.shape[1:]

    def layer(self, rec: Mapping[str, Any], i: int, flow: _Flow) -> None:
        where = f"stages[{i}]"
        kind = self.choice(rec, "kind", where, KINDS)
        dims = KINDS.index(kind)
        c_in = self.int_(rec, "in_channels", where, 1, _MAX_UNITS)
        out = self.int_(rec, "out_units", where, 1, _MAX_UNITS)
        kernel = self.ints(rec, "kernel", where, dims, 1)
        stride, padding, dilation = (self.ints(rec, k, where, dims, m) for k, m in _CONV_KEYS)
        sign, binary_in, binarize, scale, bn = (self.bool_(rec, k, where) for k in _BOOLS)
        if binarize and (flow.binary or not binary_in):
            raise self.fail(where, "binarize_input needs a real input and input_binary true")
        if not binarize and binary_in != flow.binary:
            raise self.fail(
                f"{where}.input_binary",
                f"is {binary_in}, but the stages before give a {'binary' if flow.binary else 'real'} state",
            )
        if sign and (scale or bn):
            raise self.fail(where, "a sign layer stores thresholds only (scale and batch_norm must be false)")
        if flow.channels is not None and flow.channels != c_in:
            raise self.fail(f"{where}.in_channels", f"is {c_in}, but the stages before give {flow.channels}")
        fan_in = c_in * math.prod(kernel)
        if fan_in > _MAX_FAN_IN:
            raise self.fail(where, f"has fan_in {fan_in}, above {_MAX_FAN_IN}")
        spatial = self._spatial(flow, dims, where)
        self.array(f"words_{i}", _U8, (out, math.prod(kernel) * -(-c_in // WORD_BITS)))
        if sign:
            self.array(f"threshold_{i}", _I4 if binary_in else _F8, (out,))
        if scale:
            self.array(f"alpha_{i}", _F8, (out,))
        if bn:
            for name in ("mean", "inv", "beta"):
                self.array(f"bn_{name}_{i}", _F8, (out,))
        self.budget(where, f"the +-1 weights ({out} x {fan_in}, float64)", 8 * out * fan_in)
        out_spatial: tuple[int, ...] | None = None
        if spatial is not None:
            out_spatial = tuple(
                (n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation, strict=True)
            )
            if any(n < 1 for n in out_spatial):
                raise self.fail(where, f"leaves no output positions for input shape {flow.shape}")
            positions = math.prod(out_spatial)
            per_patch = 8 * math.prod(kernel) * -(-c_in // WORD_BITS) if binary_in else 8 * fan_in
            self.budget(where, f"the patches of a batch of {_BATCH}", _BATCH * positions * per_patch)
            self.budget(where, f"the outputs of a batch of {_BATCH} (float64)", 8 * _BATCH * positions * out)
        flow.binary, flow.channels, flow.dims = sign, out, dims
        flow.shape = None if out_spatial is None else (out, *out_spatial)

    def pool(self, rec: Mapping[str, Any], i: int, flow: _Flow) -> None:
        where = f"stages[{i}]"
        dims = self.choice(rec, "dims", where, (1, 2))
        kernel = self.ints(rec, "kernel", where, dims, 1)
        stride, padding, dilation = (self.ints(rec, k, where, dims, m) for k, m in _CONV_KEYS)
        self.bool_(rec, "ceil_mode", where)
        if any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
            raise self.fail(f"{where}.padding", f"must be at most half the kernel {list(kernel)}, got {padding}")
        spatial = self._spatial(flow, dims, where)
        if spatial is not None:
            out = Pool(dims, kernel, stride, padding, dilation, rec["ceil_mode"]).out_shape(spatial)
            if any(n < 1 for n in out):
                raise self.fail(where, f"leaves no output positions for input shape {flow.shape}")
            assert flow.shape is not None  # spatial is known
            flow.shape = (flow.shape[0], *out)

    def stage(self, rec: Any, i: int, flow: _Flow) -> str:
        where = f"stages[{i}]"
        if not isinstance(rec, dict):
            raise self.fail(where, f"must be an object, got {type(rec).__name__}")
        kind = self.choice(rec, "type", where, _STAGES)
        if kind == "layer":
            self.layer(rec, i, flow)
        elif kind == "pool":
            self.pool(rec, i, flow)
        elif kind == "flatten":
            flow.shape = None if flow.shape is None else (math.prod(flow.shape),)
            flow.channels = None if flow.shape is None else flow.shape[0]
            flow.dims = 0
        elif kind == "binarize":
            flow.binary = True
        elif kind == "batchnorm":
            channels = self.int_(rec, "channels", where, 1, _MAX_UNITS)
            if flow.channels is not None and flow.channels != channels:
                raise self.fail(f"{where}.channels", f"is {channels}, but the stages before give {flow.channels}")
            for name in ("mean", "inv", "beta"):
                self.array(f"bn_{name}_{i}", _F8, (channels,))
            flow.binary = False
        else:  # relu, hardtanh
            if kind == "hardtanh" and self.number(rec, "min_val", where) > self.number(rec, "max_val", where):
                raise self.fail(where, "min_val must not exceed max_val")
            flow.binary = False
        return kind

    def top(self, header: Mapping[str, Any]) -> _Flow:
        self.choice(header, "method", "method", tuple(METHODS))
        if not isinstance(header.get("meta"), dict):
            raise self.fail("meta", f"must be an object, got {header.get('meta')!r}")
        flow = _Flow()
        shape = header.get("input_shape", _MISSING)
        if shape is not None:
            if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
                raise self.fail("input_shape", f"must be null or a list of 1 to 3 integers, got {shape!r}")
            flow.shape = self.ints(header, "input_shape", "", len(shape), 1)
            flow.channels, flow.dims = flow.shape[0], len(shape) - 1
            self.budget("input_shape", f"a batch of {_BATCH} inputs (float64)", 8 * _BATCH * math.prod(flow.shape))
        return flow

    def __call__(self, header: dict[str, Any], specs: dict[str, ArraySpec]) -> None:
        self.expected = {}
        flow = self.top(header)
        n_classes = self.int_(header, "n_classes", "", 1, _MAX_UNITS)
        stages = header.get("stages")
        if not isinstance(stages, list) or not 1 <= len(stages) <= _MAX_STAGES:
            raise self.fail("stages", f"must be a list of 1 to {_MAX_STAGES} stages, got {type(stages).__name__}")
        for i, rec in enumerate(stages):
            self.stage(rec, i, flow)
        last = stages[-1]
        if last.get("type") != "layer" or last.get("kind") != "linear" or last.get("sign"):
            raise self.fail("stages", "must end with a linear layer without sign (the real logits)")
        if last.get("out_units") != n_classes:
            raise self.fail("n_classes", f"{n_classes} does not match the last layer's {last.get('out_units')}")
        if set(specs) != set(self.expected):
            unmatched = sorted(set(specs) ^ set(self.expected))
            raise self.fail("stages", f"do not match the arrays in the file (unmatched: {', '.join(unmatched)})")
        for name, (dtype, shape) in self.expected.items():
            spec = specs[name]
            if spec.dtype != dtype or spec.shape != shape:
                raise self.fail(name, f"must be {dtype} {shape}, the file has {spec.dtype} {spec.shape}")


_CONV_KEYS = (("stride", 1), ("padding", 0), ("dilation", 1))
