"""Training checkpoints: a ``state_dict`` plus a JSON config that rebuilds the model.

One ``.pt`` file holds only tensors, strings and numbers, so it loads with ``torch.load(weights_only=True)``:
no pickle of arbitrary objects. The config carries the family and method (float G-Net, binary network, DiffLogic),
the architecture (layer specs or DiffLogic spec), the input shape, the number of classes and the training settings.
State that a method anneals lives in the model's buffers (e.g. a BNN's ``anneal_progress``), so it is in the
``state_dict`` too. :func:`load_model` rebuilds any family through :data:`BUILDERS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gnet.models import build_model, family_of
from hdc.io import atomic_write

__all__ = [
    "BUILDERS",
    "FORMAT",
    "VERSION",
    "build_from_config",
    "config_family",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

FORMAT = "gnet-float-checkpoint"
VERSION = 1


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


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; the config comes back as a dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise ValueError(f"{path}: not a readable G-Net checkpoint ({err})") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a G-Net float checkpoint (format tag missing)")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')} is not supported (need {VERSION})")
    payload["config"] = json.loads(payload["config"])
    return payload


def _build_gnet(config: dict[str, Any]) -> nn.Module:
    return build_model(config["architecture"])


def _build_bnn(config: dict[str, Any]) -> nn.Module:
    from gnet.bnn.models import build_from_config as build_bnn_from_config

    return build_bnn_from_config(config)


def _build_difflogic(config: dict[str, Any]) -> nn.Module:
    from gnet.logic.models import build_difflogic

    return build_difflogic(config["architecture"])


# family name (gnet.models.FAMILIES) -> builder of an untrained model from a checkpoint config
BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "gnet": _build_gnet,
    "bnn": _build_bnn,
    "difflogic": _build_difflogic,
}


def config_family(config: dict[str, Any]) -> str:
    """The family of a checkpoint config: its ``family``, else that of its ``method``; configs written before
    other families existed name neither and are float G-Nets."""
    family = config.get("family")
    if family is None:
        family = family_of(config.get("method", "gnet"))
    if family not in BUILDERS:
        raise ValueError(f"unknown model family {family!r}; valid: {', '.join(BUILDERS)}")
    return str(family)


def build_from_config(config: dict[str, Any]) -> nn.Module:
    """An untrained model of the architecture and method that ``config`` names (see :data:`BUILDERS`)."""
    return BUILDERS[config_family(config)](config)


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint of any family; returns (model in eval mode, config)."""
    payload = load_checkpoint(path)
    config = payload["config"]
    model = build_from_config(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # missing / unexpected keys and shape mismatches
        raise ValueError(f"{path}: the weights do not fit the model its config describes ({err})") from err
    model.eval()
    return model, config
