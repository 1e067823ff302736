"""A fitted :mod:`hdc.classifiers` estimator behind the deployed-model interface (family ``"hdc"``).

What the deployed classifier stores is what its inference reads (:meth:`HDCModel.arrays`): the class prototypes
(uint64 codes), the class labels, and its encoder's arrays: for the kernel encoder the feature scaling (float32
``mean``/``scale``), the per-feature codebooks relative to each feature's reference level (``delta_table``
uint64 (F, L, W), ``ref_levels`` int64, ``base`` uint64) and the clip value; for the projection encoder the scaling
and the offset (its G is regenerated from the seed, as an EHD layer's is). :meth:`HDCModel.save` writes exactly these
arrays into an :mod:`hdc.io` container, so ``cost().model_bits`` is 8 times the saved payload.

Work per image: the kernel encoder XOR-binds one codebook row per feature (``F * 64 * W`` XOR bits) after two float
multiply-adds per feature (scaling, level quantisation); the projection encoder is ``dim * (F + 1)`` multiply-adds
(``dim * F`` with offset 0) plus one per feature for the scaling; then one Hamming product (XOR + popcount,
``2 * 64 * W`` bits) per class.

Faults: ``"model"`` flips the stored codes (prototypes, and the kernel encoder's codebooks), ``"data"`` the encoded
samples; both with the exact-rate model of :class:`hdc.faults.BitFaults` (independent streams of one seed).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnet.deployed import ModelCost
from hdc._validate import check_choice, check_int
from hdc.classifiers.faults import faulty_prototypes, predict_with_faults
from hdc.faults import BitFaults
from hdc.io import save_container

__all__ = ["FORMAT", "HDCModel"]

FORMAT = "gnet-compare-hdc"  # written for counting and inspection; gnet.deployed.load_deployed does not read it
_CODEBOOK_STREAM = (2, 0)  # apart from hdc.classifiers.faults' prototype (0, 0) and data (1, 0) streams


def _faulty_codebooks(encoder: Any, faults: BitFaults, seed: int) -> Any:
    """A shallow copy of a fitted kernel encoder whose codebook rows carry ``faults`` (each row one code)."""
    books = encoder.codebooks()  # (F, L, W)
    hit = faults.apply(books.reshape(-1, books.shape[-1]), encoder.dim_, seed, _CODEBOOK_STREAM).reshape(books.shape)
    clone = copy.copy(encoder)
    features = np.arange(books.shape[0])
    clone.ref_rows_ = hit[features, encoder.ref_levels_]
    clone.delta_table_ = hit ^ clone.ref_rows_[:, None, :]
    clone.base_ = np.bitwise_xor.reduce(clone.ref_rows_, axis=0)
    return clone


class HDCModel:
    """A fitted Hamming classifier (CentroidHD, AdaptHD, OnlineHD) on flattened inputs.

    Args:
        clf: the fitted estimator (encoder ``"kernel"``, ``"projection"`` or ``"precomputed"``).
        input_shape: shape of one input item; inputs are flattened to ``prod(input_shape)`` features.
        name: the method's name, for messages.
    """

    family = "hdc"

    def __init__(self, clf: Any, input_shape: tuple[int, ...], name: str) -> None:
        self.clf = clf
        self.input_shape: tuple[int, ...] | None = tuple(input_shape)
        self.n_classes = len(clf.classes_)
        self.name = name
        self._data_faults: tuple[BitFaults, int] | None = None

    def _flat(self, x: Any) -> np.ndarray:
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Labels (B,) int64 of inputs (B, *input_shape); ``batch_size`` is accepted for the interface (the
        classifier encodes in bounded chunks itself, and its result never depends on the chunking)."""
        check_int(batch_size, "batch_size", minimum=1)
        flat = self._flat(x)
        if self._data_faults is None:
            return np.asarray(self.clf.predict(flat)).astype(np.int64)
        faults, seed = self._data_faults
        return np.asarray(predict_with_faults(self.clf, flat, "data", faults, seed)).astype(np.int64)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array inference reads (see the module docstring), by name."""
        clf, enc = self.clf, self.clf.encoder_
        out = {"prototypes": np.asarray(clf.prototypes_), "classes": np.asarray(clf.classes_).astype(np.int64)}
        if enc is None:  # precomputed codes
            return out
        out["mean"], out["scale"] = enc.mean_, enc.scale_
        if clf.encoder == "kernel":
            out["delta_table"], out["ref_levels"], out["base"] = enc.delta_table_, enc.ref_levels_, enc.base_
            out["clip"] = np.array([enc.clip], np.float64)
        elif clf.encoder == "projection":
            out["offset"] = np.array([enc.offset], np.float64)
        else:
            raise ValueError(f"{self.name}: no deployed form for encoder {clf.encoder!r} (kernel, projection)")
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`arrays` and the settings to an :mod:`hdc.io` container (format ``gnet-compare-hdc``)."""
        header = {
            "classifier": type(self.clf).__name__,
            "encoder": self.clf.encoder,
            "dim": int(self.clf.dim_),
            "seed": int(self.clf.seed),
            "input_shape": list(self.input_shape or ()),
        }
        return save_container(path, FORMAT, 1, header, self.arrays())

    def fault_targets(self) -> tuple[str, ...]:
        """``("model", "data")``: the stored codes (prototypes and codebooks), or the encoded samples."""
        return ("model", "data")

    def with_faults(self, p: float, target: str, seed: int, kind: str = "flip") -> HDCModel:
        """A copy with exactly ``round(p * dim)`` faulty bits per code in ``target``; this model is unchanged."""
        check_choice(target, self.fault_targets(), "target")
        seed = check_int(seed, "seed", minimum=0)
        faults = BitFaults(p, kind)
        clone = copy.copy(self)
        if target == "data":
            clone._data_faults = (faults, seed)
            return clone
        clone.clf = faulty_prototypes(self.clf, faults, seed)
        if self.clf.encoder == "kernel":
            clone.clf.encoder_ = _faulty_codebooks(self.clf.encoder_, faults, seed)
        return clone

    def cost(self) -> ModelCost:
        """Stored bits (8 x the :meth:`save` payload), bit operations and float multiply-adds per image."""
        arrays = self.arrays()
        parts: dict[str, int] = {}
        for arr in arrays.values():
            key = "codes" if arr.dtype == np.uint64 else f"{arr.dtype} arrays"
            parts[key] = parts.get(key, 0) + arr.nbytes * 8
        words = arrays["prototypes"].shape[1]
        bit_ops = self.n_classes * 2 * 64 * words
        features = int(np.prod(self.input_shape or ()))
        macs = 0
        if self.clf.encoder == "kernel":
            bit_ops += features * 64 * words
            macs = 2 * features
        elif self.clf.encoder == "projection":
            offset = 1 if float(self.clf.encoder_.offset) != 0 else 0
            macs = int(self.clf.dim_) * (features + offset) + features
        return ModelCost(sum(parts.values()), bit_ops, macs, parts)
