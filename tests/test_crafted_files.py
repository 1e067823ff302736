"""A corpus of crafted ``.ehd`` files (header and checksum agree, as a hostile file's would): each is refused with an
:class:`EHDFileError` in under a second and with under 100 MB of extra memory.

``python tests/test_crafted_files.py`` prints the corpus's counts by category and the worst time and memory.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DIM = 100


def _valid_model() -> Any:
    from gnet.ehd.layers import EHDClassifier, EHDGLayer, Geometry
    from gnet.ehd.model import EHDModel, Flatten

    rng = np.random.default_rng(0)

    def codes(units: int) -> np.ndarray:
        w = rng.integers(0, 2**63, size=(units, 2), dtype=np.uint64)
        w[:, -1] &= np.uint64((1 << (DIM - 64)) - 1)
        return w

    common = dict(embedding="gaussian", seed=0)
    conv = EHDGLayer(
        Geometry("conv1d", 1, 4, (3,), (1,), (0,), (1,)), DIM, codes(4), 0.1, activation="rasu", index=0, **common
    )
    clf = EHDClassifier(32, 3, DIM, codes(3), 0.0, index=1, **common)
    return EHDModel([conv, Flatten(), clf], {"dataset": "crafted"}, input_shape=(1, 10), n_classes=3)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _write(path: Path, header: Any, arrays: dict[str, np.ndarray], *, compress: bool = False, sign: bool = True):
    """An .ehd file with ``header`` (any JSON) and ``arrays``; with ``sign`` its checksum agrees with its content."""
    from hdc.io import digest

    if sign and isinstance(header, dict):
        body = {k: v for k, v in header.items() if k != "sha256"}
        try:
            header = {**body, "sha256": digest(body, arrays)}
        except (TypeError, ValueError):  # an array numpy cannot hash (objects): leave the header as is
            header = body
    text = json.dumps(header).encode()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        zf.writestr("header.npy", _npy(np.frombuffer(text, dtype=np.uint8)))
        for name, arr in arrays.items():
            zf.writestr(f"{name}.npy", _npy(arr))


def _base(tmp: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from hdc.io import load_container

    path = tmp / "valid.ehd"
    _valid_model().save(path)
    return load_container(path, "gnet-ehd", (2,))


def _raw_member(path: Path, name: str, npy: bytes) -> None:
    """Replace one member's bytes (its .npy header may then declare more data than it holds)."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    members[name] = npy
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for k, v in members.items():
            zf.writestr(k, v)


def _declared_huge(path: Path) -> None:
    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 2), np.uint64))
    header["shape"] = (2**40, 2)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    _raw_member(path, "codes_2.npy", buf.getvalue() + b"\0" * 32)


def _compressed_bomb(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """A deflated member of 256 MiB of zeros (a few hundred KB on disk) declared as the classifier's codes."""
    _write(path, header, arrays, compress=True)
    hdr = np.lib.format.header_data_from_array_1_0(np.zeros((2**25, 1), np.uint64))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, hdr)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("bomb.npy", "w", force_zip64=True) as fh,
    ):
        fh.write(buf.getvalue())
        chunk = b"\0" * 2**24
        for _ in range(16):
            fh.write(chunk)


def _stage(h: dict[str, Any], i: int) -> dict[str, Any]:
    return h["stages"][i]


class _Replace:
    """A header mutation's result that replaces the whole header (even with None)."""

    def __init__(self, value: Any) -> None:
        self.value = value


Mutation = Callable[[dict[str, Any], dict[str, np.ndarray]], Any]


def _case(category: str, name: str, header: Mutation | None = None, arrays: Mutation | None = None) -> tuple:
    return (category, name, header, arrays)


def _set(path: tuple, value: Any) -> Mutation:
    def mutate(h: dict[str, Any], a: dict[str, np.ndarray]) -> None:
        node: Any = h
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: tuple) -> Mutation:
    def mutate(h: dict[str, Any], a: dict[str, np.ndarray]) -> None:
        node: Any = h
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _codes(i: int, make: Callable[[np.ndarray], np.ndarray | None]) -> Mutation:
    def mutate(h: dict[str, Any], a: dict[str, np.ndarray]) -> None:
        new = make(a[f"codes_{i}"])
        if new is None:
            del a[f"codes_{i}"]
        else:
            a[f"codes_{i}"] = new

    return mutate


