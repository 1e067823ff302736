"""A corpus of crafted ``.pt`` checkpoints (torch.save, weights_only-compatible, as a hostile file would be): each is
refused with a :class:`gnet.checkpoint.CheckpointError` in under a second and with under 100 MB of extra memory, by
the API (``load_model``) and by ``gnet eval`` / ``gnet convert`` / ``gnet verify --model`` (exit 2, one line).

``python tests/test_crafted_checkpoints.py`` prints the corpus's counts by category and the worst time and memory.
"""

from __future__ import annotations

import collections
import copy
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SPECS = [
    {"type": "flatten"},
    {"type": "linear", "in": 64, "out": 16, "bias_init": 5e-5},
    {"type": "rasu"},
    {"type": "classifier", "in": 16, "classes": 10, "bias_init": 5e-5, "scale": 10.0},
]
BASE_CONFIG = {
    "family": "gnet",
    "method": "gnet",
    "architecture": SPECS,
    "input_shape": [1, 8, 8],
    "n_classes": 10,
    "dataset": "digits",
}


def _valid_payload() -> dict[str, Any]:
    from gnet.models import build_model

    model = build_model(SPECS, seed=0)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"format": "gnet-float-checkpoint", "version": 1, "config": copy.deepcopy(BASE_CONFIG), "state_dict": state}


def _save(path: Path, payload: Any) -> None:
    if isinstance(payload, dict) and not isinstance(payload.get("config"), (str, bytes, torch.Tensor, int, type(None))):
        payload = {**payload, "config": json.dumps(payload["config"])}
    torch.save(payload, path)


Mutation = Callable[[dict[str, Any]], Any]


def _cfg(fn: Callable[[dict[str, Any]], Any]) -> Mutation:
    """A mutation of the config dict (a returned value replaces the whole config)."""

    def mutate(p: dict[str, Any]) -> None:
        result = fn(p["config"])
        if result is not None:
            p["config"] = result

    return mutate


def _layer(i: int, **values: Any) -> Mutation:
    return _cfg(lambda c: c["architecture"][i].update(values))


def _sd(fn: Callable[[dict[str, torch.Tensor]], None]) -> Mutation:
    return lambda p: fn(p["state_dict"])


def _big_linear(n_in: int, n_out: int) -> Mutation:
    """The hidden layer declared n_in x n_out (the state_dict stays the small model's)."""

    def mutate(c: dict[str, Any]) -> None:
        c["architecture"] = [
            {"type": "flatten"},
            {"type": "linear", "in": n_in, "out": n_out},
            {"type": "rasu"},
            {"type": "classifier", "in": n_out, "classes": 10},
        ]
        c.pop("input_shape")

    return _cfg(mutate)


def _bnn(p: dict[str, Any]) -> None:
    p["config"] = {**p["config"], "family": "bnn", "method": "fda", "seed": -3}


def _difflogic(**spec: Any) -> Mutation:
    base = {"architecture": "difflogic", "in_features": 64, "n_classes": 10, "width": 1000, "depth": 3, "tau": 10.0}

    def mutate(c: dict[str, Any]) -> dict[str, Any]:
        return {**c, "family": "difflogic", "method": "difflogic", "architecture": {**base, **spec}}

    return _cfg(mutate)


def _nested(depth: int) -> Mutation:
    return lambda p: p.update(config="[" * depth + "]" * depth)


