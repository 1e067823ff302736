"""The smallest per-layer dim at which EHD accuracy stays within a tolerance of the paper-dim result.

    PYTHONPATH=$PWD python3 benchmarks/ehd_dim_search.py --checkpoint results/models/mnist_rasu.pt \
        --embedding fast --seeds 5 --out results/ehd_mnist/dim_search_fast.json

For one trained G-Net and one embedding (``fast``: Gaussian first layer and Hadamard after it, the README's fast G;
``paper``: Rademacher everywhere, the paper's G), every candidate allocation of dims is converted and evaluated on
the full test set for ``--seeds`` seeds (0..n-1). The reference is the paper's allocation (``--reference-dims``,
default MNIST's 6000, 15000, 15000, 14000). An allocation passes when its mean accuracy over the seeds is at least
the reference's minus ``--tolerance`` (0.1 points) and at least ``--floor``.

Search, in three stages, each candidate costing ``seeds`` full evaluations:

1. uniform: every layer's dim times each of ``--scales`` (largest first); the search stops at the first scale that
   fails, keeping the smallest that passed;
2. ``--candidates``: allocations of one's own (e.g. smaller conv layers beside paper-size dense ones), each taken
   when it passes with fewer bit operations per image than the best so far;
3. per layer (``--refine-steps``): from the best allocation so far, each layer's dim alone times ``--refine-factor``;
   the passing candidate with the fewest code bits per image is taken, and the step repeats until none passes.

Every (allocation, seed) result is written to ``--out`` as soon as it is known (atomically); a second run with the
same settings skips what is there, so a stopped search resumes. Dims are rounded to multiples of 64 (whole words).
Throughput is not measured here: ``benchmarks/bench_infer.py --ehd-dims`` times the chosen allocation against the
paper's side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnet.checkpoint import load_model
from gnet.data import load_for_model
from gnet.ehd import convert
from hdc import cpu as hcpu
from hdc.io import atomic_write_text

PAPER_DIMS = (6000, 15000, 15000, 14000)
EMBEDDINGS = {"fast": ("gaussian", "hadamard"), "paper": ("rademacher", "rademacher")}


def embeddings_for(kind: str, n_layers: int) -> list[str]:
    """The per-layer embeddings of ``kind``: the first layer's, then the rest's."""
    first, rest = EMBEDDINGS[kind]
    return [first] + [rest] * (n_layers - 1)


def round_dim(value: float) -> int:
    """A dim rounded to a whole number of 64-bit words (at least one)."""
    return max(64, int(round(value / 64)) * 64)


class Search:
    """The evaluation cache and the record written to ``out``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.model, self.config = load_model(args.checkpoint)
        data = load_for_model(self.config, root=args.data_dir)
        self.x, self.y = data.test.tensors
        if args.limit:
            self.x, self.y = self.x[: args.limit], self.y[: args.limit]
        self.meta = {k: self.config[k] for k in ("input_shape", "n_classes", "dataset") if k in self.config}
        self.out = Path(args.out)
        self.record: dict[str, Any] = self._load_or_start()

    def _settings(self) -> dict[str, Any]:
        a = self.args
        return {
            "checkpoint": a.checkpoint,
            "embedding": a.embedding,
            "seeds": a.seeds,
            "reference_dims": a.reference_dims,
            "n_test": len(self.y),
            "precision": a.precision,
        }

    def _load_or_start(self) -> dict[str, Any]:
        if self.out.is_file():
            record = json.loads(self.out.read_text())
            if record.get("settings") != self._settings():
                raise SystemExit(f"{self.out} holds a search with other settings; pass another --out")
            return record
        return {
            "benchmark": "ehd_dim_search",
            "command": " ".join(["python3", *map(shlex.quote, sys.argv)]),
            "settings": self._settings(),
            "machine": hcpu.machine_record(),
            "evaluations": {},
        }

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out, json.dumps(self.record, indent=1))

    def evaluate(self, dims: list[int]) -> dict[str, Any]:
        """Mean accuracy of ``dims`` over the seeds (cached per seed)."""
        key = ",".join(map(str, dims))
        entry = self.record["evaluations"].setdefault(key, {"dims": dims, "per_seed": {}})
        embedding = embeddings_for(self.args.embedding, len(dims))
        for seed in range(self.args.seeds):
            if str(seed) in entry["per_seed"]:
                continue
            t0 = time.perf_counter()
            ehd = convert(self.model, dim=dims, embedding=embedding, seed=seed, precision=self.args.precision,
                          meta=self.meta)  # fmt: skip
            cost = ehd.cost()
            entry.setdefault("bit_ops_per_image", cost.bit_ops_per_image)
            entry.setdefault("float_macs_per_image", cost.float_macs_per_image)
            pred = np.asarray(ehd.predict(self.x, batch_size=256))
            correct = int((pred == self.y.numpy()).sum())
            entry["per_seed"][str(seed)] = {"correct": correct, "seconds": time.perf_counter() - t0}
            self.save()
            print(f"  dims {key} seed {seed}: {correct / len(self.y):.4f}", flush=True)
        accs = [v["correct"] / len(self.y) for v in entry["per_seed"].values()]
        entry["accuracy_mean"] = statistics.mean(accs)
        entry["accuracy_sd"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
        self.save()
        return entry


def passes(entry: dict[str, Any], threshold: float) -> bool:
    return entry["accuracy_mean"] >= threshold


def run(search: Search) -> dict[str, Any]:
    args = search.args
    reference = search.evaluate(list(args.reference_dims))
    threshold = max(reference["accuracy_mean"] - args.tolerance, args.floor)
    print(f"reference {args.reference_dims}: {reference['accuracy_mean']:.4f}; pass at >= {threshold:.4f}")
    best = reference
    for scale in sorted(args.scales, reverse=True):
        entry = search.evaluate([round_dim(d * scale) for d in args.reference_dims])
        print(f"uniform x{scale}: {entry['accuracy_mean']:.4f} ({'pass' if passes(entry, threshold) else 'fail'})")
        if not passes(entry, threshold):
            break
        best = entry
    for dims in args.candidates:  # allocations of the user's own (e.g. small conv layers, paper-size dense ones)
        entry = search.evaluate(dims)
        print(f"candidate {dims}: {entry['accuracy_mean']:.4f} ({'pass' if passes(entry, threshold) else 'fail'})")
        if passes(entry, threshold) and entry["bit_ops_per_image"] < best["bit_ops_per_image"]:
            best = entry
    for _ in range(args.refine_steps):
        candidates = []
        for i in range(len(best["dims"])):
            dims = list(best["dims"])
            dims[i] = round_dim(dims[i] * args.refine_factor)
            if dims != best["dims"]:
                candidates.append(search.evaluate(dims))
        passing = [c for c in candidates if passes(c, threshold)]
        if not passing:
            break
        best = min(passing, key=lambda c: c["bit_ops_per_image"])  # the popcount work; projections scale alike
        print(f"refined: {best['dims']} {best['accuracy_mean']:.4f}")
    search.record.update(
        {
            "reference": {"dims": reference["dims"], "accuracy_mean": reference["accuracy_mean"]},
            "threshold": threshold,
            "chosen": {k: best[k] for k in ("dims", "accuracy_mean", "accuracy_sd", "bit_ops_per_image")},
            "bit_ops_ratio": reference["bit_ops_per_image"] / best["bit_ops_per_image"],
            "float_macs_ratio": reference["float_macs_per_image"] / best["float_macs_per_image"],
            "load_average_end": os.getloadavg(),
        }
    )
    search.save()
    return search.record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="results/models/mnist_rasu.pt")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--embedding", choices=tuple(EMBEDDINGS), default="fast")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--reference-dims", type=lambda s: [int(v) for v in s.split(",")], default=list(PAPER_DIMS))
    ap.add_argument("--scales", type=lambda s: [float(v) for v in s.split(",") if v], default=[0.5, 0.35, 0.25])
    ap.add_argument(
        "--candidates",
        type=lambda s: [[int(v) for v in c.split(",")] for c in s.split(";") if c],
        default=[],
        help="extra allocations to try after the uniform stage, ';' between them: '3008,7488,15000,14000;...'",
    )
    ap.add_argument("--refine-steps", type=int, default=2)
    ap.add_argument("--refine-factor", type=float, default=0.7)
    ap.add_argument("--tolerance", type=float, default=0.001, help="accuracy below the reference allowed (0.001)")
    ap.add_argument("--floor", type=float, default=0.99, help="accuracy every passing allocation must reach")
    ap.add_argument("--limit", type=int, default=None, help="first LIMIT test items only (smoke runs)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="results/ehd_mnist/dim_search_fast.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    record = run(Search(args))
    chosen = record["chosen"]
    print(
        f"chosen {chosen['dims']}: {chosen['accuracy_mean']:.4f} +- {chosen['accuracy_sd']:.4f} "
        f"({record['bit_ops_ratio']:.2f}x fewer bit operations, {record['float_macs_ratio']:.2f}x fewer float MACs "
        f"than {record['reference']['dims']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
