"""Throughput of the bit-parallel DiffLogic engine on a small-MNIST-sized circuit (images per second vs batch).

The circuit is the preset ``difflogic-mnist-small`` (28x28 input, 20x20 crop = 400 inputs rounded at 0.5,
6 layers x 8,000 gates, 10 groups, tau 10) with untrained, random N(0, 1) logits, i.e. gates drawn about uniformly
from the 16 (a trained net's mix differs; the cost per gate does not depend on which gate it is, except that
gates whose outputs are never read are pruned). Two timings per batch size:

- ``kernel``: circuit evaluation + GroupSum counts on already packed, bit-sliced input words;
- ``pack``: float32 pixels -> thresholded, bit-sliced words (``LogicCircuit.pack_inputs``);
- ``end_to_end``: pack + kernel + argmax (what ``LogicCircuit.predict`` does).

Each figure is the best of ``--repeats`` runs (the machine is shared; the best run is the least disturbed one).
Usage::

    PYTHONPATH=$PWD python3 benchmarks/bench_logic.py --threads 1 2 --batches 64 512 4096 32768 \
        --out results/bench_logic.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time

import numba
import numpy as np
import torch

from gnet.logic import build_difflogic, convert, difflogic_spec
from gnet.logic.convert import DEFAULT_BLOCK as BLOCK


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _cpu_info() -> dict:
    info = {"machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Flags", "L1d cache", "L2 cache", "L3 cache", "CPU(s)"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 512, 4096, 32768])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block", type=int, default=BLOCK, help="words per kernel work unit (64 x block samples)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/bench_logic.json")
    args = parser.parse_args()

    model = build_difflogic(difflogic_spec("difflogic-mnist-small", seed=args.seed)).eval()
    circuit = convert(model)
    plan = circuit.plan()
    rng = np.random.default_rng(args.seed)
    load_before = os.getloadavg()
    x_all = rng.random((max(args.batches), 1, 28, 28), dtype=np.float32)
    # correctness on a slice before timing: the engine equals the torch eval model
    with torch.no_grad():
        ref = model(torch.from_numpy(x_all[:256])).argmax(dim=1).numpy()
    assert np.array_equal(circuit.predict(x_all[:256]), ref)

    rows = []
    for threads in args.threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        for batch in args.batches:
            x = x_all[:batch]
            words, n = circuit.pack_inputs(x)
            circuit.counts_packed(words, n, args.block)  # warm-up (JIT, caches)
            repeats = args.repeats if batch >= 4096 else args.repeats * 20
            t_kernel = _best(lambda: circuit.counts_packed(words, n, args.block), repeats)  # noqa: B023
            t_pack = _best(lambda: circuit.pack_inputs(x), repeats)  # noqa: B023
            t_e2e = _best(
                lambda: circuit.counts_packed(*circuit.pack_inputs(x), args.block).argmax(1),  # noqa: B023
                repeats,
            )
            row = {
                "threads": numba.get_num_threads(),
                "batch": batch,
                "kernel_img_per_s": batch / t_kernel,
                "end_to_end_img_per_s": batch / t_e2e,
                "pack_img_per_s": batch / t_pack,
                "kernel_ns_per_img": 1e9 * t_kernel / batch,
                "end_to_end_ns_per_img": 1e9 * t_e2e / batch,
            }
            rows.append(row)
            print(
                f"threads {row['threads']} batch {batch:6d}: kernel {row['kernel_img_per_s']:12,.0f} img/s "
                f"({row['kernel_ns_per_img']:.0f} ns/img), pack {row['pack_img_per_s']:12,.0f} img/s, "
                f"end-to-end {row['end_to_end_img_per_s']:12,.0f} img/s"
            )

    result = {
        "benchmark": "bench_logic",
        "circuit": {
            "preset": "difflogic-mnist-small",
            "gates": circuit.n_gates,
            "gates_after_pruning": plan.n_gates,
            "inputs": len(circuit.input_source),
            "inputs_read": len(plan.input_bits),
            "model_bytes": circuit.nbytes,
            "layers": len(circuit.ids),
            "groups": circuit.n_classes,
        },
        "block_words": args.block,
        "repeats": args.repeats,
        "statistic": "best of repeats",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "shared machine: other jobs ran at the same time; figures are loaded-machine figures",
        "cpu": _cpu_info(),
        "numba": numba.__version__,
        "numba_threading_layer": numba.threading_layer(),
        "results": rows,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
