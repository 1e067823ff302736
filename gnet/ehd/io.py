"""The ``.ehd`` file: one uncompressed ``.npz`` (no pickle) holding a JSON header and the packed weight codes.

Written and read through :mod:`hdc.io` (atomic write, format name and version, SHA-256 over the header and all
arrays). The header carries every layer's geometry, dim, scalars (b, alpha), the embedding and the seed from which
every G is regenerated, the model's ``input_shape`` and ``n_classes``, and its free-form ``meta``. Loading refuses a
truncated, altered, compressed or wrong-version file with an :class:`EHDFileError` that says which, and treats every
file as untrusted: a schema check of the header against the arrays' declared shapes runs before any array is read,
and what the file may make the loader or predictor allocate is bounded (see :func:`load_ehd`).

Versions: 2 (written now) names each layer's code length ``dim`` and stores ``input_shape`` / ``n_classes`` at the
top level; version 1 files (``n``, shape and classes inside ``meta``) still load.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gnet.ehd.layers import ACTIVATIONS, PROJECTIONS, EHDClassifier, EHDGLayer, Geometry
from gnet.ehd.model import EHDModel, Flatten, Pool, Stage
from hdc.io import MAX_BYTES_ENV, ArraySpec, ContainerError, load_container, max_load_bytes, save_container
from hdc.projection import EMBEDDINGS, PRECISIONS

__all__ = ["FORMAT", "READABLE_VERSIONS", "VERSION", "EHDFileError", "load_ehd", "save_ehd"]

FORMAT = "gnet-ehd"
VERSION = 2
READABLE_VERSIONS = (1, 2)


class EHDFileError(ContainerError):
    """An .ehd file is unreadable, truncated, altered, or of an unsupported version."""


def _stage_record(stage: Stage) -> dict[str, Any]:
    if isinstance(stage, Pool):
        return {"type": "pool", "dims": stage.dims, "kernel": stage.kernel}
    if isinstance(stage, Flatten):
        return {"type": "flatten"}
    g = stage.geometry
    return {
        "type": "classifier" if isinstance(stage, EHDClassifier) else "glayer",
        "geometry": {
            "kind": g.kind,
            "in_channels": g.in_channels,
            "out_units": g.out_units,
            "kernel": list(g.kernel),
            "stride": list(g.stride),
            "padding": list(g.padding),
            "dilation": list(g.dilation),
        },
        "dim": stage.dim,
        "bias": stage.bias,
        "alpha": stage.alpha,
        "activation": stage.activation,
        "embedding": stage.embedding,
        "seed": stage.seed,
        "index": stage.index,
        "projection": stage.projection,
        "precision": stage.precision,
    }


def save_ehd(model: EHDModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically (unique temporary name, then ``os.replace``); returns the path."""
    header = {
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "n_classes": model.n_classes,
        "meta": model.meta,
        "stages": [_stage_record(s) for s in model.stages],
    }
    arrays = {f"codes_{i}": s.codes for i, s in enumerate(model.stages) if isinstance(s, EHDGLayer)}
    return save_container(path, FORMAT, VERSION, header, arrays)


def _layer(rec: dict[str, Any], codes: Any, version: int) -> EHDGLayer:
    g = rec["geometry"]
    dim = rec["dim"] if version >= 2 else rec["n"]
    common = dict(embedding=rec["embedding"], seed=rec["seed"], index=rec["index"], precision=rec["precision"])
    if rec["type"] == "classifier":
        return EHDClassifier(g["in_channels"], g["out_units"], dim, codes, rec["bias"], **common)
    geometry = Geometry(
        g["kind"],
        g["in_channels"],
        g["out_units"],
        tuple(g["kernel"]),
        tuple(g["stride"]),
        tuple(g["padding"]),
        tuple(g["dilation"]),
    )
    return EHDGLayer(
        geometry,
        dim,
        codes,
        rec["bias"],
        projection=rec["projection"],
        activation=rec["activation"],
        alpha=rec["alpha"],
        **common,
    )


def _fail(path: Path, where: str, problem: str) -> EHDFileError:
    return EHDFileError(f"{path}: malformed header: {where.lstrip('.')} {problem}")


