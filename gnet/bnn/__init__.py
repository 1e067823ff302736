"""Binary neural networks (BinaryConnect / BNN, ProxConnect++ / BNN++, FDA) on the G-Net architectures.

- :mod:`gnet.bnn.quantizers`: registered forward/backward pairs (``get(name)``).
- :mod:`gnet.bnn.layers`: ``BinaryLinear``, ``BinaryConv1d``, ``BinaryConv2d``, sign activations, BatchNorm.
- :mod:`gnet.bnn.models`: ``build_bnn(specs, method, seed)`` from the G-Net layer specs.
- :mod:`gnet.bnn.packed`: ``convert(model) -> PackedBNN``: XNOR-popcount inference with integer thresholds.
- :mod:`gnet.bnn.io`: the ``.bnn`` file (``save_packed_bnn``, ``load_packed_bnn``).
- :mod:`gnet.bnn.deploy`: a packed BNN's bit faults (weights, activations) and cost.
- :mod:`gnet.bnn.geometry`: Anderson & Berg's angle and dot-product measurements.
"""

from gnet.bnn import quantizers
from gnet.bnn.geometry import GeometryReport, LayerGeometry, measure_geometry
from gnet.bnn.io import BNNFileError, load_packed_bnn, save_packed_bnn
from gnet.bnn.layers import BinaryActivation, BinaryConv1d, BinaryConv2d, BinaryLinear
from gnet.bnn.models import BNN, METHODS, build_bnn, build_from_config
from gnet.bnn.packed import PackedBNN, convert

__all__ = [
    "BNN",
    "BNNFileError",
    "METHODS",
    "BinaryActivation",
    "BinaryConv1d",
    "BinaryConv2d",
    "BinaryLinear",
    "GeometryReport",
    "LayerGeometry",
    "PackedBNN",
    "build_bnn",
    "build_from_config",
    "convert",
    "load_packed_bnn",
    "measure_geometry",
    "quantizers",
    "save_packed_bnn",
]
