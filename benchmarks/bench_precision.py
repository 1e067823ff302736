"""Precision benchmark: int8 vs bfloat16 vs float32 on this CPU, the GEMM alone and the EHD digits net.

    PYTHONPATH=. python3 benchmarks/bench_precision.py

Records what ``precision="auto"`` decides here (:mod:`hdc.cpu`) next to what it measures:

* a SIZE^3 matrix product (default 1024) in float32, bfloat16 and int8 (``torch._int_mm``, int32
  accumulation), best of ``--repeats``, torch's default thread count;
* the digits G-Net conv net (trained ``--epochs`` epochs), converted to EHD with a Rademacher G (the only kind
  that runs all three precisions) at ``--dim``, per precision: conversion seconds, one-off warm-up seconds, and
  steady-state img/s on ``--limit`` test images (best of ``--rounds`` round-robin rounds), plus the accuracy.

Also records ``lscpu``'s flags, the load average before and after (the ratios are what carry over; absolute
figures are noisy on a shared machine) and :func:`hdc.cpu.as_dict`.  Writes results/bench_precision.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnet.data import load_dataset  # noqa: E402
from gnet.ehd import convert  # noqa: E402
from gnet.models import architecture, build_model  # noqa: E402
from gnet.train import TrainConfig, train  # noqa: E402
from hdc import cpu  # noqa: E402

PRECISIONS = ("float32", "bfloat16", "int8")


def best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm(size: int, repeats: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=gen), torch.randn(size, size, generator=gen)
    ab, bb = a.bfloat16(), b.bfloat16()
    ai, bi = a.mul(40).to(torch.int8), b.mul(40).to(torch.int8)
    seconds = {
        "float32": best_seconds(lambda: a @ b, repeats),
        "bfloat16": best_seconds(lambda: ab @ bb, repeats),
        "int8": best_seconds(lambda: torch._int_mm(ai, bi), repeats),
    }
    return {
        "size": size,
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "gflops": {p: 2 * size**3 / s / 1e9 for p, s in seconds.items()},
        "time_vs_float32": {p: s / seconds["float32"] for p, s in seconds.items()},
    }


def ehd_digits(epochs: int, dim: int, limit: int, rounds: int) -> dict[str, Any]:
    data = load_dataset("digits", val_fraction=0.1, seed=0)
    specs = architecture("digits", n_classes=data.n_classes, activation="rasu")
    model = build_model(specs, seed=0)
    config = {"architecture": specs, "input_shape": list(data.input_shape), "n_classes": data.n_classes}
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=0)
    train(model, data.train.tensors, data.val.tensors, cfg, config, progress=False)
    model.eval()
    x, y = data.test.tensors
    x, y = x[:limit], y[:limit]
    rows: dict[str, Any] = {}
    models = {}
    for precision in (*PRECISIONS, "auto"):
        t0 = time.perf_counter()
        models[precision] = ehd = convert(model, dim=dim, embedding="rademacher", seed=0, precision=precision)
        convert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ehd.predict(x[:32])  # warm-up (numba JIT or cache load, oneDNN's first calls), timed apart
        rows[precision] = {
            "resolved": ehd.meta["precision"],
            "convert_seconds": convert_s,
            "warmup_seconds": time.perf_counter() - t0,
            "images_per_second_rounds": [],
        }
    for _ in range(rounds):  # round-robin, so background load hits every precision alike
        for precision, ehd in models.items():
            r = ehd.evaluate(x, y, batch_size=256)
            rows[precision]["images_per_second_rounds"].append(r.images_per_second)
            rows[precision]["accuracy"] = r.accuracy
    for precision, row in rows.items():
        row["images_per_second"] = max(row["images_per_second_rounds"])
        print(f"  EHD {precision:>8} ({row['resolved']}): {row['images_per_second']:8.1f} img/s (best round)")
    fastest = max(row["images_per_second"] for row in rows.values())
    return {
        "dataset": "digits",
        "epochs": epochs,
        "embedding": "rademacher",
        "dim": dim,
        "n_images": len(x),
        "rounds": rounds,
        "per_precision": rows,
        "img_s_vs_fastest": {p: rows[p]["images_per_second"] / fastest for p in (*PRECISIONS, "auto")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--limit", type=int, default=200, help="test images timed per precision")
    ap.add_argument("--rounds", type=int, default=3, help="round-robin timing rounds of the EHD net (best kept)")
    ap.add_argument("--out", default="results/bench_precision.json")
    args = ap.parse_args()

    load_before = os.getloadavg()
    caps = cpu.as_dict()
    print(f"capabilities: {caps}", flush=True)
    matmul = gemm(args.size, args.repeats)
    print(f"GEMM {args.size}^3 time / float32: {matmul['time_vs_float32']}", flush=True)
    ehd = ehd_digits(args.epochs, args.dim, args.limit, args.rounds)
    load_after = os.getloadavg()
    record = {
        "command": "PYTHONPATH=. python3 benchmarks/bench_precision.py " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "processor": caps.get("model_name") or platform.processor(),
            "lscpu_flags": cpu.lscpu_flags(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "note": "shared machine: other CPU-bound jobs ran at the same time (see load averages); "
            "compare ratios, not absolute figures",
            "torch": torch.__version__,
        },
        "capabilities": caps,
        "auto_resolves_to": {
            "rademacher": ehd["per_precision"]["auto"]["resolved"],
            "any": caps["preferred_precision"],
        },
        "gemm": matmul,
        "ehd_digits": ehd,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
