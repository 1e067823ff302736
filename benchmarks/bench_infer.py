"""Inference speed idle and beside CPU-bound neighbours, and where the time goes: float G-Net, EHD, plain CNN.

    PYTHONPATH=$PWD python3 benchmarks/bench_infer.py --rounds 5 --out results/bench_infer.json
    PYTHONPATH=$PWD python3 benchmarks/bench_infer.py --policy all,free,one      # thread-handling sweep
    PYTHONPATH=$PWD python3 benchmarks/bench_infer.py --smoke                    # checks the script runs, in seconds

Paths, all predicting labels of MNIST test images at batch 256 (``--batch-size``; ``--paths`` picks a subset):

- ``gnet_float``: the float G-Net of ``--gnet-ckpt`` (default results/models/mnist_rasu.pt; a seeded random one if
  the file is missing), torch eval mode;
- ``cnn_float``: a plain float CNN of the G-Net's shape (Conv2d/ReLU/MaxPool/Linear, seeded random weights);
- ``ehd_fast``: ``gnet.ehd.convert`` of that G-Net with the fast G (Gaussian first layer, Hadamard after it) at the
  paper's dims 6000, 15000, 15000, 14000 (``--ehd-dims``);
- ``ehd_paper``: the same dims with the paper's G (Rademacher in every layer) at ``precision="auto"``;
- ``ehd_fast_preset``: ``ehd_fast`` at the dims of a preset (``--fast-preset``, default mnist-fast:
  ``gnet.ehd.DIM_PRESETS``, found by ``benchmarks/ehd_dim_search.py``; within 0.1 points of the paper's dims);
- ``ehd_lean_preset``: the same at ``--lean-preset`` (default mnist-lean: the fewest bits found at >= 99.1 %); the
  summary's ``preset_speedup_idle`` gives each preset's idle img/s over ``ehd_fast``'s, measured in the same rounds
  (issue target >= 2 at >= 99.0 %).

Conditions: ``--loads`` (default 0,1,2) CPU-bound neighbours, each a separate ``python3 -S -c`` process spinning
in a pure-Python loop (one interpreter thread, so one core's worth of demand; not pinned, the scheduler places it),
started in its own session just before a condition's measurements and killed with its process group right after
(try/finally, also on Ctrl-C, SIGTERM and exceptions; the loop also stops by itself when its parent is gone, so
none is left behind even if the benchmark is killed). Each condition also has a thread
policy (``--policy``, default "all"; a comma list sweeps): "all" runs torch and numba with ``--threads`` threads
(default: torch's setting at start), "free" with that many minus the neighbours (at least 1), "one" with 1. Idle is
measured once per distinct thread count.

Timing: every path is first run on ``--warmup-images`` images at every thread count used (numba compilation,
oneDNN primitive creation, G caches; excluded). Then ``--rounds`` rounds: each round runs every condition (their
order rotated each round) and in it every path (order rotated too) on ``--images`` images (``--ehd-images`` for
EHD). Reported per path and condition: img/s of every round and the median; the slowdown factor (median idle img/s
with policy "all" / median under the condition) and its ratio to the CNN's (issue target: the G-Net's within 1.5x
of the CNN's); idle, the G-Net's time per image over the CNN's (target <= 1.3). Each measurement records the
process's CPU time over the wall time and the neighbours' CPU seconds (from /proc), and each condition the load
average before and after (a one-minute average: it lags).

Profile (``--profile-paths``, at each of ``--profile-loads``): one batch of ``--batch-size`` images, median over
``--profile-repeats`` runs, seconds per stage and layer. EHD through ``EHDModel.forward(..., profile=...)``: im2col
(shift and unfold), encode (projection + sign + pack, fused in the kernels), hamming (XOR-popcount), layout,
activation, pool, flatten; the encode time is further split into projection and sign/pack in proportion to an
unfused measurement of the same layer (``project_unchecked`` then ``hdc.pack_sign`` on up to 1,024 patch rows).
Torch models through forward hooks on their leaf modules (conv, linear, activation, pool, ...) plus a
``torch.profiler`` table of the top operators. Roofline: ops per image per stage from the shapes
(``gnet.ehd.cost.layer_costs``: projection multiply-adds, XOR+popcount bit operations; conv/linear multiply-adds of
the torch models), divided by the measured stage time, against this machine's peaks measured in the same run: a
float32 GEMM (``--peak-gemm`` square, GFLOP/s = 2 MACs), an all-pairs ``hdc.hamming_distance`` (bit ops/s, counted
like the cost: 2 per code bit) and a large array copy (GB/s, for im2col's writes).

Everything goes to ``--out`` (results/bench_infer.json; in ``--smoke`` mode a file in the temp directory) with the
lscpu flags, ``hdc.cpu.capabilities()``, the thread settings (torch and numba threads, numba threading layer,
NUMBA_NUM_THREADS, OMP_WAIT_POLICY, torch's parallel info) and the command. Timing claims need an otherwise idle
machine: run it alone.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hdc import prefer_passive_openmp  # noqa: E402

prefer_passive_openmp()  # before torch loads its OpenMP runtime

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_families import cpu_info, gnet_model, plain_cnn, torch_predict  # noqa: E402
from torch import nn  # noqa: E402

from gnet import ehd as gehd  # noqa: E402
from gnet.data import load_dataset  # noqa: E402
from gnet.ehd.cost import layer_costs  # noqa: E402
from hdc import cpu as hcpu  # noqa: E402
from hdc import hamming_distance, pack_sign  # noqa: E402
from hdc.io import atomic_write_text  # noqa: E402

PAPER_DIM = [6000, 15000, 15000, 14000]
SHAPE = (1, 28, 28)
PATHS = ("gnet_float", "cnn_float", "ehd_fast", "ehd_paper", "ehd_fast_preset", "ehd_lean_preset")
# The path at a dim preset (gnet.ehd.DIM_PRESETS) instead of --ehd-dims, beside its paper-dim path.
PRESET_PATHS = {"ehd_fast_preset": "ehd_fast", "ehd_lean_preset": "ehd_fast"}
POLICIES = ("all", "free", "one")
# One spinning interpreter thread (one core's worth of CPU demand) that also ends itself within ~0.1 s once its
# parent is gone, so not even a SIGKILL of the benchmark leaves one behind.
NEIGHBOUR = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(10**6): pass"
SPLIT_ROWS = 1024  # patch rows of the unfused projection / sign-pack split (one of bipolar_dot's row chunks)

# ----------------------------------------------------------------------------------------------- neighbours
_LIVE: dict[int, subprocess.Popen] = {}


def _kill_all() -> None:
    for pid, proc in list(_LIVE.items()):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # start_new_session: the neighbour leads its own process group
        proc.wait()
        _LIVE.pop(pid, None)


def _on_term(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the try/finally blocks, which kill the neighbours


atexit.register(_kill_all)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc (None where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def neighbours(k: int, settle: float) -> Iterator[list[int]]:
    """``k`` CPU-bound neighbour processes for the duration of the block; always killed on exit."""
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(k):
            proc = subprocess.Popen(
                [sys.executable, "-S", "-c", NEIGHBOUR],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _LIVE[proc.pid] = proc
            procs.append(proc)
        time.sleep(settle if k else 0.0)
        dead = [p.pid for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"neighbour processes {dead} exited early")
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _LIVE.pop(proc.pid, None)


# ----------------------------------------------------------------------------------------------- set-up
def set_threads(n: int) -> dict[str, int]:
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()}


def policy_threads(policy: str, base: int, k: int) -> int:
    return {"all": base, "free": max(1, base - k), "one": 1}[policy]


def thread_settings() -> dict[str, Any]:
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel numba kernel has run yet
        layer = None
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
        "numba_threading_layer_config": numba.config.THREADING_LAYER,
        "NUMBA_NUM_THREADS": numba.config.NUMBA_NUM_THREADS,
        "env": {
            k: os.environ.get(k)
            for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "KMP_BLOCKTIME")
        },
        "torch_parallel_info": torch.__config__.parallel_info(),
    }


def load_images(args: argparse.Namespace) -> tuple[torch.Tensor, np.ndarray]:
    """MNIST test images scaled to [-1, 1] (N, 1, 28, 28), tiled to N = max(--images, --ehd-images), and labels."""
    n = max(args.images, args.ehd_images, args.batch_size, args.warmup_images)
    if args.smoke:
        gen = torch.Generator().manual_seed(args.seed)
        return torch.rand(n, *SHAPE, generator=gen) * 2 - 1, torch.randint(0, 10, (n,), generator=gen).numpy()
    x, y = load_dataset("mnist", args.data_dir, scaling="standard").test.tensors
    idx = torch.arange(n) % len(x)
    return x[idx].contiguous(), y[idx].numpy()


def build_paths(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {predict (x -> labels), model (for the profile), images, source}, for every path that is timed
    (--paths) or profiled (--profile-paths)."""
    gnet, source = gnet_model(args)
    dims = args.ehd_dims or ([args.smoke_dim] * 4 if args.smoke else PAPER_DIM)
    result["ehd_dims"] = dims
    bs = args.batch_size
    paths: dict[str, dict[str, Any]] = {}
    for name in [n for n in PATHS if n in args.paths or n in args.profile_paths]:
        if name == "gnet_float":
            paths[name] = {"model": gnet, "source": source}
        elif name == "cnn_float":
            paths[name] = {"model": plain_cnn(args.seed), "source": "random plain CNN of the G-Net MNIST shape"}
        else:
            kw: dict[str, Any] = (
                {"embedding": ["gaussian"] + ["hadamard"] * 3, "precision": "float32"}
                if PRESET_PATHS.get(name, name) == "ehd_fast"
                else {"embedding": "rademacher", "precision": "auto"}
            )
            preset = {"ehd_fast_preset": args.fast_preset, "ehd_lean_preset": args.lean_preset}.get(name)
            preset = None if args.smoke else preset  # smoke: every EHD path at --smoke-dim
            t0 = time.perf_counter()
            ehd = gehd.convert(gnet, dim=preset or dims, seed=0, input_shape=SHAPE, **kw)
            if preset:
                kw["dim_preset"] = preset
            paths[name] = {
                "model": ehd,
                "source": f"gnet.ehd.convert of {source}, {kw}",
                "dims": ehd.dim_per_layer,
                "precision_per_layer": [layer.precision for layer in ehd.layers],
                "convert_seconds": time.perf_counter() - t0,
            }
    for p in paths.values():
        model = p["model"]
        is_ehd = isinstance(model, gehd.EHDModel)
        p["predict"] = (lambda x, m=model: m.predict(x, batch_size=bs).numpy()) if is_ehd else torch_predict(model, bs)
        p["images"] = args.ehd_images if is_ehd else args.images
    return paths


