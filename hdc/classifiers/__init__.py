"""Hamming-distance classifiers with a scikit-learn API.

* :class:`CentroidHD`: bundled class prototypes.
* :class:`AdaptHD`, :class:`OnlineHD`: iterative retraining of float prototypes, binarised.

All three encode features into packed binary codes (:mod:`hdc.encoders.features`; or take
precomputed codes with ``encoder="precomputed"``) and predict by the nearest prototype in
Hamming distance with :func:`hdc.hamming.hamming_distance`.
"""

from hdc.classifiers._base import HammingClassifier
from hdc.classifiers.adapt import AdaptHD
from hdc.classifiers.centroid import CentroidHD
from hdc.classifiers.online import OnlineHD
from hdc.encoders.features import ENCODERS, KernelEncoder, LevelEncoder, ProjectionEncoder, make_encoder

MODELS = {"centroid": CentroidHD, "adapthd": AdaptHD, "onlinehd": OnlineHD}

__all__ = [
    "ENCODERS",
    "MODELS",
    "AdaptHD",
    "CentroidHD",
    "HammingClassifier",
    "KernelEncoder",
    "LevelEncoder",
    "OnlineHD",
    "ProjectionEncoder",
    "make_encoder",
]
