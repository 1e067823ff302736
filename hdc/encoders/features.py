"""Feature encoders for the Hamming classifiers: real features ``(n_samples, in_features)`` -> packed codes
``(n_samples, n_words(dim))``.

Each encoder is a scikit-learn transformer (``fit`` learns the feature scaling, ``transform``
returns uint64 words ``(n_samples, n_words(dim))``, see :mod:`hdc.packed`):

* :class:`KernelEncoder` (``"kernel"``): kernel-corrected codes as in RFF-HDC and Laplace-HDC.
  Each feature is quantised to one of ``levels`` values; feature ``f`` owns a codebook whose
  rows are ``sign(G_f U)`` with ``U^T U = sin(pi/2 * K)``, ``K`` the 1-D kernel between the level
  values.  By Grothendieck's identity the bipolar similarity of two rows is then
  ``(2/pi) arcsin(sin(pi/2 K)) = K`` in expectation (the ``sin`` pre-corrects the ``arcsin``
  that the sign introduces).  The sample's code XOR-binds its features' rows, so with
  independent codebooks the expected similarity of two codes is the product kernel
  ``prod_f K(x_f, y_f)``: ``exp(-||x - y||_1 / bandwidth)`` for ``kernel="laplace"``,
  ``exp(-||x - y||_2^2 / (2 bandwidth^2))`` for ``kernel="rbf"``.
* :class:`ProjectionEncoder` (``"projection"``): ``sign(G [z; offset])`` with the seeded
  :class:`hdc.projection.RandomProjection` ``G``; the code similarity estimates
  ``1 - 2 angle(x, y) / pi`` (SimHash).
* :class:`LevelEncoder` (``"level"``): level-id record encoding, the majority bundle of
  ``key_f XOR level(z_f)`` (:class:`hdc.encoders.RecordEncoder`).

Every encoder first scales the features (``scaling``): ``"feature"`` z-scores each feature
(constant features get scale 1), ``"global"`` uses one mean and standard deviation for all
entries (keeps the relative scale of pixels), ``"none"`` leaves them as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import pdist
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from hdc._kernels.xor import xor_gather
from hdc._validate import as_seed, check_choice, check_int, check_number
from hdc.encoders.record import RecordEncoder
from hdc.packed import check_dim, n_words, pack_bits

__all__ = [
    "CHUNK_ROWS",
    "ENCODERS",
    "KERNELS",
    "SCALINGS",
    "KernelEncoder",
    "LevelEncoder",
    "ProjectionEncoder",
    "make_encoder",
]

SCALINGS = ("feature", "global", "none")
PROJECTION_KINDS = ("gaussian", "rademacher", "orthogonal")  # hdc.projection.KINDS, without importing torch here
KERNELS = ("laplace", "rbf")
ENCODERS = ("kernel", "projection", "level", "precomputed")

# Rows encoded per chunk: float temporaries stay near CHUNK_ROWS * 4096 * 4 bytes (64 MiB).
CHUNK_ROWS = 4096
# Rows used by the median-distance bandwidth heuristic (evenly spaced, no randomness needed).
BANDWIDTH_ROWS = 512


class _ScaledEncoder(TransformerMixin, BaseEstimator):
    """Shared scaling and validation; subclasses implement ``_build`` and ``_encode_scaled``."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The output is always packed uint64 words, whatever the input's float dtype.
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _fit_scaling(self, x: np.ndarray) -> None:
        if self.scaling == "feature":
            mean = x.mean(axis=0, dtype=np.float64)
            std = x.std(axis=0, dtype=np.float64)
        elif self.scaling == "global":
            mean = np.full(x.shape[1], x.mean(dtype=np.float64))
            std = np.full(x.shape[1], x.std(dtype=np.float64))
        else:
            mean, std = np.zeros(x.shape[1]), np.ones(x.shape[1])
        # A constant feature (or a single sample) has no spread to normalise by.
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        self.mean_ = mean.astype(np.float32)
        self.scale_ = std.astype(np.float32)

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - self.mean_) / self.scale_
        if not np.isfinite(z).all():
            raise ValueError("X overflows float32 after scaling; rescale the input")
        return z

    def fit(self, X: Any, y: Any = None) -> _ScaledEncoder:
        """Learn the scaling (and what the encoder derives from data); returns self."""
        check_dim(self.dim)
        check_choice(self.scaling, SCALINGS, "scaling")
        self._check_params()
        x = validate_data(self, X, dtype=[np.float64, np.float32])
        self._fit_scaling(x)
        self._build(self._scaled(x))
        self.dim_ = int(self.dim)
        return self

    def transform(self, X: Any) -> NDArray[np.uint64]:
        """uint64 ``(n_samples, n_words(dim))`` packed codes of the rows of ``X`` (float
        ``(n_samples, in_features)``)."""
        check_is_fitted(self, "dim_")
        x = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        parts = [self._encode_scaled(self._scaled(x[i : i + CHUNK_ROWS])) for i in range(0, len(x), CHUNK_ROWS)]
        return np.concatenate(parts, axis=0)

    def _check_params(self) -> None:  # pragma: no cover - overridden
        pass

    def _build(self, z: np.ndarray) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _encode_scaled(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError


class ProjectionEncoder(_ScaledEncoder):
    """Sign random projection ``sign(G [z; offset])``.

    Args:
        dim: code dimension ``D``.
        kind: ``"gaussian"`` or ``"rademacher"`` entries of ``G``, or ``"orthogonal"`` (Gaussian rows
            orthogonalised in groups; see :class:`hdc.projection.RandomProjection`).
        offset: value of a constant feature appended to the scaled input, so each bit gets a
            random threshold (0 disables it and makes the code depend on the direction only).
        scaling: ``"feature"``, ``"global"`` or ``"none"``.
        seed: int seed of ``G``.
    """

    def __init__(
        self, dim: int = 10000, kind: str = "gaussian", offset: float = 1.0, scaling: str = "feature", seed: int = 0
    ) -> None:
        self.dim = dim
        self.kind = kind
        self.offset = offset
        self.scaling = scaling
        self.seed = seed

    def _check_params(self) -> None:
        check_choice(self.kind, PROJECTION_KINDS, "kind")
        check_number(self.offset, "offset")

    def _build(self, z: np.ndarray) -> None:
        from hdc.projection import RandomProjection  # torch is only needed by this encoder

        in_features = z.shape[1] + (1 if self.offset != 0 else 0)
        self.projection_ = RandomProjection(in_features, int(self.dim), kind=self.kind, seed=as_seed(self.seed))

    def _encode_scaled(self, z: np.ndarray) -> np.ndarray:
        if self.offset != 0:
            z = np.concatenate([z, np.full((len(z), 1), self.offset, dtype=np.float32)], axis=1)
        return self.projection_.encode(z)


def kernel_matrix(values: NDArray[np.floating], kernel: str, bandwidth: float) -> NDArray[np.float64]:
    """1-D kernel ``K[a, b]`` between scalar ``values`` (float64 ``(L, L)``, ones on the diagonal)."""
    d = np.abs(values[:, None] - values[None, :])
    if kernel == "laplace":
        return np.exp(-d / bandwidth)
    return np.exp(-(d**2) / (2.0 * bandwidth**2))


def corrected_factor(k: NDArray[np.float64]) -> NDArray[np.float64]:
    """``U`` with ``U^T U ~= sin(pi/2 K)`` (negative eigenvalues clipped to 0), float64 ``(L, L)``.

    ``sign(g^T U[:, a])`` for ``g ~ N(0, I)`` then has ``E[sign_a sign_b] = K[a, b]`` up to the
    clipping (and the column norms, which are 1 when nothing was clipped).
    """
    target = np.sin(np.pi / 2.0 * k)
    eigval, eigvec = np.linalg.eigh(target)
    return np.sqrt(np.maximum(eigval, 0.0))[:, None] * eigvec.T


def shifted_codebooks(factor: NDArray[np.float64], in_features: int, dim: int, seed: int) -> NDArray[np.uint64]:
    """Per-feature codebooks: cyclic shifts of base codebooks ``sign(U^T G)``.

    A base codebook has row ``a = sign(U[:, a]^T G)`` with ``G`` float32 ``(L, dim)`` standard
    normal; base ``k`` comes from ``SeedSequence(seed, spawn_key=(k,))``.  Feature ``f`` uses base
    ``f // dim`` shifted cyclically by ``f % dim`` positions (as RFF-HDC and Laplace-HDC bind
    pixels by shifts).  Within one base, distinct shifts put independent Gaussian columns under
    each position, so the XOR of the features' rows has the product kernel as its expected
    similarity, while drawing only ``L * dim`` normals per ``dim`` features.

    Returns:
        uint64 ``(in_features, L, n_words(dim))``.
    """
    levels = factor.shape[0]
    table = np.empty((in_features, levels, n_words(dim)), dtype=np.uint64)
    factor32 = factor.astype(np.float32)
    for base_index in range(-(-in_features // dim)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(base_index,))))
        gauss = rng.standard_normal((levels, dim), dtype=np.float32)
        # (L, dim) sign, ties to +1; einsum because threaded BLAS stalls on this small product
        # when the CPU is shared.
        bits = np.einsum("ka,kd->ad", factor32, gauss) >= 0
        doubled = np.concatenate([bits, bits], axis=1)
        first = base_index * dim
        for f in range(first, min(in_features, first + dim)):
            shift = f - first
            # np.roll(bits, shift, axis=1) without the copy: out[:, j] = bits[:, j - shift].
            table[f] = pack_bits(doubled[:, dim - shift : 2 * dim - shift])
    return table


class KernelEncoder(_ScaledEncoder):
    """Kernel-corrected level codes bound across features (RFF-HDC / Laplace-HDC style).

    Args:
        dim: code dimension ``D``.
        kernel: ``"laplace"`` (``exp(-|a - b| / bandwidth)`` per feature, so the L1 Laplace
            kernel over features) or ``"rbf"`` (``exp(-(a - b)^2 / (2 bandwidth^2))``, the
            Gaussian kernel).
        bandwidth: kernel bandwidth in scaled units; ``None`` takes ``bandwidth_scale`` times the
            median pairwise distance (L1 for laplace, L2 for rbf) of up to 512 evenly spaced
            training rows, so a typical pair has similarity ``exp(-1 / bandwidth_scale)``.
        bandwidth_scale: fraction of the median distance used when ``bandwidth`` is ``None``
            (default 0.5: typical pair similarity ``exp(-2)``; 1.0 is the textbook median heuristic).
        levels: quantisation levels per feature.
        clip: scaled values are clipped to ``[-clip, clip]`` before quantisation.
        scaling: ``"feature"``, ``"global"`` or ``"none"``.
        seed: int seed of the codebooks (see :func:`shifted_codebooks`).

    Fitted attributes: ``bandwidth_``, ``levels_values_`` (the ``L`` level values), and the
    codebooks (see :meth:`codebooks`) stored relative to each feature's most common training
    level: ``ref_levels_`` (int64 ``(F,)``), ``ref_rows_`` (uint64 ``(F, W)``), ``delta_table_``
    (uint64 ``(F, L, W)``, row XOR the reference row) and ``base_`` (XOR of ``ref_rows_``).
    """

    def __init__(
        self,
        dim: int = 10000,
        kernel: str = "laplace",
        bandwidth: float | None = None,
        levels: int = 32,
        clip: float = 3.0,
        scaling: str = "feature",
        seed: int = 0,
        bandwidth_scale: float = 0.5,
    ) -> None:
        self.dim = dim
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.bandwidth_scale = bandwidth_scale
        self.levels = levels
        self.clip = clip
        self.scaling = scaling
        self.seed = seed

    def _check_params(self) -> None:
        check_choice(self.kernel, KERNELS, "kernel")
        check_int(self.levels, "levels", minimum=2)
        check_number(self.clip, "clip", 0.0, strict=True)
        check_number(self.bandwidth_scale, "bandwidth_scale", 0.0, strict=True)
        if self.bandwidth is not None:
            check_number(self.bandwidth, "bandwidth", 0.0, strict=True)

    def _median_bandwidth(self, z: np.ndarray) -> float:
        rows = z[np.unique(np.linspace(0, len(z) - 1, min(len(z), BANDWIDTH_ROWS)).astype(np.int64))]
        if len(rows) < 2:
            return 1.0
        dist = pdist(rows.astype(np.float64), metric="cityblock" if self.kernel == "laplace" else "euclidean")
        med = float(np.median(dist))
        return med * float(self.bandwidth_scale) if med > 0 else 1.0

    def _build(self, z: np.ndarray) -> None:
        clip = float(self.clip)
        z = np.clip(z, -clip, clip)
        self.bandwidth_ = float(self.bandwidth) if self.bandwidth is not None else self._median_bandwidth(z)
        self.levels_values_ = np.linspace(-clip, clip, int(self.levels))
        factor = corrected_factor(kernel_matrix(self.levels_values_, self.kernel, self.bandwidth_))
        table = shifted_codebooks(factor, z.shape[1], int(self.dim), as_seed(self.seed))
        # Encoding skips features at their reference level; the most common level makes that
        # the usual case (the result does not depend on this choice, only the speed does).
        sample = self.level_index(z[:: max(1, len(z) // BANDWIDTH_ROWS)])
        levels = int(self.levels)
        flat = sample + levels * np.arange(z.shape[1])[None, :]
        counts = np.bincount(flat.ravel(), minlength=z.shape[1] * levels).reshape(z.shape[1], levels)
        self.ref_levels_ = counts.argmax(axis=1).astype(np.int64)
        self.ref_rows_ = table[np.arange(z.shape[1]), self.ref_levels_]
        self.delta_table_ = table ^ self.ref_rows_[:, None, :]
        self.base_ = np.bitwise_xor.reduce(self.ref_rows_, axis=0)

    def codebooks(self) -> NDArray[np.uint64]:
        """The per-feature codebooks: uint64 ``(F, L, n_words(dim))``, row ``[f, l]`` is feature
        ``f`` at level ``l``."""
        check_is_fitted(self, "delta_table_")
        return self.delta_table_ ^ self.ref_rows_[:, None, :]

    def level_index(self, z: NDArray[np.floating]) -> NDArray[np.int64]:
        """int64 ``(n_samples, in_features)`` level of each scaled value (``z`` float ``(n_samples, in_features)``)."""
        clip = float(self.clip)
        t = (np.clip(z, -clip, clip) + clip) / (2.0 * clip) * (int(self.levels) - 1)
        return np.rint(t).astype(np.int64)

    def _encode_scaled(self, z: np.ndarray) -> np.ndarray:
        return xor_gather(self.delta_table_, self.ref_levels_, self.base_, self.level_index(z))


class LevelEncoder(_ScaledEncoder):
    """Level-id record encoding: majority of ``key_f XOR level(z_f)`` over features.

    Args:
        dim: code dimension ``D``.
        levels: levels of the value codebook (:func:`hdc.encoders.level_codebook`).
        clip: the codebook spans ``[-clip, clip]`` of the scaled values (outside is clipped).
        scaling: ``"feature"``, ``"global"`` or ``"none"``.
        seed: int seed of keys, levels and the tie-break vector.
    """

    def __init__(
        self, dim: int = 10000, levels: int = 64, clip: float = 3.0, scaling: str = "feature", seed: int = 0
    ) -> None:
        self.dim = dim
        self.levels = levels
        self.clip = clip
        self.scaling = scaling
        self.seed = seed

    def _check_params(self) -> None:
        check_int(self.levels, "levels", minimum=2)
        check_number(self.clip, "clip", 0.0, strict=True)

    def _build(self, z: np.ndarray) -> None:
        clip = float(self.clip)
        self.record_ = RecordEncoder(
            z.shape[1],
            int(self.dim),
            int(self.levels),
            -clip,
            clip,
            kind="level",
            ties="random",
            seed=as_seed(self.seed),
        )

    def _encode_scaled(self, z: np.ndarray) -> np.ndarray:
        return self.record_.encode(z)


_CLASSES: dict[str, type[_ScaledEncoder]] = {
    "kernel": KernelEncoder,
    "projection": ProjectionEncoder,
    "level": LevelEncoder,
}


def make_encoder(name: str, dim: int, seed: int, params: dict | None = None) -> _ScaledEncoder:
    """An unfitted encoder ``name`` (``"kernel"``, ``"projection"``, ``"level"``) with ``dim``, ``seed``
    and the extra keyword ``params`` (which must not repeat ``dim`` or ``seed``)."""
    check_choice(name, tuple(_CLASSES), "encoder")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValueError(f"encoder_params must be a dict or None, got {type(params).__name__}")
    for key in ("dim", "seed"):
        if key in params:
            raise ValueError(f"encoder_params must not contain {key!r}; it is set by the classifier")
    cls = _CLASSES[name]
    valid = set(cls._get_param_names()) - {"dim", "seed"}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(f"encoder_params has unknown keys {unknown} for encoder={name!r}; valid keys: {sorted(valid)}")
    return cls(dim=dim, seed=seed, **params)