# ----------------------------------------------------------------------------------------------- throughput
def warm_up(paths: dict[str, dict[str, Any]], x: torch.Tensor, thread_counts: list[int]) -> dict[str, Any]:
    """Run every path once per thread count (excluded from timing); seconds of each first call."""
    first: dict[str, Any] = {}
    for n in thread_counts:
        set_threads(n)
        for name, p in paths.items():
            t0 = time.perf_counter()
            p["predict"](x)
            first.setdefault(name, {})[str(n)] = time.perf_counter() - t0
    return first


def measure(p: dict[str, Any], x: torch.Tensor, y: np.ndarray, pids: list[int]) -> dict[str, Any]:
    n = p["images"]
    before = [cpu_seconds(pid) for pid in pids]
    c0, t0 = time.process_time(), time.perf_counter()
    pred = np.asarray(p["predict"](x[:n]))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    after = [cpu_seconds(pid) for pid in pids]
    return {
        "img_per_s": n / wall,
        "seconds": wall,
        "process_cpu_over_wall": cpu / wall,
        "neighbour_cpu_seconds": [
            None if a is None or b is None else a - b for a, b in zip(after, before, strict=True)
        ],
        "accuracy": float((pred == y[:n]).mean()),
    }


def run_rounds(args, paths, conditions, x, y) -> list[dict[str, Any]]:
    """Every condition in every round (rotated), every path in each (rotated); one record per measurement."""
    records: list[dict[str, Any]] = []
    names = [n for n in paths if n in args.paths]
    for r in range(args.rounds):
        for ci in range(len(conditions)):
            k, policy = conditions[(ci + r) % len(conditions)]
            threads = policy_threads(policy, args.threads, k)
            load_before = os.getloadavg()
            with neighbours(k, args.settle) as pids:
                settings = set_threads(threads)
                order = names[r % len(names) :] + names[: r % len(names)]
                batch = {name: measure(paths[name], x, y, pids) for name in order}
            load_after = os.getloadavg()
            for name in names:
                records.append(
                    {"round": r, "neighbours": k, "policy": policy, "threads": settings, "path": name}
                    | batch[name]
                    | {"load_average_before": load_before, "load_average_after": load_after}
                )
            shown = ", ".join(f"{n} {batch[n]['img_per_s']:,.0f}" for n in names)
            print(f"round {r + 1}/{args.rounds}, {k} neighbours, policy {policy} ({threads} threads): {shown}")
    set_threads(args.threads)
    return records


