"""MNIST, RASU vs TASU EHD G-Nets under exact bit flips of their weight (model) codes (paper Sec. 4.5 A).

    OMP_NUM_THREADS=1 python benchmarks/bench_robustness_mnist.py --limit 1000 --seeds 3

Both float checkpoints are converted at N = 15000 for every layer (the paper's setting) with one fixed projection
seed; then, for every rate p and fault seed, exactly round(p * N) distinct bits of every weight code of every
layer are flipped (hdc.faults, row scope) and the faulty copy is evaluated on the first --limit test images.

The paper's code samples flip positions with replacement, so its nominal p corrupts only a fraction
1 - exp(-p) of the bits (0.295 at p = 0.35, 0.393 at p = 0.5). Its curves are stored next to ours in the JSON
(``paper``) with that conversion; ``--paper-p`` additionally evaluates the paper's own protocol
(``sampling="with_replacement"``) at a few rates so the two can be compared directly.

Writes results/robustness/<name>.json (rewritten after every rate, so a long run can be watched) and <name>.png,
and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hdc import prefer_passive_openmp  # noqa: E402

prefer_passive_openmp()  # before torch loads its OpenMP runtime (see hdc.prefer_passive_openmp)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gnet.checkpoint import load_model  # noqa: E402
from gnet.data import load_test_split  # noqa: E402
from gnet.ehd import EHDGLayer, EHDModel, convert  # noqa: E402
from gnet.plots import plot_robustness  # noqa: E402
from gnet.robustness import faulty_model, p_grid  # noqa: E402
from gnet.train import evaluate  # noqa: E402
from hdc.faults import BitFaults  # noqa: E402
from hdc.hamming import hamming_distance  # noqa: E402

# Paper Sec. 4.5 A, MNIST, N = 15000, nominal p = 0, 0.05, ..., 0.5 (sampling with replacement), accuracy in %.
PAPER_P = [round(0.05 * i, 2) for i in range(11)]
PAPER = {
    "RASU": [98.93, 98.50, 97.64, 95.83, 93.05, 90.63, 86.10, 72.24, 53.17, 37.27, 23.11],
    "TASU": [97.92, 97.93, 97.91, 97.65, 97.51, 97.03, 96.36, 95.39, 90.02, 79.56, 58.29],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FirstLayerCodes:
    """Exact shortcut for weight-code faults: the first layer's data codes phi(x_p + b) depend on the input only,
    so they are computed once per image and reused for every rate and seed (only that layer's weight codes change).

    The codes are computed with the same row blocks and dim chunks as ``EHDGLayer.bipolar_dot`` (read from its
    defaults); :meth:`verify` checks that predictions match ``EHDModel.predict`` exactly before the sweep uses it.
    """

    def __init__(self, model: EHDModel, x: torch.Tensor, batch_size: int) -> None:
        layer = model.stages[0]
        if not isinstance(layer, EHDGLayer) or layer.projection != "shared":
            raise ValueError("the first stage must be a G-layer with a shared projection")
        defaults = inspect.signature(layer.bipolar_dot).parameters
        row_chunk, dim_chunk = defaults["row_chunk"].default, defaults["dim_chunk"].default
        self.batch_size = batch_size
        self.batches = []  # (words uint64 (B * P, W), spatial) per batch of images
        proj = layer.projections[0]
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            per_item = math.prod(layer.geometry.output_spatial(tuple(xb.shape[2:])))
            step = max(1, row_chunk // per_item)
            words, spatial = [], None
            for j in range(0, len(xb), step):
                rows, spatial = layer.geometry.patches(xb[j : j + step].to(torch.float32) + layer.bias)
                words.append(proj.encode(rows, dim_chunk, layer.precision))
            self.batches.append((np.concatenate(words), spatial))

    def predict(self, model: EHDModel) -> torch.Tensor:
        """Labels of ``model`` (same first-layer projection as the cached one, any weight codes) on the images."""
        first = model.stages[0]
        out = []
        for words, spatial in self.batches:
            ham = hamming_distance(words, first.codes)
            dot = torch.from_numpy(first.dim - 2 * ham.astype(np.float32))
            h = dot.reshape(-1, *spatial, dot.shape[-1]).movedim(-1, 1).contiguous()
            h = first.activate(h * (math.pi / (2 * first.dim)))
            for stage in model.stages[1:]:
                h = stage(h, "packed") if isinstance(stage, EHDGLayer) else stage(h)
            out.append(h.argmax(dim=1))
        return torch.cat(out)

    def verify(self, model: EHDModel, x: torch.Tensor, faulty: EHDModel) -> bool:
        n = min(len(x), self.batch_size)
        return all(
            torch.equal(self.predict(m)[:n], m.predict(x[:n], batch_size=self.batch_size, backend="packed"))
            for m in (model, faulty)
        )


def run_gnet(args: argparse.Namespace) -> None:
    """RASU vs TASU EHD G-Nets, flips of every layer's weight codes."""
    t_start = time.perf_counter()
    ps = p_grid(args.p)
    paper_ps = p_grid(args.paper_p) if args.paper_p else []
    seeds = list(range(args.seed, args.seed + args.seeds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    models, entries = {}, {}
    x = y = None
    for label, path in (("RASU", Path(args.rasu)), ("TASU", Path(args.tasu))):
        float_model, config = load_model(path)
        if x is None:
            _, x, y = load_test_split(config, "mnist", args.data_dir, args.limit)
        _, float_acc = evaluate(float_model, x, y)
        t0 = time.perf_counter()
        provenance = {k: config[k] for k in ("dataset", "val_fraction", "data_seed") if k in config}
        models[label] = convert(
            float_model,
            dim=args.n,
            embedding="gaussian",
            seed=args.conv_seed,
            meta=provenance,
            input_shape=config.get("input_shape"),
        )
        entries[label] = {
            "label": label,
            "path": str(path),
            "checkpoint_sha256": sha256(path),
            "float_accuracy": float_acc,
            "convert_seconds": time.perf_counter() - t0,
            "target": "model",
            "layers": "all",
            "kind": "flip",
            "scope": "row",
            "sampling": "without_replacement",
            "hits_unit": "per code",
            "seeds": seeds,
            "n_test": len(x),
            "n_per_layer": models[label].dim_per_layer,
            "rows": [],
            "paper_protocol_rows": [],
        }
        print(
            f"{label}: float accuracy {100 * float_acc:.2f}% on the first {len(x)} test images; "
            f"converted at N = {models[label].dim_per_layer}"
        )

    def write() -> None:
        result = {
            "dataset": "mnist",
            "n_classes": 10,
            "test_subset": f"the first {len(x)} images of the MNIST test set",
            "command": "OMP_NUM_THREADS=1 python benchmarks/bench_robustness_mnist.py " + " ".join(sys.argv[1:]),
            "settings": {
                "n": args.n,
                "embedding": "gaussian",
                "conv_projection": "shared",
                "conv_seed": args.conv_seed,
                "p": ps,
                "seeds": seeds,
                "batch_size": args.batch_size,
                "cache_first_layer": args.cache_first_layer,
            },
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor(),
                "torch_threads": torch.get_num_threads(),
            },
            "seconds": time.perf_counter() - t_start,
            "models": list(entries.values()),
            "paper": {
                "p_nominal": PAPER_P,
                "p_distinct": [round(1 - math.exp(-p), 4) for p in PAPER_P],
                "accuracy": PAPER,
                "note": "Sec. 4.5 A of the reference notes; the paper's flips are drawn "
                "with replacement, so nominal p corrupts a fraction 1 - exp(-p) of the bits",
            },
        }
        (out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
        plot_robustness(result, out / f"{args.name}.png")

    def accuracy(label: str, model: EHDModel) -> float:
        pred = caches[label].predict(model) if caches.get(label) else model.predict(x, batch_size=args.batch_size)
        return (pred == y).double().mean().item()

    def run_rate(label: str, p: float, sampling: str) -> dict:
        faults = BitFaults(p, sampling=sampling)
        hits = [faults.count(n) for n in models[label].dim_per_layer]
        t0 = time.perf_counter()
        if not any(hits):  # no bit hit: every seed is the clean model
            accs = [accuracy(label, models[label])] * len(seeds)
        else:
            accs = [accuracy(label, faulty_model(models[label], "model", faults, s)) for s in seeds]
        return {
            "p": p,
            "hits": hits,
            "accuracies": accs,
            "accuracy_mean": statistics.mean(accs),
            "accuracy_std": statistics.pstdev(accs),
            "seconds": time.perf_counter() - t0,
        }

    caches: dict[str, FirstLayerCodes | None] = {}
    for label, model in models.items():
        caches[label] = None
        if args.cache_first_layer:
            t0 = time.perf_counter()
            cache = FirstLayerCodes(model, x, args.batch_size)
            ok = cache.verify(model, x, faulty_model(model, "model", 0.3, 12345))
            caches[label] = cache if ok else None
            entries[label]["first_layer_cache"] = {"verified_equal": ok, "seconds": time.perf_counter() - t0}
            print(f"{label}: first-layer code cache {'verified' if ok else 'MISMATCH, not used'}", flush=True)

    for p in ps:
        for label in models:
            row = run_rate(label, p, "without_replacement")
            entries[label]["rows"].append(row)
            print(
                f"p={p:.2f} {label}: {100 * row['accuracy_mean']:6.2f} +- {100 * row['accuracy_std']:.2f} % "
                f"({row['seconds']:.0f} s)",
                flush=True,
            )
        write()
    for p in paper_ps:
        for label in models:
            row = run_rate(label, p, "with_replacement")
            entries[label]["paper_protocol_rows"].append(row)
            print(
                f"paper protocol p={p:.2f} {label}: {100 * row['accuracy_mean']:6.2f} +- "
                f"{100 * row['accuracy_std']:.2f} %",
                flush=True,
            )
        write()
    write()

    print(
        f"\nMNIST, weight-code flips, N = {args.n}, first {len(x)} test images, {len(seeds)} seeds "
        "(accuracy %, mean +- std)"
    )
    print("| p (exact) | RASU | TASU | paper RASU | paper TASU (paper nominal p, with replacement) |")
    print("|---|---|---|---|---|")
    for i, p in enumerate(ps):
        r, t = entries["RASU"]["rows"][i], entries["TASU"]["rows"][i]
        paper = ""
        if p in PAPER_P:
            j = PAPER_P.index(p)
            paper = f"{PAPER['RASU'][j]:.2f} | {PAPER['TASU'][j]:.2f}"
        else:
            paper = " | "
        print(
            f"| {p:.2f} | {100 * r['accuracy_mean']:.2f} +- {100 * r['accuracy_std']:.2f} | "
            f"{100 * t['accuracy_mean']:.2f} +- {100 * t['accuracy_std']:.2f} | {paper} |"
        )
    for i, p in enumerate(paper_ps):
        r, t = entries["RASU"]["paper_protocol_rows"][i], entries["TASU"]["paper_protocol_rows"][i]
        print(
            f"paper protocol (with replacement) p={p:.2f}: RASU {100 * r['accuracy_mean']:.2f} +- "
            f"{100 * r['accuracy_std']:.2f}, TASU {100 * t['accuracy_mean']:.2f} +- {100 * t['accuracy_std']:.2f}"
        )
    print(
        f"wrote {out / (args.name + '.json')} and {out / (args.name + '.png')} in {time.perf_counter() - t_start:.0f} s"
    )


def run_hdc(args: argparse.Namespace) -> None:
    """CentroidHD and OnlineHD (kernel encoder, D = --hdc-dim): flips of the prototypes and of the encoded test
    images, on the same test images as the G-Nets."""
    from hdc import datasets as hdc_datasets
    from hdc.classifiers import CentroidHD, OnlineHD
    from hdc.faults import classifier_robustness

    t_start = time.perf_counter()
    ps = p_grid(args.p)
    seeds = list(range(args.seed, args.seed + args.seeds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = hdc_datasets.load("mnist", args.data_dir)
    x_train = data.x_train.reshape(len(data.x_train), -1)[: args.hdc_train]
    y_train = data.y_train[: args.hdc_train]
    x_test = data.x_test.reshape(len(data.x_test), -1)[: args.limit]
    y_test = data.y_test[: args.limit]
    results = {}
    for name, clf in (
        ("CentroidHD", CentroidHD(dim=args.hdc_dim, seed=0)),
        ("OnlineHD", OnlineHD(dim=args.hdc_dim, seed=0)),
    ):
        t0 = time.perf_counter()
        clf.fit(x_train, y_train)
        fit_seconds = time.perf_counter() - t0
        for target in ("prototypes", "data"):
            res = classifier_robustness(clf, x_test, y_test, ps, seeds, target=target)
            results[f"{name} / {target}"] = {
                "label": f"{name}, {target} flipped",
                "model": name,
                "fit_seconds": fit_seconds,
                **res,
            }
            means = " ".join(f"{100 * r['accuracy_mean']:.1f}" for r in res["rows"])
            print(f"{name:>10} {target:>10}: {means}", flush=True)
    result = {
        "dataset": "mnist",
        "n_classes": 10,
        "test_subset": f"the first {len(y_test)} images of the MNIST test set",
        "train_subset": f"the first {len(y_train)} images of the MNIST training set",
        "command": "OMP_NUM_THREADS=1 python benchmarks/bench_robustness_mnist.py " + " ".join(sys.argv[1:]),
        "settings": {"dim": args.hdc_dim, "encoder": "kernel", "p": ps, "seeds": seeds},
        "seconds": time.perf_counter() - t_start,
        "models": list(results.values()),
    }
    (out / f"{args.hdc_name}.json").write_text(json.dumps(result, indent=1))
    plot = {**result, "models": [{**m, "linestyle": "-" if m["target"] == "data" else "--"} for m in result["models"]]}
    plot_robustness(
        plot,
        out / f"{args.hdc_name}.png",
        title=f"MNIST HDC classifiers ({len(seeds)} seeds, {len(y_test)} test images)",
    )
    print(
        f"wrote {out / (args.hdc_name + '.json')} and {out / (args.hdc_name + '.png')} "
        f"in {time.perf_counter() - t_start:.0f} s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rasu", default="results/models/mnist_rasu.pt")
    ap.add_argument("--tasu", default="results/models/mnist_tasu.pt")
    ap.add_argument("--data-dir", default="../shared/datasets/mnist")
    ap.add_argument("--dim", "--n", dest="n", type=int, default=15000, help="dim (the paper's N) of every layer")
    ap.add_argument("--conv-seed", type=int, default=0, help="seed of the random projections (conversion)")
    ap.add_argument("--limit", type=int, default=1000, help="the first LIMIT test images")
    ap.add_argument("--p", default="0:0.5:0.05")
    ap.add_argument("--seeds", type=int, default=3, help="fault seeds per rate")
    ap.add_argument("--seed", type=int, default=0, help="first fault seed")
    ap.add_argument("--paper-p", default="", help="rates at which to also run the paper's with-replacement protocol")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument(
        "--no-cache-first-layer",
        dest="cache_first_layer",
        action="store_false",
        help="recompute the first layer's data codes in every evaluation (same results, slower)",
    )
    ap.add_argument("--out", default="results/robustness")
    ap.add_argument("--name", default="mnist_model_flips")
    ap.add_argument(
        "--part",
        default="all",
        choices=("gnet", "hdc", "all"),
        help="gnet: RASU vs TASU weight-code flips; hdc: HDC classifiers (prototype and data flips)",
    )
    ap.add_argument("--hdc-dim", type=int, default=15000, help="D of the HDC classifiers")
    ap.add_argument("--hdc-train", type=int, default=20000, help="the first HDC_TRAIN training images fit them")
    ap.add_argument("--hdc-name", default="mnist_hdc_classifiers")
    args = ap.parse_args()
    if args.part in ("gnet", "all"):
        run_gnet(args)
    if args.part in ("hdc", "all"):
        run_hdc(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
