"""Hamming-distance classifiers with a scikit-learn API.

* :class:`CentroidHD`: bundled class prototypes.
* :class:`AdaptHD`, :class:`OnlineHD`: iterative retraining of float prototypes, binarised.

All three encode features into packed binary codes (:mod:`hdc.encoders.features`; or take
precomputed codes with ``encoder="precomputed"``) and predict by the nearest prototype in
Hamming distance with :func:`hdc.hamming.hamming_distance`.

:func:`evaluate_on_dataset` fits one on a dataset of :mod:`hdc.datasets` and measures it (the ``hdc classify``
command); :mod:`hdc.classifiers.faults` injects bit faults into their prototypes and encoded samples.
"""

from hdc.classifiers._base import HammingClassifier
from hdc.classifiers.adapt import AdaptHD
from hdc.classifiers.centroid import CentroidHD
from hdc.classifiers.evaluate import MODELS, DatasetEvaluation, evaluate_on_dataset
from hdc.classifiers.online import OnlineHD
from hdc.encoders.features import ENCODERS, KernelEncoder, LevelEncoder, ProjectionEncoder, make_encoder

__all__ = [
    "ENCODERS",
    "MODELS",
    "AdaptHD",
    "CentroidHD",
    "DatasetEvaluation",
    "HammingClassifier",
    "KernelEncoder",
    "LevelEncoder",
    "OnlineHD",
    "ProjectionEncoder",
    "evaluate_on_dataset",
    "make_encoder",
]