def summarise(records: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Median img/s per path and condition; slowdown vs idle ("all"); ratios to the CNN and the issue's targets."""
    med: dict[str, dict[str, float]] = {}
    for name in names:
        for cond in sorted({(r["neighbours"], r["policy"]) for r in records}):
            vals = [r["img_per_s"] for r in records if r["path"] == name and (r["neighbours"], r["policy"]) == cond]
            med.setdefault(name, {})[f"{cond[0]}:{cond[1]}"] = statistics.median(vals)
    out: dict[str, Any] = {"median_img_per_s": med, "slowdown": {}, "slowdown_vs_cnn": {}}
    for name in names:
        idle = med[name].get("0:all")
        if idle is None:
            continue
        out["slowdown"][name] = {c: idle / v for c, v in med[name].items() if not c.startswith("0:")}
    cnn = out["slowdown"].get("cnn_float")
    if cnn:
        for name, s in out["slowdown"].items():
            out["slowdown_vs_cnn"][name] = {c: v / cnn[c] for c, v in s.items() if c in cnn}
    out["preset_speedup_idle"] = {
        name: med[name]["0:all"] / med[base]["0:all"]
        for name, base in PRESET_PATHS.items()
        if "0:all" in med.get(name, {}) and "0:all" in med.get(base, {})
    }  # issue target for the fast preset: >= 2
    if "gnet_float" in med and "cnn_float" in med and "0:all" in med["cnn_float"]:
        time_ratio = med["cnn_float"]["0:all"] / med["gnet_float"]["0:all"]
        worst = max(out["slowdown_vs_cnn"].get("gnet_float", {}).values(), default=None)
        out["targets"] = {
            "idle_gnet_time_over_cnn": time_ratio,
            "idle_gnet_time_over_cnn_target": 1.3,
            "worst_gnet_slowdown_over_cnn": worst,
            "gnet_slowdown_over_cnn_target": 1.5,
        }
    return out


# ----------------------------------------------------------------------------------------------- peaks
def best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def machine_peaks(args: argparse.Namespace) -> dict[str, Any]:
    """Float32 GEMM FLOP/s, all-pairs Hamming bit ops/s, copy bandwidth; at --threads threads, this run."""
    gen = torch.Generator().manual_seed(0)
    n = args.peak_gemm
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    gemm = best_seconds(lambda: a @ b, args.peak_repeats)
    rng = np.random.default_rng(0)
    q, m, words = (256, 64, 32) if args.smoke else (4096, 512, 256)
    qa = rng.integers(0, 2**63, size=(q, words), dtype=np.uint64)
    qb = rng.integers(0, 2**63, size=(m, words), dtype=np.uint64)
    ham = best_seconds(lambda: hamming_distance(qa, qb), args.peak_repeats)
    src = np.ones(2**20 if args.smoke else 2**26, dtype=np.float32)
    dst = np.empty_like(src)
    copy = best_seconds(lambda: np.copyto(dst, src), args.peak_repeats)
    return {
        "threads": set_threads(args.threads),
        "gemm_size": n,
        "gemm_flop_per_s": 2 * n**3 / gemm,
        "hamming_shape": [q, m, words],
        "hamming_bit_ops_per_s": q * m * words * 64 * 2 / ham,
        "copy_bytes": src.nbytes,
        "copy_bytes_per_s": 2 * src.nbytes / copy,  # read + write
    }


# ----------------------------------------------------------------------------------------------- profile
def ehd_split(model: gehd.EHDModel, x: torch.Tensor) -> dict[int, dict[str, float]]:
    """Per stage index: seconds of an unfused projection and of sign/pack on up to SPLIT_ROWS patch rows."""
    _, outputs = model.forward(x, return_stages=True)
    inputs = [x, *outputs[:-1]]
    split: dict[int, dict[str, float]] = {}
    for index, stage in enumerate(model.stages):
        if not isinstance(stage, gehd.EHDGLayer) or stage.projection != "shared":
            continue
        rows, _ = stage.geometry.patches(inputs[index].to(torch.float32) + stage.bias)
        rows = rows[:SPLIT_ROWS].contiguous()
        proj = stage.projections[0]
        t_proj = best_seconds(lambda p=proj, r=rows, s=stage: p.project_unchecked(r, 0, s.dim, s.precision), 2)
        product = proj.project_unchecked(rows, 0, stage.dim, stage.precision).numpy()
        t_pack = best_seconds(lambda p=product: pack_sign(p), 2)
        t_fused = best_seconds(lambda p=proj, r=rows, s=stage: p.encode_unchecked(r, 16384, s.precision), 2)
        split[index] = {"rows": len(rows), "projection_s": t_proj, "sign_pack_s": t_pack, "fused_encode_s": t_fused}
    return split


def profile_ehd(model: gehd.EHDModel, x: torch.Tensor, repeats: int, peaks: dict[str, Any]) -> dict[str, Any]:
    runs: list[dict[tuple[int, str], float]] = []
    walls = []
    for _ in range(repeats):
        prof: dict[tuple[int, str], float] = {}
        t0 = time.perf_counter()
        model.forward(x, profile=prof)
        walls.append(time.perf_counter() - t0)
        runs.append(prof)
    seconds = {key: statistics.median(r.get(key, 0.0) for r in runs) for key in runs[0]}
    split = ehd_split(model, x)
    costs = {c.index: c for c in layer_costs(model)}
    layers, by_kind = [], {}
    code_layer, encode_total = -1, 0.0
    for index, stage in enumerate(model.stages):
        kinds = {kind: s for (i, kind), s in seconds.items() if i == index}
        entry: dict[str, Any] = {"stage": index, "name": repr(stage), "seconds": kinds}
        if isinstance(stage, gehd.EHDGLayer):
            code_layer += 1
            cost = costs[code_layer]
            entry["cost_per_image"] = dataclasses.asdict(cost)
            entry["roofline"] = ehd_roofline(cost, kinds, split.get(index), len(x), stage, peaks)
            encode_total += kinds.get("encode", 0.0)
            # the measured fused encode time, shared out as projection and sign/pack (summed once, not twice)
            kinds = {k: v for k, v in kinds.items() if k != "encode"} | entry["roofline"]["split_seconds"]
        layers.append(entry)
        for kind, s in kinds.items():
            by_kind[kind] = by_kind.get(kind, 0.0) + s
    return {
        "batch": len(x),
        "wall_seconds": statistics.median(walls),
        "by_kind": by_kind,
        "encode_seconds_measured": encode_total,
        "layers": layers,
    }


def ehd_roofline(cost, kinds, split, batch, stage, peaks) -> dict[str, Any]:
    """Ops/s of the projection and Hamming steps of one layer against the measured peaks."""
    encode = kinds.get("encode", 0.0)
    share = split["projection_s"] / (split["projection_s"] + split["sign_pack_s"]) if split else 1.0
    proj_s, pack_s = encode * share, encode * (1 - share)
    macs, bits = cost.float_macs * batch, cost.bit_ops * batch
    im2col_bytes = batch * cost.patches * stage.geometry.fan_in * 4  # the float32 patch rows written
    out: dict[str, Any] = {
        "split_seconds": {"projection": proj_s, "sign_pack": pack_s},
        "projection_share_of_encode": share,
        "unfused_split": split,
        "projection_flop_per_s": 2 * macs / proj_s if proj_s else None,
        "encode_flop_per_s": 2 * macs / encode if encode else None,
        "hamming_bit_ops_per_s": bits / kinds["hamming"] if kinds.get("hamming") else None,
        "im2col_bytes_per_s": im2col_bytes / kinds["im2col"] if kinds.get("im2col") else None,
    }
    out["projection_fraction_of_gemm_peak"] = _frac(out["projection_flop_per_s"], peaks["gemm_flop_per_s"])
    out["hamming_fraction_of_peak"] = _frac(out["hamming_bit_ops_per_s"], peaks["hamming_bit_ops_per_s"])
    out["im2col_fraction_of_copy_bandwidth"] = _frac(out["im2col_bytes_per_s"], peaks["copy_bytes_per_s"])
    return out


def _frac(value: float | None, peak: float) -> float | None:
    return None if value is None else value / peak


def module_kind(module: nn.Module, is_last_weight: bool) -> str:
    name = type(module).__name__
    if is_last_weight or name == "NormalizedClassifier":
        return "classifier"
    for kind, types in (
        ("conv", ("GConv1d", "GConv2d", "Conv1d", "Conv2d")),
        ("linear", ("GLinear", "Linear")),
        ("activation", ("RASU", "TASU", "ReLU")),
        ("pool", ("MaxPool1d", "MaxPool2d")),
    ):
        if name in types:
            return kind
    return name.lower()


def profile_torch(model: nn.Module, x: torch.Tensor, repeats: int, peaks: dict[str, Any]) -> dict[str, Any]:
    """Seconds per leaf module (forward hooks), multiply-adds of the weight layers, top torch operators."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    weighted = [n for n, m in leaves if getattr(m, "weight", None) is not None]
    starts: dict[str, float] = {}
    seconds: dict[str, list[float]] = {n: [] for n, _ in leaves}
    macs: dict[str, int] = {}
    hooks = []
    for name, module in leaves:

        def pre(_m, _i, name=name):
            starts[name] = time.perf_counter()

        def post(m, _i, out, name=name):
            seconds[name].append(time.perf_counter() - starts[name])
            if getattr(m, "weight", None) is not None:
                macs[name] = out[0].numel() * m.weight.numel() // out.shape[1]

        hooks += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    walls = []
    try:
        with torch.inference_mode():
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                walls.append(time.perf_counter() - t0)
    finally:
        for h in hooks:
            h.remove()
    layers, by_kind = [], {}
    for name, module in leaves:
        s = statistics.median(seconds[name])
        kind = module_kind(module, bool(weighted) and name == weighted[-1])
        entry: dict[str, Any] = {"module": name, "name": repr(module), "kind": kind, "seconds": s}
        if name in macs:
            entry["macs_per_image"] = macs[name]
            entry["flop_per_s"] = 2 * macs[name] * len(x) / s if s else None
            entry["fraction_of_gemm_peak"] = _frac(entry["flop_per_s"], peaks["gemm_flop_per_s"])
        layers.append(entry)
        by_kind[kind] = by_kind.get(kind, 0.0) + s
    return {
        "batch": len(x),
        "wall_seconds": statistics.median(walls),
        "by_kind": by_kind,
        "layers": layers,
        "top_ops": torch_ops(model, x),
    }


def torch_ops(model: nn.Module, x: torch.Tensor, top: int = 12) -> list[dict[str, Any]]:
    """The operators with the most self CPU time in one forward pass (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [{"op": e.key, "self_seconds": e.self_cpu_time_total / 1e6, "calls": e.count} for e in events]


def run_profiles(args, paths, x, peaks) -> dict[str, Any]:
    out: dict[str, Any] = {}
    xb = x[: args.batch_size]
    for k in args.profile_loads:
        load_before = os.getloadavg()
        with neighbours(k, args.settle):
            per_path = {}
            for name in args.profile_paths:
                model = paths[name]["model"]
                fn = profile_ehd if isinstance(model, gehd.EHDModel) else profile_torch
                per_path[name] = fn(model, xb, args.profile_repeats, peaks)
        out[str(k)] = {"load_average_before": load_before, "load_average_after": os.getloadavg(), **per_path}
    return out


# ----------------------------------------------------------------------------------------------- report
def print_throughput(summary: dict[str, Any]) -> None:
    med = summary["median_img_per_s"]
    conds = sorted({c for v in med.values() for c in v}, key=lambda c: (int(c.split(":")[0]), c))
    print("\nmedian img/s (neighbours:policy); slowdown = idle:all / condition; x CNN = slowdown / CNN's slowdown")
    print(f"{'path':11s}" + "".join(f"{c:>14s}" for c in conds))
    for name, row in med.items():
        print(f"{name:11s}" + "".join(f"{row.get(c, float('nan')):14,.1f}" for c in conds))
        slow, vs = summary["slowdown"].get(name, {}), summary["slowdown_vs_cnn"].get(name, {})
        if slow:
            print(f"{'  slowdown':11s}" + "".join(f"{slow[c]:14.2f}" if c in slow else f"{'':14s}" for c in conds))
        if vs:
            print(f"{'  x CNN':11s}" + "".join(f"{vs[c]:14.2f}" if c in vs else f"{'':14s}" for c in conds))
    t = summary.get("targets")
    if t:
        worst = t["worst_gnet_slowdown_over_cnn"]
        print(
            f"idle G-Net time / CNN time {t['idle_gnet_time_over_cnn']:.2f} (target <= 1.3); worst G-Net slowdown / "
            f"CNN slowdown {'n/a' if worst is None else f'{worst:.2f}'} (target <= 1.5)"
        )


def print_profiles(profiles: dict[str, Any], peaks: dict[str, Any]) -> None:
    print(
        f"\npeaks: float32 GEMM {peaks['gemm_flop_per_s'] / 1e9:,.1f} GFLOP/s, Hamming "
        f"{peaks['hamming_bit_ops_per_s'] / 1e9:,.1f} Gbit-op/s, copy {peaks['copy_bytes_per_s'] / 1e9:,.1f} GB/s"
    )
    for k, per_path in profiles.items():
        for name, prof in per_path.items():
            if not isinstance(prof, dict) or "by_kind" not in prof:
                continue
            wall = prof["wall_seconds"]
            print(f"\nprofile {name}, {k} neighbours, batch {prof['batch']}: {wall * 1e3:,.1f} ms per batch")
            for kind, s in sorted(prof["by_kind"].items(), key=lambda kv: -kv[1]):
                print(f"  {kind:12s} {s * 1e3:10.2f} ms  {100 * s / wall:5.1f} %")
            for layer in prof["layers"]:
                roof = layer.get("roofline")
                if roof:
                    secs = {**layer["seconds"], **roof["split_seconds"]}
                    parts = ", ".join(f"{kk} {v * 1e3:.1f}" for kk, v in sorted(secs.items()) if kk != "encode")
                    pj, hm = roof["projection_fraction_of_gemm_peak"], roof["hamming_fraction_of_peak"]
                    print(
                        f"  [{layer['stage']}] {layer['name']}: {parts} ms; projection "
                        f"{'n/a' if pj is None else f'{100 * pj:.1f} %'} of GEMM peak, Hamming "
                        f"{'n/a' if hm is None else f'{100 * hm:.1f} %'} of Hamming peak"
                    )
                elif "fraction_of_gemm_peak" in layer and layer["fraction_of_gemm_peak"] is not None:
                    print(
                        f"  {layer['module']:>4s} {layer['kind']:10s} {layer['seconds'] * 1e3:8.2f} ms, "
                        f"{100 * layer['fraction_of_gemm_peak']:.1f} % of GEMM peak"
                    )


# ----------------------------------------------------------------------------------------------- main
def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def choice_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"unknown {bad or text!r}; valid: {', '.join(choices)}")
        return values

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="random data, tiny settings: checks the script runs")
    ap.add_argument("--data-dir", default=None, help="dataset cache directory (gnet.data.load_dataset root)")
    ap.add_argument("--gnet-ckpt", default="results/models/mnist_rasu.pt")
    ap.add_argument("--paths", type=choice_list(PATHS), default=list(PATHS), help="comma list (default: all)")
    ap.add_argument("--ehd-dims", type=int_list, default=None, help="4 EHD dims (default 6000,15000,15000,14000)")
    ap.add_argument("--fast-preset", default="mnist-fast", help="dim preset of the ehd_fast_preset path")
    ap.add_argument("--lean-preset", default="mnist-lean", help="dim preset of the ehd_lean_preset path")
    ap.add_argument("--images", type=int, default=5120, help="images per measurement of the float paths")
    ap.add_argument("--ehd-images", type=int, default=512, help="images per measurement of the EHD paths")
    ap.add_argument("--warmup-images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--loads", type=int_list, default=[0, 1, 2], help="neighbour counts (0 = idle)")
    ap.add_argument("--policy", type=choice_list(POLICIES), default=["all"], help="thread policies: all,free,one")
    ap.add_argument("--threads", type=int, default=None, help="base thread count (default: torch's at start)")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds between starting neighbours and timing")
    ap.add_argument("--profile-paths", type=choice_list(PATHS), default=["ehd_fast", "gnet_float", "cnn_float"])
    ap.add_argument("--profile-loads", type=int_list, default=[0, 1], help="neighbour counts of the profile")
    ap.add_argument("--profile-repeats", type=int, default=3)
    ap.add_argument("--peak-gemm", type=int, default=2048, help="side of the square float32 GEMM of the peak")
    ap.add_argument("--peak-repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke-dim", type=int, default=256, help="EHD dim per layer in --smoke mode")
    ap.add_argument("--out", default=None, help="JSON path (default results/bench_infer.json; smoke: temp dir)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.images, args.ehd_images, args.warmup_images = min(args.images, 64), min(args.ehd_images, 32), 32
        args.batch_size, args.rounds, args.settle = min(args.batch_size, 32), 1, 0.1
        args.profile_repeats, args.peak_gemm, args.peak_repeats = 1, 256, 2
        args.out = args.out or str(Path(tempfile.gettempdir()) / "bench_infer_smoke.json")
    args.out = args.out or "results/bench_infer.json"
    for name in ("images", "ehd_images", "warmup_images", "batch_size", "rounds", "profile_repeats", "peak_gemm"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.ehd_dims is not None and (len(args.ehd_dims) != 4 or min(args.ehd_dims) < 1):
        ap.error("--ehd-dims needs 4 positive integers")
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be >= 1")
    args.threads = args.threads or torch.get_num_threads()
    return args


def conditions_of(args: argparse.Namespace) -> list[tuple[int, str]]:
    """(neighbours, policy) pairs, one per distinct thread count at each load ("all" kept for the idle baseline)."""
    conds, seen = [], set()
    for k in args.loads:
        for policy in ["all", *args.policy] if k == 0 else args.policy:
            threads = policy_threads(policy, args.threads, k)
            if (k, threads) not in seen:
                seen.add((k, threads))
                conds.append((k, policy))
    return conds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_term)
    conditions = conditions_of(args)
    result: dict[str, Any] = {
        "benchmark": "bench_infer",
        "command": " ".join(["python3", *map(shlex.quote, sys.argv)]),
        "smoke": args.smoke,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "neighbour": f"{sys.executable} -S -c {NEIGHBOUR!r} (one process per neighbour, own process group)",
        "conditions": conditions,
        "load_average_start": os.getloadavg(),
        "cpu": cpu_info(),
        "hdc_cpu": hcpu.as_dict(measure=True),
    }
    try:
        x, y = load_images(args)
        paths = build_paths(args, result)
        counts = sorted({policy_threads(p, args.threads, k) for k, p in conditions})
        result["first_call_seconds"] = warm_up(paths, x[: args.warmup_images], counts)
        set_threads(args.threads)
        result["thread_settings"] = thread_settings()
        result["peaks"] = machine_peaks(args)
        records = run_rounds(args, paths, conditions, x, y)
        result["measurements"] = records
        result["summary"] = summarise(records, args.paths)
        result["paths"] = {n: {k: v for k, v in p.items() if k not in ("predict", "model")} for n, p in paths.items()}
        result["profile"] = run_profiles(args, paths, x, result["peaks"])
    finally:
        _kill_all()
    result["load_average_end"] = os.getloadavg()
    atomic_write_text(args.out, json.dumps(result, indent=1, default=str))
    print_throughput(result["summary"])
    print_profiles(result["profile"], result["peaks"])
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