def _both(*fns: Mutation) -> Mutation:
    def mutate(h: dict[str, Any], a: dict[str, np.ndarray]) -> None:
        for fn in fns:
            fn(h, a)

    return mutate


def _tail(c: np.ndarray) -> np.ndarray:
    c = c.copy()
    c[:, -1] |= np.uint64(1) << np.uint64(63)
    return c


CLF = ("stages", 2)
CONV = ("stages", 0)
CASES = [
    # the header is not a JSON object
    _case("non-object header", "list", header=lambda h, a: [1, 2, 3]),
    _case("non-object header", "string", header=lambda h, a: "gnet-ehd"),
    _case("non-object header", "null", header=lambda h, a: _Replace(None)),
    _case("non-object header", "number", header=lambda h, a: 2),
    # missing keys
    _case("missing keys", "stages", header=_delete(("stages",))),
    _case("missing keys", "geometry", header=_delete((*CLF, "geometry"))),
    _case("missing keys", "dim", header=_delete((*CLF, "dim"))),
    _case("missing keys", "bias", header=_delete((*CONV, "bias"))),
    _case("missing keys", "embedding", header=_delete((*CONV, "embedding"))),
    _case("missing keys", "stride", header=_delete((*CONV, "geometry", "stride"))),
    _case("missing keys", "version", header=_delete(("version",))),
    # wrong types
    _case("wrong types", "stages is a string", header=_set(("stages",), "conv")),
    _case("wrong types", "stage is a number", header=_set(("stages", 1), 5)),
    _case("wrong types", "dim is a string", header=_set((*CLF, "dim"), "100")),
    _case("wrong types", "dim is a float", header=_set((*CLF, "dim"), 100.0)),
    _case("wrong types", "dim is a bool", header=_set((*CLF, "dim"), True)),
    _case("wrong types", "in_channels is a list", header=_set((*CLF, "geometry", "in_channels"), [32])),
    _case("wrong types", "bias is a string", header=_set((*CONV, "bias"), "0.1")),
    _case("wrong types", "embedding is a number", header=_set((*CONV, "embedding"), 7)),
    _case("wrong types", "meta is a list", header=_set(("meta",), [1])),
    _case("wrong types", "geometry is a list", header=_set((*CONV, "geometry"), [1, 4])),
    _case("wrong types", "version is a float", header=_set(("version",), 2.0)),
    _case("wrong types", "input_shape is a dict", header=_set(("input_shape",), {"a": 1})),
    # values out of range
    _case("out of range", "zero classes", _set((*CLF, "geometry", "out_units"), 0), _codes(2, lambda c: c[:0])),
    _case("out of range", "dim 0", header=_set((*CLF, "dim"), 0)),
    _case("out of range", "dim 2**31", header=_set((*CLF, "dim"), 2**31)),
    _case(
        "out of range",
        "dim 2**31, zero classes",
        _both(_set((*CLF, "dim"), 2**31), _set((*CLF, "geometry", "out_units"), 0)),
        _codes(2, lambda c: np.zeros((0, 2**25), np.uint64)),
    ),
    _case("out of range", "stride 0", header=_set((*CONV, "geometry", "stride"), [0])),
    _case("out of range", "kernel 0", header=_set((*CONV, "geometry", "kernel"), [0])),
    _case("out of range", "padding -1", header=_set((*CONV, "geometry", "padding"), [-1])),
    _case("out of range", "kernel of 2 values in conv1d", header=_set((*CONV, "geometry", "kernel"), [3, 3])),
    _case("out of range", "negative seed", header=_set((*CONV, "seed"), -1)),
    _case("out of range", "input_shape 0", header=_set(("input_shape",), [0, 10])),
    _case("out of range", "unknown activation", header=_set((*CONV, "activation"), "relu")),
    _case("out of range", "unknown embedding", header=_set((*CONV, "embedding"), "cauchy")),
    _case("out of range", "unknown precision", header=_set((*CONV, "precision"), "float16")),
    _case("out of range", "unknown projection", header=_set((*CONV, "projection"), "other")),
    _case("out of range", "unknown stage type", header=_set(("stages", 1, "type"), "dropout")),
    _case("out of range", "version 99", header=_set(("version",), 99)),
    _case("out of range", "other format", header=_set(("format",), "gnet-ckpt")),
    _case("out of range", "classifier is not last", header=lambda h, a: h["stages"].append({"type": "flatten"})),
    _case("out of range", "classifier of a conv kind", header=_set((*CLF, "geometry", "kind"), "conv1d")),
    # NaN or infinite scalars
    _case("non-finite scalars", "NaN alpha", header=_set((*CONV, "alpha"), float("nan"))),
    _case("non-finite scalars", "inf alpha", header=_set((*CONV, "alpha"), float("inf"))),
    _case("non-finite scalars", "NaN bias", header=_set((*CLF, "bias"), float("nan"))),
    _case("non-finite scalars", "-inf bias", header=_set((*CONV, "bias"), float("-inf"))),
    # the arrays do not match the header
    _case("inconsistent shapes", "n_classes differs", header=_set(("n_classes",), 10)),
    _case("inconsistent shapes", "too few words", arrays=_codes(2, lambda c: c[:, :1].copy())),
    _case("inconsistent shapes", "too many units", arrays=_codes(2, lambda c: np.concatenate([c, c]))),
    _case("inconsistent shapes", "int64 codes", arrays=_codes(2, lambda c: c.astype(np.int64))),
    _case("inconsistent shapes", "float codes", arrays=_codes(0, lambda c: c.astype(np.float64))),
    _case("inconsistent shapes", "big-endian codes", arrays=_codes(0, lambda c: c.astype(">u8"))),
    _case("inconsistent shapes", "3-D codes", arrays=_codes(2, lambda c: c[None])),
    _case("inconsistent shapes", "missing codes", arrays=_codes(2, lambda c: None)),
    _case("inconsistent shapes", "extra array", arrays=lambda h, a: a.update(extra=np.zeros(3))),
    _case("inconsistent shapes", "object array", arrays=lambda h, a: a.update(codes_2=np.array([None, 1]))),
    # bits beyond dim
    _case("tail bits", "classifier codes", arrays=_codes(2, _tail)),
    _case("tail bits", "layer codes", arrays=_codes(0, _tail)),
    # what the file would make the loader or predictor allocate
    _case(
        "absurd sizes",
        "G of 2**22 x 10**5 floats",
        _both(_set((*CLF, "dim"), 2**22), _set((*CLF, "geometry", "in_channels"), 10**5)),
        _codes(2, lambda c: np.zeros((3, 2**16), np.uint64)),
    ),
    _case(
        "absurd sizes",
        "10**6 units into a 2**16-bit classifier",
        _both(
            _set((*CONV, "geometry", "out_units"), 10**6),
            _set((*CLF, "geometry", "in_channels"), 10**6),
            _set((*CLF, "dim"), 2**16),
        ),
        _both(
            _codes(0, lambda c: np.zeros((10**6, 2), np.uint64)), _codes(2, lambda c: np.zeros((3, 2**10), np.uint64))
        ),
    ),
    _case(
        "absurd sizes",
        "5000 per-channel projections",
        _both(_set((*CONV, "projection"), "per_channel"), _set((*CONV, "geometry", "out_units"), 5000)),
        _codes(0, lambda c: np.zeros((5000, 2), np.uint64)),
    ),
    _case("absurd sizes", "input of 10**5 x 10**5", header=_set(("input_shape",), [1, 10**5, 10**5])),
]
SPECIAL = [
    ("compressed members", "deflated valid file"),
    ("compressed members", "256 MiB deflate bomb"),
    ("absurd sizes", "npy header declares 2**40 words"),
    ("damaged", "checksum mismatch"),
    ("damaged", "not a zip file"),
    ("damaged", "truncated"),
    ("damaged", "header is not JSON"),
]


