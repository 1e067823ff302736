"""Every binary model of the toolkit side by side: ``gnet compare`` trains (or loads), deploys and measures them.

For one dataset and a list of methods (:data:`METHODS`: the float G-Net, EHD G-Nets with the paper's and the fast G,
BNN / BNN++ / FDA, DiffLogic small and large, CentroidHD / AdaptHD / OnlineHD on raw features and on EHD codes, a
plain float CNN), over several seeds, :func:`run_compare` measures test accuracy, model bits as deployed, bit
operations and float multiply-adds per image (counted from the layer shapes by each model's ``cost()``), img/s at
batch 256, training time, and accuracy under exact-rate bit flips; it writes ``compare.json``, ``compare.md`` and
three plots, in time-bounded, resumable stages. Every model is reached through :class:`gnet.deployed.DeployedModel`.
See docs/compare.md for what each column counts.
"""

from gnet.compare.config import FAULT_RATES, PRESETS, CompareConfig, recipe_for
from gnet.compare.floatnet import FloatModel, build_plain_cnn, float_cost
from gnet.compare.hdcmodel import HDCModel
from gnet.compare.methods import METHODS, Deployment, Method
from gnet.compare.plots import pareto_front
from gnet.compare.run import machine_info, redraw_compare, run_compare

__all__ = [
    "FAULT_RATES",
    "METHODS",
    "PRESETS",
    "CompareConfig",
    "Deployment",
    "FloatModel",
    "HDCModel",
    "Method",
    "build_plain_cnn",
    "float_cost",
    "machine_info",
    "pareto_front",
    "recipe_for",
    "redraw_compare",
    "run_compare",
]
