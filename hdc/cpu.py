"""What this CPU offers, and which arithmetic is fast on it.

Reduced-precision GEMM is only fast where the CPU has instructions for it: int8 needs VNNI (AVX512-VNNI or
AVX-VNNI) or AMX-INT8, bfloat16 needs AVX512-BF16 or AMX-BF16.  Without them PyTorch falls back to slow
reference loops: on an AVX2-only AMD EPYC, ``torch._int_mm`` int8 ran about 30-40x and a bfloat16 matmul about
60x slower than float32.  So the rule is:

* flags rule a precision out: no VNNI/AMX-INT8 means int8 is slow, no AVX512-BF16/AMX-BF16 means bfloat16 is
  slow (no measurement is made);
* where the flags make a precision plausible (or where no flags can be read, e.g. off Linux), a tiny
  measurement decides: a :data:`PROBE_SIZE` ^3 product in that precision against float32, measured once per
  process on first use, counts as fast when it takes at most :data:`FAST_RATIO` times the float32 time.

:func:`preferred_precision` turns this into the precision ``"auto"`` resolves to, :func:`warn_if_slow` warns
(once per precision and process) when a slow precision is asked for explicitly, and :func:`as_dict` is what
benchmarks record.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from typing import Any

__all__ = [
    "FAST_RATIO",
    "FLAGS",
    "PROBE_SIZE",
    "Capabilities",
    "as_dict",
    "capabilities",
    "lscpu_flags",
    "machine_record",
    "capabilities_from_cpuinfo",
    "fast_bfloat16_matmul",
    "fast_int8_matmul",
    "matmul_timings",
    "parse_cpuinfo_flags",
    "preferred_precision",
    "warn_if_slow",
]

# /proc/cpuinfo flag names recorded in :class:`Capabilities` (field name = flag name).
FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vpopcntdq",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_int8",
    "amx_bf16",
)
PROBE_SIZE = 256  # side of the square matrices of the micro-measurement
FAST_RATIO = 1.0  # a reduced precision is "fast" when its probe takes at most this many float32 probe times
_PROBE_REPEATS = 5


@dataclass(frozen=True)
class Capabilities:
    """CPU features relevant to the kernels (all False where unknown).

    Attributes:
        avx2, avx512f, avx512_vpopcntdq, avx512_vnni, avx512_bf16, avx_vnni, amx_int8, amx_bf16: the
            instruction-set flags of the same names in /proc/cpuinfo.
        flags_known: True when the flags were read (Linux /proc/cpuinfo); False means every flag is a guess.
        torch_capability: ``torch.backends.cpu.get_cpu_capability()`` (e.g. "AVX2", "AVX512"), None without it.
        n_cores: logical CPUs this process may run on.
        model_name: the CPU's model name, "" where unknown.
    """

    avx2: bool = False
    avx512f: bool = False
    avx512_vpopcntdq: bool = False
    avx512_vnni: bool = False
    avx512_bf16: bool = False
    avx_vnni: bool = False
    amx_int8: bool = False
    amx_bf16: bool = False
    flags_known: bool = False
    torch_capability: str | None = None
    n_cores: int = 1
    model_name: str = ""

    @property
    def int8_plausible(self) -> bool:
        """int8 GEMM can be fast here (VNNI or AMX-INT8), or the flags are unknown."""
        return not self.flags_known or self.avx512_vnni or self.avx_vnni or self.amx_int8

    @property
    def bfloat16_plausible(self) -> bool:
        """bfloat16 GEMM can be fast here (AVX512-BF16 or AMX-BF16), or the flags are unknown."""
        return not self.flags_known or self.avx512_bf16 or self.amx_bf16


def parse_cpuinfo_flags(text: str) -> tuple[frozenset[str], str]:
    """The flags and model name of the first processor in a /proc/cpuinfo text (pure; empty when absent)."""
    flags: frozenset[str] = frozenset()
    model = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "flags" and not flags:
            flags = frozenset(value.split())
        elif key == "model name" and not model:
            model = value.strip()
    return flags, model


def capabilities_from_cpuinfo(text: str, torch_capability: str | None = None, n_cores: int = 1) -> Capabilities:
    """:class:`Capabilities` of a /proc/cpuinfo text (pure: no probing of this machine)."""
    flags, model = parse_cpuinfo_flags(text)
    if not flags:
        return _fallback(torch_capability, n_cores, model)
    return Capabilities(
        **{name: name in flags for name in FLAGS},
        flags_known=True,
        torch_capability=torch_capability,
        n_cores=n_cores,
        model_name=model,
    )


def _fallback(torch_capability: str | None, n_cores: int, model: str = "") -> Capabilities:
    """Without readable flags: what torch's dispatcher reports, nothing more (reduced precision gets measured)."""
    cap = (torch_capability or "").upper()
    return Capabilities(
        avx2=cap.startswith("AVX"),
        avx512f=cap.startswith("AVX512"),
        flags_known=False,
        torch_capability=torch_capability,
        n_cores=n_cores,
        model_name=model,
    )


def _torch_capability() -> str | None:
    try:
        import torch

        get = getattr(torch.backends.cpu, "get_cpu_capability", None)
        return str(get()) if get is not None else None
    except Exception:  # pragma: no cover - torch missing or too old
        return None