def build_corpus(out: Path) -> list[tuple[str, str, Path]]:
    """Write every crafted file under ``out``; returns (category, name, path) per file, and the valid one last."""
    import copy

    header, arrays = _base(out)
    corpus = []
    for k, (category, name, mutate_header, mutate_arrays) in enumerate(CASES):
        h, a = copy.deepcopy(header), {n: v.copy() for n, v in arrays.items()}
        if mutate_header is not None:
            result = mutate_header(h, a)
            h = result.value if isinstance(result, _Replace) else h if result is None else result
        if mutate_arrays is not None:
            mutate_arrays(h, a)
        path = out / f"case{k:02d}.ehd"
        _write(path, h, a)
        corpus.append((category, name, path))
    for k, (category, name) in enumerate(SPECIAL):
        path = out / f"special{k}.ehd"
        if name == "deflated valid file":
            _write(path, header, arrays, compress=True)
        elif name == "256 MiB deflate bomb":
            _compressed_bomb(path, header, arrays)
        elif name == "npy header declares 2**40 words":
            _write(path, header, arrays)
            _declared_huge(path)
        elif name == "checksum mismatch":
            _write(path, {**header, "sha256": "0" * 64}, arrays, sign=False)
        elif name == "not a zip file":
            path.write_bytes(b"\x89EHD" + bytes(100))
        elif name == "truncated":
            _write(path, header, arrays)
            path.write_bytes(path.read_bytes()[:-200])
        else:
            _write(path, header, arrays)
            _raw_member(path, "header.npy", _npy(np.frombuffer(b"{not json", dtype=np.uint8)))
        corpus.append((category, name, path))
    valid = out / "valid.ehd"
    corpus.append(("valid", "valid", valid))
    return corpus


