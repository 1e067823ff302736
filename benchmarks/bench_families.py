"""Throughput of every deployed family on MNIST in one process: logic circuit, packed BNN, EHD, float G-Net, CNN.

    PYTHONPATH=$PWD python3 benchmarks/bench_families.py --logic-ckpt runs/mnist-logic/best.pt \
        --gnet-ckpt results/models/mnist_rasu.pt --rounds 5 --out results/bench_families.json

Paths, all predicting labels of the same MNIST test images at batch 256 (``--batch-size``):

(a) ``logic`` (and ``logic_b4096``, the same at ``--logic-batch`` images per batch): the ``difflogic-mnist-small``
    circuit (``gnet.logic.convert``) of ``--logic-ckpt``, or of a freshly
    initialised network (the engine's speed does not depend on training: every gate costs the same);
(b) ``bnn``: a packed BNN (``gnet.bnn.convert``) of ``--bnn-ckpt``, or of a seeded random ``bnn`` of arch "mnist";
(c) ``ehd_paper``: the EHD G-Net with the paper's G (``gnet.ehd.convert`` of the float G-Net, Rademacher G at
    ``precision="auto"``: int8 where this CPU multiplies int8 fast, else float32; the paper's dims 6000, 15000,
    15000, 14000), and ``ehd_fast``: the same dims with the fast G (Gaussian first layer, Hadamard after it), as in
    benchmarks/bench_ehd_mnist.py;
(d) ``gnet_float``: the float G-Net of ``--gnet-ckpt`` (default results/models/mnist_rasu.pt; a seeded random one if
    the file is missing), torch eval mode;
(e) ``cnn_float``: a plain float CNN of the G-Net's shape (Conv2d/ReLU/MaxPool/Linear, seeded random weights).

Timing: one warm-up pass per path (JIT, caches; excluded), then ``--rounds`` rounds; in each round every path
predicts all ``--images`` images, again and again until ``--min-seconds`` (0.5 s) have passed, in an order rotated
each round so that no path always runs first. Reported
per path: img/s of every round, median and best, ratio of the median to the float G-Net's; accuracy on the images
(a sanity check, untrained models excepted); model bytes; activation bytes per image, by layer shapes: float32 for
real-valued layer outputs and 1 bit for sign outputs, summed over layers; for the logic engine its packed input
bits plus two layer buffers of one bit per image each (``LogicCircuit.engine_bytes_per_image``); for EHD the float
activations plus each G-layer's data codes (dim bits per output position). Also recorded: lscpu, ``hdc.cpu``
capabilities, load average before and after, torch and numba threads, the command.

``--smoke``: random MNIST-shaped data, 64 images, small EHD dims, one round: checks that the script runs, not speed.
Timing claims need an otherwise idle machine; run it alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hdc import prefer_passive_openmp  # noqa: E402

prefer_passive_openmp()  # before torch loads its OpenMP runtime

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from gnet import bnn as gbnn  # noqa: E402
from gnet import ehd as gehd  # noqa: E402
from gnet import logic as glogic  # noqa: E402
from gnet.checkpoint import config_family, load_model  # noqa: E402
from gnet.data import load_dataset  # noqa: E402
from gnet.models import architecture, build_model  # noqa: E402
from hdc import cpu as hcpu  # noqa: E402
from hdc.io import atomic_write_text  # noqa: E402

PAPER_DIM = [6000, 15000, 15000, 14000]
SHAPE = (1, 28, 28)


def cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in (
                "Model name",
                "Flags",
                "L1d cache",
                "L2 cache",
                "L3 cache",
                "CPU(s)",
                "Thread(s) per core",
            ):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def load_images(args: argparse.Namespace) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """(x for the G-Net scaling [-1, 1] (N, 1, 28, 28), x in [0, 1] for the logic circuit, labels)."""
    if args.smoke:
        gen = torch.Generator().manual_seed(args.seed)
        unit = torch.rand(args.images, *SHAPE, generator=gen)
        return unit * 2 - 1, unit.numpy(), torch.randint(0, 10, (args.images,), generator=gen)
    std = load_dataset("mnist", args.data_dir, scaling="standard").test.tensors
    unit = load_dataset("mnist", args.data_dir, scaling="unit").test.tensors
    n = min(args.images, len(std[0]))
    return std[0][:n], unit[0][:n].numpy(), std[1][:n]


def gnet_model(args: argparse.Namespace) -> tuple[nn.Module, str]:
    path = Path(args.gnet_ckpt)
    if path.is_file():
        model, config = load_model(path)
        if config_family(config) != "gnet":
            raise SystemExit(f"--gnet-ckpt {path}: a {config_family(config)} checkpoint, not a float G-Net")
        return model.eval(), str(path)
    print(f"{path} not found: a seeded random G-Net of arch 'mnist' stands in (speed only)")
    return build_model(architecture("mnist"), args.seed).eval(), "random"


def logic_circuit(args: argparse.Namespace) -> tuple[glogic.LogicCircuit, str]:
    if args.logic_ckpt:
        model, config = load_model(args.logic_ckpt)
        if config_family(config) != "difflogic":
            raise SystemExit(f"--logic-ckpt {args.logic_ckpt}: a {config_family(config)} checkpoint, not difflogic")
        return glogic.convert(model.eval()), str(args.logic_ckpt)  # type: ignore[arg-type]
    model = glogic.build_difflogic(glogic.difflogic_spec("difflogic-mnist-small", seed=args.seed))
    return glogic.convert(model.eval()), "fresh difflogic-mnist-small"


def bnn_model(args: argparse.Namespace) -> tuple[nn.Module, str]:
    if args.bnn_ckpt:
        model, config = load_model(args.bnn_ckpt)
        if config_family(config) != "bnn":
            raise SystemExit(f"--bnn-ckpt {args.bnn_ckpt}: a {config_family(config)} checkpoint, not a BNN")
        return model.eval(), str(args.bnn_ckpt)
    return gbnn.build_bnn(architecture("mnist"), "bnn", args.seed).eval(), "random bnn, arch mnist"


def plain_cnn(seed: int) -> nn.Sequential:
    """The G-Net MNIST shape as an ordinary float CNN: G-layers -> Conv2d / Linear, RASU -> ReLU."""
    torch.manual_seed(seed)  # the benchmark's own process: nn's default init draws from the global generator
    layers: list[nn.Module] = []
    for spec in architecture("mnist"):
        kind = spec["type"]
        if kind == "conv2d":
            layers.append(nn.Conv2d(spec["in"], spec["out"], spec["kernel"], padding=spec.get("padding", 0)))
        elif kind == "linear":
            layers.append(nn.Linear(spec["in"], spec["out"]))
        elif kind == "classifier":
            layers.append(nn.Linear(spec["in"], spec["classes"]))
        elif kind == "rasu":
            layers.append(nn.ReLU())
        elif kind == "maxpool2d":
            layers.append(nn.MaxPool2d(spec["kernel"]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
    return nn.Sequential(*layers).eval()


def torch_predict(model: nn.Module, batch_size: int) -> Callable[[Any], np.ndarray]:
    def predict(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]).numpy()

    return predict


def activation_bytes(model: nn.Module, binary: tuple[type, ...] = ()) -> tuple[float, list[tuple[int, ...]]]:
    """Bytes of every leaf module's output for one image (float32; 1 bit after a module of a ``binary`` type)
    and the output shapes of the weight layers (for the EHD data codes)."""
    total, shapes, hooks = [0.0], [], []

    def hook(module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        total[0] += out[0].numel() * (1 / 8 if isinstance(module, binary) else 4)
        if hasattr(module, "weight") and not isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            shapes.append(tuple(out.shape[1:]))

    for module in model.modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(hook))
    with torch.inference_mode():
        model(torch.zeros(1, *SHAPE))
    for h in hooks:
        h.remove()
    return total[0], shapes


def param_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def build_paths(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {predict, input ("unit" | "std"), model_bytes, activation_bytes_per_image, source}."""
    gnet, gnet_source = gnet_model(args)
    circuit, logic_source = logic_circuit(args)
    bnn, bnn_source = bnn_model(args)
    packed = gbnn.convert(bnn)
    dims = [args.smoke_dim] * 4 if args.smoke else PAPER_DIM
    ehd = gehd.convert(gnet, dim=dims, embedding="rademacher", precision="auto", seed=0, input_shape=SHAPE)
    fast = gehd.convert(gnet, dim=dims, embedding=["gaussian"] + ["hadamard"] * 3, seed=0, input_shape=SHAPE)
    cnn = plain_cnn(args.seed)
    gnet_act, shapes = activation_bytes(gnet)
    positions = [math.prod(s[1:]) if len(s) > 1 else 1 for s in shapes]
    ehd_codes = sum(p * d / 8 for p, d in zip(positions, dims, strict=False))
    with tempfile.TemporaryDirectory() as tmp:
        ehd_file = ehd.save(Path(tmp) / "m.ehd").stat().st_size
        logic_file = circuit.save(Path(tmp) / "m.logic").stat().st_size
    plan = circuit.plan()
    result["logic_circuit"] = {
        "gates": circuit.n_gates,
        "gates_after_pruning": plan.n_gates,
        "input_bits": circuit.n_input_bits,
        "input_bits_read": len(plan.input_bits),
        "file_bytes": logic_file,
        "cost": dataclasses.asdict(circuit.cost()),
    }
    result["ehd_dims"] = dims
    bs = args.batch_size
    return {
        "logic": {
            "predict": lambda x: circuit.predict(x, batch_size=bs),
            "input": "unit",
            "model_bytes": circuit.cost().model_bits // 8,
            "activation_bytes_per_image": circuit.engine_bytes_per_image(),
            "source": logic_source,
        },
        "logic_b4096": {
            "predict": lambda x: circuit.predict(x, batch_size=args.logic_batch),
            "input": "unit",
            "model_bytes": circuit.cost().model_bits // 8,
            "activation_bytes_per_image": circuit.engine_bytes_per_image(),
            "source": f"{logic_source}, batches of --logic-batch images (64 per word, words split over threads)",
        },
        "bnn": {
            "predict": lambda x: packed.predict(x, batch_size=bs),
            "input": "std",
            "model_bytes": packed.weight_bytes(),
            "activation_bytes_per_image": activation_bytes(bnn, (gbnn.BinaryActivation,))[0],
            "source": bnn_source,
        },
        "ehd_paper": {
            "predict": lambda x: ehd.predict(x, batch_size=bs).numpy(),
            "input": "std",
            "model_bytes": ehd_file,
            "activation_bytes_per_image": gnet_act + ehd_codes,
            "source": f"gnet.ehd.convert of {gnet_source}, rademacher, precision auto",
        },
        "ehd_fast": {
            "predict": lambda x: fast.predict(x, batch_size=bs).numpy(),
            "input": "std",
            "model_bytes": ehd_file,
            "activation_bytes_per_image": gnet_act + ehd_codes,
            "source": f"gnet.ehd.convert of {gnet_source}, gaussian first layer + hadamard",
        },
        "gnet_float": {
            "predict": torch_predict(gnet, bs),
            "input": "std",
            "model_bytes": param_bytes(gnet),
            "activation_bytes_per_image": gnet_act,
            "source": gnet_source,
        },
        "cnn_float": {
            "predict": torch_predict(cnn, bs),
            "input": "std",
            "model_bytes": param_bytes(cnn),
            "activation_bytes_per_image": activation_bytes(cnn)[0],
            "source": "random plain CNN of the G-Net MNIST shape",
        },
    }


