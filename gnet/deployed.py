"""Deployed binary models of every family behind one interface, and one loader that finds the family in the file.

A *deployed* model is what a trained network becomes for XOR/popcount inference: an :class:`gnet.ehd.EHDModel`
(``.ehd``), a :class:`gnet.bnn.PackedBNN` (``.bnn``) or a :class:`gnet.logic.LogicCircuit` (``.logic``). Each is
saved in an :mod:`hdc.io` container (format name, version, SHA-256) and each offers the methods of
:class:`DeployedModel`, so that ``gnet eval``, ``gnet robustness`` and ``gnet compare`` treat them alike.

Examples:
    >>> from gnet.deployed import FORMATS
    >>> sorted(FORMATS)
    ['gnet-bnn', 'gnet-ehd', 'gnet-logic']
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hdc.io import ContainerError, peek_format

__all__ = ["DEPLOYED_EXTENSIONS", "FORMATS", "DeployedModel", "ModelCost", "load_deployed"]

# Container format name -> (module, loader). Loaders take (path, *, max_bytes=None) and validate everything.
FORMATS: dict[str, tuple[str, str]] = {
    "gnet-ehd": ("gnet.ehd.io", "load_ehd"),
    "gnet-bnn": ("gnet.bnn.io", "load_packed_bnn"),
    "gnet-logic": ("gnet.logic.io", "load_circuit"),
}
# The file extensions the savers of those formats give their files (``gnet eval`` tells a deployed model from a
# checkpoint by them; .gitignore keeps such files of a comparison in git).
DEPLOYED_EXTENSIONS = (".ehd", ".bnn", ".logic")


@dataclass(frozen=True)
class ModelCost:
    """What a deployed model costs, counted from its layer shapes (never measured or guessed).

    Attributes:
        model_bits: bits of the model as deployed: packed codes and sign weights at 1 bit, gate ids at 4 bits and
            input indices at their stored width, every float scalar (thresholds, scales, biases) at its width.
            Equals ``8 *`` the payload bytes of the saved file's arrays where the file stores exactly that.
        bits_by_part: the same total split by part, e.g. ``{"codes": ..., "float32 scalars": ...}``.
        bit_ops_per_image: binary work per input item: one per XNOR/XOR bit plus one per popcounted bit (for a
            logic circuit: one per gate plus one per bit the GroupSum popcounts).
        float_macs_per_image: float multiply-adds per input item (real-valued first layers, projections).
    """

    model_bits: int
    bit_ops_per_image: int
    float_macs_per_image: int
    bits_by_part: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class DeployedModel(Protocol):
    """The interface every deployed family implements (structural: no base class to inherit).

    Attributes:
        family: ``"ehd"``, ``"bnn"`` or ``"logic"``.
        n_classes: number of classes.
        input_shape: shape of one input item (e.g. ``(1, 28, 28)``), or None where unknown.
    """

    family: str
    n_classes: int
    input_shape: tuple[int, ...] | None

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Labels (B,) int64 of inputs (B, *input_shape) float32 (torch or numpy); independent of ``batch_size``.

        A numpy array, or for the EHD family a torch tensor (``np.asarray`` takes both)."""
        ...

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Write the model atomically to ``path`` in its versioned, checksummed container; returns the path."""
        ...

    def fault_targets(self) -> tuple[str, ...]:
        """The fault targets :meth:`with_faults` accepts, the first one the default (e.g. ``("model", "data")``)."""
        ...

    def with_faults(self, p: float, target: str, seed: int, kind: str = "flip") -> DeployedModel:
        """A copy with faults at rate ``p`` in ``target`` (exactly ``round(p * bits)`` per code/word row, the
        :class:`hdc.faults.BitFaults` model), drawn from ``seed``; the caller's model is never changed."""
        ...

    def cost(self) -> ModelCost:
        """Model bits and work per image, counted from the layer shapes."""
        ...


def load_deployed(path: str | os.PathLike, *, max_bytes: int | None = None) -> DeployedModel:
    """Load a deployed model of any family; the family is read from the file's header, then its loader checks all.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: (``hdc.io.ContainerError`` or the family's file error) the file is not a deployed model of a
            known format, or its loader refuses it. A torch checkpoint (``.pt``) is named as such.
    """
    try:
        fmt, _ = peek_format(path, max_bytes)
    except ContainerError as err:
        hint = (
            " (a .pt checkpoint? convert it first: gnet convert for a G-Net, gnet.bnn.convert for a BNN, "
            "gnet.logic.io.convert_checkpoint for a DiffLogic network)"
        )
        raise ContainerError(f"{err}{hint if str(path).endswith('.pt') else ''}") from err
    if fmt not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ContainerError(f"{path}: a {fmt!r} file is not a deployed model (known formats: {known})")
    module, loader = FORMATS[fmt]
    model: DeployedModel = getattr(importlib.import_module(module), loader)(path, max_bytes=max_bytes)
    return model
