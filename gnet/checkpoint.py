"""Training checkpoints: a ``state_dict`` plus a JSON config that rebuilds the model.

One ``.pt`` file holds only tensors, strings and numbers, so it loads with ``torch.load(weights_only=True)``:
no pickle of arbitrary objects. The config carries the family and method (float G-Net, binary network, DiffLogic),
the architecture (layer specs or DiffLogic spec), the input shape, the number of classes and the training settings.
State that a method anneals lives in the model's buffers (e.g. a BNN's ``anneal_progress``), so it is in the
``state_dict`` too. :func:`load_model` rebuilds any family through :data:`BUILDERS`.

A checkpoint is untrusted input: :func:`load_checkpoint` checks the archive, the payload, the config's schema and the
size of the model it declares (:mod:`gnet.checkpoint_schema`) and the state_dict before anything is built, and
:func:`load_model` then requires the state_dict to match the built model exactly; every refusal is a
:class:`CheckpointError` (a ``ValueError``) naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gnet.checkpoint_schema import CheckpointError, check_config, config_family
from gnet.models import build_model
from hdc.io import MAX_BYTES_ENV, atomic_write, max_load_bytes

__all__ = [
    "BUILDERS",
    "FORMAT",
    "CheckpointError",
    "VERSION",
    "build_from_config",
    "config_family",
    "load_checkpoint",
    "load_model",
    "match_state_dict",
    "save_checkpoint",
]

FORMAT = "gnet-float-checkpoint"
VERSION = 1
_MAX_CONFIG_CHARS = 16 * 2**20  # the JSON config (a real one is a few KB)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: dict[str, Any], **extra: Any) -> Path:
    """Write ``model``'s state_dict, ``config`` (JSON-serialisable) and ``extra`` entries atomically; returns the
    path."""
    if "architecture" not in config:
        raise ValueError("config must contain 'architecture' (the layer specs) to rebuild the model")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    # A unique temporary name, then os.replace: a crash mid-write never leaves a half checkpoint under the real
    # name, and two writers of the same path never collide.
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def _scan_archive(path: Path, limit: int) -> None:
    """The zip archive torch.save writes, checked before torch reads it: stored (uncompressed) members only, which
    together hold at most ``limit`` bytes (torch would inflate a deflated member whatever its size)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable G-Net checkpoint (not a torch zip archive: {err})") from None
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise CheckpointError(f"{path}: compressed members are refused ({', '.join(packed[:3])})")
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise CheckpointError(
            f"{path}: the file holds {total} bytes, more than max_bytes {limit}; raise it with ${MAX_BYTES_ENV} if "
            "the file is trusted"
        )


def _check_state_dict(path: Path, state: Any, limit: int) -> int:
    """Names and tensors only, their declared sizes within ``limit`` (a tensor may view a tiny storage with a huge
    shape), every float finite; returns the values the file really stores (distinct storages)."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise CheckpointError(f"{path}: state_dict must map parameter names to tensors")
    declared = sum(v.numel() * v.element_size() for v in state.values())
    if declared > limit:
        raise CheckpointError(f"{path}: the state_dict declares {declared} bytes, more than max_bytes {limit}")
    storages = {}
    for name, value in state.items():
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: state_dict[{name!r}] holds NaN or infinite values")
        storage = value.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes() // max(1, value.element_size())
    return sum(storages.values())


def load_checkpoint(path: str | os.PathLike, max_bytes: int | None = None) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; the config comes back as a dict.

    The file is untrusted: the archive (stored members, at most ``max_bytes``, default
    :func:`hdc.io.max_load_bytes`), the format and version, the config's schema and the size of the model it
    declares (:func:`gnet.checkpoint_schema.check_config`) and the state_dict (tensors, finite, at least the
    values the declared model needs) are checked, and nothing is built. Raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    limit = max_load_bytes(max_bytes)
    _scan_archive(path, limit)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise CheckpointError(f"{path}: not a readable G-Net checkpoint ({_one_line(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a G-Net float checkpoint (format tag missing)")
    if type(payload.get("version")) is not int or payload["version"] != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {payload.get('version')!r} is not supported (need {VERSION})"
        )
    text = payload.get("config")
    if not isinstance(text, str) or len(text) > _MAX_CONFIG_CHARS:
        raise CheckpointError(f"{path}: the config must be a JSON string of at most {_MAX_CONFIG_CHARS} characters")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"{path}: the config is not valid JSON ({_one_line(err)})") from None
    try:
        estimate = check_config(config, limit)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    stored = _check_state_dict(path, payload.get("state_dict"), limit)
    if stored < estimate.min_stored:
        raise CheckpointError(
            f"{path}: the state_dict stores {stored} values but the architecture its config describes needs at "
            f"least {estimate.min_stored}: the weights do not fit the model"
        )
    payload["config"] = config
    return payload


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _build_gnet(config: dict[str, Any]) -> nn.Module:
    return build_model(config["architecture"])


def _build_bnn(config: dict[str, Any]) -> nn.Module:
    from gnet.bnn.models import build_from_config as build_bnn_from_config

    return build_bnn_from_config(config)


def _build_difflogic(config: dict[str, Any]) -> nn.Module:
    from gnet.logic.models import build_difflogic

    return build_difflogic(config["architecture"])


def _build_cnn(config: dict[str, Any]) -> nn.Module:
    from gnet.cnn import build_plain_cnn

    return build_plain_cnn(config["architecture"])


# family name (gnet.models.FAMILIES) -> builder of an untrained model from a checkpoint config
BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "gnet": _build_gnet,
    "bnn": _build_bnn,
    "difflogic": _build_difflogic,
    "cnn": _build_cnn,
}


def build_from_config(config: dict[str, Any], max_bytes: int | None = None) -> nn.Module:
    """An untrained model of the architecture and method that ``config`` names (see :data:`BUILDERS`), built only
    after the config passes :func:`gnet.checkpoint_schema.check_config` (types, ranges, size within
    ``max_bytes``)."""
    check_config(config, max_bytes)
    try:
        return BUILDERS[config_family(config)](config)
    except (KeyError, TypeError, RuntimeError) as err:  # a value the schema let through but a builder refused
        raise CheckpointError(f"cannot build the model the config describes ({_one_line(err)})") from None


def match_state_dict(model: nn.Module, state: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` naming the first key of ``state`` missing, extra, or of another shape or dtype
    than in ``model.state_dict()``; nothing is copied."""
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"the state_dict lacks {key!r}")
        got = state[key]
        if tuple(got.shape) != tuple(tensor.shape) or got.dtype != tensor.dtype:
            raise CheckpointError(
                f"state_dict[{key!r}] is {tuple(got.shape)} {got.dtype}, the model needs {tuple(tensor.shape)} "
                f"{tensor.dtype}"
            )
    extra = [key for key in state if key not in expected]
    if extra:
        raise CheckpointError(f"the state_dict holds {len(extra)} entries the model does not have, first {extra[0]!r}")


def load_model(path: str | os.PathLike, max_bytes: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint of any family; returns (model in eval mode, config).

    Every check of :func:`load_checkpoint` runs before the model is built; its state_dict must then match the
    built model's exactly (names, shapes, dtypes)."""
    payload = load_checkpoint(path, max_bytes)
    config = payload["config"]
    try:
        model = build_from_config(config, max_bytes)
        match_state_dict(model, payload["state_dict"])
        model.load_state_dict(payload["state_dict"])
    except CheckpointError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model its config describes: {err}") from None
    except (ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: the model its config describes: {_one_line(err)}") from None
    model.eval()
    return model, config
