"""No training result is lost or silently mixed: ``--out`` over a run, resume with changed settings, Ctrl-C, and the
checks of training data and ``TrainConfig`` at the boundary."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gnet.checkpoint import load_checkpoint, load_model
from gnet.cli import main
from gnet.data import load_dataset
from gnet.models import build_model
from gnet.train import TrainConfig, TrainingInterrupted, train

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--dataset", "digits", "--arch", "mlp", "--batch-size", "64", "--lr", "3e-3", "--quiet"]
SPECS = [
    {"type": "flatten"},
    {"type": "linear", "in": 64, "out": 32},
    {"type": "rasu"},
    {"type": "dropout", "p": 0.3},
    {"type": "classifier", "in": 32, "classes": 10},
]
MODEL_CONFIG = {"architecture": SPECS, "input_shape": [1, 8, 8], "n_classes": 10, "dataset": "digits"}


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits", val_fraction=0.1, seed=0)
    x, y = data.train.tensors
    return (x[:200], y[:200]), data.val.tensors


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 1-epoch ``gnet train`` run directory (copied by each test that changes it)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", *FAST, "--epochs", "1", "--out", str(run)]) == 0
    return run


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def _no_data(monkeypatch):
    """Make loading a data set fail loudly: the checks under test must come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the data set was loaded before the refusal")

    monkeypatch.setattr("gnet.cli.train.load_dataset", refuse)


def _config(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 32, "lr": 3e-3, "plateau_patience": 0, "seed": 7, **kw})


# --- --out over an existing run ------------------------------------------------------------------------------------