CASES: list[tuple[str, str, Mutation]] = [
    # the payload or its config is not what a checkpoint holds
    ("not a checkpoint config", "config is a list", _cfg(lambda c: [1, 2, 3])),
    ("not a checkpoint config", "config is a JSON string", lambda p: p.update(config='"gnet"')),
    ("not a checkpoint config", "config is null", lambda p: p.update(config="null")),
    ("not a checkpoint config", "config is not JSON", lambda p: p.update(config="{architecture: [")),
    ("not a checkpoint config", "config is an int", lambda p: p.update(config=7)),
    ("not a checkpoint config", "config nested 100000 deep", _nested(100_000)),
    ("not a checkpoint config", "payload is a list", lambda p: [1, 2]),
    ("not a checkpoint config", "no format tag", lambda p: p.pop("format")),
    ("not a checkpoint config", "version 2", lambda p: p.update(version=2)),
    ("not a checkpoint config", "version '1'", lambda p: p.update(version="1")),
    # keys missing
    ("missing keys", "no architecture", _cfg(lambda c: c.pop("architecture") and None)),
    ("missing keys", "no state_dict", lambda p: p.pop("state_dict")),
    ("missing keys", "linear without in", _cfg(lambda c: c["architecture"][1].pop("in") and None)),
    ("missing keys", "classifier without classes", _cfg(lambda c: c["architecture"][3].pop("classes") and None)),
    ("missing keys", "bnn without method", _cfg(lambda c: c.update(family="bnn", method=None))),
    ("missing keys", "difflogic without width", _cfg(lambda c: None)),  # replaced below
    # wrong types
    ("wrong types", "architecture is a dict", _cfg(lambda c: c.update(architecture={"type": "linear"}))),
    ("wrong types", "architecture is a string", _cfg(lambda c: c.update(architecture="digits"))),
    ("wrong types", "layer is a list", _cfg(lambda c: c["architecture"].__setitem__(1, ["linear", 64, 16]))),
    ("wrong types", "in is a string", _layer(1, **{"in": "64"})),
    ("wrong types", "in is a float", _layer(1, **{"in": 64.0})),
    ("wrong types", "out is a bool", _layer(1, out=True)),
    ("wrong types", "batch_norm is a string", _layer(1, batch_norm="yes")),
    ("wrong types", "family is a list", _cfg(lambda c: c.update(family=["gnet"]))),
    ("wrong types", "method is a number", _cfg(lambda c: c.update(method=3))),
    ("wrong types", "input_shape is a dict", _cfg(lambda c: c.update(input_shape={"c": 1}))),
    ("wrong types", "n_classes is a string", _cfg(lambda c: c.update(n_classes="10"))),
    ("wrong types", "train is a list", _cfg(lambda c: c.update(train=[1]))),
    ("wrong types", "difflogic width is a string", _difflogic(width="1000")),
    ("wrong types", "state_dict value is a list", _sd(lambda s: s.update({"1.weight": [0.0] * 4}))),
    # values out of range or inconsistent
    ("out of range", "unknown family", _cfg(lambda c: c.update(family="resnet"))),
    ("out of range", "unknown method", _cfg(lambda c: c.update(method="adam"))),
    ("out of range", "method of another family", _cfg(lambda c: c.update(method="fda"))),
    ("out of range", "unknown layer type", _layer(2, type="relu")),
    ("out of range", "zero units", _layer(1, out=0)),
    ("out of range", "negative dropout p", _cfg(lambda c: c["architecture"].insert(3, {"type": "dropout", "p": -1}))),
    ("out of range", "stride 0", _cfg(lambda c: c["architecture"].insert(0, _conv(stride=0)))),
    ("out of range", "padding -1", _cfg(lambda c: c["architecture"].insert(0, _conv(padding=-1)))),
    (
        "out of range",
        "kernel of 3 values in conv2d",
        _cfg(lambda c: c["architecture"].insert(0, _conv(kernel=[3] * 3))),
    ),
    ("out of range", "NaN alpha", _layer(2, alpha=float("nan"))),
    ("out of range", "last layer not a classifier", _cfg(lambda c: c["architecture"].append({"type": "rasu"}))),
    ("out of range", "n_classes differs", _cfg(lambda c: c.update(n_classes=7))),
    ("out of range", "layers do not chain", _layer(1, **{"in": 63})),
    ("out of range", "bnn negative seed", _bnn),
    ("out of range", "difflogic tau 0", _difflogic(tau=0.0)),
    ("out of range", "difflogic depth 0", _difflogic(depth=0)),
    # what the config would make the loader allocate
    ("absurd sizes", "10**6 x 10**6 linear", _big_linear(10**6, 10**6)),
    ("absurd sizes", "23000 x 23000 linear", _big_linear(23000, 23000)),
    ("absurd sizes", "conv of 10**4 x 10**4 channels", _cfg(lambda c: c.update(architecture=_wide_conv(10**4)))),
    ("absurd sizes", "20000 layers", _cfg(lambda c: c.update(architecture=[{"type": "rasu"}] * 20000 + SPECS))),
    ("absurd sizes", "input of 10**5 x 10**5", _cfg(lambda c: c.update(**_pooled(10**5, 1)))),
    ("absurd sizes", "padding 10**5", _cfg(lambda c: c.update(**_pooled(8, 10**5)))),
    ("absurd sizes", "difflogic 10**9 gates", _difflogic(width=10**9)),
    ("absurd sizes", "bnn fda noise of 2**20 inputs", _cfg(lambda c: c.update(**_bnn_wide(2**20)))),
    # the weights
    ("bad weights", "NaN weight", _sd(lambda s: s["1.weight"].__setitem__((0, 0), float("nan")))),
    ("bad weights", "inf bias", _sd(lambda s: s["3.bias"].fill_(float("inf")))),
    ("bad weights", "missing key", _sd(lambda s: s.pop("2.alpha") and None)),
    ("bad weights", "extra key", _sd(lambda s: s.update({"9.weight": torch.zeros(2)}))),
    ("bad weights", "wrong shape", _sd(lambda s: s.update({"1.weight": torch.zeros(16, 65)}))),
    ("bad weights", "float64 weights", _sd(lambda s: s.update({"1.weight": s["1.weight"].double()}))),
    ("bad weights", "huge declared shape (stride-0 view)", _sd(lambda s: s.update({"1.weight": _huge_view()}))),
]
SPECIAL = [
    ("damaged file", "not a zip file"),
    ("damaged file", "truncated"),
    ("damaged file", "deflated members"),
    ("damaged file", "256 MiB deflate bomb"),
    ("damaged file", "storage declares 2**40 elements"),
]


