"""An EHD G-Net: a pipeline of EHD layers, pooling and flattening that ends in the binary classifier."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gnet.ehd.layers import BACKENDS, EHDClassifier, EHDGLayer

__all__ = ["Pool", "Flatten", "EHDModel", "EvalResult"]


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


Stage = Union[EHDGLayer, Pool, Flatten]


@dataclass
class EvalResult:
    accuracy: float
    images_per_second: float
    n_items: int
    seconds: float


class EHDModel:
    """A converted G-Net. ``stages`` run in order; the last one is an :class:`EHDClassifier`.

    Call :meth:`logits` for z_hat of the classifier (B, classes), :meth:`predict` for labels. ``meta`` holds what
    the model was converted from (input shape, classes, dataset, embedding, seed, N per layer).
    """

    def __init__(self, stages: Sequence[Stage], meta: dict[str, Any]) -> None:
        if not stages or not isinstance(stages[-1], EHDClassifier):
            raise ValueError("an EHD model must end with an EHDClassifier")
        self.stages = list(stages)
        self.meta = dict(meta)

    @property
    def layers(self) -> list[EHDGLayer]:
        """The code-carrying layers (G-layers and the classifier), in order."""
        return [s for s in self.stages if isinstance(s, EHDGLayer)]

    @property
    def n_per_layer(self) -> list[int]:
        return [layer.n for layer in self.layers]

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        shape = self.meta.get("input_shape")
        return tuple(shape) if shape is not None else None

    def code_bytes(self) -> int:
        """Bytes of packed weight codes."""
        return sum(layer.codes.nbytes for layer in self.layers)

    def __repr__(self) -> str:
        body = "\n".join(f"  ({i}) {s!r}" for i, s in enumerate(self.stages))
        return f"EHDModel(\n{body}\n)"

    def _check(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(x)
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

    def forward(self, x: torch.Tensor, backend: str | None = None, return_stages: bool = False):
        """z_hat of the classifier, float32 (B, n_classes); with ``return_stages`` also every stage's output.

        ``backend`` defaults to "packed" on CPU and "dense" on other devices.
        """
        x = self._check(x)
        backend = backend or ("packed" if x.device.type == "cpu" else "dense")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        outputs = []
        h = x
        for stage in self.stages:
            h = stage(h, backend) if isinstance(stage, EHDGLayer) else stage(h)
            outputs.append(h)
        return (h, outputs) if return_stages else h

    logits = forward
    __call__ = forward

    def penultimate_codes(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """The binary codes the classifier compares with its class codes: phi(h + b) for the classifier's input h,
        uint64 (B, ceil(N/64)) with N the classifier's dimension. Fitting a Hamming classifier on these codes is
        the paper's fine-tuning of the binary classifier."""
        x = self._check(x)
        clf = self.stages[-1]
        out = []
        for i in range(0, len(x), batch_size):
            h = x[i : i + batch_size]
            for stage in self.stages[:-1]:
                h = stage(h) if not isinstance(stage, EHDGLayer) else stage(h, "packed")
            out.append(clf.encode(h))
        return np.concatenate(out)

    def predict(self, x: torch.Tensor, batch_size: int = 256, progress: bool = False,
                backend: str | None = None) -> torch.Tensor:
        """Labels (N,) int64, computed in batches of ``batch_size`` (results do not depend on it)."""
        x = self._check(x)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = []
        for i in tqdm(range(0, len(x), batch_size), desc="EHD inference", disable=not progress, leave=False):
            out.append(self.forward(x[i : i + batch_size], backend).argmax(dim=1).cpu())
        return torch.cat(out)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256, progress: bool = False,
                 backend: str | None = None) -> EvalResult:
        """Accuracy and throughput (images per second of wall time) on (x, y)."""
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        t0 = time.perf_counter()
        pred = self.predict(x, batch_size, progress, backend)
        dt = time.perf_counter() - t0
        acc = (pred == torch.as_tensor(y).cpu()).double().mean().item()
        return EvalResult(accuracy=acc, images_per_second=len(x) / dt, n_items=len(x), seconds=dt)
