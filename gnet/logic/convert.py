"""Discretise a trained :class:`~gnet.logic.models.DiffLogicNet` into a :class:`LogicCircuit` of hard gates and run
it bit-parallel over samples (64 samples per uint64 word, one word operation per gate; see
:mod:`hdc._kernels.logic`).

The circuit keeps the network as converted (per layer: gate id uint8 and two input indices int32 per neuron),
plus the input step (which raw feature each input bit reads and its threshold) and the GroupSum (groups, tau).
Before running, :meth:`LogicCircuit.plan` derives an equivalent, smaller circuit: gates whose output no later gate
or group reads are dropped (backwards from the groups; a gate that ignores one of its inputs, such as ``a`` or
``not_b``, does not keep that input alive), and inputs no gate reads are not packed. Counts, and hence
predictions, are unchanged.

``LogicCircuit.predict(x)`` equals ``model.eval()(x).argmax(1)`` exactly: on {0, 1} inputs the torch eval model
computes every gate exactly with the same argmax gate, and both sides take the first maximum of the group sums.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import torch
from numpy.typing import NDArray

from gnet.logic.gates import COEFFICIENTS
from gnet.logic.layers import LogicLayer
from gnet.logic.models import DiffLogicNet
from hdc._kernels.logic import ANF, BLOCK, circuit_counts, pack_threshold_bits
from hdc._validate import check_int

__all__ = ["DEFAULT_BLOCK", "CircuitPlan", "LogicCircuit", "convert"]

DEFAULT_BLOCK = BLOCK  # words of 64 samples per kernel work unit

# Which gates read their first / second input (a nonzero coefficient on a, or on ab; on b, or on ab).
_READS_A = (COEFFICIENTS[:, 1] != 0) | (COEFFICIENTS[:, 3] != 0)
_READS_B = (COEFFICIENTS[:, 2] != 0) | (COEFFICIENTS[:, 3] != 0)


@dataclass
class CircuitPlan:
    """The kernel's arrays (see :func:`hdc._kernels.logic.circuit_counts`) and the input bits it reads."""

    ids: NDArray[np.uint8]
    index_a: NDArray[np.int32]
    index_b: NDArray[np.int32]
    offsets: NDArray[np.int64]
    group_bounds: NDArray[np.int64]
    input_bits: NDArray[np.int64]  # the circuit input bits that are packed, in kernel row order
    buf_rows: int

    @property
    def n_gates(self) -> int:
        return len(self.ids)