def _conv(**kw: Any) -> dict[str, Any]:
    return {"type": "conv2d", "in": 1, "out": 1, "kernel": 3, "padding": 1, **kw}


def _wide_conv(channels: int, padding: int = 1) -> list[dict[str, Any]]:
    return [
        {"type": "conv2d", "in": 1, "out": channels, "kernel": 3, "padding": padding},
        {"type": "conv2d", "in": channels, "out": channels, "kernel": 3, "padding": 1},
        {"type": "flatten"},
        {"type": "classifier", "in": channels * (8 + 2 * padding - 2) ** 2, "classes": 10},
    ]


def _pooled(side: int, padding: int) -> dict[str, Any]:
    """A conv net whose only large part is its first activation: 4 channels of (side + 2 padding) ** 2 pixels,
    pooled to one pixel each."""
    return {
        "input_shape": [1, side, side],
        "architecture": [
            {"type": "conv2d", "in": 1, "out": 4, "kernel": 3, "padding": padding},
            {"type": "maxpool2d", "kernel": side + 2 * padding - 2},
            {"type": "flatten"},
            {"type": "classifier", "in": 4, "classes": 10},
        ],
    }


def _bnn_wide(width: int) -> dict[str, Any]:
    return {
        "family": "bnn",
        "method": "fda",
        "input_shape": None,
        "architecture": [{"type": "flatten"}, {"type": "linear", "in": width, "out": 10}],
    }


def _huge_view() -> torch.Tensor:
    return torch.zeros(1).expand(2**20, 2**20)


def _difflogic_without_width(p: dict[str, Any]) -> None:
    _difflogic()(p)
    del p["config"]["architecture"]["width"]


CASES[15] = ("missing keys", "difflogic without width", _difflogic_without_width)


class _Marker:
    pass


class _FakeTensor:
    """Pickles as a float tensor over storage ``'0'`` (whose declared size :class:`_LyingPickler` writes)."""

    def __reduce__(self) -> tuple:
        return (
            torch._utils._rebuild_tensor_v2,
            (_MARK, 0, (2**20, 2**20), (2**20, 1), False, collections.OrderedDict()),
        )


_MARK = _Marker()


class _LyingPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return ("storage", torch.FloatStorage, "0", "cpu", 2**40) if obj is _MARK else None


