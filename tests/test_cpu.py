"""hdc.cpu: capability parsing, the precision rule, and where it is used (convert's "auto", explicit slow
precisions, Hamming's "auto", steady-state timing)."""

from __future__ import annotations

import json
import warnings

import pytest

from gnet.cli._timing import steady_state
from gnet.ehd import convert, load_ehd
from gnet.models import architecture, build_model
from hdc import cpu, hamming

COMMON = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2 ht syscall"


def cpuinfo(model: str, flags: str, processors: int = 2) -> str:
    """A /proc/cpuinfo text with ``processors`` identical entries."""
    entry = f"processor\t: {{}}\nvendor_id\t: x\nmodel name\t: {model}\nflags\t\t: {COMMON} {flags}\nbogomips\t: 1\n"
    return "\n".join(entry.format(i) for i in range(processors))


AVX2_ONLY = cpuinfo("AMD EPYC 7B12", "sse3 ssse3 fma sse4_1 sse4_2 popcnt aes avx f16c avx2 bmi1 bmi2 sha_ni")
AVX512_VNNI = cpuinfo(
    "Intel(R) Xeon(R) CPU @ 2.80GHz",
    "avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_vpopcntdq avx512_bitalg",
)
AMX = cpuinfo(
    "Intel(R) Xeon(R) Platinum 8480+",
    "avx avx2 avx512f avx512_vnni avx512_bf16 avx_vnni amx_bf16 amx_tile amx_int8 avx512_vpopcntdq",
)


def fake_timings(int8: float, bfloat16: float):
    """A stand-in for cpu.matmul_timings: seconds per probe (float32 takes 1.0)."""
    return lambda precision: {precision: {"int8": int8, "bfloat16": bfloat16}[precision], "float32": 1.0}


def use(monkeypatch, text: str, int8: float = 0.5, bfloat16: float = 0.5) -> None:
    caps = cpu.capabilities_from_cpuinfo(text, "AVX512", 4)
    monkeypatch.setattr(cpu, "capabilities", lambda: caps)
    monkeypatch.setattr(cpu, "matmul_timings", fake_timings(int8, bfloat16))
    monkeypatch.setattr(cpu, "_WARNED", set())


def test_parse_flags_is_pure_and_reads_the_first_processor():
    flags, model = cpu.parse_cpuinfo_flags(AVX512_VNNI)
    assert "avx512_vnni" in flags and "avx512_vpopcntdq" in flags and model.startswith("Intel")
    assert cpu.parse_cpuinfo_flags("") == (frozenset(), "")


@pytest.mark.parametrize(
    "text, expected, plausible, preferred",
    [
        (AVX2_ONLY, {"avx2"}, (False, False), "float32"),
        (AVX512_VNNI, {"avx2", "avx512f", "avx512_vnni", "avx512_vpopcntdq"}, (True, False), "int8"),
        (AMX, set(cpu.FLAGS), (True, True), "int8"),
    ],
)
def test_capabilities_and_preferred_precision(monkeypatch, text, expected, plausible, preferred):
    caps = cpu.capabilities_from_cpuinfo(text, "AVX2", 2)
    assert {f for f in cpu.FLAGS if getattr(caps, f)} == expected
    assert caps.flags_known and caps.n_cores == 2 and caps.torch_capability == "AVX2"
    assert (caps.int8_plausible, caps.bfloat16_plausible) == plausible
    use(monkeypatch, text)  # every probe says "fast": only the flags can rule a precision out
    assert cpu.preferred_precision() == preferred


def test_flags_rule_out_without_measuring(monkeypatch):
    use(monkeypatch, AVX2_ONLY)

    def no_probe(precision):
        raise AssertionError("an AVX2-only CPU needs no measurement")

    monkeypatch.setattr(cpu, "matmul_timings", no_probe)
    assert not cpu.fast_int8_matmul() and not cpu.fast_bfloat16_matmul()
    assert cpu.preferred_precision() == "float32"