def timed_passes(predict: Callable[[Any], Any], x: Any, min_seconds: float) -> tuple[np.ndarray, int, float]:
    """Predict all of ``x`` again and again until ``min_seconds`` have passed (at least once); returns the last
    predictions, the number of passes and the seconds they took. A fast path (the logic engine does 10,000 images
    in about 12 ms) is then timed over a window long enough that one descheduling does not decide its figure."""
    passes, t0 = 0, time.perf_counter()
    while True:
        pred = np.asarray(predict(x))
        passes += 1
        seconds = time.perf_counter() - t0
        if seconds >= min_seconds:
            return pred, passes, seconds


def run_rounds(
    paths: dict[str, dict[str, Any]], inputs: dict[str, Any], y: np.ndarray, rounds: int, min_seconds: float
) -> None:
    names = list(paths)
    for name in names:  # warm-up (JIT compilation, G caches), excluded from the timing
        paths[name]["predict"](inputs[paths[name]["input"]][: min(256, len(y))])
        paths[name]["img_per_s"] = []
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            x = inputs[paths[name]["input"]]
            pred, passes, seconds = timed_passes(paths[name]["predict"], x, min_seconds)
            paths[name]["img_per_s"].append(passes * len(y) / seconds)
            paths[name].setdefault("passes_per_round", []).append(passes)
            paths[name]["accuracy"] = float((pred == y).mean())
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {paths[n]['img_per_s'][-1]:,.0f}" for n in names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="dataset cache directory (gnet.data.load_dataset root)")
    ap.add_argument("--smoke", action="store_true", help="random data, tiny settings: checks the script runs")
    ap.add_argument("--logic-ckpt", default=None, help="difflogic-mnist-small checkpoint (default: fresh network)")
    ap.add_argument("--bnn-ckpt", default=None, help="BNN checkpoint of arch mnist (default: seeded random)")
    ap.add_argument("--gnet-ckpt", default="results/models/mnist_rasu.pt")
    ap.add_argument("--images", type=int, default=10000, help="test images per round (default: all 10,000)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument(
        "--logic-batch",
        type=int,
        default=4096,
        help="batch of the second logic path (the engine is bit-parallel over 64 images per word: large batches "
        "fill both cores)",
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--min-seconds",
        type=float,
        default=0.5,
        help="each path repeats its pass over the images within a round until this long has passed (default 0.5)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch and numba threads (default: as configured)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke-dim", type=int, default=256, help="EHD dim per layer in --smoke mode")
    ap.add_argument("--out", default="results/bench_families.json")
    args = ap.parse_args(argv)
    if args.smoke:
        args.images, args.rounds, args.min_seconds = min(args.images, 64), 1, 0.0
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    result: dict[str, Any] = {
        "benchmark": "bench_families",
        "command": " ".join(["python3", *map(shlex.quote, sys.argv)]),
        "smoke": args.smoke,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "min_seconds_per_round": args.min_seconds,
        "load_average_before": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": None,
        "cpu": cpu_info(),
        "hdc_cpu": hcpu.as_dict(measure=False),
    }
    x_std, x_unit, y_t = load_images(args)
    y = y_t.numpy()
    result["n_images"] = len(y)
    paths = build_paths(args, result)
    run_rounds(paths, {"std": x_std, "unit": x_unit}, y, args.rounds, args.min_seconds)
    result["numba_threading_layer"] = numba.threading_layer()
    result["load_average_after"] = os.getloadavg()
    base = statistics.median(paths["gnet_float"]["img_per_s"])
    result["paths"] = {
        name: {
            **{k: v for k, v in p.items() if k != "predict"},
            "median_img_per_s": statistics.median(p["img_per_s"]),
            "best_img_per_s": max(p["img_per_s"]),
            "ratio_to_gnet_float": statistics.median(p["img_per_s"]) / base,
        }
        for name, p in paths.items()
    }
    atomic_write_text(args.out, json.dumps(result, indent=1))
    for name, p in result["paths"].items():
        print(
            f"{name:11s} {p['median_img_per_s']:14,.0f} img/s (x{p['ratio_to_gnet_float']:8.1f} float G-Net)  "
            f"model {p['model_bytes']:12,} B  activations {p['activation_bytes_per_image']:12,.0f} B/img  "
            f"accuracy {p['accuracy']:.4f}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
