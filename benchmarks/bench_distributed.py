"""Wall time of a digits EHD sweep on 1 vs 2 ranks (torch.distributed, gloo on the loopback interface), and the
cost of the collectives; see docs/distributed.md.

    cd /work/main && PYTHONPATH=. python3 benchmarks/bench_distributed.py            # the docs' settings
    PYTHONPATH=. python3 benchmarks/bench_distributed.py --epochs 1 --dims 64 256 --seeds 2   # a quick check

Trains a digits G-Net for ``--epochs`` (or takes ``--checkpoint``), then runs the same sweep
(:func:`gnet.distributed.sweep_sharded`, ``--dims`` x ``--seeds`` points on the whole test split) ``--repeats``
times in one process and ``--repeats`` times as a 2-process torchrun job, every process with one thread
(``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1``). Each worker also times 100 ``all_reduce`` calls of two numbers and 20
gathers of its share of the points (the one collective of a sweep). Records the CPU (``lscpu`` model and flags),
the load average before and after, the sweep seconds, the ratio of the medians, the launch wall time and whether
the 2-rank points equal the 1-rank points, in results/bench_distributed.json (``--out``).

This file is also the workers' script: ``bench_distributed.py --worker CHECKPOINT OUT.json --dims ... --seeds K``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(checkpoint: str, out: str, dims: list[int], seeds: int) -> None:
    """One sweep (sharded when launched by torchrun), then the collective timings; rank 0 writes ``out``."""
    import torch

    from gnet.checkpoint import load_model
    from gnet.data import load_for_model
    from gnet.distributed import (
        all_gather_objects,
        all_reduce_sum,
        distributed_session,
        is_main,
        sweep_sharded,
        world_size,
    )

    torch.set_num_threads(1)
    with distributed_session():
        model, config = load_model(checkpoint)
        x, y = load_for_model(config, None, None).test.tensors
        t0 = time.perf_counter()
        result = sweep_sharded(model, x, y, dims, list(range(seeds)), batch_size=256)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in range(100):
            all_reduce_sum([1.0, 2.0])
        reduce_ms = (time.perf_counter() - t1) * 10
        share = result.points[: len(result.points) // world_size()]
        t2 = time.perf_counter()
        for _ in range(20):
            all_gather_objects((list(enumerate(share)), True))
        gather_ms = (time.perf_counter() - t2) * 50
        if is_main():
            record = {
                "ranks": world_size(),
                "sweep_seconds": wall,
                "all_reduce_ms": reduce_ms,
                "gather_points_ms": gather_ms,
                "accuracies": [p.accuracy for p in result.points],
            }
            Path(out).write_text(json.dumps(record))


def _cpu() -> dict[str, str]:
    """``lscpu``'s model name and flags (empty where lscpu is absent)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k: fields.get(k, "").strip() for k in ("Model name", "CPU(s)", "Flags")}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(ranks: int, checkpoint: str, out: Path, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """One sweep on ``ranks`` processes (1: plain python; 2: torchrun); its record plus the launch wall time."""
    script = [__file__, "--worker", checkpoint, str(out), "--dims", *map(str, args.dims), "--seeds", str(args.seeds)]
    cmd = [sys.executable, *script]
    if ranks > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(ranks)]
        cmd += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *script]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, timeout=args.timeout)
    record = json.loads(out.read_text())
    record["launch_wall_seconds"] = time.perf_counter() - t0
    return record


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="a digits checkpoint (default: train one for --epochs)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dims", type=int, nargs="+", default=[512, 2048, 8192])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2, help="sweeps per setting (interleaved 1 rank, 2 ranks)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per launch")
    p.add_argument("--out", default=str(ROOT / "results" / "bench_distributed.json"))
    p.add_argument("--worker", nargs=2, metavar=("CHECKPOINT", "OUT"), default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.dims, args.seeds)
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    env["GLOO_SOCKET_IFNAME"] = "lo"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            flags = ["--dataset", "digits", "--epochs", str(args.epochs), "--batch-size", "128", "--quiet"]
            cmd = [sys.executable, "-m", "gnet", "train", *flags, "--out", tmp]
            subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, timeout=args.timeout)
            checkpoint = str(Path(tmp) / "best.pt")
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for i in range(args.repeats):
            for ranks in (1, 2):
                runs[ranks].append(_run(ranks, checkpoint, Path(tmp) / f"run{ranks}-{i}.json", args, env))
    one, two = ([r["sweep_seconds"] for r in runs[k]] for k in (1, 2))
    record = {
        "cpu": _cpu(),
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "threads_per_rank": 1,
        "epochs": args.epochs if args.checkpoint is None else None,
        "dims": args.dims,
        "seeds": args.seeds,
        "sweep_seconds": {"1": one, "2": two},
        "ratio_of_medians": statistics.median(one) / statistics.median(two),
        "launch_wall_seconds": {str(k): [r["launch_wall_seconds"] for r in v] for k, v in runs.items()},
        "all_reduce_ms": {str(k): [r["all_reduce_ms"] for r in v] for k, v in runs.items()},
        "gather_points_ms": {str(k): [r["gather_points_ms"] for r in v] for k, v in runs.items()},
        "points_equal": all(r["accuracies"] == runs[1][0]["accuracies"] for r in runs[1] + runs[2]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "cpu"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
