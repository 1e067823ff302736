"""EHD (embedded hyperdimensional) layers: G-Net layers evaluated on dim-bit codes.

For a unit with folded weight w~ and an input patch x + b, with phi(v) = sign(G v) and dim the code length:

    z_hat = (pi / (2 dim)) * <phi(x + b), phi(w~)> = (pi / 2) * (1 - 2 * Hamming / dim),

an unbiased estimator of arcsin(cos(w~, x + b)) for Gaussian G (Grothendieck's identity). Weight codes phi(w~) are
packed once at conversion; at inference every patch is projected (im2col -> G -> sign -> pack) and compared with the
weight codes by XOR-popcount (:func:`hdc.hamming.hamming_distance`).

G is any :class:`hdc.projection.Projection` (dense or structured); this module uses only the protocol's methods
(``encode_exact`` for weight codes, ``encode_unchecked`` / ``project_unchecked`` / ``chunks`` for data,
``check_precision``), so a new kind of projection needs no change here.

Two interchangeable backends give the same integer <phi(x + b), phi(w~)>:

- ``"packed"``: sign bits packed 64 per word, Hamming by popcount (CPU);
- ``"dense"``: +-1 float32 matrices multiplied with torch (any device; exact because every partial sum is an integer
  below 2**24).

Profiling: the inference methods take an optional ``profile`` dict to which they add the wall seconds spent in each
stage kind of :data:`PROFILE_KINDS` (``time.perf_counter`` deltas; nothing is recorded when it is None). On a GPU
the dense backend's kernels run asynchronously, so there the times are those of launching them.
"""

from __future__ import annotations

import copy
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from hdc import cpu
from hdc._kernels.im2col import im2col_rows_kernel
from hdc._validate import check_choice, check_int, check_number
from hdc.hamming import hamming_distance
from hdc.packed import to_bipolar
from hdc.projection import EMBEDDINGS, PRECISIONS, make_projection

if TYPE_CHECKING:
    from hdc.projection import Projection

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "PROFILE_KINDS",
    "PROJECTIONS",
    "EHDClassifier",
    "EHDGLayer",
    "Geometry",
    "check_embedding",
    "supported_precisions",
]

ACTIVATIONS = ("rasu", "tasu", None)
BACKENDS = ("packed", "dense")
PROJECTIONS = ("shared", "per_channel")
# What a ``profile`` dict accumulates, per layer: "im2col" (the shift by b and unfolding into patches), "encode"
# (projection, sign and packing: fused in the kernels), "data_fault" (the data-code fault hook), "hamming" (XOR-popcount
# against the weight codes and dim - 2 H), "dense_dot" (the dense backend's projection, signs and +-1 product),
# "layout" (patch rows back into (B, units, *spatial)), "activation" (the z_hat scale and RASU / TASU).
PROFILE_KINDS = ("im2col", "encode", "data_fault", "hamming", "dense_dot", "layout", "activation")


def _lap(profile: dict[str, float] | None, kind: str, t0: float) -> float:
    """Add the seconds since ``t0`` to ``profile[kind]`` (when profiling) and return the current time."""
    now = time.perf_counter()
    if profile is not None:
        profile[kind] = profile.get(kind, 0.0) + (now - t0)
    return now


# Rows of G per chunk when weight codes are computed in float64 (bounds the (out_units, chunk) product).
_EXACT_CHUNK = 2048


def supported_precisions(embedding: str) -> tuple[str, ...]:
    """The precisions a projection of kind ``embedding`` can run (``Projection.check_precision``)."""
    check_choice(embedding, EMBEDDINGS, "embedding")
    probe = make_projection(embedding, 1, 64)
    supported = []
    for precision in PRECISIONS:
        try:
            supported.append(probe.check_precision(precision))
        except ValueError:
            continue
    return tuple(supported)


# Row chunking of bipolar_dot (EHDGLayer.default_row_chunk).
CHUNK_BYTES = 64 << 20
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 1024, 65536

