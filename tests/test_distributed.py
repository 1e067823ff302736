"""torch.distributed: data-parallel training equals one process; sharded EHD evaluation and sweeps equal one process.

The multi-process tests launch 2 CPU ranks with torchrun (gloo on the loopback interface only, a free port, each
launch bounded by a timeout). This file is also the workers' script: ``python3 tests/test_distributed.py MODE ARGS``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnet.checkpoint import load_checkpoint, load_model
from gnet.data import load_dataset
from gnet.distributed import evaluate_sharded, shard_range, sweep_sharded
from gnet.ehd import convert, sweep
from gnet.models import architecture, build_model
from gnet.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN = 301  # global batches of 64: four full ones, then 45 items (ranks split it 22 / 23)
BATCH = 64
N_TEST = 180
DIMS = [32, 96]
SEEDS = [0, 1, 2]
LAUNCH_TIMEOUT_S = 120


def _data():
    data = load_dataset("digits", val_fraction=0.1, seed=0)
    x, y = data.train.tensors
    return (x[:N_TRAIN], y[:N_TRAIN]), data.val.tensors, data.test.tensors


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(architecture("digits"))  # no BatchNorm, no dropout: DDP can match one process


def _config(epochs: int, batch_size: int = BATCH) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=2e-3, seed=3)


def _model_config() -> dict:
    return {"architecture": architecture("digits"), "input_shape": [1, 8, 8], "n_classes": 10, "dataset": "digits"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
    }


def _launch(*args: str) -> str:
    """Run this file (or ``-m MODULE ...``, or another script) as a 2-rank torchrun job on the loopback interface;
    returns its stdout."""
    env = _env()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2"]
    cmd += ["--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    cmd += list(args) if args[0] == "-m" or args[0].endswith(".py") else [__file__, *args]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


# --- the workers (run under torchrun) -------------------------------------------------------------------------


def _worker_train(out: Path, resume_from: Path) -> None:
    """A fresh 1-epoch run, a resume of a single-process last.pt to epoch 2, and the batch-size check."""
    from gnet.distributed import init_distributed, is_main, shutdown

    init_distributed()
    train_pair, val_pair, _ = _data()
    common = {"train_data": train_pair, "val_data": val_pair, "model_config": _model_config(), "progress": False}
    train(_model(), config=_config(1), out_dir=out / "fresh", **common)
    train(_model(), config=_config(2), out_dir=out / "resumed", resume=resume_from, **common)
    try:
        train(_model(), config=_config(1, batch_size=63), **common)
        message = ""
    except ValueError as err:
        message = str(err)
    if is_main():
        (out / "batch_error.txt").write_text(message)
    shutdown()


def _worker_ehd(out: Path, checkpoint: Path) -> None:
    from gnet.distributed import init_distributed, is_main, shutdown

    init_distributed()
    model, _ = load_model(checkpoint)
    _, _, (x, y) = _data()
    x, y = x[:N_TEST], y[:N_TEST]
    ehd = convert(model, dim=64, seed=5)
    evaluation = evaluate_sharded(lambda xs: ehd.predict(xs, batch_size=50), x, y)
    result = sweep_sharded(model, x, y, DIMS, SEEDS, batch_size=50, float_accuracy=0.5)
    if is_main():
        record = {"correct": evaluation.correct, "n_items": evaluation.n_items, "sweep": result.to_dict()}
        (out / "ehd.json").write_text(json.dumps(record))
    shutdown()


# --- the tests ------------------------------------------------------------------------------------------------


def test_shard_range_covers_every_item_once():
    for n_items in (0, 1, 5, 64, 301):
        for world in (1, 2, 3, 7):
            ranges = [shard_range(n_items, r, world) for r in range(world)]
            assert ranges[0][0] == 0 and ranges[-1][1] == n_items
            assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
            sizes = [stop - start for start, stop in ranges]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        shard_range(10, 2, 2)


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory):
    """One process: a 1-epoch run (its last.pt is the resume point) and the same run continued to epoch 2."""
    out = tmp_path_factory.mktemp("single")
    train_pair, val_pair, _ = _data()
    one = _model()
    train(one, train_pair, val_pair, _config(1), _model_config(), out_dir=out / "one", progress=False)
    two = _model()
    train(two, train_pair, val_pair, _config(2), _model_config(), resume=out / "one" / "last.pt", progress=False)
    return out, one, two


def _max_difference(state_a: dict, state_b: dict) -> float:
    assert state_a.keys() == state_b.keys()
    return max(float((state_a[k].double() - state_b[k].double()).abs().max()) for k in state_a)


# Two ranks sum the gradient of the same global batch in another order (two half-batch sums, then all_reduce), so
# the weights differ from one process's by float32 rounding only. Adam divides by sqrt(v): on its first steps a
# coordinate whose gradient is tiny moves by about lr * g / (|g| + eps), where the rounding of g shows far more than
# in g itself. Measured here: 4.7e-6 after the fresh epoch, 6e-8 after the resumed one (Adam's moments warmed up);
# a run whose batches differ (another shuffle seed) differs by 1.8e-2. 1e-4 sits 20x above the first and 180x
# below the last: it tolerates rounding and still catches a wrong batch order.
WEIGHT_TOLERANCE = 1e-4


def test_two_rank_epoch_and_resume_match_one_process(single_runs, tmp_path):
    out, one, two = single_runs
    _launch("train", str(tmp_path), str(out / "one" / "last.pt"))
    fresh = load_checkpoint(tmp_path / "fresh" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert _max_difference(fresh["state_dict"], one.state_dict()) < WEIGHT_TOLERANCE
    assert _max_difference(resumed["state_dict"], two.state_dict()) < WEIGHT_TOLERANCE
    single = json.loads((out / "one" / "history.json").read_text())["history"][0]
    ranks = json.loads((tmp_path / "fresh" / "history.json").read_text())["history"][0]
    assert ranks["train_loss"] == pytest.approx(single["train_loss"], rel=1e-5)
    assert ranks["train_accuracy"] == single["train_accuracy"]  # counts: exact
    assert ranks["val_accuracy"] == single["val_accuracy"]
    assert "divisible by the number of ranks (2)" in (tmp_path / "batch_error.txt").read_text()


def test_two_rank_ehd_evaluation_and_sweep_match_one_process(single_runs, tmp_path):
    out, model, _ = single_runs
    _launch("ehd", str(tmp_path), str(out / "one" / "best.pt"))
    got = json.loads((tmp_path / "ehd.json").read_text())
    model.eval()
    _, _, (x, y) = _data()
    x, y = x[:N_TEST], y[:N_TEST]
    want_correct = int((convert(model, dim=64, seed=5).predict(x, batch_size=50) == y).sum())
    assert (got["correct"], got["n_items"]) == (want_correct, N_TEST)
    want = sweep(model, x, y, DIMS, SEEDS, batch_size=50, float_accuracy=0.5).to_dict()
    for record in (got["sweep"], want):
        for p in record["points"]:
            p.pop("seconds")
    assert got["sweep"] == json.loads(json.dumps(want))


def test_cli_train_on_two_ranks_matches_one_process(tmp_path):
    flags = ["train", "--dataset", "digits", "--epochs", "1", "--batch-size", "64", "--quiet"]
    single = subprocess.run(
        [sys.executable, "-m", "gnet", *flags, "--out", str(tmp_path / "one")],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    _launch("-m", "gnet", *flags, "--out", str(tmp_path / "two"))
    one, two = (load_checkpoint(tmp_path / run / "last.pt")["state_dict"] for run in ("one", "two"))
    assert _max_difference(one, two) < WEIGHT_TOLERANCE
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("one", "two")]
    assert summaries[0]["test_accuracy_last"] == summaries[1]["test_accuracy_last"]
    refused = subprocess.run(
        [sys.executable, "-m", "gnet", *flags, "--out", str(tmp_path / "x"), "--distributed"],
        env={k: v for k, v in _env().items() if k not in ("RANK", "WORLD_SIZE")},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert refused.returncode == 2 and "torchrun" in refused.stderr


def _gnet(*args: str) -> str:
    """``python3 -m gnet ARGS`` in one process; returns its stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "gnet", *args],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _sweep_record(path: Path) -> dict:
    record = json.loads(path.read_text())
    for p in record["points"]:
        p.pop("seconds")
    return record


