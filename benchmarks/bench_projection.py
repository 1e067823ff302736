"""Dense vs structured (Hadamard) sign projections, side by side in one run.

    PYTHONPATH=. python3 benchmarks/bench_projection.py --repeats 5

Part 1 times the packed encoding phi(x) = sign(G x) of one layer's patches (default: the paper's MNIST layer 2,
fan-in 800, N = 15,000, the 196 patches of --images images) with a dense Gaussian G in float32, a dense Rademacher G
in int8 (the fastest dense path here), and the structured Hadamard G. Part 2 runs the whole EHD MNIST net at
N = (6000, 15000, 15000, 14000) with Rademacher int8 everywhere (the paper's setting) and with a Gaussian first layer
(fan-in 9, where a dense G is cheap) and Hadamard layers after it, on the same images, and reports img/s and the
accuracy on those images. Repeats are interleaved and the median is reported, so machine load hits every method
alike; the ratios are the result, absolute times depend on the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hdc import prefer_passive_openmp  # noqa: E402

prefer_passive_openmp()  # before torch loads its OpenMP runtime (see hdc._kernels.runtime)

import numba  # noqa: E402
import torch  # noqa: E402

from gnet.checkpoint import load_model  # noqa: E402
from gnet.ehd import convert  # noqa: E402
from hdc.datasets import read_idx, search_places  # noqa: E402
from hdc.projection import make_projection  # noqa: E402

PAPER_N = [6000, 15000, 15000, 14000]


def _median_times(fns: dict, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _mnist_test(n_images: int) -> tuple[torch.Tensor, torch.Tensor]:
    root = next(p for p in search_places("mnist") if (p / "t10k-images-idx3-ubyte.gz").exists())
    x = torch.from_numpy(read_idx(root / "t10k-images-idx3-ubyte.gz")[:n_images].astype("float32"))
    y = torch.from_numpy(read_idx(root / "t10k-labels-idx1-ubyte.gz")[:n_images].astype("int64"))
    return (x / 127.5 - 1).unsqueeze(1), y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="results/models/mnist_rasu.pt")
    ap.add_argument("--images", type=int, default=64, help="images per timed batch")
    ap.add_argument("--accuracy-images", type=int, default=1000, help="test images for the accuracy check")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="results/bench_projection.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    load_at_start = os.getloadavg()[0]

    # Part 1: one layer's encoding.
    fan_in, dim = 800, 15000
    rows = torch.relu(torch.randn(196 * args.images, fan_in, generator=torch.Generator().manual_seed(0)))
    projections = {
        "gaussian float32": (make_projection("gaussian", fan_in, dim, seed=0, stream=(1,)), "float32"),
        "rademacher int8": (make_projection("rademacher", fan_in, dim, seed=0, stream=(1,)), "int8"),
        "hadamard float32": (make_projection("hadamard", fan_in, dim, seed=0, stream=(1,)), "float32"),
    }
    fns = {k: (lambda p=p, prec=prec: p.encode_unchecked(rows, 16384, prec)) for k, (p, prec) in projections.items()}
    for fn in fns.values():
        fn()  # warm-up: G caches, numba and oneDNN kernels
    layer = _median_times(fns, args.repeats)
    base = layer["rademacher int8"]
    print(f"layer encode, fan-in {fan_in}, N {dim}, {len(rows)} patches ({args.images} images):")
    for k, v in layer.items():
        print(f"  {k:18s} {v * 1e3:8.1f} ms   {args.images / v:7.1f} img/s   {base / v:5.2f}x int8")

    # Part 2: the whole net.
    model, config = load_model(args.checkpoint)
    meta = {"input_shape": config["input_shape"]}
    nets = {
        "rademacher int8 (paper G)": convert(
            model, n=PAPER_N, embedding="rademacher", precision="int8", seed=0, meta=meta
        ),
        "gaussian L1 + hadamard": convert(
            model, n=PAPER_N, embedding=["gaussian"] + ["hadamard"] * 3, seed=0, meta=meta
        ),
    }
    x, y = _mnist_test(max(args.images, args.accuracy_images))
    batch = x[: args.images]
    for net in nets.values():
        net.predict(batch[:8])
    whole = _median_times(
        {k: (lambda m=m: m.predict(batch, batch_size=len(batch))) for k, m in nets.items()}, args.repeats
    )
    accuracy = {k: m.evaluate(x[: args.accuracy_images], y[: args.accuracy_images]).accuracy for k, m in nets.items()}
    base = whole["rademacher int8 (paper G)"]
    print(f"EHD MNIST net, N = {PAPER_N}, batch {args.images}:")
    for k, v in whole.items():
        print(
            f"  {k:26s} {args.images / v:7.1f} img/s   {base / v:5.2f}x   accuracy {accuracy[k]:.4f} "
            f"(first {args.accuracy_images} test images, seed 0)"
        )

    result = {
        "command": "PYTHONPATH=. python3 benchmarks/bench_projection.py " + " ".join(sys.argv[1:]),
        "threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "machine": platform.machine(),
        "load_average_1min_at_start": load_at_start,
        "repeats": args.repeats,
        "layer": {
            "fan_in": fan_in,
            "dim": dim,
            "patches": len(rows),
            "images": args.images,
            "seconds": layer,
            "speedup_vs_int8": {k: layer["rademacher int8"] / v for k, v in layer.items()},
        },
        "net": {
            "n_per_layer": PAPER_N,
            "batch": args.images,
            "images_per_second": {k: args.images / v for k, v in whole.items()},
            "speedup_vs_int8": {k: base / v for k, v in whole.items()},
            "accuracy": accuracy,
            "accuracy_images": args.accuracy_images,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
