"""AdaptHD's kernel width: the median-wide kernel (bandwidth_scale 1.0) against the half-median one (0.5).

    PYTHONPATH=. python3 benchmarks/ablate_adapthd_kernel.py

AdaptHD's ``fit`` uses the wide kernel only for inputs of at most ``WIDE_KERNEL_MAX_FEATURES`` features
(hdc.classifiers.adapt); this measures both widths on both kinds of input, with everything else at the defaults
(margin 1): the scikit-learn sets at D = 4096 over seeds 0-4 (feature scaling), and MNIST / Fashion-MNIST (first
6,000 training images, all 10,000 test images, global scaling) at D = 10,000 over seeds 0-1, on the splits of
benchmarks/bench_classifiers.py. Writes results/ablate_adapthd_kernel.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_classifiers import prepare  # noqa: E402

from hdc.classifiers import AdaptHD  # noqa: E402
from hdc.classifiers.adapt import WIDE_KERNEL_MAX_FEATURES  # noqa: E402

SETS = {  # name: (D, seeds, train items or None, scaling)
    "iris": (4096, range(5), None, "feature"),
    "wine": (4096, range(5), None, "feature"),
    "breast_cancer": (4096, range(5), None, "feature"),
    "digits": (4096, range(5), None, "feature"),
    "mnist": (10000, range(2), 6000, "global"),
    "fashion-mnist": (10000, range(2), 6000, "global"),
}
SCALES = (0.5, 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(SETS))
    ap.add_argument("--out", default=str(REPO / "results" / "ablate_adapthd_kernel.json"))
    args = ap.parse_args()
    names = [s.strip() for s in args.datasets.split(",")]
    unknown = sorted(set(names) - set(SETS))
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; valid: {', '.join(SETS)}")
    rows = []
    for name in names:
        dim, seeds, n_train, scaling = SETS[name]
        d = prepare(name, n_train, None)
        in_features = d["x_tr"].shape[1]
        for scale in SCALES:
            accs = []
            for seed in seeds:
                est = AdaptHD(dim=dim, seed=seed, encoder_params={"scaling": scaling, "bandwidth_scale": scale})
                est.fit(d["x_tr"], d["y_tr"])
                accs.append(float(np.mean(est.predict(d["x_te"]) == d["y_te"])))
            rows.append(
                {
                    "dataset": name,
                    "features": in_features,
                    "dim": dim,
                    "bandwidth_scale": scale,
                    "default_here": scale == (1.0 if in_features <= WIDE_KERNEL_MAX_FEATURES else 0.5),
                    "seeds": list(seeds),
                    "accuracies": accs,
                    "accuracy_mean": statistics.mean(accs),
                }
            )
            print(
                f"{name:14s} {in_features:4d} features  bandwidth_scale {scale:.1f}  "
                f"mean {100 * statistics.mean(accs):6.2f} %  ({', '.join(f'{100 * a:.2f}' for a in accs)})",
                flush=True,
            )
    report = {
        "command": "PYTHONPATH=. python3 benchmarks/ablate_adapthd_kernel.py " + " ".join(sys.argv[1:]),
        "wide_kernel_max_features": WIDE_KERNEL_MAX_FEATURES,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
