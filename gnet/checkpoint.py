"""Float G-Net checkpoints: a ``state_dict`` plus a JSON config that rebuilds the model.

One ``.pt`` file holds only tensors, strings and numbers, so it loads with ``torch.load(weights_only=True)``:
no pickle of arbitrary objects. The config carries the architecture (layer specs), the input shape, the number of
classes and the training settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gnet.models import build_model
from hdc.io import atomic_write

__all__ = ["FORMAT", "VERSION", "load_checkpoint", "load_model", "save_checkpoint"]

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


def load_model(path: str | os.PathLike) -> tuple[nn.Sequential, dict[str, Any]]:
    """Rebuild the model from a checkpoint; returns (model in eval mode, config)."""
    payload = load_checkpoint(path)
    config = payload["config"]
    model = build_model(config["architecture"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, config
