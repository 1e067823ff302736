"""What each EHD inference change of the dim-preset work buys, side by side in one run.

    PYTHONPATH=$PWD python3 benchmarks/bench_ehd_chunks.py --out results/bench_ehd_chunks.json

For the MNIST G-Net (``results/models/mnist_rasu.pt``) with the fast G at the paper's dims and at the ``mnist-fast``
preset, four variants, each adding one change to the one before:

- ``before``: chunks of 1,024 patch rows, patch rows in fresh memory, first layer (fan-in 9) in bfloat16 where
  bfloat16 GEMM is fast on this CPU (what ``precision="auto"`` chose before), else float32;
- ``f32_first``: the first layer in float32 (the fused kernel; ``auto`` now);
- ``chunks``: chunk sizes from ``EHDGLayer.default_row_chunk`` (up to 65,536 rows);
- ``workspace``: patch rows in the reused per-thread buffer (``gnet.ehd.layers.WORKSPACE_MAX_VALUES``): the
  current defaults.

Rounds interleave the variants (warm-up excluded); the JSON keeps every img/s, the medians, each variant's ratio to
``before``, the per-stage profile of one batch, the lscpu flags and the load average. Run it with nothing else on
the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import gnet.ehd.layers as ehd_layers
from gnet.checkpoint import load_model
from gnet.data import load_dataset
from gnet.ehd import EHDModel, convert
from hdc import cpu as hcpu
from hdc.io import atomic_write_text

VARIANTS = ("before", "f32_first", "chunks", "workspace")
MODELS = {"paper_dims": [6000, 15000, 15000, 14000], "mnist_fast": "mnist-fast"}
FAST_G = ["gaussian", "hadamard", "hadamard", "hadamard"]
OLD_ROW_CHUNK = 1024


def build(gnet: torch.nn.Module, dims: Any, variant: str) -> EHDModel:
    """The EHD model of ``variant``: its precisions and, before ``chunks``, fixed 1,024-row chunks."""
    first = "float32" if variant != "before" or not hcpu.as_dict()["fast_bfloat16_matmul"] else "bfloat16"
    model = convert(gnet, dim=dims, embedding=FAST_G, seed=0, precision=[first] + ["float32"] * 3)
    if variant in ("before", "f32_first"):
        for layer in model.layers:
            layer.default_row_chunk = lambda dim_chunk=16384: OLD_ROW_CHUNK  # type: ignore[method-assign]
    return model


@contextlib.contextmanager
def workspace_of(variant: str) -> Iterator[None]:
    """The reused patch buffer on only for the ``workspace`` variant."""
    saved = ehd_layers.WORKSPACE_MAX_VALUES
    ehd_layers.WORKSPACE_MAX_VALUES = saved if variant == "workspace" else 0
    try:
        yield
    finally:
        ehd_layers.WORKSPACE_MAX_VALUES = saved


def timed(model: EHDModel, x: torch.Tensor, variant: str, batch: int) -> float:
    """img/s of one pass over ``x``."""
    with workspace_of(variant):
        t0 = time.perf_counter()
        model.predict(x, batch_size=batch)
        return len(x) / (time.perf_counter() - t0)


def profile(model: EHDModel, x: torch.Tensor, variant: str) -> dict[str, float]:
    """Milliseconds per stage kind of one batch."""
    prof: dict[tuple[int, str], float] = {}
    with workspace_of(variant):
        model.forward(x, profile=prof)
    kinds: dict[str, float] = {}
    for (_, kind), seconds in prof.items():
        kinds[kind] = kinds.get(kind, 0.0) + 1000 * seconds
    return kinds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="results/models/mnist_rasu.pt")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="results/bench_ehd_chunks.json")
    args = ap.parse_args(argv)
    if args.images < 1 or args.rounds < 1 or args.batch_size < 1:
        ap.error("--images, --rounds and --batch-size must be >= 1")
    result: dict[str, Any] = {
        "benchmark": "bench_ehd_chunks",
        "command": shlex.join(["python3", *sys.argv]),
        "settings": vars(args),
        "machine_start": hcpu.machine_record(),
        "torch_threads": torch.get_num_threads(),
    }
    gnet, _ = load_model(args.checkpoint)
    x = load_dataset("mnist", root=args.data_dir, val_fraction=0.0, seed=0).test.tensors[0][: args.images]
    models = {(m, v): build(gnet, dims, v) for m, dims in MODELS.items() for v in VARIANTS}
    for (_, v), model in models.items():
        timed(model, x[: args.batch_size], v, args.batch_size)  # warm-up: compilation, G caches
    runs: dict[str, list[float]] = {f"{m}/{v}": [] for m, v in models}
    for r in range(args.rounds):
        order = list(models.items())
        order = order[r % len(order) :] + order[: r % len(order)]
        for (m, v), model in order:
            runs[f"{m}/{v}"].append(timed(model, x, v, args.batch_size))
    medians = {k: statistics.median(v) for k, v in runs.items()}
    result["img_per_s"] = runs
    result["median_img_per_s"] = medians
    result["ratio_to_before"] = {k: v / medians[f"{k.split('/')[0]}/before"] for k, v in medians.items()}
    result["profile_ms"] = {f"{m}/{v}": profile(model, x[: args.batch_size], v) for (m, v), model in models.items()}
    result["machine_end"] = hcpu.machine_record()
    atomic_write_text(Path(args.out), json.dumps(result, indent=1, default=str))
    for name, ips in medians.items():
        print(f"{name:24s} {ips:8.1f} img/s  {result['ratio_to_before'][name]:.2f}x before")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
