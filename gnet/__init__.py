"""G-Nets: layers, training, EHD conversion and Hamming-distance inference, built on :mod:`hdc`.

The main entry points are reachable from the package itself and imported on first use, so ``import gnet`` stays
light (no torch until one is touched)::

    import gnet
    data = gnet.load_dataset("digits")
    model = gnet.build_model(gnet.architecture_for(data))
    gnet.train.train(model, data.train.tensors, data.val.tensors, gnet.TrainConfig(epochs=15))
    ehd = gnet.ehd.convert(model, dim=4096, input_shape=data.input_shape)

The other families train in the same loop: ``gnet.build_for_method("bnn++", data)`` (binary networks,
:mod:`gnet.bnn`) or ``gnet.build_for_method("difflogic", data)`` (logic gate networks, :mod:`gnet.logic`, on data
loaded with ``scaling="unit"``); :func:`gnet.load_model` rebuilds a checkpoint of any family.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "ehd": ("gnet.ehd", None),
    "bnn": ("gnet.bnn", None),
    "logic": ("gnet.logic", None),
    "layers": ("gnet.layers", None),
    "models": ("gnet.models", None),
    "data": ("gnet.data", None),
    "robustness": ("gnet.robustness", None),
    "plots": ("gnet.plots", None),
    "load_model": ("gnet.checkpoint", "load_model"),
    "build_for_method": ("gnet.models", "build_for_method"),
    "save_checkpoint": ("gnet.checkpoint", "save_checkpoint"),
    "load_dataset": ("gnet.data", "load_dataset"),
    "load_test_split": ("gnet.data", "load_test_split"),
    "architecture": ("gnet.models", "architecture"),
    "architecture_for": ("gnet.models", "architecture_for"),
    "build_model": ("gnet.models", "build_model"),
    "train": ("gnet.train", None),  # the module: importing gnet.train binds that name to it anyway
    "evaluate": ("gnet.train", "evaluate"),
    "TrainConfig": ("gnet.train", "TrainConfig"),
    "EHDModel": ("gnet.ehd", "EHDModel"),
}

__all__ = [
    "EHDModel",
    "TrainConfig",
    "__version__",
    "architecture",
    "architecture_for",
    "bnn",
    "build_for_method",
    "build_model",
    "data",
    "ehd",
    "evaluate",
    "layers",
    "load_dataset",
    "load_model",
    "load_test_split",
    "logic",
    "models",
    "plots",
    "robustness",
    "save_checkpoint",
    "train",
]

if TYPE_CHECKING:
    from gnet import bnn, data, ehd, layers, logic, models, plots, robustness, train
    from gnet.checkpoint import load_model, save_checkpoint
    from gnet.data import load_dataset, load_test_split
    from gnet.ehd import EHDModel
    from gnet.models import architecture, architecture_for, build_for_method, build_model
    from gnet.train import TrainConfig, evaluate


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gnet' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