def test_cli_sweep_and_ehd_eval_on_two_ranks_match_one_process(single_runs, tmp_path):
    out, _, _ = single_runs
    checkpoint = str(out / "one" / "best.pt")
    flags = ["sweep", checkpoint, "--dim", *map(str, DIMS), "--seeds", "2", "--limit", str(N_TEST), "--quiet"]
    _gnet(*flags, "--out", str(tmp_path / "one"))
    _launch("-m", "gnet", *flags, "--out", str(tmp_path / "two"))
    one, two = (_sweep_record(tmp_path / run / "sweep.json") for run in ("one", "two"))
    assert len(two["points"]) == len(DIMS) * 2 and two == one
    ehd = str(tmp_path / "model.ehd")
    _gnet("convert", checkpoint, "--dim", "64", "--seed", "5", "--out", ehd)
    pattern = r"EHD test accuracy (\d\.\d+) on (\d+) items"
    single = re.findall(pattern, _gnet("eval", ehd, "--limit", str(N_TEST), "--batch-size", "50", "--quiet"))
    ranks = re.findall(pattern, _launch("-m", "gnet", "eval", ehd, "--limit", str(N_TEST), "--batch-size", "50"))
    assert single == ranks == [(single[0][0], str(N_TEST))]  # rank 0 alone prints


