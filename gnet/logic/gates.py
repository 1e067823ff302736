"""The 16 two-input logic gates of DiffLogic: ids, names, relaxed (real-valued) and hard forms.

Gate ``i`` is numbered so that its id *is* its truth table: bit ``3 - (2a + b)`` of ``i`` is the gate's output on
inputs ``(a, b)``. So bit 3 is ``f(0, 0)``, bit 2 is ``f(0, 1)``, bit 1 is ``f(1, 0)`` and bit 0 is ``f(1, 1)``.
This is the order of Petersen et al. (NeurIPS 2022): 0 FALSE, 1 AND, 2 A AND NOT B, 3 A, ..., 14 NAND, 15 TRUE.

Every gate's probabilistic relaxation (inputs read as independent probabilities of being 1) is affine in ``a``,
``b`` and ``ab``::

    f(a, b) = c0 + c1 a + c2 b + c3 ab,
    c0 = f00, c1 = f10 - f00, c2 = f01 - f00, c3 = f11 - f10 - f01 + f00

with integer coefficients in {-2, ..., 2} (e.g. XOR = a + b - 2ab). A softmax mixture over the 16 gates is then
the same affine form with the mixture's coefficients ``p @ COEFFICIENTS``: 4 terms instead of 16 gates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from hdc._validate import check_choice

__all__ = [
    "COEFFICIENTS",
    "GATE_IDS",
    "GATE_NAMES",
    "N_GATES",
    "PASS_A",
    "gate_id",
    "hard_gate",
    "mixture_coefficients",
    "packed_gate",
    "relaxed_gate",
    "relaxed_mixture",
    "truth_table",
]

N_GATES = 16

GATE_NAMES: tuple[str, ...] = (
    "false",
    "and",
    "a_and_not_b",
    "a",
    "not_a_and_b",
    "b",
    "xor",
    "or",
    "nor",
    "xnor",
    "not_b",
    "b_implies_a",
    "not_a",
    "a_implies_b",
    "nand",
    "true",
)
GATE_IDS: dict[str, int] = {name: i for i, name in enumerate(GATE_NAMES)}
PASS_A = GATE_IDS["a"]  # the pass-through gate favoured by the "residual" initialisation


def _check_id(gate: int) -> int:
    if isinstance(gate, (bool, np.bool_)) or not isinstance(gate, (int, np.integer)) or not 0 <= gate < N_GATES:
        raise ValueError(f"gate id must be an integer in [0, 16), got {gate!r}")
    return int(gate)


def truth_table(gate: int) -> NDArray[np.uint8]:
    """The gate's outputs as a (2, 2) uint8 array indexed ``[a, b]``."""
    gate = _check_id(gate)
    return np.array([[(gate >> (3 - 2 * a - b)) & 1 for b in (0, 1)] for a in (0, 1)], dtype=np.uint8)


def _coefficients() -> NDArray[np.float32]:
    rows = []
    for gate in range(N_GATES):
        t = truth_table(gate).astype(np.int64)
        rows.append([t[0, 0], t[1, 0] - t[0, 0], t[0, 1] - t[0, 0], t[1, 1] - t[1, 0] - t[0, 1] + t[0, 0]])
    return np.array(rows, dtype=np.float32)


COEFFICIENTS: NDArray[np.float32] = _coefficients()
"""(16, 4) float32: gate ``i`` relaxes to ``c0 + c1 a + c2 b + c3 ab`` with ``(c0, c1, c2, c3) = COEFFICIENTS[i]``."""


def gate_id(gate: int | str) -> int:
    """The id of a gate given by id or by name (see :data:`GATE_NAMES`); unknown names raise ``ValueError``."""
    if isinstance(gate, str):
        return GATE_IDS[check_choice(gate, GATE_NAMES, "gate")]
    return _check_id(gate)


def relaxed_gate(gate: int | str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """One gate's real-valued relaxation ``c0 + c1 a + c2 b + c3 ab`` (same shape as ``a`` and ``b``)."""
    c0, c1, c2, c3 = (float(c) for c in COEFFICIENTS[gate_id(gate)])
    return c0 + c1 * a + c2 * b + c3 * (a * b)


def mixture_coefficients(probs: torch.Tensor) -> torch.Tensor:
    """(out, 16) gate probabilities -> (out, 4) coefficients of the expected gate."""
    table = torch.as_tensor(COEFFICIENTS, dtype=probs.dtype, device=probs.device)
    return probs @ table


def relaxed_mixture(a: torch.Tensor, b: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """Expected gate output ``c0 + c1 a + c2 b + c3 ab``.

    Args:
        a, b: (B, out) float inputs in [0, 1].
        coefficients: (out, 4), e.g. ``mixture_coefficients(softmax(logits))`` or ``COEFFICIENTS[argmax]``.

    Returns:
        (B, out), same dtype. On inputs in {0, 1} with integer coefficients every term is exact.
    """
    c0, c1, c2, c3 = coefficients.unbind(dim=1)
    return c0 + c1 * a + c2 * b + c3 * (a * b)


def hard_gate(gates: Sequence[int] | NDArray[np.integer], a: NDArray, b: NDArray) -> NDArray[np.uint8]:
    """Hard gates on {0, 1}: ``out[..., j] = f_{gates[j]}(a[..., j], b[..., j])`` as uint8.

    ``gates`` broadcasts against ``a`` and ``b`` (a scalar id or one id per last-axis position).
    """
    g = np.asarray(gates, dtype=np.int64)
    if g.size and (g.min() < 0 or g.max() >= N_GATES):
        raise ValueError("gate ids must lie in [0, 16)")
    a = np.asarray(a).astype(np.int64)
    b = np.asarray(b).astype(np.int64)
    if ((a != 0) & (a != 1)).any() or ((b != 0) & (b != 1)).any():
        raise ValueError("hard_gate inputs must be 0 or 1")
    return ((g >> (3 - 2 * a - b)) & 1).astype(np.uint8)


_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def packed_gate(gate: int | str, a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Hard gate on packed words: one bitwise operation per 64 bits (each bit an independent input pair)."""
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    ops = (
        lambda: np.zeros_like(a),
        lambda: a & b,
        lambda: a & ~b,
        lambda: a.copy(),
        lambda: ~a & b,
        lambda: b.copy(),
        lambda: a ^ b,
        lambda: a | b,
        lambda: ~(a | b),
        lambda: ~(a ^ b),
        lambda: ~b,
        lambda: a | ~b,
        lambda: ~a,
        lambda: ~a | b,
        lambda: ~(a & b),
        lambda: np.full_like(a, _ONES),
    )
    return ops[gate_id(gate)]()
