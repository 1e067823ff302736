"""Ablation of a BNN's layer order and BatchNorm scale on MNIST: how fast each variant learns.

    PYTHONPATH=. python3 benchmarks/ablate_bnn_order.py --images 15000 --out results/bnn/ablate_order.json

The ``mnist`` architecture built as a ``bnn`` (gnet.bnn.build_bnn) four ways: the G-Net order (layer -> BatchNorm
-> sign -> max-pool) or pool-first (layer -> max-pool -> BatchNorm -> sign), each with learned or fixed BatchNorm
scales. Every variant sees the same seeded stream of training images once (Adam, lr ``--lr``, batch 64); every
``--every`` images its BatchNorm statistics are recalibrated on the first 5,000 training images
(``recalibrate_batchnorm``, as the trainer does after each epoch) and it is validated on the first 3,000 validation
images. Variants run one after the other in one process, one torch thread each (``--threads``). Writes the curves,
the command, lscpu flags, ``hdc.cpu`` capabilities and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gnet.bnn import build_bnn  # noqa: E402
from gnet.data import load_dataset  # noqa: E402
from gnet.models import architecture  # noqa: E402
from gnet.train import evaluate  # noqa: E402
from hdc import cpu  # noqa: E402
from hdc.io import atomic_write_text  # noqa: E402

VARIANTS = {
    "gnet_order_learned_scale": {"pool_first": False, "bn_scale": "learned"},
    "pool_first_learned_scale": {"pool_first": True, "bn_scale": "learned"},
    "gnet_order_fixed_scale": {"pool_first": False, "bn_scale": "fixed"},
    "pool_first_fixed_scale": {"pool_first": True, "bn_scale": "fixed"},
}


def curve(options: dict, data, args: argparse.Namespace) -> list[dict]:
    x_tr, y_tr = data.train.tensors
    x_va, y_va = data.val.tensors
    model = build_bnn(architecture("mnist"), "bnn", seed=args.seed, **options)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    order = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(args.seed))[: args.images]
    points, seen = [], 0
    for start in range(0, args.images, 64):
        idx = order[start : start + 64]
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(idx)
        if seen // args.every > (seen - len(idx)) // args.every or seen == args.images:
            model.recalibrate_batchnorm(x_tr[:5000])
            _, acc = evaluate(model, x_va[:3000], y_va[:3000])
            points.append({"images": seen, "val_accuracy": acc})
            print(f"  {seen:>6} images: {acc:.4f}", flush=True)
    return points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=15000)
    ap.add_argument("--every", type=int, default=5000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default="results/bnn/ablate_order.json")
    args = ap.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or args.images < 64 or args.every < 64:
        raise SystemExit(f"bad --variants {unknown} or --images / --every below 64")
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist", args.data_dir, val_fraction=0.1, seed=0)
    record = {
        "command": "PYTHONPATH=. python3 benchmarks/ablate_bnn_order.py " + shlex.join(argv or sys.argv[1:]),
        "lscpu_flags": cpu.lscpu_flags(),
        "capabilities": cpu.as_dict(),
        "load_average_before": os.getloadavg(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "variants": {},
    }
    for name in names:
        print(name, flush=True)
        t0 = time.perf_counter()
        record["variants"][name] = {**VARIANTS[name], "curve": curve(VARIANTS[name], data, args)}
        record["variants"][name]["seconds"] = time.perf_counter() - t0
    record["load_average_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