def test_sharded_helpers_in_one_process_equal_the_plain_calls(single_runs):
    _, model, _ = single_runs
    model.eval()
    _, _, (x, y) = _data()
    x, y = x[:60], y[:60]
    ehd = convert(model, dim=32, seed=1)
    assert evaluate_sharded(ehd.predict, x, y).accuracy == ehd.evaluate(x, y).accuracy
    got = sweep_sharded(model, x, y, [32], [0, 1], batch_size=30)
    want = sweep(model, x, y, [32], [0, 1], batch_size=30)
    assert [(p.dim, p.seed, p.accuracy) for p in got.points] == [(p.dim, p.seed, p.accuracy) for p in want.points]


if __name__ == "__main__":
    mode, out_dir, path = sys.argv[1:4]
    torch.set_num_threads(1)
    {"train": _worker_train, "ehd": _worker_ehd}[mode](Path(out_dir), Path(path))


def test_reproduce_script_on_two_ranks_matches_one_process(single_runs, tmp_path):
    """benchmarks/reproduce.py under torchrun: the sweep's points are dealt to the ranks, rank 0 writes the files,
    and the sweep file equals a single process's (apart from the seconds and the finishing time)."""
    out, _, _ = single_runs
    script = str(ROOT / "benchmarks" / "reproduce.py")
    flags = ["--dataset", "digits", "--activations", "rasu", "--embeddings", "gaussian", "--stages", "sweep"]
    flags += ["--checkpoint", f"rasu={out / 'one' / 'best.pt'}", "--n-grid", *map(str, DIMS), "--seeds", "2"]
    flags += ["--limit", str(N_TEST), "--quiet"]
    subprocess.run(
        [sys.executable, script, *flags, "--out", str(tmp_path / "one")],
        env=_env(),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    _launch(script, *flags, "--out", str(tmp_path / "two"))
    one, two = (json.loads((tmp_path / run / "sweep_rasu_gaussian.json").read_text()) for run in ("one", "two"))
    for record in (one, two):
        for key in ("seconds", "finished_utc", "command"):
            record.pop(key)
        for point in record["points"]:
            point.pop("seconds")
    assert len(two["points"]) == len(DIMS) * 2 and two == one


COMPARE_FLAGS = ["compare", "--dataset", "digits", "--preset", "tiny", "--seeds", "1", "--dims", "128"]
# No BatchNorm or dropout in these (the digits G-Net and what is deployed from it, and an HDC classifier); 121 test
# items split 60 / 61. Training is data-parallel, the HDC fit runs on both ranks, every accuracy is sharded.
COMPARE_FLAGS += ["--limit", "121", "--methods", "gnet-float,ehd-paper,centroidhd,hdc-on-ehd-codes", "--quiet"]
TIMING = ("train_seconds", "deploy_seconds", "row_seconds")


def _compare_rows(path: Path) -> list[dict]:
    """The rows without their timings; for rows deployed from a trained network also without the SHA-256 of the
    checkpoint and of the deployed file (two ranks give the weights to float rounding only; compared apart)."""
    rows = json.loads(path.read_text())["rows"]
    for row in rows:
        for key in TIMING:
            row.pop(key)
        if row["checkpoint"] is not None:
            row["checkpoint"].pop("sha256")
            row["deployed_file"].pop("sha256")
    return rows


def test_cli_compare_on_two_ranks_matches_one_process(tmp_path, monkeypatch):
    from gnet.cli import main
    from gnet.compare import recipe_for
    from gnet.compare.methods import check_batches

    _gnet(*COMPARE_FLAGS, "--out", str(tmp_path / "one"))
    _launch("-m", "gnet", *COMPARE_FLAGS, "--out", str(tmp_path / "two"))
    one, two = (json.loads((tmp_path / run / "compare.json").read_text()) for run in ("one", "two"))
    assert [r["status"] for r in two["rows"]] == ["done"] * 4
    assert _compare_rows(tmp_path / "two" / "compare.json") == _compare_rows(tmp_path / "one" / "compare.json")
    assert two["rows"][2]["deployed_file"] == one["rows"][2]["deployed_file"]  # the HDC fit: the same file
    weights = [load_checkpoint(tmp_path / run / two["rows"][0]["checkpoint"]["path"]) for run in ("one", "two")]
    assert _max_difference(weights[0]["state_dict"], weights[1]["state_dict"]) < WEIGHT_TOLERANCE
    for record in (one, two):
        for entry in record["summary"]:
            entry.pop("train_seconds"), entry.pop("throughput")
    assert two["summary"] == one["summary"] and two["config"] == one["config"]
    assert two["command"] == one["command"].replace(str(tmp_path / "one"), str(tmp_path / "two"))
    assert set(two["throughput"]) == set(one["throughput"]) and two["complete"] and one["complete"]
    assert (two["machine"]["ranks"], one["machine"]["ranks"]) == (2, 1)
    assert sorted(p.name for p in (tmp_path / "two" / "deployed").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "deployed").iterdir()
    )
    # Resume on 2 ranks: rank 0's compare.json decides; a pending row is redone from the checkpoint cache.
    two["rows"][3].update(status="pending", accuracy=None)
    (tmp_path / "two" / "compare.json").write_text(json.dumps(two))
    _launch("-m", "gnet", *COMPARE_FLAGS, "--out", str(tmp_path / "two"))
    again = _compare_rows(tmp_path / "two" / "compare.json")
    assert again[3]["checkpoint"].pop("reused") is True
    before = _compare_rows(tmp_path / "one" / "compare.json")
    before[3]["checkpoint"].pop("reused")
    assert again == before
    # Outside torchrun --distributed is refused; a batch the ranks cannot split is refused before any work.
    monkeypatch.delenv("RANK", raising=False)
    assert main([*COMPARE_FLAGS, "--out", str(tmp_path / "x"), "--distributed"]) == 2
    assert not (tmp_path / "x").exists()
    recipe = recipe_for("tiny", "digits")
    check_batches(("gnet-float", "difflogic-small", "centroidhd"), recipe, 2)  # batches 64 and 100
    check_batches(("centroidhd",), recipe, 3)  # fits no network
    with pytest.raises(ValueError, match=r"ranks \(3\): gnet-float \(batch 64\), difflogic-small \(batch 100\)"):
        check_batches(("gnet-float", "difflogic-small", "centroidhd"), recipe, 3)
