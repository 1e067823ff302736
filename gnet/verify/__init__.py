"""Model-level verification: the theory of :mod:`hdc.theory`, measured on a trained G-Net and its real inputs.

:mod:`gnet.verify.measure` holds the measurements (layer data, concentration on real patches, the converted EHD
model per layer and as a network, Anderson & Berg angles); :mod:`gnet.verify.report` writes them as
``report.md`` + ``report.json`` + PNG plots (:func:`run_model_report`), with the figures in
:mod:`gnet.verify.plots`. ``gnet verify --model CKPT`` runs it from the command line.
"""

from __future__ import annotations

from gnet.verify.measure import (
    EHDLayerErrors,
    LayerAngles,
    LayerData,
    NetworkCheck,
    check_ehd,
    collect_layer_data,
    g_layers,
    layer_angles,
    layer_concentration,
    layer_name,
)
from gnet.verify.report import run_model_report

__all__ = [
    "EHDLayerErrors",
    "LayerAngles",
    "LayerData",
    "NetworkCheck",
    "check_ehd",
    "collect_layer_data",
    "g_layers",
    "layer_angles",
    "layer_concentration",
    "layer_name",
    "run_model_report",
]
