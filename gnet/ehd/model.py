"""An EHD G-Net: a pipeline of EHD layers, pooling and flattening that ends in the binary classifier."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gnet.ehd.layers import BACKENDS, EHDClassifier, EHDGLayer
from hdc._validate import check_choice, check_int

if TYPE_CHECKING:
    from gnet.deployed import ModelCost

__all__ = ["EHDModel", "EvalResult", "Flatten", "Pool"]


@dataclass(frozen=True)
class Pool:
    """Max-pooling over ``dims`` spatial axes (1 or 2) with window = stride = ``kernel``."""

    dims: int
    kernel: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (F.max_pool2d if self.dims == 2 else F.max_pool1d)(x, self.kernel)


@dataclass(frozen=True)
class Flatten:
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


Stage = EHDGLayer | Pool | Flatten


@dataclass
class EvalResult:
    accuracy: float
    images_per_second: float
    n_items: int
    seconds: float


class EHDModel:
    """A converted G-Net. ``stages`` run in order; the last one is an :class:`EHDClassifier`.

    Call :meth:`logits` for z_hat of the classifier (B, n_classes), :meth:`predict` for labels.

    Args:
        stages: EHD layers, :class:`Pool` and :class:`Flatten` stages, ending in the classifier.
        meta: free-form provenance (dataset, embedding, seed, dim per layer, ...), stored with the model.
        input_shape: the shape of one input item, e.g. ``(1, 28, 28)``; inputs are checked against it. None
            (unknown) skips the check. An ``input_shape`` entry of ``meta`` (files written before it was an
            argument) is taken when the argument is None.
        n_classes: number of classes; must equal the classifier's output units (None: taken from it).

    It is a :class:`gnet.deployed.DeployedModel` (``family = "ehd"``): :meth:`save`, :meth:`fault_targets`,
    :meth:`with_faults` and :meth:`cost` give the interface every deployed family shares.
    """

    family = "ehd"

    def __init__(
        self,
        stages: Sequence[Stage],
        meta: dict[str, Any] | None = None,
        *,
        input_shape: Sequence[int] | None = None,
        n_classes: int | None = None,
    ) -> None:
        if not stages or not isinstance(stages[-1], EHDClassifier):
            raise ValueError("an EHD model must end with an EHDClassifier")
        self.stages = list(stages)
        self.meta = dict(meta or {})
        legacy_shape = self.meta.pop("input_shape", None)
        legacy_classes = self.meta.pop("n_classes", None)
        shape = input_shape if input_shape is not None else legacy_shape
        self.input_shape: tuple[int, ...] | None = (
            None if shape is None else tuple(check_int(s, "input_shape entries", minimum=1) for s in shape)
        )
        out_units = self.classifier.geometry.out_units
        classes = n_classes if n_classes is not None else legacy_classes
        if classes is not None and check_int(classes, "n_classes", minimum=1) != out_units:
            raise ValueError(f"n_classes={classes} does not match the classifier's {out_units} outputs")
        self.n_classes: int = out_units
        self.device = torch.device("cpu")

    @property
    def classifier(self) -> EHDClassifier:
        """The last stage: the binary classifier."""
        clf = self.stages[-1]
        assert isinstance(clf, EHDClassifier)  # checked in __init__
        return clf

    @property
    def layers(self) -> list[EHDGLayer]:
        """The code-carrying layers (G-layers and the classifier), in order."""
        return [s for s in self.stages if isinstance(s, EHDGLayer)]

    @property
    def dim_per_layer(self) -> list[int]:
        """The code length dim of every code-carrying layer, in order."""
        return [layer.dim for layer in self.layers]

    @property
    def n_per_layer(self) -> list[int]:
        """Deprecated name of :attr:`dim_per_layer`."""
        warnings.warn(
            "EHDModel.n_per_layer is deprecated; use EHDModel.dim_per_layer", DeprecationWarning, stacklevel=2
        )
        return self.dim_per_layer

    def to(self, device: torch.device | str) -> EHDModel:
        """Run on ``device`` from now on (inputs are moved there; the default backend is "packed" on CPU and
        "dense" elsewhere); returns self, as ``nn.Module.to`` does."""
        self.device = torch.device(device)
        for layer in self.layers:
            layer.to(self.device)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write this model to an ``.ehd`` file (atomically); returns the path. See :func:`gnet.ehd.save_ehd`."""
        from gnet.ehd.io import save_ehd

        return save_ehd(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, max_bytes: int | None = None) -> EHDModel:
        """Read an ``.ehd`` file, verifying format, version, checksum and its header's schema, within an allocation
        bound ``max_bytes`` (None: ``$HDC_MAX_LOAD_BYTES``, else 2 GiB). See :func:`gnet.ehd.load_ehd`."""
        from gnet.ehd.io import load_ehd

        return load_ehd(path, max_bytes=max_bytes)

    def fault_targets(self) -> tuple[str, ...]:
        """``("model", "data")``: the weight codes of every layer, or the data codes computed at inference."""
        return ("model", "data")

    def with_faults(self, p: float, target: str, seed: int, kind: str = "flip") -> EHDModel:
        """A copy with exactly ``round(p * dim)`` faulty bits per code (``kind`` "flip", "stuck0" or "stuck1") in
        every layer's weight codes (``target="model"``) or data codes (``"data"``), drawn from ``seed``; see
        :func:`gnet.robustness.faulty_model`. This model is not changed."""
        from gnet.robustness import faulty_model
        from hdc.faults import BitFaults

        check_choice(target, self.fault_targets(), "target")
        return faulty_model(self, target, BitFaults(p, kind), seed)

    def cost(self) -> ModelCost:
        """Stored bits, bit operations and float multiply-adds per image, counted from the layer shapes (rules in
        :mod:`gnet.ehd.cost`). ValueError without ``input_shape``."""
        from gnet.ehd.cost import ehd_cost

        return ehd_cost(self)

    def code_bytes(self) -> int:
        """Bytes of packed weight codes."""
        return sum(layer.codes.nbytes for layer in self.layers)

    def __repr__(self) -> str:
        body = "\n".join(f"  ({i}) {s!r}" for i, s in enumerate(self.stages))
        return f"EHDModel(\n{body}\n)"

    def _check(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(x).to(self.device)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"x must be a non-empty batch, got shape {tuple(x.shape)}")
        if not torch.is_floating_point(x):
            raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
        shape = self.input_shape
        if shape is not None and tuple(x.shape[1:]) != shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        return x

    def forward(
        self,
        x: torch.Tensor,
        backend: str | None = None,
        return_stages: bool = False,
        profile: dict[tuple[int, str], float] | None = None,
    ):
        """z_hat of the classifier, float32 (B, n_classes); with ``return_stages`` also every stage's output.

        ``backend`` defaults to "packed" on CPU and "dense" on other devices. ``profile``: a dict to which the wall
        seconds of every (stage index, kind) are added: for a code-carrying layer the kinds of
        :data:`gnet.ehd.layers.PROFILE_KINDS`, "pool" for a :class:`Pool`, "flatten" for a :class:`Flatten`;
        None (the default) records nothing.
        """
        x = self._check(x)
        backend = check_choice(backend or ("packed" if x.device.type == "cpu" else "dense"), BACKENDS, "backend")
        outputs = []
        h = x
        for index, stage in enumerate(self.stages):
            if isinstance(stage, EHDGLayer):
                layer_profile: dict[str, float] = {}
                h = stage(h, backend, layer_profile if profile is not None else None)
                if profile is not None:
                    for kind, seconds in layer_profile.items():
                        profile[(index, kind)] = profile.get((index, kind), 0.0) + seconds
            else:
                t0 = time.perf_counter()
                h = stage(h)
                if profile is not None:
                    key = (index, "pool" if isinstance(stage, Pool) else "flatten")
                    profile[key] = profile.get(key, 0.0) + time.perf_counter() - t0
            outputs.append(h)
        return (h, outputs) if return_stages else h

    logits = forward
    __call__ = forward

    def penultimate_codes(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """The binary codes the classifier compares with its class codes: phi(h + b) for the classifier's input h,
        uint64 (B, ceil(dim/64)) with dim the classifier's. Fitting a Hamming classifier on these codes is
        the paper's fine-tuning of the binary classifier."""
        x = self._check(x)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        clf = self.classifier
        out = []
        for i in range(0, len(x), batch_size):
            h = x[i : i + batch_size]
            for stage in self.stages[:-1]:
                h = stage(h) if not isinstance(stage, EHDGLayer) else stage(h, "packed")
            out.append(clf.encode(h))
        return np.concatenate(out)

    def predict(
        self, x: torch.Tensor, batch_size: int = 256, progress: bool = False, backend: str | None = None
    ) -> torch.Tensor:
        """Labels (B,) int64 on the CPU, computed in batches of ``batch_size``.

        Labels and logits do not depend on ``batch_size`` for int8 and Hadamard projections and for float32 layers of
        fan-in <= 64 (per-row arithmetic); a float32 or bfloat16 GEMM (fan-in > 64) may round a projection within
        float32 rounding of 0 differently at another batch size, flipping that data-code bit (see
        docs/hardening.md). Weight codes never depend on it (float64, computed once at conversion)."""
        x = self._check(x)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        out = []
        for i in tqdm(range(0, len(x), batch_size), desc="EHD inference", disable=not progress, leave=False):
            out.append(self.forward(x[i : i + batch_size], backend).argmax(dim=1).cpu())
        return torch.cat(out)

    def evaluate(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 256,
        progress: bool = False,
        backend: str | None = None,
    ) -> EvalResult:
        """Accuracy and throughput (images per second of wall time) on (x, y)."""
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        t0 = time.perf_counter()
        pred = self.predict(x, batch_size, progress, backend)
        dt = time.perf_counter() - t0
        acc = (pred == torch.as_tensor(y).cpu()).double().mean().item()
        return EvalResult(accuracy=acc, images_per_second=len(x) / dt, n_items=len(x), seconds=dt)
