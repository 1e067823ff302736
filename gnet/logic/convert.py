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
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch
from numpy.typing import NDArray

from gnet.deployed import ModelCost
from gnet.logic.faults import FAULT_TARGETS, RuntimeFault, fault_chunk, fault_words, with_faults
from gnet.logic.gates import COEFFICIENTS
from gnet.logic.layers import LogicLayer
from gnet.logic.models import DiffLogicNet
from hdc._kernels.logic import ANF, BLOCK, FAULT_CODES, circuit_counts, pack_threshold_bits
from hdc._validate import Seed, check_choice, check_int
from hdc.faults import FAULT_KINDS, apply_fault_mask

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
    gate_index: NDArray[np.int64]  # each kernel gate's position among the circuit's gates (layers concatenated)
    buf_rows: int

    @property
    def n_gates(self) -> int:
        return len(self.ids)


@dataclass
class LogicCircuit:
    """A hard logic network; implements :class:`gnet.deployed.DeployedModel` (family ``"logic"``).

    Attributes:
        ids: per layer, uint8 (width,) gate ids (see :data:`gnet.logic.gates.GATE_NAMES`).
        index_a, index_b: per layer, int32 (width,) indices into the previous layer (the input bits for layer 0).
        n_classes, tau: GroupSum (equal consecutive groups of the last layer).
        input_source: int64 (n_input_bits,) raw feature read by each input bit (raw = the flattened model input).
        input_threshold: float32 (n_input_bits,): input bit = ``x[:, source] > threshold``.
        raw_features: width of the flattened raw input.
        strict_range: raw inputs must lie in [0, 1] (as the torch model requires).
        input_shape: shape of one input item (the model's ``input_shape``, else ``(raw_features,)``).
        meta: JSON-able provenance saved with the circuit (e.g. dataset, val_fraction, data_seed, scaling).
        runtime_faults: faults applied while predicting (set by :meth:`with_faults`; see
            :mod:`gnet.logic.faults`); empty for a clean circuit.

    Every array is checked on construction (gate ids in [0, 16), indices within the previous layer, finite
    thresholds and tau, last width a multiple of ``n_classes``): a ``ValueError`` names the problem.
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
    input_shape: tuple[int, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    runtime_faults: tuple[RuntimeFault, ...] = ()
    family: str = field(default="logic", init=False)
    _plan: CircuitPlan | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_circuit(self)

    @property
    def n_gates(self) -> int:
        return int(sum(len(g) for g in self.ids))

    @property
    def n_input_bits(self) -> int:
        return len(self.input_source)

    @property
    def nbytes(self) -> int:
        """Bytes of the gate arrays in memory (1 + 4 + 4 per gate) and of the input step."""
        return self.n_gates * 9 + self.input_source.nbytes + self.input_threshold.nbytes

    def plan(self) -> CircuitPlan:
        """The pruned circuit the kernel runs (computed once, on first use)."""
        if self._plan is None:
            self._plan = _make_plan(self)
        return self._plan

    def engine_bytes_per_image(self) -> float:
        """Bytes of activations the engine holds per image while it runs: the packed input bits it reads plus its
        two layer buffers (widest layer, one bit per image each); the buffers are per thread and block of
        ``64 * block`` images, so per image they come to ``2 * widest / 8`` bytes."""
        plan = self.plan()
        return (len(plan.input_bits) + 2 * plan.buf_rows) / 8

    def _rows(self, x: Any) -> NDArray[np.float32]:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim < 2:
            shape = ", ".join(map(str, self.input_shape or (self.raw_features,)))
            raise ValueError(f"x must be a batch (B, {shape}), got shape {arr.shape}")
        arr = np.ascontiguousarray(arr.reshape(len(arr), math.prod(arr.shape[1:])))
        if arr.shape[1] != self.raw_features:
            raise ValueError(f"expected {self.raw_features} input features per sample, got {arr.shape[1]}")
        return arr

    def pack_inputs(self, x: Any) -> tuple[NDArray[np.uint64], int]:
        """Raw inputs (B, ...) -> (bit-sliced words (plan input bits, ceil(B / 64)) uint64, B); tail bits zero.

        The inputs the circuit reads are checked while packing (NaN or inf, and with ``strict_range`` values
        outside [0, 1], raise ``ValueError``), which saves separate passes over large batches.
        """
        arr = self._rows(x)
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

    def counts_packed(
        self,
        words: NDArray[np.uint64],
        n_samples: int,
        block: int = BLOCK,
        *,
        gate_faults: NDArray[np.uint64] | None = None,
        fault_kind: str = "flip",
    ) -> NDArray[np.int32]:
        """Group counts int32 (n_samples, n_classes) from :meth:`pack_inputs` words; ``block``: words per work
        unit of the kernel (64 ``block`` samples); ``gate_faults``: optional uint64 (plan gates, n_words) masks
        applied to the gate outputs (``fault_kind`` flip, stuck0 or stuck1; see :mod:`gnet.logic.faults`)."""
        plan = self.plan()
        block = check_int(block, "block", 1)
        if words.ndim != 2 or words.shape[0] != len(plan.input_bits):
            raise ValueError(f"words must be uint64 ({len(plan.input_bits)}, n_words), got shape {words.shape}")
        if not 0 <= n_samples <= 64 * words.shape[1]:
            raise ValueError(f"n_samples {n_samples} exceeds the {64 * words.shape[1]} lanes of words")
        code = (
            FAULT_CODES["none"] if gate_faults is None else FAULT_CODES[check_choice(fault_kind, FAULT_KINDS, "kind")]
        )
        if gate_faults is None:
            gate_faults = np.zeros((0, 0), np.uint64)
        elif gate_faults.dtype != np.uint64 or gate_faults.shape != (plan.n_gates, words.shape[1]):
            raise ValueError(f"gate_faults must be uint64 ({plan.n_gates}, {words.shape[1]}), got {gate_faults.shape}")
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
                np.ascontiguousarray(gate_faults),
                code,
                out,
            )
        return out

    def counts(self, x: Any, batch_size: int | None = None) -> NDArray[np.int32]:
        """int32 (B, n_classes): number of true gates in each class group, per sample, ``batch_size`` samples at a
        time (None: all at once; with runtime faults at most :func:`gnet.logic.faults.fault_chunk` at a time). The
        result does not depend on ``batch_size``: faults are keyed by each sample's position in ``x``."""
        arr = self._rows(x)
        step = len(arr) if batch_size is None else check_int(batch_size, "batch_size", 1)
        if self.runtime_faults:
            step = min(step, fault_chunk(self.n_gates))
        out = np.empty((len(arr), self.n_classes), dtype=np.int32)
        for start in range(0, len(arr), max(step, 1)):
            words, n = self.pack_inputs(arr[start : start + step])
            gate_faults, kind = None, "flip"
            for fault in self.runtime_faults:
                mask = fault_words(self, fault, start, n)
                if fault.target == "inputs":
                    words = apply_fault_mask(words, mask, fault.kind)
                else:
                    gate_faults, kind = mask, fault.kind
            out[start : start + n] = self.counts_packed(words, n, gate_faults=gate_faults, fault_kind=kind)
        return out

    def scores(self, x: Any, batch_size: int | None = None) -> NDArray[np.float32]:
        """float32 (B, n_classes): counts / tau (the model's eval-mode scores)."""
        return self.counts(x, batch_size).astype(np.float32) / np.float32(self.tau)

    def predict(self, x: Any, batch_size: int | None = 256) -> NDArray[np.int64]:
        """int64 (B,) labels of inputs (B, *input_shape) float32 (torch or numpy): argmax of the counts, first
        maximum on ties (as ``torch.argmax``); independent of ``batch_size`` (None: one batch)."""
        return self.counts(x, batch_size).argmax(axis=1).astype(np.int64)

    # ---------------------------------------------------------------- the DeployedModel protocol
    def save(self, path: str | os.PathLike) -> Path:
        """Write the circuit to ``path`` (``.logic`` appended to a name without suffix); see
        :func:`gnet.logic.io.save_circuit`."""
        from gnet.logic.io import save_circuit

        return save_circuit(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, max_bytes: int | None = None) -> LogicCircuit:
        """Read a ``.logic`` file; see :func:`gnet.logic.io.load_circuit`."""
        from gnet.logic.io import load_circuit

        return load_circuit(path, max_bytes=max_bytes)

    def fault_targets(self) -> tuple[str, ...]:
        """``("gate_outputs", "inputs", "gate_ids")`` (see :mod:`gnet.logic.faults`)."""
        return FAULT_TARGETS

    def with_faults(self, p: float, target: str, seed: Seed, kind: str = "flip") -> LogicCircuit:
        """A copy with faults at rate ``p`` in ``target`` (one of :meth:`fault_targets`) drawn from ``seed``; see
        :func:`gnet.logic.faults.with_faults`."""
        return with_faults(self, p, target, seed, kind)

    def cost(self) -> ModelCost:
        """Model bits as saved and work per image (see :func:`gnet.logic.io.circuit_cost`)."""
        from gnet.logic.io import circuit_cost

        return circuit_cost(self)

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
        if not (n_classes >= 1 and raw_features >= 1 and len(widths) >= 1 and (widths >= 1).all()):
            raise ValueError("logic circuit: bad header or layer widths")
        if len(arrays["ids"]) != widths.sum() or not len(arrays["index_a"]) == len(arrays["index_b"]) == widths.sum():
            raise ValueError("logic circuit: gate arrays do not match the layer widths")
        bounds = np.concatenate([[0], np.cumsum(widths)]).tolist()
        ids, ia, ib = (
            [np.asarray(arrays[k])[lo:hi] for lo, hi in itertools.pairwise(bounds)]
            for k in ("ids", "index_a", "index_b")
        )
        return cls(
            list(ids),
            list(ia),
            list(ib),
            n_classes=int(n_classes),
            tau=tau,
            input_source=np.asarray(arrays["input_source"]),
            input_threshold=np.asarray(arrays["input_threshold"]),
            raw_features=int(raw_features),
            strict_range=bool(strict),
        )