@dataclass
class LogicCircuit:
    """A hard logic network.

    Attributes:
        ids: per layer, uint8 (width,) gate ids (see :data:`gnet.logic.gates.GATE_NAMES`).
        index_a, index_b: per layer, int32 (width,) indices into the previous layer (the input bits for layer 0).
        n_classes, tau: GroupSum (equal consecutive groups of the last layer).
        input_source: int64 (n_input_bits,) raw feature read by each input bit (raw = the flattened model input).
        input_threshold: float32 (n_input_bits,): input bit = ``x[:, source] > threshold``.
        raw_features: width of the flattened raw input.
        strict_range: raw inputs must lie in [0, 1] (as the torch model requires).
    """

    ids: list[NDArray[np.uint8]]
    index_a: list[NDArray[np.int32]]
    index_b: list[NDArray[np.int32]]
    n_classes: int
    tau: float
    input_source: NDArray[np.int64]
    input_threshold: NDArray[np.float32]
    raw_features: int
    strict_range: bool = True
    _plan: CircuitPlan | None = field(default=None, repr=False, compare=False)

    @property
    def n_gates(self) -> int:
        return int(sum(len(g) for g in self.ids))

    @property
    def nbytes(self) -> int:
        """Bytes of the gate arrays (1 + 4 + 4 per gate) and of the input step."""
        return self.n_gates * 9 + self.input_source.nbytes + self.input_threshold.nbytes

    def plan(self) -> CircuitPlan:
        """The pruned circuit the kernel runs (computed once, on first use)."""
        if self._plan is None:
            self._plan = _make_plan(self)
        return self._plan

    def pack_inputs(self, x: Any) -> tuple[NDArray[np.uint64], int]:
        """Raw inputs (B, ...) -> (bit-sliced words (plan input bits, ceil(B / 64)) uint64, B); tail bits zero.

        The inputs the circuit reads are checked while packing (NaN or inf, and with ``strict_range`` values
        outside [0, 1], raise ``ValueError``), which saves separate passes over large batches.
        """
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
        if arr.shape[1] != self.raw_features:
            raise ValueError(f"expected {self.raw_features} input features per sample, got {arr.shape[1]}")
        plan = self.plan()
        n_words = max(1, math.ceil(len(arr) / 64))
        words = np.empty((len(plan.input_bits), n_words), dtype=np.uint64)
        bad = pack_threshold_bits(
            arr,
            self.input_source[plan.input_bits],
            self.input_threshold[plan.input_bits],
            n_words,
            self.strict_range,
            numba.get_num_threads(),
            words,
        )
        if bad:
            raise ValueError(
                f"{bad} input values the circuit reads are "
                + ("outside [0, 1] or NaN (as for the torch model)" if self.strict_range else "NaN or infinite")
            )
        return words, len(arr)

    def counts_packed(self, words: NDArray[np.uint64], n_samples: int, block: int = BLOCK) -> NDArray[np.int32]:
        """Group counts int32 (n_samples, n_classes) from :meth:`pack_inputs` words; ``block``: words per work
        unit of the kernel (64 ``block`` samples)."""
        plan = self.plan()
        block = check_int(block, "block", 1)
        if words.ndim != 2 or words.shape[0] != len(plan.input_bits):
            raise ValueError(f"words must be uint64 ({len(plan.input_bits)}, n_words), got shape {words.shape}")
        if not 0 <= n_samples <= 64 * words.shape[1]:
            raise ValueError(f"n_samples {n_samples} exceeds the {64 * words.shape[1]} lanes of words")
        out = np.zeros((n_samples, self.n_classes), dtype=np.int32)
        if n_samples:
            circuit_counts(
                np.ascontiguousarray(words, dtype=np.uint64),
                plan.ids,
                plan.index_a,
                plan.index_b,
                ANF,
                plan.offsets,
                plan.group_bounds,
                plan.buf_rows,
                n_samples,
                block,
                numba.get_num_threads(),
                out,
            )
        return out

    def counts(self, x: Any) -> NDArray[np.int32]:
        """int32 (B, n_classes): number of true gates in each class group, per sample."""
        return self.counts_packed(*self.pack_inputs(x))

    def scores(self, x: Any) -> NDArray[np.float32]:
        """float32 (B, n_classes): counts / tau (the model's eval-mode scores)."""
        return self.counts(x).astype(np.float32) / np.float32(self.tau)

    def predict(self, x: Any) -> NDArray[np.int64]:
        """int64 (B,): argmax of the counts, first maximum on ties (as ``torch.argmax``)."""
        return self.counts(x).argmax(axis=1).astype(np.int64)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat numpy arrays (e.g. for ``np.savez``): ``ids``, ``index_a``, ``index_b`` (layers concatenated),
        ``widths`` (int64 per layer), ``input_source``, ``input_threshold`` and a ``header`` float64
        ``[n_classes, tau, raw_features, strict_range]``. :meth:`from_arrays` inverts it."""
        return {
            "ids": np.concatenate(self.ids),
            "index_a": np.concatenate(self.index_a),
            "index_b": np.concatenate(self.index_b),
            "widths": np.array([len(g) for g in self.ids], np.int64),
            "input_source": self.input_source,
            "input_threshold": self.input_threshold,
            "header": np.array([self.n_classes, self.tau, self.raw_features, self.strict_range], np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LogicCircuit:
        """Rebuild a circuit from :meth:`to_arrays`, checking every array, so that a damaged or foreign file
        gives a ``ValueError`` rather than wrong predictions or an out-of-bounds read in the kernel."""
        missing = {"ids", "index_a", "index_b", "widths", "input_source", "input_threshold", "header"} - set(arrays)
        if missing:
            raise ValueError(f"not a logic circuit: missing arrays {sorted(missing)}")
        n_classes, tau, raw_features, strict = (float(v) for v in np.asarray(arrays["header"]).reshape(-1)[:4])
        widths = np.asarray(arrays["widths"], np.int64)
        ids = np.asarray(arrays["ids"])
        source = np.asarray(arrays["input_source"], np.int64)
        threshold = np.asarray(arrays["input_threshold"], np.float32)
        if not (n_classes >= 1 and tau > 0 and raw_features >= 1 and len(widths) >= 1 and (widths >= 1).all()):
            raise ValueError("logic circuit: bad header or layer widths")
        if len(ids) != widths.sum() or len(arrays["index_a"]) != len(ids) or len(arrays["index_b"]) != len(ids):
            raise ValueError("logic circuit: gate arrays do not match the layer widths")
        if len(ids) and (ids.min() < 0 or ids.max() > 15):
            raise ValueError("logic circuit: gate ids must lie in [0, 16)")
        if widths[-1] % int(n_classes) or len(source) != len(threshold) or len(source) == 0:
            raise ValueError("logic circuit: last width not a multiple of n_classes, or bad input step")
        if source.min() < 0 or source.max() >= raw_features:
            raise ValueError("logic circuit: input sources out of range")
        bounds = np.concatenate([[0], np.cumsum(widths)])
        layers: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        fan_in = len(source)
        for lo, hi in itertools.pairwise(bounds.tolist()):
            a = np.asarray(arrays["index_a"][lo:hi], np.int64)
            b = np.asarray(arrays["index_b"][lo:hi], np.int64)
            if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= fan_in:
                raise ValueError(f"logic circuit: gate inputs out of range for a layer of fan-in {fan_in}")
            layers[0].append(ids[lo:hi].astype(np.uint8))
            layers[1].append(a.astype(np.int32))
            layers[2].append(b.astype(np.int32))
            fan_in = hi - lo
        return cls(
            *layers,
            n_classes=int(n_classes),
            tau=tau,
            input_source=source,
            input_threshold=threshold,
            raw_features=int(raw_features),
            strict_range=bool(strict),
        )


def _input_step(model: DiffLogicNet) -> tuple[NDArray[np.int64], NDArray[np.float32], int, bool]:
    spec = model.spec
    shape = tuple(spec["input_shape"]) if spec["input_shape"] else (spec["in_features"],)
    raw = np.arange(math.prod(shape)).reshape(shape)
    if model.crop:
        raw = raw[..., model.crop : -model.crop, model.crop : -model.crop]
    feature = raw.reshape(-1).astype(np.int64)
    if model.encoder is None:
        return feature, np.full(len(feature), 0.5, np.float32), math.prod(shape), True
    t = model.encoder.thresholds.detach().cpu().numpy().astype(np.float32)
    if np.isnan(t).any():
        raise ValueError("quantile thresholds are not fitted; call model.fit_encoder(x_train) first")
    k = t.shape[1]
    t = np.broadcast_to(t, (len(feature), k))
    return np.repeat(feature, k), np.ascontiguousarray(t).reshape(-1), math.prod(shape), model.encoder.strict_range


def convert(model: DiffLogicNet) -> LogicCircuit:
    """The hard circuit of ``model``: each neuron's argmax gate (first maximum, as in eval mode)."""
    if not isinstance(model, DiffLogicNet):
        raise TypeError(f"convert expects a DiffLogicNet, got {type(model).__name__}")
    source, threshold, raw_features, strict = _input_step(model)
    ids, ia, ib = [], [], []
    for layer in model.layers:
        assert isinstance(layer, LogicLayer)
        ids.append(layer.gate_ids().cpu().numpy().astype(np.uint8))
        ia.append(layer.index_a.cpu().numpy().astype(np.int32))
        ib.append(layer.index_b.cpu().numpy().astype(np.int32))
    return LogicCircuit(
        ids, ia, ib, model.n_classes, float(model.group_sum.tau), source, threshold, raw_features, strict
    )


