"""Faults in a hard logic circuit (:meth:`gnet.logic.LogicCircuit.with_faults`), on the :mod:`hdc.faults` model.

Three targets, each at rate ``p`` with exactly ``k = round(p * n)`` hits (:func:`hdc.faults.fault_count`):

- ``"gate_outputs"`` (default): for every sample, ``k = round(p * n_gates)`` distinct gates (over all the circuit's
  gates as stored, layers concatenated) have their output bit hit: flipped (``kind="flip"``) or forced to 0 / 1
  (``"stuck0"`` / ``"stuck1"``). A hit gate's faulty value is what later gates read, so errors propagate. Hits on
  gates that nothing reads (pruned by :meth:`~gnet.logic.LogicCircuit.plan`) change nothing, as in the hardware.
- ``"inputs"``: for every sample, ``k = round(p * n_input_bits)`` distinct encoded input bits (after thresholding)
  are flipped or stuck.
- ``"gate_ids"``: once, in the copy, ``k = round(p * n_gates)`` distinct gates get another gate: a different
  random id, uniform over the other 15 (``"flip"``), or the constant ``false`` / ``true`` (``"stuck0"`` /
  ``"stuck1"``, a gate whose output is stuck for every sample).

Per-sample hits come from :func:`hdc.faults.row_fault_mask` with the sample's position in the ``x`` given to
``predict`` as row id, so they do not depend on ``batch_size``; the key is ``fault_key(seed, (target,))``.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from hdc._kernels.logic import DEBRUIJN_INDEX, slice_row_bits
from hdc._validate import Seed, as_generator, check_choice, check_number, check_seed
from hdc.faults import FAULT_KINDS, fault_count, fault_key, row_fault_mask

if TYPE_CHECKING:
    from gnet.logic.convert import LogicCircuit

__all__ = ["FAULT_TARGETS", "RuntimeFault", "fault_chunk", "fault_words", "with_faults"]

FAULT_TARGETS = ("gate_outputs", "inputs", "gate_ids")
# Bytes of per-sample masks (samples x bits, one bit each) built at a time before they are bit-sliced.
_MASK_BYTES = 2**24


@dataclass(frozen=True)
class RuntimeFault:
    """Per-sample faults applied while predicting: ``count`` hits per sample among the ``target``'s bits."""

    target: str  # "gate_outputs" | "inputs"
    kind: str  # hdc.faults.FAULT_KINDS
    count: int
    key: int  # hdc.faults.fault_key


def fault_chunk(n_gates: int) -> int:
    """Samples per step when runtime faults are on: a multiple of 64 such that the per-sample masks (one bit per
    sample and gate) stay near 16 MiB (at least 64, at most 4,096)."""
    return 64 * max(1, min(64, 8 * _MASK_BYTES // (64 * max(1, n_gates))))


def _replace_ids(circuit: LogicCircuit, p: float, seed: Seed, kind: str) -> LogicCircuit:
    ids = np.concatenate(circuit.ids)
    k = fault_count(p, len(ids))
    rng = as_generator(seed, "seed", (FAULT_TARGETS.index("gate_ids"),))
    hit = rng.choice(len(ids), size=k, replace=False)
    if kind == "flip":  # uniform over the 15 other gates
        ids[hit] = (ids[hit].astype(np.int64) + rng.integers(1, 16, size=k)) % 16
    else:
        ids[hit] = 0 if kind == "stuck0" else 15
    bounds = np.cumsum([0, *(len(g) for g in circuit.ids)]).tolist()
    layers = [ids[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    return dataclasses.replace(circuit, ids=layers, _plan=None)


def with_faults(circuit: LogicCircuit, p: float, target: str, seed: Seed, kind: str = "flip") -> LogicCircuit:
    """A copy of ``circuit`` with faults at rate ``p`` in ``target`` (module docstring); ``circuit`` is unchanged.

    Targets combine (e.g. ``c.with_faults(0.01, "gate_ids", 0).with_faults(0.01, "inputs", 1)``); one circuit
    takes per-sample faults of each target once (a second call on the same target raises ``ValueError``).
    """
    p = check_number(p, "p", 0.0, 1.0)
    check_choice(target, FAULT_TARGETS, "fault target")
    check_choice(kind, FAULT_KINDS, "kind")
    seed = check_seed(seed)
    if target == "gate_ids":
        return _replace_ids(circuit, p, seed, kind)
    if any(f.target == target for f in circuit.runtime_faults):
        raise ValueError(f"the circuit already has {target!r} faults; add them to the clean circuit instead")
    n_bits = circuit.n_gates if target == "gate_outputs" else circuit.n_input_bits
    fault = RuntimeFault(target, kind, fault_count(p, n_bits), fault_key(seed, (FAULT_TARGETS.index(target),)))
    if fault.count == 0:
        return dataclasses.replace(circuit)
    return dataclasses.replace(circuit, runtime_faults=(*circuit.runtime_faults, fault))


def fault_words(circuit: LogicCircuit, fault: RuntimeFault, first_sample: int, n_samples: int) -> NDArray[np.uint64]:
    """The engine-layout masks of ``fault`` for samples ``first_sample .. first_sample + n_samples - 1``.

    Returns:
        uint64 (rows, ceil(n_samples / 64)), bit ``j`` of word ``w`` = sample ``first_sample + 64 w + j``; rows
        are the plan's gates (``"gate_outputs"``) or the plan's packed input bits (``"inputs"``), as
        :meth:`~gnet.logic.LogicCircuit.counts_packed` and :meth:`~gnet.logic.LogicCircuit.pack_inputs` use them.
    """
    plan = circuit.plan()
    if fault.target == "gate_outputs":
        n_bits, rows = circuit.n_gates, plan.gate_index
    else:
        n_bits, rows = circuit.n_input_bits, plan.input_bits
    samples = np.arange(first_sample, first_sample + n_samples, dtype=np.int64)
    per_sample = row_fault_mask(samples, n_bits, fault.count, fault.key)  # (n_samples, ceil(n_bits / 64))
    row_of = np.full(n_bits, -1, np.int64)
    row_of[rows] = np.arange(len(rows))
    out = np.empty((len(rows), -(-n_samples // 64)), np.uint64)
    slice_row_bits(per_sample, row_of, DEBRUIJN_INDEX, out)
    return out
