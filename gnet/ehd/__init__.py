"""EHD G-Nets: trained G-Nets converted to dim-bit weight codes and run on Hamming distances."""

from gnet.ehd.convert import convert, convert_layer, parse_dim, resolve_dim, resolve_n
from gnet.ehd.io import EHDFileError, load_ehd, save_ehd
from gnet.ehd.layers import EHDClassifier, EHDGLayer, Geometry
from gnet.ehd.model import EHDModel, EvalResult
from gnet.ehd.presets import DIM_PRESETS, DimPreset, dim_preset
from gnet.ehd.sweep import SweepPoint, SweepResult, SweepRow, sweep

__all__ = [
    "DIM_PRESETS",
    "DimPreset",
    "EHDClassifier",
    "EHDFileError",
    "EHDGLayer",
    "EHDModel",
    "EvalResult",
    "Geometry",
    "SweepPoint",
    "SweepResult",
    "SweepRow",
    "convert",
    "convert_layer",
    "dim_preset",
    "load_ehd",
    "parse_dim",
    "resolve_dim",
    "resolve_n",
    "save_ehd",
    "sweep",
]
