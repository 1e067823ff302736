"""Differentiable logic gate networks (DiffLogic; Petersen et al., NeurIPS 2022).

Train relaxed two-input gates in torch (:class:`LogicLayer`, :class:`GroupSum`, :class:`DiffLogicNet`), then
:func:`convert` the network into hard gates (:class:`LogicCircuit`) that run bit-parallel over samples, save and
load them as ``.logic`` files (:mod:`gnet.logic.io`) and inject faults (:mod:`gnet.logic.faults`).
"""

from gnet.logic.convert import LogicCircuit, convert
from gnet.logic.faults import FAULT_TARGETS
from gnet.logic.gates import (
    COEFFICIENTS,
    GATE_IDS,
    GATE_NAMES,
    gate_id,
    hard_gate,
    packed_gate,
    relaxed_gate,
)
from gnet.logic.io import convert_checkpoint, load_circuit, save_circuit
from gnet.logic.layers import CONNECTIONS, GroupSum, LogicLayer
from gnet.logic.models import (
    PRESETS,
    TRAIN_DEFAULTS,
    DiffLogicNet,
    build_difflogic,
    difflogic_net,
    difflogic_spec,
    generic_difflogic_spec,
)

__all__ = [
    "COEFFICIENTS",
    "CONNECTIONS",
    "FAULT_TARGETS",
    "GATE_IDS",
    "GATE_NAMES",
    "PRESETS",
    "TRAIN_DEFAULTS",
    "DiffLogicNet",
    "GroupSum",
    "LogicCircuit",
    "LogicLayer",
    "build_difflogic",
    "convert",
    "convert_checkpoint",
    "difflogic_net",
    "difflogic_spec",
    "generic_difflogic_spec",
    "gate_id",
    "hard_gate",
    "load_circuit",
    "packed_gate",
    "relaxed_gate",
    "save_circuit",
]
