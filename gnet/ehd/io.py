"""The ``.ehd`` file: one uncompressed ``.npz`` (no pickle) holding a JSON header and the packed weight codes.

The header carries the format name and version, every layer's geometry, N, scalars (b, alpha), the embedding and
the seed from which every G is regenerated, plus a SHA-256 over the header and all arrays. Loading refuses a
truncated, altered or wrong-version file with an error that says which.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gnet.ehd.layers import EHDClassifier, EHDGLayer, Geometry
from gnet.ehd.model import EHDModel, Flatten, Pool

__all__ = ["FORMAT", "VERSION", "save_ehd", "load_ehd", "EHDFileError"]

FORMAT = "gnet-ehd"
VERSION = 1


class EHDFileError(ValueError):
    """An .ehd file is unreadable, truncated, altered, or of an unsupported version."""


def _digest(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _stage_record(stage) -> dict[str, Any]:
    if isinstance(stage, Pool):
        return {"type": "pool", "dims": stage.dims, "kernel": stage.kernel}
    if isinstance(stage, Flatten):
        return {"type": "flatten"}
    g = stage.geometry
    return {
        "type": "classifier" if isinstance(stage, EHDClassifier) else "glayer",
        "geometry": {"kind": g.kind, "in_channels": g.in_channels, "out_units": g.out_units,
                     "kernel": list(g.kernel), "stride": list(g.stride), "padding": list(g.padding),
                     "dilation": list(g.dilation)},
        "n": stage.n, "bias": stage.bias, "alpha": stage.alpha, "activation": stage.activation,
        "embedding": stage.embedding, "seed": stage.seed, "index": stage.index,
        "projection": stage.projection, "precision": stage.precision,
    }


def save_ehd(model: EHDModel, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically; returns the path."""
    path = Path(path)
    header = {"format": FORMAT, "version": VERSION, "meta": model.meta,
              "stages": [_stage_record(s) for s in model.stages]}
    arrays = {f"codes_{i}": s.codes for i, s in enumerate(model.stages) if isinstance(s, EHDGLayer)}
    header_bytes = np.frombuffer(json.dumps({**header, "sha256": _digest(header, arrays)}).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, header=header_bytes, **arrays)
    os.replace(tmp, path)
    return path


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise EHDFileError(f"{path}: not a readable .ehd file (truncated or corrupt: {err})") from err
    if "header" not in arrays:
        raise EHDFileError(f"{path}: no header; not an .ehd file")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EHDFileError(f"{path}: corrupt header ({err})") from err
    return header, arrays


def load_ehd(path: str | os.PathLike) -> EHDModel:
    """Read an ``.ehd`` file written by :func:`save_ehd`, verifying format, version and checksum."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EHD model not found: {path}")
    header, arrays = _read(path)
    if header.get("format") != FORMAT:
        raise EHDFileError(f"{path}: format {header.get('format')!r} is not {FORMAT!r}")
    if header.get("version") != VERSION:
        raise EHDFileError(f"{path}: file version {header.get('version')} is not supported (this reader: {VERSION})")
    stored = header.pop("sha256", None)
    if stored != _digest(header, arrays):
        raise EHDFileError(f"{path}: checksum mismatch; the file was altered or damaged")
    stages: list = []
    for i, rec in enumerate(header["stages"]):
        if rec["type"] == "pool":
            stages.append(Pool(rec["dims"], rec["kernel"]))
        elif rec["type"] == "flatten":
            stages.append(Flatten())
        else:
            g = rec["geometry"]
            geometry = Geometry(g["kind"], g["in_channels"], g["out_units"], tuple(g["kernel"]), tuple(g["stride"]),
                                tuple(g["padding"]), tuple(g["dilation"]))
            common = dict(embedding=rec["embedding"], seed=rec["seed"], index=rec["index"],
                          precision=rec["precision"])
            codes = arrays[f"codes_{i}"]
            if rec["type"] == "classifier":
                stages.append(EHDClassifier(g["in_channels"], g["out_units"], rec["n"], codes, rec["bias"], **common))
            else:
                stages.append(EHDGLayer(geometry, rec["n"], codes, rec["bias"], projection=rec["projection"],
                                        activation=rec["activation"], alpha=rec["alpha"], **common))
    return EHDModel(stages, header["meta"])
