"""EHD G-Nets: trained G-Nets converted to N-bit weight codes and run on Hamming distances."""

from gnet.ehd.convert import convert, convert_layer, resolve_n
from gnet.ehd.io import EHDFileError, load_ehd, save_ehd
from gnet.ehd.layers import EHDClassifier, EHDGLayer, Geometry
from gnet.ehd.model import EHDModel, EvalResult

__all__ = [
    "convert", "convert_layer", "resolve_n", "EHDModel", "EvalResult", "EHDGLayer", "EHDClassifier", "Geometry",
    "save_ehd", "load_ehd", "EHDFileError",
]