# Patch rows are written into one buffer per thread, reused by every chunk and call: a fresh allocation of this
# size is served by mmap and page-faulted in on every write (MNIST net: 1.07x the img/s at the paper's dims, 1.03x
# at mnist-fast; benchmarks/bench_ehd_chunks.py). Requests above WORKSPACE_MAX_VALUES (0: never) get fresh memory.
WORKSPACE_MAX_VALUES = 16 << 20  # float32 values (64 MiB)
_THREAD_STATE = threading.local()


def _workspace(n_values: int) -> torch.Tensor | None:
    """This thread's float32 patch buffer with at least ``n_values`` elements, or None above the cap."""
    if n_values > WORKSPACE_MAX_VALUES:
        return None
    buffer = getattr(_THREAD_STATE, "rows", None)
    if buffer is None or buffer.numel() < n_values:
        buffer = torch.empty(n_values, dtype=torch.float32)
        _THREAD_STATE.rows = buffer
    return buffer


def check_embedding(embedding: str, precision: str, fan_in: int | None = None) -> str:
    """Validate one layer's (embedding, precision) pair and return the concrete precision it runs in.

    ``precision="auto"`` resolves to the fastest precision the kind supports on this CPU
    (:func:`hdc.cpu.preferred_precision`: int8 only for a Rademacher G where int8 GEMM is fast, bfloat16 where
    that is fast, else float32), except that a layer whose projection encodes fused in float32
    (:meth:`hdc.projection.Projection.encode_is_fused`: a dense G of up to
    :data:`hdc.projection.dense.FUSED_MAX_FAN_IN` inputs) runs in float32: there the fused kernel, which never
    writes the product out, beats any GEMM (MNIST's first conv, fan-in 9, in float32 instead of bfloat16: 1.37x
    the net's img/s at the paper's dims, 1.12x at ``mnist-fast``; ``benchmarks/bench_ehd_chunks.py``). An explicit
    reduced precision that is slow on this CPU runs as asked but warns once (``RuntimeWarning``). ValueError names
    an unknown or unsupported setting.
    """
    check_choice(precision, (*PRECISIONS, "auto"), "precision")
    supported = supported_precisions(embedding)
    if precision == "auto":
        fused = fan_in is not None and make_projection(embedding, fan_in, 64).encode_is_fused("float32")
        if fused and "float32" in supported:
            return "float32"
        return cpu.preferred_precision(supported)
    make_projection(embedding, 1, 64).check_precision(precision)
    cpu.warn_if_slow(precision, supported, stacklevel=3)
    return precision


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

    def __post_init__(self) -> None:
        axes = {"linear": 0, "conv1d": 1, "conv2d": 2}
        check_choice(self.kind, tuple(axes), "geometry kind")
        check_int(self.in_channels, "in_channels", minimum=1)
        check_int(self.out_units, "out_units", minimum=1)
        for name, minimum in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
            values = getattr(self, name)
            if len(values) != axes[self.kind]:
                raise ValueError(f"a {self.kind} geometry needs {axes[self.kind]} {name} values, got {values}")
            for v in values:
                check_int(v, name, minimum=minimum)

    @property
    def fan_in(self) -> int:
        return self.in_channels * math.prod(self.kernel) if self.kind != "linear" else self.in_channels

    def patches(
        self, shifted: torch.Tensor, workspace: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Receptive fields of an already shifted input: (B, *in) -> ((B * P, fan_in), output spatial shape).

        Zero padding is applied here, after the shift by b, matching the float layer. ``workspace``: a flat
        float32 CPU tensor the rows may be written into when it is large enough (the result is then a view of
        it, valid until the workspace is reused); otherwise they get fresh memory.
        """
        if self.kind == "linear":
            return shifted, ()
        kernel: tuple[int, ...]
        stride: tuple[int, ...]
        padding: tuple[int, ...]
        dilation: tuple[int, ...]
        if self.kind == "conv1d":
            x4 = shifted.unsqueeze(2)
            kernel, stride = (1, self.kernel[0]), (1, self.stride[0])
            padding, dilation = (0, self.padding[0]), (1, self.dilation[0])
        else:
            x4, kernel, stride, padding, dilation = shifted, self.kernel, self.stride, self.padding, self.dilation
        spatial = self.output_spatial(tuple(shifted.shape[2:]))
        if x4.device.type == "cpu" and x4.dtype == torch.float32 and not x4.requires_grad:
            oh, ow = (1, *spatial) if self.kind == "conv1d" else spatial
            n_values = x4.shape[0] * oh * ow * self.fan_in
            if workspace is not None and workspace.numel() >= n_values:
                rows = workspace[:n_values].view(-1, self.fan_in)
            else:
                rows = torch.empty(x4.shape[0] * oh * ow, self.fan_in, dtype=torch.float32)
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
            im2col_rows_kernel(x4.contiguous().numpy(), kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, rows.numpy())
            return rows, spatial
        cols = F.unfold(x4, kernel, dilation=dilation, padding=padding, stride=stride)  # (B, fan_in, P)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1]), spatial

    def output_spatial(self, in_spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Output positions per spatial axis for an input of spatial shape ``in_spatial``; () for linear."""
        return tuple(
            (s + 2 * p - d * (k - 1) - 1) // st + 1
            for s, p, d, k, st in zip(in_spatial, self.padding, self.dilation, self.kernel, self.stride, strict=False)
        )

    def check_input(self, x: torch.Tensor) -> None:
        want = {"linear": 2, "conv1d": 3, "conv2d": 4}[self.kind]
        if x.ndim != want or x.shape[1] != self.in_channels:
            raise ValueError(
                f"EHD {self.kind} layer expects a {want}-D input with {self.in_channels} channels/features, "
                f"got shape {tuple(x.shape)}"
            )


class EHDGLayer:
    """One G-Net layer on codes. ``codes``: uint64 (out_units, ceil(dim/64)), phi(w~_o) for each unit o.

    ``projection="shared"`` draws one G for the layer (stream ``(index,)``); ``"per_channel"`` draws one G_o per
    output unit (stream ``(index, o)``), as the paper's code does for convolutions, at out_units times the cost.
    """

    def __init__(
        self,
        geometry: Geometry,
        dim: int,
        codes: NDArray[np.uint64],
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
        check_choice(projection, PROJECTIONS, "projection")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: rasu, tasu or None")
        precision = check_embedding(embedding, precision, geometry.fan_in)
        self.geometry, self.dim = geometry, check_int(dim, "dim", minimum=1)
        self.codes = self._checked_codes(codes)
        self.bias, self.alpha = check_number(bias, "bias"), check_number(alpha, "alpha")
        self.embedding, self.seed, self.index = embedding, int(seed), int(index)
        self.projection, self.activation, self.precision = projection, activation, precision
        fan_in = geometry.fan_in
        self.projections: list[Projection]
        if projection == "shared":
            self.projections = [make_projection(embedding, fan_in, self.dim, self.seed, stream=(self.index,))]
        else:
            self.projections = [
                make_projection(embedding, fan_in, self.dim, self.seed, stream=(self.index, o), cache_bytes=0)
                for o in range(geometry.out_units)
            ]
        self._dense_weights: torch.Tensor | None = None
        # Optional fault model for the data codes (packed backend): called as data_fault(words, dim) on every
        # (rows, ceil(dim/64)) block of patch codes before the Hamming step, and returns the corrupted words.
        self.data_fault: Callable[[NDArray[np.uint64], int], NDArray[np.uint64]] | None = None

    def _checked_codes(self, codes: NDArray[np.uint64]) -> NDArray[np.uint64]:
        words = (self.dim + 63) // 64
        if (
            not isinstance(codes, np.ndarray)
            or codes.dtype != np.uint64
            or codes.shape != (self.geometry.out_units, words)
        ):
            got = f"{codes.dtype} {codes.shape}" if isinstance(codes, np.ndarray) else type(codes).__name__
            raise ValueError(f"codes must be uint64 ({self.geometry.out_units}, {words}) for dim={self.dim}, got {got}")
        tail = self.dim % 64
        if tail and np.any(codes[:, -1] >> np.uint64(tail)):
            # bits beyond dim would shift every Hamming distance
            raise ValueError(f"codes have non-zero bits beyond dim={self.dim} in their last word")
        return np.ascontiguousarray(codes)

    @property
    def n(self) -> int:
        """Deprecated name of :attr:`dim`."""
        warnings.warn("EHDGLayer.n is deprecated; use EHDGLayer.dim", DeprecationWarning, stacklevel=2)
        return self.dim

    def copy(self, codes: NDArray[np.uint64] | None = None) -> EHDGLayer:
        """A copy of this layer, optionally with other weight codes (same shape and dtype).

        The copy shares the (read-only) projections, so no G is regenerated; it has no data-fault hook and its own
        dense-weight cache. The original is left unchanged. Used by fault injection to corrupt a copy's codes.
        """
        clone = copy.copy(self)
        if codes is not None:
            clone.codes = self._checked_codes(codes)
        clone._dense_weights = None
        clone.data_fault = None
        return clone

    # ------------------------------------------------------------------------------------------ building
    @staticmethod
    def weight_codes(
        weights: torch.Tensor, dim: int, embedding: str, seed: int, index: int, projection: str
    ) -> NDArray[np.uint64]:
        """phi(w~_o) for every unit: weights (out_units, fan_in) -> uint64 (out_units, ceil(dim/64)).

        Computed in float64 (``Projection.encode_exact``) so a weight code never depends on float32 rounding.
        """
        w = weights.detach().to(torch.float64).reshape(weights.shape[0], -1)
        streams = [(index,)] if projection == "shared" else [(index, o) for o in range(w.shape[0])]
        codes = []
        for k, stream in enumerate(streams):
            proj = make_projection(embedding, w.shape[1], dim, seed, stream=stream, cache_bytes=0)
            codes.append(proj.encode_exact(w if projection == "shared" else w[k : k + 1]))
        return np.concatenate(codes, axis=0)

    # ------------------------------------------------------------------------------------------ inference
    def to(self, device: torch.device | str) -> EHDGLayer:
        """Keep the +-1 weight matrix of the dense backend on ``device`` (built now); returns self."""
        self._dense_signs(torch.device(device))
        return self

    def _dense_signs(self, device: torch.device) -> torch.Tensor:
        if self._dense_weights is None or self._dense_weights.device != device:
            signs = to_bipolar(self.codes, self.dim, dtype=np.float32)
            self._dense_weights = torch.from_numpy(signs).to(device)
        return self._dense_weights

    def _encode_rows(self, proj: Projection, rows: torch.Tensor, dim_chunk: int) -> NDArray[np.uint64]:
        """Packed phi(rows) with ``proj``: float32 (R, fan_in), already shifted -> uint64 (R, ceil(dim/64))."""
        return proj.encode_unchecked(rows, dim_chunk, self.precision)

    def encode(self, x: torch.Tensor) -> NDArray[np.uint64]:
        """Data codes phi(x + b) of every patch: (B, *in) -> uint64 (B * P, ceil(dim/64)), patches of an item
        contiguous. Shared projection only (per-channel layers have one code per channel)."""
        if self.projection != "shared":
            raise ValueError("encode() needs a shared projection; per-channel layers embed each channel apart")
        self.geometry.check_input(x)
        rows, _ = self.geometry.patches(x.to(torch.float32) + self.bias)
        return self._encode_rows(self.projections[0], rows, 16384)

    def _dense_dot(self, proj: Projection, rows: torch.Tensor, w: torch.Tensor, dim_chunk: int) -> torch.Tensor:
        """<sign(G rows), w> over chunks of G: rows (R, fan_in), w (units, dim) or (dim,) +-1 -> (R, units) or (R,)."""
        acc = None
        for a, b in proj.chunks(dim_chunk):
            s = torch.where(proj.project_unchecked(rows, a, b, self.precision) >= 0, 1.0, -1.0)
            part = s @ (w[:, a:b].T if w.ndim == 2 else w[a:b])
            acc = part if acc is None else acc.add_(part)
        assert acc is not None
        return acc

    def _packed_dot(
        self,
        proj: Projection,
        rows: torch.Tensor,
        codes: NDArray[np.uint64],
        dim_chunk: int,
        profile: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """dim - 2 Hamming(phi(rows), codes): float32 (R, units), after the data-fault hook if one is set."""
        t = time.perf_counter()
        words = self._encode_rows(proj, rows, dim_chunk)
        t = _lap(profile, "encode", t)
        if self.data_fault is not None:
            words = self.data_fault(words, self.dim)
            t = _lap(profile, "data_fault", t)
        ham = hamming_distance(words, codes)
        out = torch.from_numpy(self.dim - 2 * ham.astype(np.float32))
        _lap(profile, "hamming", t)
        return out

    def _dot_shared(
        self, rows: torch.Tensor, backend: str, dim_chunk: int, profile: dict[str, float] | None = None
    ) -> torch.Tensor:
        proj = self.projections[0]
        if backend == "packed":
            return self._packed_dot(proj, rows, self.codes, dim_chunk, profile)
        t = time.perf_counter()
        out = self._dense_dot(proj, rows, self._dense_signs(rows.device), dim_chunk)
        _lap(profile, "dense_dot", t)
        return out

    def _dot_per_channel(
        self, rows: torch.Tensor, backend: str, dim_chunk: int, profile: dict[str, float] | None = None
    ) -> torch.Tensor:
        out = torch.empty(rows.shape[0], self.geometry.out_units, dtype=torch.float32, device=rows.device)
        w = self._dense_signs(rows.device) if backend == "dense" else None
        for o, proj in enumerate(self.projections):
            if w is None:
                out[:, o] = self._packed_dot(proj, rows, self.codes[o : o + 1], dim_chunk, profile)[:, 0]
            else:
                t = time.perf_counter()
                out[:, o] = self._dense_dot(proj, rows, w[o], dim_chunk)
                _lap(profile, "dense_dot", t)
        return out

    def bipolar_dot(
        self,
        x: torch.Tensor,
        backend: str = "packed",
        row_chunk: int | None = None,
        dim_chunk: int = 16384,
        profile: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """<phi(x + b), phi(w~_o)> = dim - 2 * Hamming, per unit and patch: integer-valued float32
        (B, out_units, *spatial). Rows are processed in chunks of about ``row_chunk`` patches (default
        :meth:`default_row_chunk`) and G in chunks of
        ``dim_chunk`` rows (one chunk for the usual dim, so each row block is cast or quantised once) to bound
        memory. ``profile``: a dict that collects seconds per stage kind (:data:`PROFILE_KINDS`), or None."""
        check_choice(backend, BACKENDS, "backend")
        if backend == "dense" and self.data_fault is not None:
            raise ValueError("data-code faults need backend='packed' (they act on packed codes)")
        self.geometry.check_input(x)
        spatial = self.geometry.output_spatial(tuple(x.shape[2:]))
        per_item = math.prod(spatial)  # patches per input item
        step = max(1, (row_chunk or self.default_row_chunk(dim_chunk)) // per_item)
        dot_fn = self._dot_shared if self.projection == "shared" else self._dot_per_channel
        # One output tensor filled chunk by chunk: no list of partial results interleaved with the chunks'
        # temporaries, which kept glibc from returning freed memory (peak RSS grew with every batch).
        out = torch.empty(x.shape[0], self.geometry.out_units, *spatial, dtype=torch.float32, device=x.device)
        for i in range(0, x.shape[0], step):
            t = time.perf_counter()
            workspace = _workspace(step * per_item * self.geometry.fan_in) if x.device.type == "cpu" else None
            rows, _ = self.geometry.patches(x[i : i + step].to(torch.float32) + self.bias, workspace)
            _lap(profile, "im2col", t)
            dot = dot_fn(rows, backend, dim_chunk, profile).to(x.device)
            t = time.perf_counter()
            items = dot.shape[0] // per_item
            out[i : i + items] = dot.reshape(items, *spatial, -1).movedim(-1, 1)
            _lap(profile, "layout", t)
        return out

    def default_row_chunk(self, dim_chunk: int = 16384) -> int:
        """Patches per chunk: as many as keep one chunk's temporaries (float32 patch rows, packed codes and, where
        the projection is a GEMM, its float32 product) near :data:`CHUNK_BYTES`, between :data:`MIN_CHUNK_ROWS`
        and :data:`MAX_CHUNK_ROWS`. Every chunk pays fixed costs (thread wake-ups of each parallel kernel, small
        tensors): against fixed chunks of 1,024 rows this runs the MNIST net at 1.53x the img/s at the paper's dims
        and 1.73x at ``mnist-fast`` (``benchmarks/bench_ehd_chunks.py``). A chunk's size never changes its
        results."""
        per_row = 4 * self.geometry.fan_in + 8 * ((self.dim + 63) // 64)
        if not self.projections[0].encode_is_fused(self.precision):
            # the GEMM writes (rows, dim chunk) float32 products before packing them
            per_row += 4 * min(self.dim, dim_chunk)
        return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, CHUNK_BYTES // per_row)))

    def z_hat(self, x: torch.Tensor, backend: str = "packed", profile: dict[str, float] | None = None) -> torch.Tensor:
        """The estimator of arcsin(rho): (pi / 2 dim) * bipolar_dot; (B, out_units, *spatial) float32."""
        dot = self.bipolar_dot(x, backend, profile=profile)
        t = time.perf_counter()
        z = dot * (math.pi / (2 * self.dim))
        _lap(profile, "activation", t)
        return z

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """RASU: ReLU(alpha z). TASU: sign(z) with sign(0) = +1, so activations stay binary."""
        if self.activation == "rasu":
            return F.relu(self.alpha * z)
        if self.activation == "tasu":
            return torch.where(z >= 0, 1.0, -1.0)
        return z

    def __call__(
        self, x: torch.Tensor, backend: str = "packed", profile: dict[str, float] | None = None
    ) -> torch.Tensor:
        """The layer's output activate(z_hat); ``profile`` as in :meth:`bipolar_dot`."""
        z = self.z_hat(x, backend, profile)
        t = time.perf_counter()
        h = self.activate(z)
        _lap(profile, "activation", t)
        return h

    def __repr__(self) -> str:
        g = self.geometry
        return (
            f"EHDGLayer({g.kind}, {g.in_channels}->{g.out_units}, dim={self.dim}, {self.embedding}, "
            f"{self.projection}, activation={self.activation})"
        )


class EHDClassifier(EHDGLayer):
    """The binary classifier: z_hat_c from the Hamming distance between phi(h + b) and the class code phi(W[:, c]).

    Its argmax is the prediction; z_hat estimates arcsin of the float classifier's column cosine.
    """

    def __init__(
        self, in_features: int, n_classes: int, dim: int, codes: NDArray[np.uint64], bias: float, **kwargs: Any
    ) -> None:
        super().__init__(Geometry("linear", in_features, n_classes), dim, codes, bias, **kwargs)

    def __repr__(self) -> str:
        g = self.geometry
        return f"EHDClassifier({g.in_channels}->{g.out_units}, dim={self.dim}, {self.embedding})"