def _rewrite(path: Path, edit: Callable[[dict[str, bytes]], None], method: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    edit(members)
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _special(name: str, path: Path) -> None:
    _save(path, _valid_payload())
    if name == "not a zip file":
        path.write_bytes(b"PK\x03\x04" + bytes(100))
    elif name == "truncated":
        path.write_bytes(path.read_bytes()[:-300])
    elif name == "deflated members":
        _rewrite(path, lambda m: None, zipfile.ZIP_DEFLATED)
    elif name == "256 MiB deflate bomb":
        with (
            zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf,
            zf.open(f"{path.stem}/data/999", "w", force_zip64=True) as fh,
        ):
            for _ in range(16):
                fh.write(bytes(2**24))
    else:  # a pickle whose storage declares 2**40 floats, stored in 16 bytes

        def edit(members: dict[str, bytes]) -> None:
            buf = io.BytesIO()
            _LyingPickler(buf, protocol=2).dump({"format": "gnet-float-checkpoint", "t": _FakeTensor()})
            pkl = next(k for k in members if k.endswith("data.pkl"))
            members[pkl] = buf.getvalue()
            members[pkl.replace("data.pkl", "data/0")] = bytes(16)

        _rewrite(path, edit)


def build_corpus(out: Path) -> list[tuple[str, str, Path]]:
    """Write every crafted checkpoint under ``out``; returns (category, name, path), the valid controls last."""
    corpus = []
    for k, (category, name, mutate) in enumerate(CASES):
        payload = _valid_payload()
        result = mutate(payload)
        path = out / f"case{k:02d}.pt"
        _save(path, result if isinstance(result, list) else payload)
        corpus.append((category, name, path))
    for k, (category, name) in enumerate(SPECIAL):
        path = out / f"special{k}.pt"
        _special(name, path)
        corpus.append((category, name, path))
    corpus += [("valid", name, path) for name, path in _valid_files(out)]
    return corpus


def _valid_files(out: Path) -> list[tuple[str, Path]]:
    """A float G-Net, an FDA binary network and a DiffLogic net, saved by save_checkpoint (they must load)."""
    from gnet.bnn.models import build_bnn
    from gnet.checkpoint import save_checkpoint
    from gnet.logic.models import build_difflogic, difflogic_spec
    from gnet.models import architecture, build_model

    gnet = out / "valid_gnet.pt"
    save_checkpoint(gnet, build_model(SPECS), BASE_CONFIG)
    bnn_model = build_bnn(architecture("digits"), "fda")
    bnn = save_checkpoint(out / "valid_bnn.pt", bnn_model, {"family": "bnn", **bnn_model.model_config()})
    spec = difflogic_spec("difflogic-digits")
    logic = save_checkpoint(
        out / "valid_difflogic.pt",
        build_difflogic(spec),
        {"family": "difflogic", "method": "difflogic", "architecture": spec, "n_classes": 10},
    )
    return [("valid gnet", gnet), ("valid bnn (fda)", bnn), ("valid difflogic", logic)]


_PROBE = r"""
import json, resource, sys, time, tracemalloc
from gnet.checkpoint import CheckpointError, load_model
import gnet.bnn.models, gnet.logic.models  # noqa: F401  (imports are not the files' doing)
rows = []
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss_crafted = None
for category, name, path in json.loads(sys.stdin.read()):
    if category == "valid" and rss_crafted is None:
        rss_crafted = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        load_model(path)
        outcome, message = "loaded", ""
    except CheckpointError as err:
        outcome, message = "refused", str(err)
    except BaseException as err:
        outcome, message = "crashed", f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows.append(dict(category=category, name=name, outcome=outcome, message=message[:400], seconds=seconds,
                     peak_bytes=peak))
print(json.dumps(dict(rows=rows, rss_growth_bytes=(rss_crafted - rss0) * 1024, rss_after_import_bytes=rss0 * 1024)))
"""


def probe(corpus: list[tuple[str, str, Path]]) -> dict[str, Any]:
    """Load every file in a fresh process (so its peak RSS is the files' doing); per file: outcome, time, peak."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    payload = json.dumps([(c, n, str(p)) for c, n, p in corpus])
    run = subprocess.run(
        [sys.executable, "-c", _PROBE], input=payload, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("crafted_pt"))


@pytest.fixture(scope="module")
def probed(corpus):
    return probe(corpus)


def test_corpus_is_refused_quickly_with_bounded_memory(probed):
    rows = probed["rows"]
    assert len(rows) == len(CASES) + len(SPECIAL) + 3
    crafted = [r for r in rows if r["category"] != "valid"]
    assert all(r["outcome"] == "loaded" for r in rows if r["category"] == "valid"), rows[-3:]
    bad = [r for r in crafted if r["outcome"] != "refused"]
    assert not bad, bad
    for r in crafted:
        assert r["seconds"] < 1.0, r
        assert r["peak_bytes"] < 100 * 2**20, r
        assert r["message"].count("\n") == 0 and ".pt" in r["message"], r
    assert probed["rss_growth_bytes"] < 100 * 2**20


def test_refusals_name_the_problem(probed):
    by_name = {r["name"]: r["message"] for r in probed["rows"]}
    assert "must be a JSON object, got list" in by_name["config is a list"]
    assert "lacks 'architecture'" in by_name["no architecture"]
    assert "max_bytes" in by_name["10**6 x 10**6 linear"]
    assert "needs at least 529" in by_name["23000 x 23000 linear"]  # the file stores far fewer weights
    assert "architecture[1].in must be an integer" in by_name["in is a float"]
    assert "architecture[0].stride must be >= 1" in by_name["stride 0"]
    assert "NaN or infinite" in by_name["NaN weight"] and "'1.weight'" in by_name["NaN weight"]
    assert "lacks '2.alpha'" in by_name["missing key"]
    assert "'1.weight'" in by_name["wrong shape"] and "(16, 65)" in by_name["wrong shape"]
    assert "compressed members" in by_name["256 MiB deflate bomb"]
    assert "unknown model family 'resnet'" in by_name["unknown family"]


def test_cli_refuses_each_file_in_one_line(corpus, tmp_path, capsys):
    """gnet eval, gnet convert and gnet verify --model refuse every crafted file before loading any data."""
    from gnet.cli import main

    for category, name, path in corpus:
        if category == "valid":
            continue
        for argv in (
            ["eval", str(path)],
            ["convert", str(path), "--out", str(tmp_path / "m.ehd")],
            ["verify", "--model", str(path), "--out", str(tmp_path / "report")],
        ):
            assert main(argv) == 2, (name, argv)
            err = capsys.readouterr().err
            assert err.startswith(f"gnet {argv[0]}: error: ") and err.count("\n") == 1, (name, err)
    assert not (tmp_path / "m.ehd").exists() and not (tmp_path / "report").exists()


def test_schema_estimate_bounds_every_family_and_architecture():
    """The size estimate from the specs alone is an upper bound of the built model's state (bytes) and its
    min_stored a lower bound of the values the state_dict holds, for every named architecture and method."""
    from gnet.bnn.models import METHODS, build_bnn
    from gnet.checkpoint_schema import check_config
    from gnet.logic.models import build_difflogic, difflogic_spec
    from gnet.models import architecture, build_model

    def check(model: torch.nn.Module, config: dict[str, Any]) -> None:
        estimate = check_config(config)
        state = model.state_dict().values()
        assert sum(v.numel() * v.element_size() for v in state) <= estimate.param_bytes
        assert estimate.min_stored <= sum(v.numel() for v in state)

    shapes = {"mnist": [1, 28, 28], "cifar10": [3, 32, 32], "timeseries": [1, 150], "mlp": [64], "digits": [1, 8, 8]}
    for name, shape in shapes.items():
        specs = architecture(name)
        classes = specs[-1]["classes"]
        check(build_model(specs), {"architecture": specs, "input_shape": shape, "n_classes": classes})
        for method in METHODS:
            bnn = build_bnn(specs, method)
            check(bnn, {"family": "bnn", **bnn.model_config(), "input_shape": shape, "n_classes": classes})
    for preset in ("difflogic-digits", "difflogic-breast-cancer"):
        spec = difflogic_spec(preset)
        check(build_difflogic(spec), {"family": "difflogic", "architecture": spec})


def test_max_bytes_argument_and_environment(tmp_path, monkeypatch):
    from gnet.checkpoint import CheckpointError, load_model
    from gnet.models import build_model

    (name, path), *_ = _valid_files(tmp_path)
    assert load_model(path)[1]["n_classes"] == 10
    with pytest.raises(CheckpointError, match="max_bytes"):
        load_model(path, max_bytes=10_000)
    monkeypatch.setenv("HDC_MAX_LOAD_BYTES", "10000")
    with pytest.raises(CheckpointError, match="max_bytes"):
        load_model(path)
    from gnet.checkpoint import build_from_config

    with pytest.raises(CheckpointError, match="max_bytes"):
        build_from_config(BASE_CONFIG)
    assert load_model(path, max_bytes=2**30)[0][1].weight.shape == build_model(SPECS)[1].weight.shape


def summary(result: dict[str, Any]) -> str:
    """A markdown table of outcomes by category, and the worst file's time and memory."""
    counts: dict[str, dict[str, int]] = {}
    crafted = [r for r in result["rows"] if r["category"] != "valid"]
    for r in crafted:
        c = counts.setdefault(r["category"], {"tried": 0, "refused": 0, "loaded": 0, "crashed": 0})
        c["tried"] += 1
        c[r["outcome"]] += 1
    lines = ["| category | tried | refused cleanly | loaded (silently wrong) | crashed |", "|---|---|---|---|---|"]
    for cat, c in counts.items():
        lines.append(f"| {cat} | {c['tried']} | {c['refused']} | {c['loaded']} | {c['crashed']} |")
    total = {k: sum(c[k] for c in counts.values()) for k in ("tried", "refused", "loaded", "crashed")}
    lines.append(f"| **all** | {total['tried']} | {total['refused']} | {total['loaded']} | {total['crashed']} |")
    slow = max(crafted, key=lambda r: r["seconds"])
    big = max(crafted, key=lambda r: r["peak_bytes"])
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
            print(f"{r['category']}: {r['name']}: {r['outcome']} {r['message']}")
