"""Peak RSS of one EHD MNIST model at the paper's N, batch 256, in a fresh process.

    python benchmarks/rss_ehd_mnist.py --checkpoint results/models/mnist_rasu.pt

Loads only the MNIST test images, converts (int8, Rademacher), predicts --images images at --batch-size, and
prints/writes the process's peak resident set size (ru_maxrss), before and after inference.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnet.checkpoint import load_model  # noqa: E402
from gnet.ehd import convert  # noqa: E402
from hdc.datasets import read_idx, search_places  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="results/models/mnist_rasu.pt")
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--out", default="results/ehd_mnist/rss.json")
    args = ap.parse_args()
    model, config = load_model(args.checkpoint)
    root = next(p for p in search_places("mnist") if (p / "t10k-images-idx3-ubyte.gz").exists())
    x = torch.from_numpy(read_idx(root / "t10k-images-idx3-ubyte.gz")[: args.images].astype("float32"))
    x = (x / 127.5 - 1).unsqueeze(1)
    before = rss_mb()
    ehd = convert(
        model,
        dim=[6000, 15000, 15000, 14000],
        embedding="rademacher",
        seed=0,
        precision=args.precision,
        input_shape=config["input_shape"],
    )
    ehd.predict(x, batch_size=args.batch_size)
    result = {
        "peak_rss_mb_before_convert": before,
        "peak_rss_mb": rss_mb(),
        "batch_size": args.batch_size,
        "images": args.images,
        "precision": args.precision,
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
