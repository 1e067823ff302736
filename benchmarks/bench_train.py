"""Training speed: the paper's MNIST G-Net against a plain CNN of the same shape, side by side in one run.

    cd /work/main && OMP_NUM_THREADS=1 PYTHONPATH=. python3 benchmarks/bench_train.py

The plain CNN has the same layers with nn.Conv2d / nn.Linear + ReLU in place of the G-layers + RASU and an
ordinary linear classifier (same pooling, same dropout). One training step = forward, cross-entropy, backward and
an Adam step on one batch of real MNIST images (scaled to [-1, 1]; random images of the same shape if the MNIST
files are absent). Both models are warmed up, then timed interleaved, ``--rounds`` rounds of ``--steps`` steps
each, so background load hits both alike; the median step time is extrapolated to one epoch of the paper's
58,000 training images. Wall time and the process's CPU time are both reported: on a shared machine the CPU
time is the less disturbed of the two. ``--profile`` adds torch.profiler tables. Writes results/bench_train.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnet.models import architecture, build_model  # noqa: E402

TRAIN_ITEMS = 58_000  # the paper's MNIST split: 58,000 train / 2,000 val / 10,000 test


def plain_cnn(seed: int) -> nn.Sequential:
    """The MNIST G-Net's shape with ordinary layers: conv/ReLU/pool x2, linear/ReLU, dropout, linear."""
    gen_state = torch.random.fork_rng(devices=[])  # nn default init draws from the global RNG; keep it private
    with gen_state:
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(3136, 512),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(512, 10),
        )


def mnist_batches(batch_size: int, n_batches: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor], str]:
    """``n_batches`` batches (x (B, 1, 28, 28) float32 in [-1, 1], y (B,) int64) and where they came from."""
    gen = torch.Generator().manual_seed(seed)
    try:
        from hdc.datasets import load

        ds = load("mnist", download=False)
        x_all = torch.from_numpy(ds.x_train[: batch_size * n_batches]).float().reshape(-1, 1, 28, 28)
        x_all = x_all / 127.5 - 1.0
        y_all = torch.from_numpy(ds.y_train[: batch_size * n_batches]).long()
        source = "MNIST train images"
    except (ValueError, OSError, FileNotFoundError):
        x_all = torch.rand(batch_size * n_batches, 1, 28, 28, generator=gen) * 2 - 1
        y_all = torch.randint(0, 10, (batch_size * n_batches,), generator=gen)
        source = "random images (MNIST files not found)"
    return list(x_all.split(batch_size)), list(y_all.split(batch_size)), source


class Stepper:
    """One model with its Adam optimizer; ``step(i)`` trains on batch ``i`` and returns how long it took."""

    def __init__(self, model: nn.Module, xs: list[torch.Tensor], ys: list[torch.Tensor], lr: float) -> None:
        self.model, self.xs, self.ys = model.train(), xs, ys
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)

    def step(self, i: int) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) for one step."""
        x, y = self.xs[i % len(self.xs)], self.ys[i % len(self.ys)]
        t0, c0 = time.perf_counter(), time.process_time()
        loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - t0, time.process_time() - c0


def profile_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, top: int) -> str:
    """torch.profiler table (self CPU time) of three training steps, for finding the slow ops."""
    from torch.profiler import ProfilerActivity, profile

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=128, help="the reproduction recipe's batch size")
    ap.add_argument("--steps", type=int, default=5, help="steps per model per round")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per model first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true", help="also print torch.profiler tables of both models' steps")
    ap.add_argument("--out", default="results/bench_train.json")
    args = ap.parse_args(argv)

    xs, ys, source = mnist_batches(args.batch_size, args.steps, args.seed)
    steppers = {
        "gnet": Stepper(build_model(architecture("mnist"), seed=args.seed), xs, ys, lr=2e-3),
        "cnn": Stepper(plain_cnn(args.seed), xs, ys, lr=2e-3),
    }
    for s in steppers.values():
        for i in range(args.warmup):
            s.step(i)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in steppers}
    for r in range(args.rounds):
        # Alternate which model goes first so that neither always runs in the other's wake.
        order = list(steppers) if r % 2 == 0 else list(reversed(steppers))
        for name in order:
            samples[name] += [steppers[name].step(i) for i in range(args.steps)]

    steps_per_epoch = math.ceil(TRAIN_ITEMS / args.batch_size)
    rows = {}
    for name, pairs in samples.items():
        wall, cpu = [p[0] for p in pairs], [p[1] for p in pairs]
        rows[name] = {
            "median_step_wall_s": statistics.median(wall),
            "min_step_wall_s": min(wall),
            "median_step_cpu_s": statistics.median(cpu),
            "n_steps": len(pairs),
            "epoch_wall_s": statistics.median(wall) * steps_per_epoch,
            "epoch_cpu_s": statistics.median(cpu) * steps_per_epoch,
        }
    ratio_wall = rows["gnet"]["median_step_wall_s"] / rows["cnn"]["median_step_wall_s"]
    ratio_cpu = rows["gnet"]["median_step_cpu_s"] / rows["cnn"]["median_step_cpu_s"]
    result = {
        "command": "OMP_NUM_THREADS=1 PYTHONPATH=. python3 benchmarks/bench_train.py " + " ".join(argv or sys.argv[1:]),
        "what": "one training step (forward, cross-entropy, backward, Adam) of the paper's MNIST G-Net vs a plain "
        "CNN of the same shape; medians over interleaved steps, extrapolated to one 58,000-image epoch. "
        "CPU time (process_time) is less disturbed than wall time when other processes share the cores.",
        "data": source,
        "batch_size": args.batch_size,
        "steps_per_epoch": steps_per_epoch,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "models": rows,
        "ratio_gnet_over_cnn_wall": ratio_wall,
        "ratio_gnet_over_cnn_cpu": ratio_cpu,
        "target_ratio": 1.3,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")

    print(
        f"batch {args.batch_size}, {torch.get_num_threads()} torch thread(s), {source}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'model':<10} {'wall/step':>10} {'CPU/step':>10} {'epoch wall':>11} {'epoch CPU':>10}")
    for name, row in rows.items():
        label = {"gnet": "G-Net", "cnn": "plain CNN"}[name]
        print(
            f"{label:<10} {1000 * row['median_step_wall_s']:>8.1f}ms {1000 * row['median_step_cpu_s']:>8.1f}ms "
            f"{row['epoch_wall_s']:>10.1f}s {row['epoch_cpu_s']:>9.1f}s"
        )
    print(f"ratio G-Net / CNN: wall {ratio_wall:.2f}x, CPU {ratio_cpu:.2f}x (target <= 1.3x) -> {out}")
    if args.profile:
        for name, stepper in steppers.items():
            print(f"\n{name}: torch.profiler, 3 steps")
            print(profile_steps(stepper.model, xs[0], ys[0], top=20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
