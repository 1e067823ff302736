"""HDC classification with packed binary hypervectors: CentroidHD, AdaptHD and OnlineHD on a tabular and a time
series problem, with the scikit-learn API.

    PYTHONPATH=. python3 examples/03_hdc_classification.py            # about 30 s on 2 CPU cores
    PYTHONPATH=. python3 examples/03_hdc_classification.py --smoke    # a few seconds (what the tests run)

Each estimator encodes the features into D-bit codes (a kernel encoder by default), keeps one binary prototype
per class, and predicts the class whose prototype is nearest in Hamming distance. CentroidHD bundles the codes
of each class; AdaptHD and OnlineHD retrain float prototypes on their mistakes and binarise them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdc import datasets  # noqa: E402
from hdc.classifiers import AdaptHD, CentroidHD, OnlineHD  # noqa: E402


def flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny settings for a fast check")
    ap.add_argument("--dim", type=int, default=None, help="hypervector dimension D")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    dim = args.dim or (512 if args.smoke else 4096)
    names = ["digits"] if args.smoke else ["digits", "wine", "ucr:GunPoint"]

    results: dict[str, dict[str, float]] = {}
    print(f"{'dataset':<14}{'model':<12}{'accuracy':>9}{'fit s':>8}   (D = {dim})")
    for name in names:
        ds = datasets.load(name, download=False)
        x_tr, x_te = flat(ds.x_train), flat(ds.x_test)
        results[name] = {}
        for cls in (CentroidHD, AdaptHD, OnlineHD):
            t0 = time.perf_counter()
            model = cls(dim=dim, seed=args.seed).fit(x_tr, ds.y_train)
            seconds = time.perf_counter() - t0
            acc = float(model.score(x_te, ds.y_test))
            results[name][cls.__name__] = acc
            print(f"{name:<14}{cls.__name__:<12}{acc:>9.4f}{seconds:>8.2f}")
        # The prototypes are packed bits: n_classes x ceil(D / 64) uint64 words.
        results[name]["prototype_bytes"] = int(model.prototypes_.nbytes)
        results[name]["n_classes"] = ds.n_classes
    print(
        "prototypes are packed: e.g. digits uses "
        f"{results['digits']['prototype_bytes']} bytes for 10 classes x {dim} bits"
    )
    return {"dim": dim, "results": results}


if __name__ == "__main__":
    main()
