"""Bit faults in the Hamming classifiers: faulty class prototypes, faulty encoded samples, or both.

The fault model is :class:`hdc.faults.BitFaults` (exactly ``round(p * D)`` distinct bits of every code by
default). The functions here are duck-typed on the public attributes of the :mod:`hdc.classifiers` estimators (and
anything shaped like them): ``prototypes_`` uint64 ``(n_classes, n_words(dim))``, ``dim_``, ``classes_`` and
``encode(X) -> uint64 (n_samples, n_words(dim))``; prediction is the nearest prototype in Hamming distance with
ties to the first class, as in ``HammingClassifier.predict``. Prototype faults and data faults come from
independent streams of one seed.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hdc._validate import Seed, check_choice, check_int
from hdc.faults import BitFaults
from hdc.hamming import hamming_distance

__all__ = ["CLASSIFIER_TARGETS", "classifier_robustness", "faulty_prototypes", "predict_with_faults"]

CLASSIFIER_TARGETS = ("prototypes", "data", "both")
# Stream prefixes: prototypes (the classifier's "model" codes) and encoded samples (its data codes).
_PROTOTYPE_STREAM = (0, 0)
_DATA_STREAM = (1, 0)


def _check_classifier(clf: Any) -> None:
    for name in ("prototypes_", "dim_", "classes_"):
        if not hasattr(clf, name):
            raise ValueError(
                f"clf must be a fitted Hamming classifier with a {name!r} attribute "
                f"(got {type(clf).__name__}; fit it first)"
            )


def faulty_prototypes(clf: Any, faults: BitFaults | float, seed: Seed) -> Any:
    """A shallow copy of a fitted Hamming classifier whose ``prototypes_`` carry ``faults``.

    The copy shares the (read-only) encoder with ``clf``, which is left unchanged; use it for inference (a later
    ``fit``/``partial_fit`` of the copy recomputes clean prototypes).
    """
    _check_classifier(clf)
    faults = faults if isinstance(faults, BitFaults) else BitFaults(faults)
    clone = copy.copy(clf)
    clone.prototypes_ = faults.apply(clf.prototypes_, clf.dim_, seed, _PROTOTYPE_STREAM)
    return clone


def predict_with_faults(clf: Any, X: Any, target: str, faults: BitFaults | float, seed: int) -> NDArray[Any]:
    """Labels ``(n_samples,)`` of a fitted Hamming classifier when its prototypes, the encoded samples, or both are
    faulty.

    Data faults hit every encoded sample (row scope only): sample ``i`` of ``X`` is row ``i``, so its faults depend
    on the seed and its position in ``X``, never on chunking. Prototype and data faults use independent streams
    of ``seed``.
    """
    _check_classifier(clf)
    check_choice(target, CLASSIFIER_TARGETS, "target")
    faults = faults if isinstance(faults, BitFaults) else BitFaults(faults)
    if target != "prototypes" and faults.scope != "row":
        raise ValueError("data-code faults are per code: use scope='row' (scope='array' is for prototypes)")
    seed = check_int(seed, "seed", minimum=0)
    protos = clf.prototypes_
    if target in ("prototypes", "both"):
        protos = faults.apply(protos, clf.dim_, seed, _PROTOTYPE_STREAM)
    codes = clf.encode(X)
    if target in ("data", "both"):
        codes = faults.apply(codes, clf.dim_, seed, _DATA_STREAM)
    return clf.classes_[np.argmin(hamming_distance(codes, protos), axis=1)]


def classifier_robustness(
    clf: Any,
    X: Any,
    y: Any,
    ps: Sequence[float],
    seeds: Sequence[int],
    *,
    target: str = "data",
    kind: str = "flip",
    scope: str = "row",
    sampling: str = "without_replacement",
) -> dict[str, Any]:
    """Accuracy of a fitted Hamming classifier under faults for every rate in ``ps`` and seed in ``seeds``.

    Returns a JSON-serialisable dict shaped like :func:`gnet.robustness.robustness_sweep`'s: settings,
    ``clean_accuracy`` and ``rows`` with ``p``, ``hits`` (per code), ``accuracies``, ``accuracy_mean``,
    ``accuracy_std`` (population std over seeds).
    """
    _check_classifier(clf)
    y = np.asarray(y)
    if not len(ps) or not len(seeds):
        raise ValueError("ps and seeds must not be empty")
    clean = float(np.mean(clf.predict(X) == y))
    rows = []
    for p in ps:
        faults = BitFaults(p, kind, scope, sampling)
        hits = faults.count(clf.dim_ if scope == "row" else clf.prototypes_.shape[0] * clf.dim_)
        if hits == 0:
            accs = [clean] * len(seeds)
        else:
            accs = [float(np.mean(predict_with_faults(clf, X, target, faults, int(s)) == y)) for s in seeds]
        rows.append(
            {
                "p": faults.p,
                "hits": hits,
                "accuracies": accs,
                "accuracy_mean": statistics.mean(accs),
                "accuracy_std": statistics.pstdev(accs),
            }
        )
    return {
        "target": target,
        "kind": kind,
        "scope": scope,
        "sampling": sampling,
        "dim": int(clf.dim_),
        "hits_unit": "per code" if scope == "row" else "per prototype array",
        "seeds": [int(s) for s in seeds],
        "n_test": len(y),
        "clean_accuracy": clean,
        "rows": rows,
    }
