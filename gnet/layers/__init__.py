"""G-Net layers (:mod:`gnet.layers.glayers`), activations (:mod:`gnet.layers.activations`) and the classifier
head (:mod:`gnet.layers.classifier`); the hand-written autograd Functions live in :mod:`gnet.layers._autograd`.
"""

from gnet.layers.activations import RASU, TASU
from gnet.layers.classifier import NormalizedClassifier
from gnet.layers.glayers import GConv1d, GConv2d, GLayer, GLinear, safe_arcsin_cosine

__all__ = [
    "RASU",
    "TASU",
    "GConv1d",
    "GConv2d",
    "GLayer",
    "GLinear",
    "NormalizedClassifier",
    "safe_arcsin_cosine",
]