class _Schema:
    """Checks one file's JSON header against its arrays' declared shapes and dtypes, before any array is read."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes

    def int_(self, rec: Mapping[str, Any], key: str, where: str, minimum: int, maximum: int = 2**62) -> int:
        if key not in rec:
            raise _fail(self.path, where, f"lacks {key!r}")
        value = rec[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(self.path, f"{where}.{key}", f"must be an integer, got {value!r}")
        if value < minimum:
            raise _fail(self.path, f"{where}.{key}", f"must be >= {minimum}, got {value}")
        if value > maximum:
            raise _fail(self.path, f"{where}.{key}", f"must be <= {maximum}, got {value}")
        return value

    def number(self, rec: Mapping[str, Any], key: str, where: str) -> float:
        value = rec.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(self.path, f"{where}.{key}", f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise _fail(self.path, f"{where}.{key}", f"must be finite, got {value}")
        return float(value)

    def choice(self, rec: Mapping[str, Any], key: str, where: str, choices: tuple[Any, ...]) -> Any:
        value = rec.get(key, _MISSING)
        if value is _MISSING or value not in choices or isinstance(value, bool):
            raise _fail(self.path, f"{where}.{key}", f"must be one of {list(choices)}, got {value!r}")
        return value

    def ints(self, rec: Mapping[str, Any], key: str, where: str, length: int, minimum: int) -> list[int]:
        values = rec.get(key)
        if not isinstance(values, list) or len(values) != length:
            raise _fail(self.path, f"{where}.{key}", f"must be a list of {length} integers, got {values!r}")
        return [self.int_({key: v}, key, where, minimum, 2**20) for v in values]

    def budget(self, where: str, what: str, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            raise _fail(
                self.path,
                where,
                f"would make the predictor allocate {nbytes} bytes for {what}, above max_bytes={self.max_bytes} "
                f"(raise it with load_ehd(..., max_bytes=) or ${MAX_BYTES_ENV} if the file is trusted)",
            )

    def layer(self, rec: Mapping[str, Any], where: str, version: int, spec: ArraySpec | None) -> int:
        """Check a G-layer or classifier record and its codes' spec; returns its out_units."""
        g = rec.get("geometry")
        if not isinstance(g, dict):
            raise _fail(self.path, f"{where}.geometry", f"must be an object, got {type(g).__name__}")
        gw = f"{where}.geometry"
        kind = self.choice(g, "kind", gw, ("linear",) if rec["type"] == "classifier" else _KINDS)
        in_channels = self.int_(g, "in_channels", gw, 1, _MAX_UNITS)
        out_units = self.int_(g, "out_units", gw, 1, _MAX_UNITS)
        axes = {"linear": 0, "conv1d": 1, "conv2d": 2}[kind]
        kernel = self.ints(g, "kernel", gw, axes, 1)
        for key, minimum in (("stride", 1), ("padding", 0), ("dilation", 1)):
            self.ints(g, key, gw, axes, minimum)
        dim = self.int_(rec, "dim" if version >= 2 else "n", where, 1, _MAX_DIM)
        self.number(rec, "bias", where)
        self.number(rec, "alpha", where)
        self.choice(rec, "activation", where, ACTIVATIONS)
        self.choice(rec, "embedding", where, EMBEDDINGS)
        self.choice(rec, "precision", where, PRECISIONS)
        projection = self.choice(rec, "projection", where, PROJECTIONS)
        self.int_(rec, "seed", where, 0)
        self.int_(rec, "index", where, 0, 2**31)
        words = -(-dim // 64)
        if spec is None:
            raise _fail(self.path, where, "has no codes array")
        if spec.dtype != np.dtype("<u8") or spec.shape != (out_units, words):
            raise _fail(
                self.path, where, f"codes must be uint64 ({out_units}, {words}), the file has {spec.dtype} {spec.shape}"
            )
        fan_in = in_channels * math.prod(kernel)
        self.budget(where, f"G (dim {dim} x fan_in {fan_in}, float32)", 4 * dim * fan_in)
        self.budget(where, f"the dense weights (out_units {out_units} x dim {dim}, float32)", 4 * dim * out_units)
        if projection == "per_channel" and out_units > _MAX_PER_CHANNEL:
            raise _fail(self.path, where, f"has {out_units} per-channel projections, above {_MAX_PER_CHANNEL}")
        return out_units

    def __call__(self, header: dict[str, Any], specs: dict[str, ArraySpec]) -> None:
        version = header["version"]
        meta = header.get("meta", {})
        if not isinstance(meta, dict):
            raise _fail(self.path, "meta", f"must be an object, got {type(meta).__name__}")
        top = header if version >= 2 else meta
        shape = top.get("input_shape")
        if shape is not None:
            if not isinstance(shape, list) or not 1 <= len(shape) <= 4:
                raise _fail(self.path, "input_shape", f"must be null or a list of 1 to 4 integers, got {shape!r}")
            dims = [self.int_({"input_shape": v}, "input_shape", "", 1, 2**20) for v in shape]
            self.budget("input_shape", "a batch of 256 inputs (float32)", 256 * 4 * math.prod(dims))
        stages = header.get("stages")
        if not isinstance(stages, list) or not stages:
            raise _fail(self.path, "stages", f"must be a non-empty list, got {type(stages).__name__}")
        expected = set()
        out_units = 0
        for i, rec in enumerate(stages):
            where = f"stages[{i}]"
            if not isinstance(rec, dict):
                raise _fail(self.path, where, f"must be an object, got {type(rec).__name__}")
            kind = self.choice(rec, "type", where, ("pool", "flatten", "glayer", "classifier"))
            if kind == "pool":
                self.choice(rec, "dims", where, (1, 2))
                self.int_(rec, "kernel", where, 1, 2**20)
            elif kind in ("glayer", "classifier"):
                expected.add(f"codes_{i}")
                out_units = self.layer(rec, where, version, specs.get(f"codes_{i}"))
        if stages[-1].get("type") != "classifier":
            raise _fail(self.path, "stages", "must end with the classifier")
        if top.get("n_classes") is not None and self.int_(top, "n_classes", "", 1, _MAX_UNITS) != out_units:
            raise _fail(self.path, "n_classes", f"{top['n_classes']} does not match the classifier's {out_units}")
        if set(specs) != expected:
            extra = sorted(set(specs) ^ expected)
            raise _fail(self.path, "stages", f"do not match the arrays in the file (unmatched: {', '.join(extra)})")


_MISSING = object()
_KINDS = ("linear", "conv1d", "conv2d")
# Bounds no real model comes near; the byte budget (max_bytes) is the main guard.
_MAX_DIM = 2**26
_MAX_UNITS = 2**24
_MAX_PER_CHANNEL = 4096


def load_ehd(path: str | os.PathLike, *, max_bytes: int | None = None) -> EHDModel:
    """Read an ``.ehd`` file written by :func:`save_ehd` (or by version 1), verifying format, version, checksum.

    The file is untrusted: its header is checked (types, ranges, every layer's geometry, dim, finite scalars, the
    codes' declared shape and dtype) before any array is read, and refused if the codes, or what the predictor
    would allocate for one layer (G, dim x fan_in float32; dense weights, out_units x dim float32; a batch of 256
    inputs), exceed ``max_bytes``.

    Args:
        path: the ``.ehd`` file.
        max_bytes: the allocation bound (None: ``$HDC_MAX_LOAD_BYTES``, else 2 GiB).

    Raises:
        FileNotFoundError: no file at ``path``.
        EHDFileError: the file is unreadable, altered, compressed, of another version, malformed, or too large.
    """
    path = Path(path)
    bound = max_load_bytes(max_bytes)
    if not path.is_file():
        raise FileNotFoundError(f"EHD model not found: {path}")
    try:
        header, arrays = load_container(path, FORMAT, READABLE_VERSIONS, check=_Schema(path, bound), max_bytes=bound)
    except EHDFileError:
        raise
    except ContainerError as err:
        raise EHDFileError(str(err).replace(": no header", ": no header; not an .ehd file")) from None
    version = header["version"]
    try:
        stages: list[Stage] = []
        for i, rec in enumerate(header["stages"]):
            if rec["type"] == "pool":
                stages.append(Pool(rec["dims"], rec["kernel"]))
            elif rec["type"] == "flatten":
                stages.append(Flatten())
            else:
                stages.append(_layer(rec, arrays[f"codes_{i}"], version))
        meta = dict(header.get("meta", {}))
        if version >= 2:
            return EHDModel(stages, meta, input_shape=header.get("input_shape"), n_classes=header.get("n_classes"))
        if "n_per_layer" in meta:
            meta["dim_per_layer"] = meta.pop("n_per_layer")
        return EHDModel(stages, meta)  # version 1: input_shape and n_classes live in meta
    except (KeyError, TypeError, AttributeError) as err:
        raise EHDFileError(f"{path}: malformed header ({type(err).__name__}: {err})") from None
    except ValueError as err:  # a layer or the model refused a value (geometry, dim, codes, scalars)
        raise EHDFileError(f"{path}: invalid model ({err})") from None