def test_out_over_a_run_is_refused_before_loading_data(finished_run, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _snapshot(run)
    _no_data(monkeypatch)
    assert main(["train", *FAST, "--epochs", "1", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gnet train: error: ") and err.count("\n") == 1
    assert "already holds a run (best.pt, last.pt, history.json, summary.json)" in err
    assert f"--resume {run / 'last.pt'}" in err and "--overwrite" in err
    # resuming another run's last.pt into this directory would replace it too
    other = tmp_path / "other"
    shutil.copytree(finished_run, other)
    assert main(["train", *FAST, "--epochs", "2", "--out", str(run), "--resume", str(other / "last.pt")]) == 2
    assert f"continues the run in {other}" in capsys.readouterr().err
    assert _snapshot(run) == before  # nothing was touched
    (tmp_path / "file").write_text("x")
    assert main(["train", *FAST, "--out", str(tmp_path / "file")]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_overwrite_replaces_the_whole_run(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    old_summary = json.loads((run / "summary.json").read_text())
    assert main(["train", *FAST, "--epochs", "2", "--seed", "3", "--out", str(run), "--overwrite"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 2 and old_summary["epochs_run"] == 1
    assert load_checkpoint(run / "last.pt")["config"]["train"]["seed"] == 3


# --- resume with other settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--seed", "1"], ["seed 0 -> 1", "data_seed 0 -> 1"]),
        (["--batch-size", "32"], ["batch_size 64 -> 32"]),
        (["--lr", "0.01", "--weight-decay", "0"], ["lr 0.003 -> 0.01", "weight_decay 1e-05 -> 0.0"]),
        (["--val-fraction", "0.2"], ["val_fraction 0.1 -> 0.2"]),
        (["--method", "bnn"], ['method "gnet" -> "bnn"']),
    ],
)
def test_resume_with_changed_settings_is_refused_naming_them(finished_run, tmp_path, monkeypatch, capsys, flags, named):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _snapshot(run)
    _no_data(monkeypatch)
    argv = ["train", *FAST, *flags, "--epochs", "2", "--out", str(run), "--resume", str(run / "last.pt")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gnet train: error: ") and err.count("\n") == 1
    assert "was trained with other settings" in err and "--allow-changed-settings" in err
    for text in named:
        assert text in err, err
    assert _snapshot(run) == before


def test_allowed_changes_are_recorded_with_their_epoch(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    resume = ["--out", str(run), "--resume", str(run / "last.pt")]
    assert main(["train", *FAST, "--lr", "0.001", "--epochs", "2", *resume, "--allow-changed-settings"]) == 0
    change = {"epoch": 2, "setting": "lr", "old": 0.003, "new": 0.001}
    assert load_checkpoint(run / "last.pt")["config"]["changes"] == [change]
    assert load_checkpoint(run / "last.pt")["config"]["train"]["lr"] == 0.001
    assert json.loads((run / "history.json").read_text())["changes"] == [change]
    # the new settings are now the run's: resuming with them needs no flag, and the record is kept
    assert main(["train", *FAST, "--lr", "0.001", "--epochs", "3", *resume]) == 0
    assert load_checkpoint(run / "last.pt")["config"]["changes"] == [change]


def test_api_resume_compares_the_whole_config(digits, tmp_path):
    train_pair, val_pair = digits
    train(build_model(SPECS), train_pair, val_pair, _config(epochs=1), MODEL_CONFIG, out_dir=tmp_path, progress=False)
    last = tmp_path / "last.pt"
    with pytest.raises(ValueError, match=r"seed 7 -> 8.*eval_batch_size 1000 -> 10|eval_batch_size 1000 -> 10.*seed"):
        train(build_model(SPECS), train_pair, val_pair, _config(seed=8, eval_batch_size=10), MODEL_CONFIG, resume=last)
    with pytest.raises(ValueError, match=r"dataset \"digits\" -> \"mnist\""):
        train(build_model(SPECS), train_pair, val_pair, _config(), {**MODEL_CONFIG, "dataset": "mnist"}, resume=last)
    # epochs may grow: that is what a resume is for
    result = train(build_model(SPECS), train_pair, val_pair, _config(epochs=2), MODEL_CONFIG, resume=last)
    assert [h["epoch"] for h in result.history] == [1, 2] and result.changes == []


def test_annealing_horizon_counts_for_models_that_anneal(digits, tmp_path):
    from gnet.bnn.models import build_bnn
    from gnet.models import architecture

    train_pair, val_pair = digits
    model = build_bnn(architecture("mlp"), "bnn", seed=0)
    config = {**model.model_config(), "n_classes": 10}
    train(model, train_pair, val_pair, _config(epochs=1), config, out_dir=tmp_path, progress=False)
    fresh = build_bnn(architecture("mlp"), "bnn", seed=0)
    with pytest.raises(ValueError, match="anneal horizon 1 -> 2"):  # the schedule of epoch 1 assumed a 1-epoch run
        train(fresh, train_pair, val_pair, _config(epochs=2), config, resume=tmp_path / "last.pt", progress=False)


# --- Ctrl-C --------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def default_sigint():
    """Python's own SIGINT handler for every test here. A shell starts background jobs (``cmd &``) with SIGINT
    ignored, and a process that starts so keeps ignoring it, as a user who ran ``nohup gnet train ... &`` asked;
    these tests are about the foreground case."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _default_sigint_in_child() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # so that the child's Python installs its KeyboardInterrupt handler


class SigintAt(nn.Module):
    """Identity that sends this process a SIGINT at its ``at``-th training call (evaluation calls do not count)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGINT)
        return x


def test_sigint_stops_after_the_step_and_the_run_resumes_identically(digits, tmp_path):
    train_pair, val_pair = digits  # 200 items / batch 32 = 7 steps per epoch
    straight = nn.Sequential(SigintAt(at=-1), *build_model(SPECS, seed=0))
    r_straight = train(straight, train_pair, val_pair, _config(epochs=3), MODEL_CONFIG, progress=False)

    model = nn.Sequential(SigintAt(at=10), *build_model(SPECS, seed=0))  # epoch 2, step 3
    with pytest.raises(TrainingInterrupted) as info:
        train(model, train_pair, val_pair, _config(epochs=3), MODEL_CONFIG, out_dir=tmp_path, progress=False)
    assert info.value.checkpoint == tmp_path / "last.pt" and info.value.epochs_done == 1
    assert model[0].calls == 10  # the step that saw the signal finished, no further one ran
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 0
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))

    resumed = nn.Sequential(SigintAt(at=-1), *build_model(SPECS, seed=1))
    r = train(resumed, train_pair, val_pair, _config(epochs=3), MODEL_CONFIG, resume=tmp_path / "last.pt")
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in r.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in r_straight.history]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_sigint_in_the_first_epoch_leaves_nothing_to_resume(digits, tmp_path):
    train_pair, val_pair = digits
    model = nn.Sequential(SigintAt(at=2), *build_model(SPECS, seed=0))
    with pytest.raises(TrainingInterrupted) as info:
        train(model, train_pair, val_pair, _config(), MODEL_CONFIG, out_dir=tmp_path, progress=False)
    assert info.value.checkpoint is None and info.value.epochs_done == 0
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_on_gnet_train_exits_130_with_one_line(tmp_path):
    """A real SIGINT to a `gnet train` process once its first epoch is saved: status 130, one line, no traceback,
    a last.pt that loads and resumes, no temporary file."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "gnet", "train", *FAST, "--epochs", "500", "--out", str(run)]
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint_in_child,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "last.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err == f"gnet train: interrupted; resume with --resume {run / 'last.pt'}\n"
    assert "Traceback" not in out
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "history.json", "last.pt"]
    done = load_checkpoint(run / "last.pt")["epoch"] + 1
    assert len(json.loads((run / "history.json").read_text())["history"]) == done
    resume = ["--out", str(run), "--resume", str(run / "last.pt")]
    assert main(["train", *FAST, "--epochs", str(done + 1), *resume]) == 0
    assert load_model(run / "best.pt")[1]["train"]["epochs"] == done + 1


# --- data and settings at the boundary -----------------------------------------------------------------------------


def test_labels_must_be_integers_in_range(digits):
    (x, y), val_pair = digits
    model = build_model(SPECS)

    def fit(pair, config=MODEL_CONFIG):
        train(model, pair, val_pair, _config(epochs=1), config, progress=False)

    with pytest.raises(ValueError, match=r"training labels must be an integer tensor, got torch.float32; .* y.long"):
        fit((x, y.float()))
    with pytest.raises(ValueError, match=r"integer tensor, got torch.float32$"):
        fit((x, y.float() + 0.5))  # not whole numbers: no cast is suggested
    with pytest.raises(ValueError, match="integer tensor, got torch.bool"):
        fit((x, y > 4))
    bad = y.clone()
    bad[5] = 10
    with pytest.raises(ValueError, match=r"training labels must lie in 0..9, got values from 0 to 10"):
        fit((x, bad))
    bad[5] = -1
    with pytest.raises(ValueError, match="from -1 to 9"):
        fit((x, bad))
    with pytest.raises(ValueError, match="validation labels must lie in 0..4"):
        fit((x, y % 5), {**MODEL_CONFIG, "n_classes": 5})
    with pytest.raises(ValueError, match="training set: 200 inputs but no labels"):
        fit((x, torch.tensor(3)))
    with pytest.raises(ValueError, match="inputs must be floating point, got torch.uint8"):
        fit(((x * 8 + 8).to(torch.uint8), y))
    with pytest.raises(ValueError, match="pair"):
        fit(x)


def test_float64_inputs_are_cast_to_the_model_dtype(digits):
    """float64 inputs train exactly as their float32 rounding does; values beyond float32 are refused."""
    (x, y), val_pair = digits
    x64 = x.double() + 1e-12  # below float32 resolution: rounds back to x
    a, b = build_model(SPECS, seed=0), build_model(SPECS, seed=0)
    ra = train(a, (x, y), val_pair, _config(epochs=1), MODEL_CONFIG, progress=False)
    rb = train(b, (x64, y.int()), (val_pair[0].double(), val_pair[1]), _config(epochs=1), MODEL_CONFIG, progress=False)
    assert ra.history[0]["train_loss"] == rb.history[0]["train_loss"]
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    huge = x64.clone()
    huge[0, 0, 0, 0] = 1e300
    with pytest.raises(ValueError, match=r"contains NaN or inf inputs \(after the cast to torch.float32\)"):
        train(a, (huge, y), val_pair, _config(epochs=1), MODEL_CONFIG, progress=False)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("lr", math.nan, "lr must be finite"),
        ("lr", -1e-3, "lr must be > 0"),
        ("lr", 0.0, "lr must be > 0"),
        ("lr", math.inf, "lr must be finite"),
        ("lr", "0.01", "lr must be a number"),
        ("batch_size", 0, "batch_size must be >= 1"),
        ("batch_size", 32.0, "batch_size must be an integer"),
        ("epochs", True, "epochs must be an integer"),
        ("epochs", -1, "epochs must be >= 1"),
        ("eval_batch_size", 0, "eval_batch_size must be >= 1"),
        ("weight_decay", math.nan, "weight_decay must be finite"),
        ("weight_decay", -1e-5, "weight_decay must be >= 0"),
        ("plateau_factor", 0.0, r"plateau_factor must lie in \(0, 1\)"),
        ("plateau_factor", 1.0, r"plateau_factor must lie in \(0, 1\)"),
        ("plateau_factor", math.nan, "plateau_factor must be finite"),
        ("plateau_patience", -1, "plateau_patience must be >= 0"),
        ("early_stopping", 0, "early_stopping must be >= 1"),
        ("seed", -1, "seed must be >= 0"),
        ("seed", 2**64, "seed must be <= "),
        ("anneal_epochs", 0, "anneal_epochs must be >= 1"),
        ("augment", "rotate", "unknown augment 'rotate'"),
    ],
)
def test_train_config_refuses_bad_fields(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_train_config_normalises_numpy_scalars():
    config = TrainConfig(epochs=np.int64(3), lr=np.float32(0.5), seed=np.uint8(4))
    assert type(config.epochs) is int and type(config.lr) is float and type(config.seed) is int
    json.dumps(config.__dict__)  # a checkpoint records it as JSON