def _n_cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return len(affinity(0))
        except OSError:  # pragma: no cover
            pass
    return os.cpu_count() or 1


@lru_cache(maxsize=1)
def capabilities() -> Capabilities:
    """This machine's :class:`Capabilities` (read once per process)."""
    text = ""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:  # pragma: no cover - sandboxed /proc
            text = ""
    return capabilities_from_cpuinfo(text, _torch_capability(), _n_cores())


def _best_seconds(fn: Callable[[], Any]) -> float:
    fn()  # first call: library initialisation and kernel selection are not what is measured
    best = float("inf")
    for _ in range(_PROBE_REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@cache
def matmul_timings(precision: str) -> dict[str, float]:
    """Seconds of one :data:`PROBE_SIZE` ^3 product in ``precision`` ("int8" or "bfloat16") and in float32
    (best of a few; measured once per process and precision, single-threaded so that the ratio does not depend
    on how busy the other cores are)."""
    import torch

    n = PROBE_SIZE
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        f32 = _best_seconds(lambda: a @ b)
        if precision == "int8":
            ai, bi = a.mul(40).to(torch.int8), b.mul(40).to(torch.int8)
            low = _best_seconds(lambda: torch._int_mm(ai, bi))
        elif precision == "bfloat16":
            ab, bb = a.bfloat16(), b.bfloat16()
            low = _best_seconds(lambda: ab @ bb)
        else:
            raise ValueError(f"precision must be 'int8' or 'bfloat16', got {precision!r}")
    finally:
        torch.set_num_threads(threads)
    return {precision: low, "float32": f32}


def _fast(precision: str, plausible: bool) -> bool:
    if not plausible:
        return False
    try:
        t = matmul_timings(precision)
    except Exception:  # an op this torch build lacks is not fast
        return False
    return t[precision] <= FAST_RATIO * t["float32"]


def fast_int8_matmul() -> bool:
    """int8 GEMM (``torch._int_mm``) is at least as fast as float32 here: flags plus a one-off measurement."""
    return _fast("int8", capabilities().int8_plausible)


def fast_bfloat16_matmul() -> bool:
    """bfloat16 GEMM is at least as fast as float32 here: flags plus a one-off measurement."""
    return _fast("bfloat16", capabilities().bfloat16_plausible)


def _is_fast(precision: str) -> bool:
    if precision == "int8":
        return fast_int8_matmul()
    if precision == "bfloat16":
        return fast_bfloat16_matmul()
    return True


def preferred_precision(supported: Iterable[str] = ("float32", "bfloat16", "int8")) -> str:
    """The fastest precision among ``supported``: "int8" only where int8 GEMM is fast, else "bfloat16" where that
    is fast, else "float32" (always supported)."""
    allowed = set(supported)
    for precision in ("int8", "bfloat16"):
        if precision in allowed and _is_fast(precision):
            return precision
    return "float32"


_WARNED: set[str] = set()


def warn_if_slow(
    precision: str, supported: Sequence[str] = ("float32", "bfloat16", "int8"), stacklevel: int = 2
) -> None:
    """A ``RuntimeWarning`` (once per precision and process) when ``precision`` is a reduced precision that is
    slow on this CPU, naming the faster choice among ``supported``."""
    if precision not in ("int8", "bfloat16") or precision in _WARNED or _is_fast(precision):
        return
    _WARNED.add(precision)
    better = preferred_precision(supported)
    warnings.warn(
        f"precision={precision!r} is slow on this CPU (no native {precision} GEMM instructions, or measured slower "
        f"than float32); precision={better!r} (or 'auto') runs faster here with nearly the same results",
        RuntimeWarning,
        stacklevel=stacklevel + 1,
    )


def as_dict(measure: bool = True) -> dict[str, Any]:
    """Capabilities and the decisions drawn from them, for benchmark JSONs (``measure=False``: no probe runs
    and the decisions are left out)."""
    caps = capabilities()
    out: dict[str, Any] = {**asdict(caps), "int8_plausible": caps.int8_plausible}
    out["bfloat16_plausible"] = caps.bfloat16_plausible
    if measure:
        out["fast_int8_matmul"] = fast_int8_matmul()
        out["fast_bfloat16_matmul"] = fast_bfloat16_matmul()
        out["preferred_precision"] = preferred_precision()
        plausible = {"int8": caps.int8_plausible, "bfloat16": caps.bfloat16_plausible}
        out["probe_seconds"] = {p: matmul_timings(p) for p, ok in plausible.items() if ok}
    return out


def lscpu_flags() -> list[str]:
    """The CPU flags ``lscpu`` reports (empty where lscpu is missing or fails)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith("Flags:")), "Flags:")
    return line.split(":", 1)[1].split()


def machine_record(measure: bool = False) -> dict[str, Any]:
    """What every benchmark JSON records about the machine it ran on: ``lscpu`` flags, :func:`as_dict`
    (``measure`` as there), the processor, core count and the load average at the time of the call.

    Example:
        >>> record = machine_record()
        >>> sorted(record)[:3]
        ['hdc_cpu', 'load_average', 'lscpu_flags']
    """
    return {
        "lscpu_flags": lscpu_flags(),
        "hdc_cpu": as_dict(measure=measure),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "processor": platform.processor() or platform.machine(),
        "n_cores": _n_cores(),
    }
