"""The ``.ehd`` file: one uncompressed ``.npz`` (no pickle) holding a JSON header and the packed weight codes.

Written and read through :mod:`hdc.io` (atomic write, format name and version, SHA-256 over the header and all
arrays). The header carries every layer's geometry, dim, scalars (b, alpha), the embedding and the seed from which
every G is regenerated, the model's ``input_shape`` and ``n_classes``, and its free-form ``meta``. Loading refuses a
truncated, altered, compressed or wrong-version file with an :class:`EHDFileError` that says which.

Versions: 2 (written now) names each layer's code length ``dim`` and stores ``input_shape`` / ``n_classes`` at the
top level; version 1 files (``n``, shape and classes inside ``meta``) still load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gnet.ehd.layers import EHDClassifier, EHDGLayer, Geometry
from gnet.ehd.model import EHDModel, Flatten, Pool, Stage
from hdc.io import ContainerError, load_container, save_container

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


def load_ehd(path: str | os.PathLike) -> EHDModel:
    """Read an ``.ehd`` file written by :func:`save_ehd` (or by version 1), verifying format, version, checksum."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EHD model not found: {path}")
    try:
        header, arrays = load_container(path, FORMAT, READABLE_VERSIONS)
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
        meta = dict(header["meta"])
        if version >= 2:
            return EHDModel(stages, meta, input_shape=header["input_shape"], n_classes=header["n_classes"])
        if "n_per_layer" in meta:
            meta["dim_per_layer"] = meta.pop("n_per_layer")
        return EHDModel(stages, meta)  # version 1: input_shape and n_classes live in meta
    except (KeyError, TypeError, AttributeError) as err:
        raise EHDFileError(f"{path}: malformed header ({type(err).__name__}: {err})") from None
    except ValueError as err:  # a layer or the model refused a value (geometry, dim, codes, scalars)
        raise EHDFileError(f"{path}: invalid model ({err})") from None