def _as_int_array(values: Any, what: str) -> NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) == 0 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"logic circuit: {what} must be a non-empty 1-D integer array, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64, copy=False)


def _check_circuit(c: LogicCircuit) -> None:
    """Validate and normalise the arrays of ``c`` in place (dtypes: uint8 ids, int32 indices, int64 sources,
    float32 thresholds); a ``ValueError`` names the first problem."""
    c.n_classes = check_int(c.n_classes, "n_classes", 1)
    c.raw_features = check_int(c.raw_features, "raw_features", 1)
    tau = float(c.tau)
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"logic circuit: tau must be a finite number > 0, got {c.tau!r}")
    c.tau = tau
    source = _as_int_array(c.input_source, "input_source")
    threshold = np.asarray(c.input_threshold, np.float32)
    if threshold.shape != source.shape:
        raise ValueError(f"logic circuit: input_threshold {threshold.shape} does not match input_source {source.shape}")
    if source.min() < 0 or source.max() >= c.raw_features:
        raise ValueError(f"logic circuit: input sources out of range for {c.raw_features} raw features")
    if not np.isfinite(threshold).all():
        raise ValueError("logic circuit: input thresholds must be finite")
    c.input_source, c.input_threshold = source, threshold
    if not (len(c.ids) >= 1 and len(c.ids) == len(c.index_a) == len(c.index_b)):
        raise ValueError("logic circuit: ids, index_a and index_b need one array per layer (at least one layer)")
    fan_in = len(source)
    ids, index_a, index_b = [], [], []
    for layer in range(len(c.ids)):
        g = _as_int_array(c.ids[layer], f"layer {layer} ids")
        a = _as_int_array(c.index_a[layer], f"layer {layer} index_a")
        b = _as_int_array(c.index_b[layer], f"layer {layer} index_b")
        if a.shape != g.shape or b.shape != g.shape:
            raise ValueError(f"logic circuit: layer {layer} has {len(g)} gate ids but {len(a)}, {len(b)} indices")
        if g.min() < 0 or g.max() > 15:
            raise ValueError(f"logic circuit: gate ids must lie in [0, 16) (layer {layer}: {g.min()}..{g.max()})")
        if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= fan_in:
            raise ValueError(f"logic circuit: layer {layer} gate inputs out of range for a layer of fan-in {fan_in}")
        ids.append(g.astype(np.uint8))
        index_a.append(a.astype(np.int32))
        index_b.append(b.astype(np.int32))
        fan_in = len(g)
    c.ids, c.index_a, c.index_b = ids, index_a, index_b
    if fan_in % c.n_classes:
        raise ValueError(f"logic circuit: last width {fan_in} is not a multiple of n_classes {c.n_classes}")
    shape = (
        (c.raw_features,)
        if c.input_shape is None
        else tuple(check_int(s, "input_shape entries", 1) for s in c.input_shape)
    )
    if math.prod(shape) != c.raw_features:
        raise ValueError(f"logic circuit: input_shape {shape} does not hold {c.raw_features} raw features")
    c.input_shape, c.strict_range = shape, bool(c.strict_range)
    if not isinstance(c.meta, dict):
        raise ValueError(f"logic circuit: meta must be a dict, got {type(c.meta).__name__}")


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
    shape = model.spec["input_shape"]
    return LogicCircuit(
        ids,
        ia,
        ib,
        model.n_classes,
        float(model.group_sum.tau),
        source,
        threshold,
        raw_features,
        strict,
        input_shape=None if shape is None else tuple(shape),
        meta={"preset": model.spec["preset"]} if "preset" in model.spec else {},
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
    gate_index, layer_start = [], 0
    for layer in range(n_layers):
        g = live[layer + 1]  # sorted; the last layer is complete, so its group boundaries are unchanged
        gid = c.ids[layer][g]
        a = np.where(_READS_A[gid], position[c.index_a[layer][g]], 0)
        b = np.where(_READS_B[gid], position[c.index_b[layer][g]], 0)
        ids.append(gid)
        ia.append(a)
        ib.append(b)
        gate_index.append(layer_start + g)
        layer_start += len(c.ids[layer])
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
        gate_index=np.concatenate(gate_index).astype(np.int64),
        buf_rows=max(widths),
    )
