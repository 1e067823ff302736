"""EHD (embedded hyperdimensional) layers: G-Net layers evaluated on N-bit codes.

For a unit with folded weight w~ and an input patch x + b, with phi(v) = sign(G v):

    z_hat = (pi / (2N)) * <phi(x + b), phi(w~)> = (pi / 2) * (1 - 2 * Hamming / N),

an unbiased estimator of arcsin(cos(w~, x + b)) for Gaussian G (Grothendieck's identity). Weight codes phi(w~) are
packed once at conversion; at inference every patch is projected (im2col -> G -> sign -> pack) and compared with the
weight codes by XOR-popcount (:func:`hdc.hamming.hamming_distance`).

Two interchangeable backends give the same integer <phi(x + b), phi(w~)>:

- ``"packed"``: sign bits packed 64 per word, Hamming by popcount (CPU);
- ``"dense"``: +-1 float32 matrices multiplied with torch (any device; exact because every partial sum is an integer
  below 2**24).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hdc.hamming import hamming_distance
from hdc.embeddings import EMBEDDINGS, make_projection
from hdc.packed import pack_sign, to_bipolar
from hdc.projection import PRECISIONS

__all__ = ["Geometry", "EHDGLayer", "EHDClassifier", "ACTIVATIONS", "BACKENDS", "PROJECTIONS", "check_embedding"]

ACTIVATIONS = ("rasu", "tasu", None)
BACKENDS = ("packed", "dense")
PROJECTIONS = ("shared", "per_channel")


def check_embedding(embedding: str, precision: str) -> None:
    """Validate one layer's (embedding, precision) pair; ValueError naming the problem."""
    if embedding not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {embedding!r}; valid: {', '.join(EMBEDDINGS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "int8" and embedding != "rademacher":
        raise ValueError(f"precision='int8' needs embedding='rademacher', got {embedding!r}")
    if embedding == "hadamard" and precision != "float32":
        raise ValueError(f"embedding='hadamard' runs in float32 only, got precision={precision!r}")


@dataclass(frozen=True)
class Geometry:
    """Where a unit's inputs come from: ``kind`` is "linear", "conv1d" or "conv2d"; tuples are per spatial axis."""

    kind: str
    in_channels: int
    out_units: int
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()

    @property
    def fan_in(self) -> int:
        return self.in_channels * math.prod(self.kernel) if self.kind != "linear" else self.in_channels

    def patches(self, shifted: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Receptive fields of an already shifted input: (B, *in) -> ((B * P, fan_in), output spatial shape).

        Zero padding is applied here, after the shift by b, matching the float layer.
        """
        if self.kind == "linear":
            return shifted, ()
        if self.kind == "conv1d":
            x4 = shifted.unsqueeze(2)
            kernel, stride = (1, self.kernel[0]), (1, self.stride[0])
            padding, dilation = (0, self.padding[0]), (1, self.dilation[0])
        else:
            x4, kernel, stride, padding, dilation = shifted, self.kernel, self.stride, self.padding, self.dilation
        cols = F.unfold(x4, kernel, dilation=dilation, padding=padding, stride=stride)  # (B, fan_in, P)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1]), self.output_spatial(tuple(shifted.shape[2:]))

    def output_spatial(self, in_spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Output positions per spatial axis for an input of spatial shape ``in_spatial``; () for linear."""
        return tuple(
            (s + 2 * p - d * (k - 1) - 1) // st + 1
            for s, p, d, k, st in zip(in_spatial, self.padding, self.dilation, self.kernel, self.stride)
        )

    def check_input(self, x: torch.Tensor) -> None:
        want = {"linear": 2, "conv1d": 3, "conv2d": 4}[self.kind]
        if x.ndim != want or x.shape[1] != self.in_channels:
            raise ValueError(
                f"EHD {self.kind} layer expects a {want}-D input with {self.in_channels} channels/features, "
                f"got shape {tuple(x.shape)}"
            )


class EHDGLayer:
    """One G-Net layer on codes. ``codes``: uint64 (out_units, ceil(N/64)), phi(w~_o) for each unit o.

    ``projection="shared"`` draws one G for the layer (stream ``(index,)``); ``"per_channel"`` draws one G_o per
    output unit (stream ``(index, o)``), as the paper's code does for convolutions, at out_units times the cost.
    """

    def __init__(
        self,
        geometry: Geometry,
        n: int,
        codes: np.ndarray,
        bias: float,
        *,
        embedding: str,
        seed: int,
        index: int,
        projection: str = "shared",
        activation: str | None = None,
        alpha: float = 1.0,
        precision: str = "float32",
    ) -> None:
        if projection not in PROJECTIONS:
            raise ValueError(f"unknown projection {projection!r}; valid: {', '.join(PROJECTIONS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: rasu, tasu or None")
        check_embedding(embedding, precision)
        words = (n + 63) // 64
        if codes.dtype != np.uint64 or codes.shape != (geometry.out_units, words):
            raise ValueError(
                f"codes must be uint64 ({geometry.out_units}, {words}) for N={n}, got {codes.dtype} {codes.shape}"
            )
        self.geometry, self.n, self.codes = geometry, int(n), np.ascontiguousarray(codes)
        self.bias, self.alpha = float(bias), float(alpha)
        self.embedding, self.seed, self.index = embedding, int(seed), int(index)
        self.projection, self.activation, self.precision = projection, activation, precision
        fan_in = geometry.fan_in
        if projection == "shared":
            self.projections = [make_projection(embedding, fan_in, n, seed, stream=(index,))]
        else:
            self.projections = [
                make_projection(embedding, fan_in, n, seed, stream=(index, o), cache_bytes=0)
                for o in range(geometry.out_units)
            ]
        self._dense_weights: torch.Tensor | None = None
        # Optional fault model for the data codes (packed backend): called as data_fault(words, n) on every
        # (rows, ceil(N/64)) block of patch codes before the Hamming step, and returns the corrupted words.
        self.data_fault: Callable[[np.ndarray, int], np.ndarray] | None = None

    # ------------------------------------------------------------------------------------------ building
    @staticmethod
    def weight_codes(
        weights: torch.Tensor, n: int, embedding: str, seed: int, index: int, projection: str
    ) -> np.ndarray:
        """phi(w~_o) for every unit: weights (out_units, fan_in) -> uint64 (out_units, ceil(N/64)).

        Computed in float64 so a weight code never depends on float32 rounding.
        """
        w = weights.detach().to(torch.float64).reshape(weights.shape[0], -1)
        streams = [(index,)] if projection == "shared" else [(index, o) for o in range(w.shape[0])]
        codes = []
        for k, stream in enumerate(streams):
            proj = make_projection(embedding, w.shape[1], n, seed, stream=stream, cache_bytes=0)
            units = w if projection == "shared" else w[k : k + 1]
            if embedding == "hadamard":
                codes.append(proj.encode_unchecked(units))  # the structured transform, run in float64
            else:
                codes.append(np.concatenate(
                    [pack_sign((units @ proj.rows(a, b).to(torch.float64).T).numpy()) for a, b in proj.chunks(2048)],
                    axis=-1,
                ))
        return np.concatenate(codes, axis=0)

    # ------------------------------------------------------------------------------------------ inference
    def _dense_signs(self, device: torch.device) -> torch.Tensor:
        if self._dense_weights is None or self._dense_weights.device != device:
            signs = to_bipolar(self.codes, self.n, dtype=np.float32)
            self._dense_weights = torch.from_numpy(signs).to(device)
        return self._dense_weights

    def _encode_rows(self, rows: torch.Tensor, n_chunk: int = 16384) -> np.ndarray:
        """Packed phi(rows) with the shared G: float (R, fan_in), already shifted -> uint64 (R, ceil(N/64))."""
        proj = self.projections[0]
        if self.embedding == "hadamard":
            return proj.encode_unchecked(rows.to(torch.float32))
        return proj.encode_unchecked(rows, n_chunk, self.precision)

    def encode(self, x: torch.Tensor) -> np.ndarray:
        """Data codes phi(x + b) of every patch: (B, *in) -> uint64 (B * P, ceil(N/64)), patches of an item
        contiguous. Shared projection only (per-channel layers have one code per channel)."""
        if self.projection != "shared":
            raise ValueError("encode() needs a shared projection; per-channel layers embed each channel apart")
        self.geometry.check_input(x)
        rows, _ = self.geometry.patches(x.to(torch.float32) + self.bias)
        return self._encode_rows(rows)

    def _dot_shared(self, rows: torch.Tensor, backend: str, n_chunk: int) -> torch.Tensor:
        proj = self.projections[0]
        if backend == "packed":
            words = self._encode_rows(rows, n_chunk)
            if self.data_fault is not None:
                words = self.data_fault(words, self.n)
            ham = hamming_distance(words, self.codes)
            return torch.from_numpy(self.n - 2 * ham.astype(np.float32))
        w = self._dense_signs(rows.device)
        dot = torch.zeros(rows.shape[0], w.shape[0], dtype=torch.float32, device=rows.device)
        for a, b in proj.chunks(n_chunk):
            s = torch.where(proj.project_unchecked(rows, a, b, self.precision) >= 0, 1.0, -1.0)
            dot += s @ w[:, a:b].T
        return dot

    def _dot_per_channel(self, rows: torch.Tensor, backend: str, n_chunk: int) -> torch.Tensor:
        out = torch.empty(rows.shape[0], self.geometry.out_units, dtype=torch.float32, device=rows.device)
        w = self._dense_signs(rows.device) if backend == "dense" else None
        for o, proj in enumerate(self.projections):
            if backend == "packed":
                words = (proj.encode_unchecked(rows) if self.embedding == "hadamard"
                         else proj.encode_unchecked(rows, n_chunk, self.precision))
                if self.data_fault is not None:
                    words = self.data_fault(words, self.n)
                out[:, o] = torch.from_numpy(self.n - 2 * hamming_distance(words, self.codes[o : o + 1])[:, 0])
            else:
                acc = torch.zeros(rows.shape[0], dtype=torch.float32, device=rows.device)
                for a, b in proj.chunks(n_chunk):
                    acc += torch.where(proj.project_unchecked(rows, a, b, self.precision) >= 0, 1.0, -1.0) @ w[o, a:b]
                out[:, o] = acc
        return out

    def bipolar_dot(
        self, x: torch.Tensor, backend: str = "packed", row_chunk: int = 1024, n_chunk: int = 16384
    ) -> torch.Tensor:
        """<phi(x + b), phi(w~_o)> = N - 2 * Hamming, per unit and patch: integer-valued float32
        (B, out_units, *spatial). Rows are processed in chunks of about ``row_chunk`` patches and N in chunks of
        ``n_chunk`` (one chunk for the usual N, so each row block is cast or quantised once) to bound memory."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        if backend == "dense" and self.data_fault is not None:
            raise ValueError("data-code faults need backend='packed' (they act on packed codes)")
        self.geometry.check_input(x)
        per_item = math.prod(self.geometry.output_spatial(tuple(x.shape[2:])))  # patches per input item
        step = max(1, row_chunk // per_item)
        dot_fn = self._dot_shared if self.projection == "shared" else self._dot_per_channel
        spatial = self.geometry.output_spatial(tuple(x.shape[2:]))
        # One output tensor filled chunk by chunk: no list of partial results interleaved with the chunks'
        # temporaries, which kept glibc from returning freed memory (peak RSS grew with every batch).
        out = torch.empty(x.shape[0], self.geometry.out_units, *spatial, dtype=torch.float32, device=x.device)
        for i in range(0, x.shape[0], step):
            rows, _ = self.geometry.patches(x[i : i + step].to(torch.float32) + self.bias)
            dot = dot_fn(rows, backend, n_chunk).to(x.device)
            items = dot.shape[0] // per_item
            out[i : i + items] = dot.reshape(items, *spatial, -1).movedim(-1, 1)
        return out

    def z_hat(self, x: torch.Tensor, backend: str = "packed") -> torch.Tensor:
        """The estimator of arcsin(rho): (pi / 2N) * bipolar_dot; (B, out_units, *spatial) float32."""
        return self.bipolar_dot(x, backend) * (math.pi / (2 * self.n))

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """RASU: ReLU(alpha z). TASU: sign(z) with sign(0) = +1, so activations stay binary."""
        if self.activation == "rasu":
            return F.relu(self.alpha * z)
        if self.activation == "tasu":
            return torch.where(z >= 0, 1.0, -1.0)
        return z

    def __call__(self, x: torch.Tensor, backend: str = "packed") -> torch.Tensor:
        return self.activate(self.z_hat(x, backend))

    def __repr__(self) -> str:
        g = self.geometry
        return (f"EHDGLayer({g.kind}, {g.in_channels}->{g.out_units}, N={self.n}, {self.embedding}, "
                f"{self.projection}, activation={self.activation})")


class EHDClassifier(EHDGLayer):
    """The binary classifier: z_hat_c from the Hamming distance between phi(h + b) and the class code phi(W[:, c]).

    Its argmax is the prediction; z_hat estimates arcsin of the float classifier's column cosine.
    """

    def __init__(self, in_features: int, n_classes: int, n: int, codes: np.ndarray, bias: float, **kwargs) -> None:
        super().__init__(Geometry("linear", in_features, n_classes), n, codes, bias, **kwargs)

    def __repr__(self) -> str:
        return f"EHDClassifier({self.geometry.in_channels}->{self.geometry.out_units}, N={self.n}, {self.embedding})"
