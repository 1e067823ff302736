"""EHD MNIST inference with torch's OpenMP threads spinning (OMP_WAIT_POLICY unset) against sleeping (PASSIVE).

    PYTHONPATH=. python3 benchmarks/bench_omp_wait.py

The policy is read once, when torch loads its OpenMP runtime, so each measurement is a fresh process: rounds
alternate the two settings, and the medians are compared. Each process converts the paper's MNIST net at
N = (6000, 15000, 15000, 14000) with the fast G (dense Gaussian first layer, Hadamard after it), warms up, and
times ``predict`` on --images test images at batch 256, with the machine's default thread counts. Writes
results/bench_omp_wait.json. Why the difference arises: hdc.prefer_passive_openmp (hdc/_kernels/runtime.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run in the child: it must not go through hdc.prefer_passive_openmp, which would set PASSIVE when unset.
CHILD = """
import json, sys, time
import torch
from gnet.checkpoint import load_model
from gnet.data import load_dataset
from gnet.ehd import convert
model, config = load_model(sys.argv[1])
data = load_dataset("mnist", val_fraction=config.get("val_fraction", 0.1), seed=config.get("data_seed", 0))
x = data.test.tensors[0][: int(sys.argv[2])]
meta = {k: config[k] for k in ("input_shape", "n_classes", "dataset") if k in config}
ehd = convert(model, n=[6000, 15000, 15000, 14000], embedding=["gaussian"] + ["hadamard"] * 3, seed=0, meta=meta)
ehd.predict(x[:256], batch_size=256)
t0 = time.perf_counter()
ehd.predict(x, batch_size=256)
print(json.dumps({"img_per_s": len(x) / (time.perf_counter() - t0), "torch_threads": torch.get_num_threads()}))
"""


def measure(policy: str | None, checkpoint: str, images: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, checkpoint, str(images)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="results/models/mnist_rasu.pt")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "results" / "bench_omp_wait.json"))
    args = ap.parse_args()
    if args.rounds < 1 or args.images < 1:
        ap.error("--rounds and --images must be >= 1")
    settings = {"unset": None, "PASSIVE": "PASSIVE"}
    runs: dict[str, list[float]] = {k: [] for k in settings}
    for r in range(args.rounds):
        for name in list(settings) if r % 2 == 0 else list(settings)[::-1]:
            res = measure(settings[name], args.checkpoint, args.images)
            runs[name].append(res["img_per_s"])
            print(
                f"round {r}: OMP_WAIT_POLICY {name:8s} {res['img_per_s']:7.1f} img/s "
                f"({res['torch_threads']} torch threads)",
                flush=True,
            )
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(
        f"median img/s: unset {med['unset']:.1f}, PASSIVE {med['PASSIVE']:.1f} ({med['PASSIVE'] / med['unset']:.2f}x)"
    )
    report = {
        "command": "PYTHONPATH=. python3 benchmarks/bench_omp_wait.py " + " ".join(sys.argv[1:]),
        "what": "EHD MNIST net, N = (6000, 15000, 15000, 14000), Gaussian first layer + Hadamard, batch 256",
        "images": args.images,
        "rounds": args.rounds,
        "img_per_s": runs,
        "median_img_per_s": med,
        "passive_over_unset": med["PASSIVE"] / med["unset"],
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_1min_at_end": os.getloadavg()[0],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