_PROBE = r"""
import json, resource, sys, time, tracemalloc
from gnet.ehd import EHDFileError, load_ehd
import gnet.ehd.layers  # noqa: F401  (imports and numba compiles are not the files' doing)
rows = []
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for category, name, path in json.loads(sys.stdin.read()):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        model = load_ehd(path)
        outcome, message = "loaded", ""
    except EHDFileError as err:
        outcome, message = "refused", str(err)
    except BaseException as err:
        outcome, message = "crashed", f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows.append(dict(category=category, name=name, outcome=outcome, message=message[:300], seconds=seconds,
                     peak_bytes=peak))
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(rows=rows, rss_growth_bytes=(rss1 - rss0) * 1024, rss_after_import_bytes=rss0 * 1024)))
"""


def probe(corpus: list[tuple[str, str, Path]]) -> dict[str, Any]:
    """Load every file in a fresh process (so its peak RSS is the files' doing); per file: outcome, time, peak."""
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    payload = json.dumps([(c, n, str(p)) for c, n, p in corpus])
    run = subprocess.run(
        [sys.executable, "-c", _PROBE], input=payload, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    corpus = build_corpus(tmp_path_factory.mktemp("crafted"))
    return probe(corpus)


def test_corpus_is_refused_quickly_with_bounded_memory(probed):
    rows = probed["rows"]
    assert len(rows) == len(CASES) + len(SPECIAL) + 1
    valid = rows[-1]
    assert valid["outcome"] == "loaded", valid["message"]
    bad = [r for r in rows[:-1] if r["outcome"] != "refused"]
    assert not bad, bad
    for r in rows[:-1]:
        assert r["seconds"] < 1.0, r
        assert r["peak_bytes"] < 100 * 2**20, r
        assert r["message"].count("\n") == 0 and ".ehd" in r["message"], r
    assert probed["rss_growth_bytes"] < 100 * 2**20


def test_refusals_name_the_problem(probed):
    by_name = {r["name"]: r["message"] for r in probed["rows"]}
    assert "not a JSON object" in by_name["list"]
    assert "stride" in by_name["stride 0"]
    assert "alpha" in by_name["NaN alpha"]
    assert "compressed" in by_name["256 MiB deflate bomb"]
    assert "max_bytes" in by_name["G of 2**22 x 10**5 floats"]
    assert "tail" in by_name["classifier codes"] or "beyond dim" in by_name["classifier codes"]
    assert "codes must be uint64" in by_name["too few words"]
    assert "lacks 'dim'" in by_name["dim"]


def test_max_bytes_argument_and_environment(tmp_path, monkeypatch):
    from gnet.ehd import EHDFileError, load_ehd

    path = tmp_path / "m.ehd"
    _valid_model().save(path)
    assert load_ehd(path).n_classes == 3
    with pytest.raises(EHDFileError, match="max_bytes"):
        load_ehd(path, max_bytes=1000)
    monkeypatch.setenv("HDC_MAX_LOAD_BYTES", "1000")
    with pytest.raises(EHDFileError, match="max_bytes"):
        load_ehd(path)
    assert load_ehd(path, max_bytes=2**30).n_classes == 3
    monkeypatch.setenv("HDC_MAX_LOAD_BYTES", "lots")
    with pytest.raises(ValueError, match="HDC_MAX_LOAD_BYTES"):
        load_ehd(path)


def summary(result: dict[str, Any]) -> str:
    """A markdown table of outcomes by category, and the worst file's time and memory."""
    counts: dict[str, dict[str, int]] = {}
    for r in result["rows"][:-1]:
        c = counts.setdefault(r["category"], {"tried": 0, "refused": 0, "loaded": 0, "crashed": 0})
        c["tried"] += 1
        c[r["outcome"]] += 1
    lines = ["| category | tried | refused cleanly | loaded (silently wrong) | crashed |", "|---|---|---|---|---|"]
    for cat, c in counts.items():
        lines.append(f"| {cat} | {c['tried']} | {c['refused']} | {c['loaded']} | {c['crashed']} |")
    total = {k: sum(c[k] for c in counts.values()) for k in ("tried", "refused", "loaded", "crashed")}
    lines.append(f"| **all** | {total['tried']} | {total['refused']} | {total['loaded']} | {total['crashed']} |")
    slow = max(result["rows"][:-1], key=lambda r: r["seconds"])
    big = max(result["rows"][:-1], key=lambda r: r["peak_bytes"])
    lines.append("")
    lines.append(
        f"slowest: {slow['name']} ({slow['seconds'] * 1000:.1f} ms); largest peak (tracemalloc): "
        f"{big['name']} ({big['peak_bytes'] / 2**20:.2f} MiB); RSS growth of the whole corpus: "
        f"{result['rss_growth_bytes'] / 2**20:.1f} MiB above the {result['rss_after_import_bytes'] / 2**20:.0f} MiB "
        "peak after the imports"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = probe(build_corpus(Path(tmp)))
    print(summary(res))
    for r in res["rows"]:
        if r["outcome"] != "refused":
            print(r["name"], r["outcome"], r["message"])
    print(
        f"files: {len(res['rows'])}, max seconds {max(r['seconds'] for r in res['rows']):.3f}, "
        f"sum {math.fsum(r['seconds'] for r in res['rows']):.2f}"
    )


# ------------------------------------------------------------------------------------------------ IDX (MNIST) files


def _gzip_idx(path: Path, dims: tuple[int, ...], payload_bytes: int) -> Path:
    """A gzipped IDX header declaring ``dims`` followed by ``payload_bytes`` zero bytes, streamed (never in memory)."""
    import gzip
    import struct

    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims))
        chunk = bytes(2**24)
        for _ in range(payload_bytes // len(chunk)):
            fh.write(chunk)
        fh.write(bytes(payload_bytes % len(chunk)))
    return path


@pytest.mark.parametrize(
    "dims, payload, match",
    [
        ((60000, 28, 28), 2**30, "trailing bytes"),  # 1 GiB of inflated zeros behind a real MNIST header
        ((2**16, 2**16, 2**8), 2**20, "max_bytes"),  # a header declaring 1 TiB
        ((2**15, 2**15), 2**20, "truncated"),  # declares 1 GiB, holds 1 MiB: nothing beyond what arrives
    ],
)
def test_idx_bombs_are_refused_with_bounded_memory(tmp_path, dims, payload, match):
    import time
    import tracemalloc

    from hdc.datasets.idx import read_idx

    path = _gzip_idx(tmp_path / "train-images-idx3-ubyte.gz", dims, payload)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        read_idx(path)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # The declared array is allocated lazily (np.empty), so only the bytes that arrive are ever touched; tracemalloc
    # counts the whole reservation, hence the bound on the declared size rather than the 100 MB of RSS.
    assert peak <= math.prod(dims) + 8 * 2**20 and seconds < 5.0