def test_measurement_decides_where_flags_allow(monkeypatch):
    use(monkeypatch, AMX, int8=3.0, bfloat16=0.6)  # int8 measured slow, bfloat16 fast
    assert not cpu.fast_int8_matmul() and cpu.fast_bfloat16_matmul()
    assert cpu.preferred_precision() == "bfloat16"
    assert cpu.preferred_precision(("float32", "int8")) == "float32"
    use(monkeypatch, AMX)
    assert cpu.preferred_precision(("float32", "bfloat16")) == "bfloat16"


def test_unknown_flags_fall_back_to_torch_and_measurement():
    caps = cpu.capabilities_from_cpuinfo("", "AVX512", 8)
    assert not caps.flags_known and caps.avx512f and caps.avx2 and caps.int8_plausible


def test_this_machine_as_dict_is_json():
    record = json.loads(json.dumps(cpu.as_dict()))
    assert record["preferred_precision"] in ("float32", "bfloat16", "int8")
    assert record["n_cores"] >= 1 and set(cpu.FLAGS) <= set(record)


@pytest.fixture(scope="module")
def untrained():
    model = build_model(architecture("digits", n_classes=10), seed=0)
    return model.eval()


def test_auto_resolves_per_layer_and_is_saved(monkeypatch, untrained, tmp_path):
    use(monkeypatch, AVX512_VNNI)  # int8 fast, bfloat16 not
    ehd = convert(untrained, dim=128, embedding=["rademacher", "gaussian", "hadamard", "rademacher"])
    # The first conv (fan-in 9) runs the fused float32 kernel, which beats any GEMM at such a fan-in; the last
    # Rademacher layer (fan-in 128) takes the fast int8 GEMM.
    assert [layer.geometry.fan_in for layer in ehd.layers][::3] == [9, 128]
    assert [layer.precision for layer in ehd.layers] == ["float32", "float32", "float32", "int8"]
    assert ehd.meta["precision"] == "float32,float32,float32,int8" and ehd.meta["precision_requested"] == "auto"
    back = load_ehd(ehd.save(tmp_path / "m.ehd"))
    assert [layer.precision for layer in back.layers] == ["float32", "float32", "float32", "int8"]
    assert back.meta["precision"] == ehd.meta["precision"]
    use(monkeypatch, AVX2_ONLY)
    assert convert(untrained, dim=128, embedding="rademacher").meta["precision"] == "float32"


def test_explicit_slow_precision_warns_once(monkeypatch, untrained):
    use(monkeypatch, AVX2_ONLY)
    with pytest.warns(RuntimeWarning, match=r"precision='int8' is slow.*precision='float32'") as record:
        ehd = convert(untrained, dim=128, embedding="rademacher", precision="int8")
        convert(untrained, dim=128, embedding="rademacher", precision="int8")
    assert sum(issubclass(w.category, RuntimeWarning) for w in record) == 1
    assert all(layer.precision == "int8" for layer in ehd.layers)  # still runs as asked
    use(monkeypatch, AVX512_VNNI)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        convert(untrained, dim=128, embedding="rademacher", precision="int8")  # fast here: no warning


def test_hamming_auto_never_picks_slow_gemm(monkeypatch):
    monkeypatch.setattr(hamming, "_numba_available", lambda: False)
    monkeypatch.setattr(cpu, "fast_int8_matmul", lambda: False)
    assert {hamming.choose_method(q, m, 157) for q in (1, 100, 5000) for m in (10, 10_000)} == {"numpy"}
    monkeypatch.setattr(cpu, "fast_int8_matmul", lambda: True)
    assert hamming.choose_method(100, 100, 157) == "gemm"
    monkeypatch.setattr(hamming, "_numba_available", lambda: True)
    assert hamming.choose_method(100, 100, 157) == "numba"


def test_steady_state_times_warm_up_apart():
    calls = []
    result, timing = steady_state(lambda k: calls.append(k) or k * 2, 100, warmup_items=8)
    assert calls == [8, 100] and result == 200 and timing.n_items == 100
    assert timing.seconds >= 0 and timing.warmup_seconds >= 0 and timing.images_per_second > 0
