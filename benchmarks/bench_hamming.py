"""Hamming kernel benchmark: hdc.hamming against the usual exact alternatives, side by side.

    cd /work/main && PYTHONPATH=. python3 benchmarks/bench_hamming.py

Cases (one run): all-pairs Q = M = 1000 at D = 10,000; a single query against 10,000 items;
storage of packed words against float32; and a small shape grid for the "auto" crossover
(numba popcount vs int8 GEMM including its unpacking).  Every method is warmed up first (numba
JIT, oneDNN kernels), then the methods are timed round-robin, ``--repeats`` times each, and the
median is reported, so background load hits all methods alike.  Every result is checked for
exact equality against hdc's numpy reference before timing.  Writes results/bench_hamming.json.
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdc import ops  # noqa: E402
from hdc.hamming import hamming_distance  # noqa: E402
from hdc.packed import to_bipolar  # noqa: E402


def _pm1_all_bits(words: np.ndarray) -> np.ndarray:
    """(R, W) uint64 -> int8 (R, 64 W) in {-1, +1}, the zero tail bits included (as the GEMM method unpacks)."""
    return to_bipolar(words, 64 * words.shape[1], np.int8)


try:
    import faiss
except Exception:  # pragma: no cover - optional
    faiss = None
try:
    import torchhd
except Exception:  # pragma: no cover - optional
    torchhd = None


def cpu_info() -> dict:
    info = {"machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["model"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["flags"] = sorted(
                    f
                    for f in flags
                    if f
                    in {
                        "avx2",
                        "avx512f",
                        "avx512_vpopcntdq",
                        "avx512_vnni",
                        "avx512_bf16",
                        "amx_int8",
                        "amx_bf16",
                        "amx_tile",
                        "popcnt",
                    }
                )
                break
    except OSError:
        pass
    return info


def time_round_robin(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call for every function, interleaved; each is called once first (warm-up)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def check_equal(name: str, got: np.ndarray, ref: np.ndarray) -> None:
    got = np.asarray(got)
    if got.shape != ref.shape or not np.array_equal(got.astype(np.int64), ref.astype(np.int64)):
        raise SystemExit(f"{name}: result differs from the numpy reference")


def all_pairs(q: int, m: int, dim: int, repeats: int, torchhd_rows: int) -> dict:
    a = ops.random(q, dim, seed=1)
    b = ops.random(m, dim, seed=2)
    ref = hamming_distance(a, b, method="numpy")

    # Inputs in each method's native storage, built outside the timed region.
    a_pm = torch.from_numpy(to_bipolar(a, dim, np.float32))
    b_pm = torch.from_numpy(to_bipolar(b, dim, np.float32))
    a_i8 = torch.from_numpy(_pm1_all_bits(a))
    b_i8t = torch.from_numpy(_pm1_all_bits(b)).t()
    dp = a.shape[1] * 64

    fns: dict[str, Callable[[], object]] = {
        "hdc auto": lambda: hamming_distance(a, b),
        "hdc numba": lambda: hamming_distance(a, b, method="numba"),
        "hdc gemm (int8, incl. unpack)": lambda: hamming_distance(a, b, method="gemm"),
        "numpy bitwise_count (hdc numpy)": lambda: hamming_distance(a, b, method="numpy"),
        "torch float32 +-1 matmul": lambda: (dim - a_pm @ b_pm.T) / 2,
    }
    check_equal("float32 matmul", ((dim - a_pm @ b_pm.T) / 2).numpy(), ref)
    for name in ("hdc auto", "hdc numba", "hdc gemm (int8, incl. unpack)"):
        check_equal(name, fns[name](), ref)
    if hasattr(torch, "_int_mm"):
        fns["torch._int_mm int8 +-1 (pre-unpacked)"] = lambda: (dp - torch._int_mm(a_i8, b_i8t)) >> 1
        check_equal("_int_mm", fns["torch._int_mm int8 +-1 (pre-unpacked)"]().numpy(), ref)
    if faiss is not None:
        a8 = np.ascontiguousarray(a).view(np.uint8)
        b8 = np.ascontiguousarray(b).view(np.uint8)
        index = faiss.IndexBinaryFlat(dp)
        index.add(b8)
        dis = np.empty((q, m), dtype=np.int32)

        def faiss_full() -> np.ndarray:
            faiss.hammings(faiss.swig_ptr(a8), faiss.swig_ptr(b8), q, m, a8.shape[1], faiss.swig_ptr(dis))
            return dis

        fns["faiss hammings (full matrix)"] = faiss_full
        fns["faiss IndexBinaryFlat search k=1"] = lambda: index.search(a8, 1)
        check_equal("faiss hammings", faiss_full(), ref)
        d1, i1 = index.search(a8, 1)
        check_equal("faiss k=1", d1[:, 0], ref.min(axis=1))

    times = time_round_robin(fns, repeats)

    extrapolated = {}
    if torchhd is not None and torchhd_rows > 0:
        # torchhd compares bool tensors through a (Q, M, D) broadcast; time a few query rows
        # and scale linearly to Q (it is linear in Q).
        rows = min(torchhd_rows, q)
        ta = torchhd.BSCTensor(torch.from_numpy(to_bipolar(a[:rows], dim) > 0))
        tb = torchhd.BSCTensor(torch.from_numpy(to_bipolar(b, dim) > 0))
        sim = torchhd.hamming_similarity(ta, tb)
        check_equal("torchhd", dim - sim.numpy(), ref[:rows])
        t = time_round_robin({"torchhd": lambda: torchhd.hamming_similarity(ta, tb)}, 3)["torchhd"]
        extrapolated["torchhd hamming_similarity (extrapolated)"] = [x * q / rows for x in t]
        times.update(extrapolated)

    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "shape": {"Q": q, "M": m, "D": dim},
        "median_s": med,
        "repeats_s": times,
        "extrapolated_from_rows": torchhd_rows if extrapolated else None,
    }


def single_query(m: int, dim: int, repeats: int) -> dict:
    a = ops.random(1, dim, seed=3)
    b = ops.random(m, dim, seed=4)
    ref = hamming_distance(a, b, method="numpy")
    a_pm = torch.from_numpy(to_bipolar(a, dim, np.float32))
    b_pm = torch.from_numpy(to_bipolar(b, dim, np.float32))
    fns: dict[str, Callable[[], object]] = {
        "hdc auto": lambda: hamming_distance(a, b),
        "numpy bitwise_count (hdc numpy)": lambda: hamming_distance(a, b, method="numpy"),
        "torch float32 +-1 matvec": lambda: (dim - b_pm @ a_pm[0]) / 2,
    }
    check_equal("hdc auto", fns["hdc auto"](), ref)
    check_equal("float32 matvec", ((dim - b_pm @ a_pm[0]) / 2).numpy()[None], ref)
    if hasattr(torch, "_int_mm"):
        dp = a.shape[1] * 64
        a_i8 = torch.from_numpy(_pm1_all_bits(a))
        b_i8t = torch.from_numpy(_pm1_all_bits(b)).t()
        fns["torch._int_mm int8 +-1 (pre-unpacked)"] = lambda: (dp - torch._int_mm(a_i8, b_i8t)) >> 1
        check_equal("_int_mm", fns["torch._int_mm int8 +-1 (pre-unpacked)"]().numpy(), ref)
    if faiss is not None:
        a8 = np.ascontiguousarray(a).view(np.uint8)
        b8 = np.ascontiguousarray(b).view(np.uint8)
        index = faiss.IndexBinaryFlat(a.shape[1] * 64)
        index.add(b8)
        dis = np.empty((1, m), dtype=np.int32)

        def faiss_full() -> np.ndarray:
            faiss.hammings(faiss.swig_ptr(a8), faiss.swig_ptr(b8), 1, m, a8.shape[1], faiss.swig_ptr(dis))
            return dis

        fns["faiss hammings (full row)"] = faiss_full
        fns["faiss IndexBinaryFlat search k=1"] = lambda: index.search(a8, 1)
        check_equal("faiss hammings", faiss_full(), ref)
    times = time_round_robin(fns, repeats)
    return {
        "shape": {"Q": 1, "M": m, "D": dim},
        "median_s": {k: float(np.median(v)) for k, v in times.items()},
        "repeats_s": times,
    }


def crossover_grid(repeats: int) -> list[dict]:
    rows = []
    for dim in (256, 1024, 10_000):
        for q, m in ((1, 10_000), (16, 10_000), (100, 1000), (1000, 1000), (2000, 2000)):
            if dim == 10_000 and q * m > 1000 * 1000:
                continue  # keep the run short; the 1000 x 1000 row already covers D = 10,000
            a = ops.random(q, dim, seed=5)
            b = ops.random(m, dim, seed=6)
            t = time_round_robin(
                {
                    "numba": lambda a=a, b=b: hamming_distance(a, b, method="numba"),
                    "gemm": lambda a=a, b=b: hamming_distance(a, b, method="gemm"),
                },
                repeats,
            )
            med = {k: float(np.median(v)) for k, v in t.items()}
            rows.append(
                {
                    "Q": q,
                    "M": m,
                    "D": dim,
                    **{f"{k}_s": v for k, v in med.items()},
                    "gemm_over_numba": med["gemm"] / med["numba"],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--single-items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--torchhd-rows", type=int, default=10, help="query rows timed for torchhd (extrapolated to --queries); 0 skips"
    )
    parser.add_argument("--no-grid", action="store_true", help="skip the auto crossover grid")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "bench_hamming.json"))
    args = parser.parse_args()

    t_start = time.perf_counter()
    pairs = all_pairs(args.queries, args.items, args.dim, args.repeats, args.torchhd_rows)
    single = single_query(args.single_items, args.dim, args.repeats)
    grid = [] if args.no_grid else crossover_grid(max(3, args.repeats // 2))

    ours = pairs["median_s"]["hdc auto"]
    exact_full = {
        k: v
        for k, v in pairs["median_s"].items()
        if k != "hdc auto" and not k.startswith("hdc ") and "extrapolated" not in k
    }
    fastest_name = min(exact_full, key=exact_full.get)
    fp32 = pairs["median_s"]["torch float32 +-1 matmul"]
    single_other = {k: v for k, v in single["median_s"].items() if not k.startswith("hdc ")}
    single_fastest = min(single_other, key=single_other.get)
    words = ops.random(1, args.dim, seed=0)
    packed_bytes = words.nbytes
    float_bytes = args.dim * 4
    summary = {
        "ours_s": ours,
        "fastest_other_exact": fastest_name,
        "fastest_other_exact_s": exact_full[fastest_name],
        "ours_over_fastest_other": ours / exact_full[fastest_name],
        "float32_matmul_over_ours": fp32 / ours,
        "single_query_float32_over_ours": single["median_s"]["torch float32 +-1 matvec"]
        / single["median_s"]["hdc auto"],
        "single_query_fastest_other": single_fastest,
        "single_query_ours_over_fastest_other": single["median_s"]["hdc auto"] / single["median_s"][single_fastest],
        "bytes_per_vector_packed": packed_bytes,
        "bytes_per_vector_float32": float_bytes,
        "storage_ratio_float32_over_packed": float_bytes / packed_bytes,
        # Words pad D up to a multiple of 64; at such a D the ratio is exactly 32.
        "storage_ratio_at_dim_rounded_up_to_64": (packed_bytes * 8 * 4) / packed_bytes,
        "targets": {
            "ours <= 1.5x fastest exact": ours / exact_full[fastest_name] <= 1.5,
            ">= 10x faster than float32 +-1 matmul": fp32 / ours >= 10,
            "storage >= 32x smaller than float32": float_bytes / packed_bytes >= 32,
        },
    }
    result = {
        "command": "PYTHONPATH=. python3 benchmarks/bench_hamming.py " + " ".join(sys.argv[1:]),
        "cpu": cpu_info(),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "numba": __import__("numba").__version__,
            "faiss": getattr(faiss, "__version__", None),
            "torchhd": getattr(torchhd, "__version__", None),
        },
        "threads": {"torch": torch.get_num_threads(), "numba": __import__("numba").get_num_threads()},
        "all_pairs": pairs,
        "single_query": single,
        "auto_crossover_grid": grid,
        "summary": summary,
        "wall_s": time.perf_counter() - t_start,
    }

    def table(title: str, med: dict[str, float], base: str) -> None:
        print(f"\n{title}")
        print(f"{'method':48s} {'median ms':>10s} {'x hdc auto':>11s}")
        for k, v in sorted(med.items(), key=lambda kv: kv[1]):
            print(f"{k:48s} {1e3 * v:10.3f} {v / med[base]:11.2f}")

    s = pairs["shape"]
    table(f"All pairs Q={s['Q']} x M={s['M']}, D={s['D']}", pairs["median_s"], "hdc auto")
    s = single["shape"]
    table(f"Single query 1 x M={s['M']}, D={s['D']}", single["median_s"], "hdc auto")
    if grid:
        print("\nauto crossover (numba vs int8 gemm incl. unpack), median ms")
        print(f"{'Q':>6s} {'M':>6s} {'D':>6s} {'numba':>9s} {'gemm':>9s} {'gemm/numba':>11s}")
        for r in grid:
            print(
                f"{r['Q']:6d} {r['M']:6d} {r['D']:6d} {1e3 * r['numba_s']:9.3f} "
                f"{1e3 * r['gemm_s']:9.3f} {r['gemm_over_numba']:11.2f}"
            )
    print(
        f"\nstorage per vector at D={args.dim}: packed {packed_bytes} B, float32 {float_bytes} B "
        f"-> {float_bytes / packed_bytes:.2f}x smaller (32x exactly when D is a multiple of 64; "
        f"the {packed_bytes * 8 - args.dim} padding bits cost the rest)"
    )
    print(f"ours / fastest other exact ({fastest_name}): {summary['ours_over_fastest_other']:.2f}")
    print(f"float32 +-1 matmul / ours: {summary['float32_matmul_over_ours']:.1f}x")
    print(
        f"single query: ours / fastest other ({single_fastest}): {summary['single_query_ours_over_fastest_other']:.2f}"
    )
    for k, v in summary["targets"].items():
        print(f"target {k}: {'met' if v else 'MISSED'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
