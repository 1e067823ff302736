"""EHD G-Net on MNIST: accuracy over seeds, throughput, model size, peak memory, and the reference algorithm.

    python benchmarks/bench_ehd_mnist.py --checkpoint results/models/mnist_rasu.pt --seeds 5

Measures, in one run:

- accuracy of the EHD model at N = (6000, 15000, 15000, 14000) for each seed on the full test set (or --limit);
- throughput (img/s) of our engine (shared G per layer, packed codes, popcount) at batch 256, per precision;
- the reference algorithm, as in the paper's code: one G per conv output channel, dense float projections,
  sign and sum (no packing), on a small batch, and the speed ratio;
- the .ehd file size and the peak RSS of this process during our inference.

Writes results/ehd_mnist/results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hdc import prefer_passive_openmp  # noqa: E402

prefer_passive_openmp()  # before torch loads its OpenMP runtime (see hdc.prefer_passive_openmp)

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gnet.checkpoint import load_model  # noqa: E402
from gnet.data import load_dataset  # noqa: E402
from gnet.ehd import EHDClassifier, EHDGLayer, convert  # noqa: E402
from gnet.ehd.model import Flatten, Pool  # noqa: E402
from gnet.train import evaluate  # noqa: E402
from hdc.projection import make_projection  # noqa: E402

PAPER_DIM = [6000, 15000, 15000, 14000]


def parse_per_layer(text: str) -> str | list[str]:
    """'int8' -> 'int8' (every layer); 'gaussian,hadamard' -> one per layer."""
    parts = [t.strip() for t in text.split(",")]
    return parts[0] if len(parts) == 1 else parts


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ReferenceEHD:
    """The paper's algorithm: per-output-channel G for convolutions (N filters per channel), dense float32
    projections, sign, then a sum of +-1 products; no bit packing. The G's are generated once, up front, so the
    timing covers only inference, as it would with G resident on a GPU."""

    def __init__(self, ehd) -> None:
        self.ehd = ehd
        self.filters: dict[int, list[torch.Tensor]] = {}
        for i, stage in enumerate(ehd.stages):
            if isinstance(stage, EHDGLayer) and stage.geometry.kind == "conv2d":
                g = stage.geometry
                per = []
                for o in range(g.out_units):
                    proj = make_projection(
                        stage.embedding, g.fan_in, stage.dim, stage.seed, stream=(stage.index, o), cache_bytes=0
                    )
                    rows = proj.rows()
                    sign_w = torch.from_numpy(_signs(stage.codes[o], stage.dim))
                    # alpha_{i,o} * G_o[i] as conv filters, exactly the paper's `alphag1`
                    per.append((rows * sign_w[:, None]).reshape(stage.dim, g.in_channels, *g.kernel))
                self.filters[i] = per

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, stage in enumerate(self.ehd.stages):
            if isinstance(stage, (Pool, Flatten)):
                h = stage(h)
                continue
            shifted = h + stage.bias
            if i in self.filters:
                g = stage.geometry
                outs = []
                for filt in self.filters[i]:
                    y = F.conv2d(shifted, filt, stride=g.stride, padding=g.padding, dilation=g.dilation)
                    outs.append(torch.sign(y).sum(dim=1))
                z = torch.stack(outs, dim=1) * (math.pi / (2 * stage.dim))
            else:
                proj = stage.projections[0]
                s = torch.sign(shifted @ proj.rows().T)
                w = torch.from_numpy(np.stack([_signs(c, stage.dim) for c in stage.codes]))
                z = (s @ w.T) * (math.pi / (2 * stage.dim))
            h = stage.activate(z) if not isinstance(stage, EHDClassifier) else z
        return h


def _signs(words: np.ndarray, dim: int) -> np.ndarray:
    from hdc.packed import to_bipolar

    return to_bipolar(words, dim, dtype=np.float32)


def merge(paths: list[str], out: str) -> int:
    """Combine runs over disjoint seed ranges: accuracies are pooled; throughput/reference come from the run that
    measured them."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    merged: dict = {}
    for r in runs:
        for k, v in r.items():
            pooled = ("accuracy_per_seed", "seeds", "accuracy_mean", "accuracy_std", "partial")
            if k not in pooled and v not in ({}, None):
                merged.setdefault(k, v)
    # Per-seed counts as saved after every chunk: a seed counts as complete when it covered the whole test set.
    counts = {int(s): c for r in runs for s, c in r.get("partial", {}).items()}
    n_test = max(r.get("n_test", 0) for r in runs)
    pairs = sorted((s, c["correct"] / c["seen"]) for s, c in counts.items() if c["seen"] == n_test)
    merged["incomplete_seeds"] = {str(s): c for s, c in counts.items() if c["seen"] != n_test}
    merged.pop("partial", None)
    merged["seeds"] = [s for s, _ in pairs]
    merged["accuracy_per_seed"] = [a for _, a in pairs]
    merged["accuracy_mean"] = statistics.mean(merged["accuracy_per_seed"])
    merged["accuracy_std"] = statistics.pstdev(merged["accuracy_per_seed"])
    merged["merged_from"] = paths
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(merged, indent=1))
    print(json.dumps(merged, indent=1))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="results/models/mnist_rasu.pt")
    ap.add_argument("--dim", "--n", dest="dim", default=",".join(map(str, PAPER_DIM)), help="dim per layer")
    ap.add_argument(
        "--embedding",
        default="rademacher",
        help="gaussian | rademacher | orthogonal | hadamard, or a comma list with one per G-layer",
    )
    ap.add_argument("--precision", default="int8", help="float32 | bfloat16 | int8, or a comma list per G-layer")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (to split seeds across processes)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument(
        "--merge",
        nargs="+",
        default=None,
        help="combine result files of seed ranges (accuracy_per_seed) into --out, then exit",
    )
    ap.add_argument("--limit", type=int, default=None, help="accuracy on the first LIMIT test images only")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=1000, help="images per saved progress step")
    ap.add_argument("--throughput-images", type=int, default=1024)
    ap.add_argument(
        "--compare-precisions",
        default="float32,bfloat16,int8",
        help="precisions whose throughput is measured side by side (seed 0)",
    )
    ap.add_argument("--reference-images", type=int, default=4)
    ap.add_argument("--out", default="results/ehd_mnist/results.json")
    args = ap.parse_args(argv)

    if args.merge:
        return merge(args.merge, args.out)
    dims = [int(v) for v in args.dim.split(",")]
    model, config = load_model(args.checkpoint)
    data = load_dataset("mnist", val_fraction=config.get("val_fraction", 0.1), seed=config.get("data_seed", 0))
    x, y = data.test.tensors
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    _, float_acc = evaluate(model, x, y)
    meta = {k: config[k] for k in ("input_shape", "n_classes", "dataset") if k in config}
    print(f"float G-Net test accuracy {float_acc:.4f} on {len(x)} images")

    result: dict = {
        "checkpoint": args.checkpoint,
        "n_per_layer": dims,
        "embedding": args.embedding,
        "precision": args.precision,
        "n_test": len(x),
        "float_accuracy": float_acc,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "numba_threads": numba.get_num_threads(),
        "command": " ".join(["python3", *map(shlex.quote, sys.argv)]),
    }

    # Throughput, side by side per precision, on the same images.
    xt = data.test.tensors[0][: args.throughput_images]
    throughput = {}
    embedding = parse_per_layer(args.embedding)
    # One precision for every layer can be compared across precisions; a per-layer list is timed as given.
    # Structured (Hadamard) layers run in float32 only.
    single = "," in args.precision or "hadamard" in args.embedding
    compare = [args.precision] if single else args.compare_precisions.split(",")
    for precision in [] if args.skip_throughput else compare:
        if precision == "int8" and args.embedding != "rademacher":
            continue
        ehd = convert(model, dim=dims, embedding=embedding, seed=0, precision=parse_per_layer(precision), meta=meta)
        ehd.predict(xt[: args.batch_size])  # warm-up: caches G, compiles kernels
        t0 = time.perf_counter()
        ehd.predict(xt, batch_size=args.batch_size)
        throughput[precision] = len(xt) / (time.perf_counter() - t0)
        print(f"throughput {precision}: {throughput[precision]:.1f} img/s (batch {args.batch_size})")
    result["throughput_img_per_s"] = throughput
    result["peak_rss_mb_after_throughput"] = peak_rss_mb()

    # Accuracy over seeds with the chosen precision.
    accs = []
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    result["seeds"] = seeds
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result["partial"] = {}
    for seed in seeds:
        ehd = convert(
            model,
            dim=dims,
            embedding=parse_per_layer(args.embedding),
            seed=seed,
            precision=parse_per_layer(args.precision),
            meta=meta,
        )
        # Evaluated in chunks, saving the running count after each, so a run stopped early still reports
        # exactly which images it covered.
        correct, seen, t0 = 0, 0, time.perf_counter()
        for i in range(0, len(x), args.chunk):
            pred = ehd.predict(x[i : i + args.chunk], batch_size=args.batch_size)
            correct += int((pred == y[i : i + args.chunk]).sum())
            seen += len(pred)
            result["partial"][str(seed)] = {"correct": correct, "seen": seen}
            out.write_text(json.dumps(result, indent=1))
            print(f"seed {seed}: {seen}/{len(x)} images, running accuracy {correct / seen:.4f}", flush=True)
        accs.append(correct / seen)
        print(f"seed {seed}: EHD accuracy {correct / seen:.4f} ({seen / (time.perf_counter() - t0):.1f} img/s)")
    if accs:
        result["accuracy_mean"] = statistics.mean(accs)
        result["accuracy_std"] = statistics.pstdev(accs)
    with tempfile.TemporaryDirectory() as tmp:
        path = ehd.save(Path(tmp) / "mnist.ehd")
        result["model_file_mb"] = path.stat().st_size / 1e6
    result["peak_rss_mb"] = peak_rss_mb()

    # The reference algorithm on a small batch, and ours on the same batch.
    if args.reference_images > 0 and throughput:
        # The paper's algorithm uses dense G: a structured (Hadamard) model is timed against the Gaussian reference.
        ref_embedding = args.embedding if args.embedding in ("gaussian", "rademacher") else "gaussian"
        result["reference_embedding"] = ref_embedding
        ehd = convert(model, dim=dims, embedding=ref_embedding, seed=0, conv_projection="per_channel", meta=meta)
        ref = ReferenceEHD(ehd)
        xs = xt[: args.reference_images]
        ref.forward(xs[:1])
        t0 = time.perf_counter()
        ref_pred = ref.forward(xs).argmax(dim=1)
        ref_ips = len(xs) / (time.perf_counter() - t0)
        ours_ips = throughput.get(args.precision) or max(throughput.values())
        result["reference_img_per_s"] = ref_ips
        result["speedup_vs_reference"] = ours_ips / ref_ips
        # The reference must compute the same function as our per-channel model (same G, same codes).
        result["reference_matches_per_channel_model"] = bool(torch.equal(ref_pred, ehd.predict(xs)))
        print(
            f"reference (per-channel G, dense float): {ref_ips:.2f} img/s; ours {ours_ips:.1f} img/s; "
            f"ratio {ours_ips / ref_ips:.0f}x"
        )

    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "accuracy_per_seed"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