def _make_plan(c: LogicCircuit) -> CircuitPlan:
    """Prune dead gates and unread inputs (see module docstring); surviving gates keep their order."""
    n_layers = len(c.ids)
    width = len(c.ids[-1])
    group = width // c.n_classes
    # live[l]: sorted indices of layer l's gates that matter; layer -1 = the input bits
    live: list[NDArray[np.int64]] = [np.arange(width)]
    for layer in range(n_layers - 1, -1, -1):
        g = live[0]
        gid = c.ids[layer][g]
        used = np.concatenate([c.index_a[layer][g][_READS_A[gid]], c.index_b[layer][g][_READS_B[gid]]])
        live.insert(0, np.unique(used.astype(np.int64)))
    inputs = live[0]
    if len(inputs) == 0:  # constant circuit: still hand the kernel one (ignored) input row
        inputs = np.zeros(1, np.int64)
    position = np.full(len(c.input_source), -1, np.int64)
    position[inputs] = np.arange(len(inputs))
    ids, ia, ib, offsets, bounds = [], [], [], [0], np.arange(c.n_classes + 1) * group
    for layer in range(n_layers):
        g = live[layer + 1]  # sorted; the last layer is complete, so its group boundaries are unchanged
        gid = c.ids[layer][g]
        a = np.where(_READS_A[gid], position[c.index_a[layer][g]], 0)
        b = np.where(_READS_B[gid], position[c.index_b[layer][g]], 0)
        ids.append(gid)
        ia.append(a)
        ib.append(b)
        offsets.append(offsets[-1] + len(g))
        position = np.full(len(c.ids[layer]), -1, np.int64)
        position[g] = np.arange(len(g))
    widths = [len(inputs)] + [len(x) for x in ids]
    return CircuitPlan(
        ids=np.ascontiguousarray(np.concatenate(ids), dtype=np.uint8),
        index_a=np.ascontiguousarray(np.concatenate(ia), dtype=np.int32),
        index_b=np.ascontiguousarray(np.concatenate(ib), dtype=np.int32),
        offsets=np.asarray(offsets, dtype=np.int64),
        group_bounds=bounds.astype(np.int64),
        input_bits=inputs,
        buf_rows=max(widths),
    )
