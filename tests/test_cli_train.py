"""``gnet train``, ``gnet eval`` and ``gnet quickstart`` run in-process on digits with tiny epoch counts."""

from __future__ import annotations

import json
import re

import pytest
import torch

from gnet.checkpoint import load_checkpoint
from gnet.cli import build_parser, main
from gnet.ehd import load_ehd

FAST = ["--dataset", "digits", "--arch", "mlp", "--batch-size", "64", "--lr", "3e-3", "--quiet"]


def test_train_writes_run_dir_then_resumes_and_evaluates(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *FAST, "--epochs", "2", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy \(best val checkpoint\): ([0-9.]+)", out).group(1))
    # Two epochs of the digits MLP (seed 0) reach 0.946 on the 540 test images; seeds 1-3 reach 0.922-0.926. The
    # binomial std there is about 0.011, so 0.85 is more than 6 std below every seed seen and 8x chance (0.1).
    assert 0.85 < acc <= 1.0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_run"] == 2 and summary["dataset"] == "digits"
    assert summary["test_accuracy_best"] == pytest.approx(acc, abs=5e-5)
    assert json.loads((run / "history.json").read_text())["history"][-1]["epoch"] == 2
    config = load_checkpoint(run / "best.pt")["config"]
    assert config["input_shape"] == [1, 8, 8] and config["n_classes"] == 10 and config["train"]["epochs"] == 2

    assert main(["train", *FAST, "--epochs", "3", "--out", str(run), "--resume", str(run / "last.pt")]) == 0
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]  # the resumed run appends to the restored history
    capsys.readouterr()

    assert main(["eval", str(run / "best.pt")]) == 0
    line = capsys.readouterr().out
    assert re.search(r"digits test accuracy [0-9.]+\s+loss [0-9.]+", line)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "no-such-set"], r"unknown dataset name 'no-such-set'; valid names: .*digits.*mnist"),
        (["--dataset", "digits", "--arch", "resnet"], r"unknown architecture 'resnet'; valid: .*cifar10.*mnist"),
        (["--dataset", "digits", "--arch", "mnist"], r"does not accept inputs of shape \(1, 8, 8\)"),
    ],
)
def test_bad_dataset_or_architecture_fails_before_training(argv, message, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *argv, "--epochs", "1", "--quiet", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gnet train: error:") and re.search(message, err), err
    assert not (run / "last.pt").exists()  # nothing was trained


def test_quickstart_trains_converts_and_saves(tmp_path, capsys):
    out_dir = tmp_path / "qs"
    assert main(["quickstart", "--epochs", "1", "--dim", "256", "--out", str(out_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    float_row = re.search(r"float G-Net\s+([0-9.]+)\s+([0-9]+)", out)
    ehd_row = re.search(r"EHD G-Net \(dim=256, gaussian\)\s+([0-9.]+)\s+([0-9]+)", out)
    assert float_row and ehd_row, out
    assert all(0.0 <= float(m.group(1)) <= 1.0 for m in (float_row, ehd_row))
    assert "img/s (steady state)" in out and re.search(r"one-off warm-up .*: float [0-9.]+s, EHD [0-9.]+s", out)
    ehd = load_ehd(out_dir / "model.ehd")
    assert ehd.dim_per_layer == [256] * 4 and ehd.meta["dataset"] == "digits"
    assert ehd.input_shape == (1, 8, 8) and ehd.n_classes == 10
    assert torch.load(out_dir / "best.pt", weights_only=True)["format"] == "gnet-float-checkpoint"
    # A second quickstart into the finished run refuses before any work, and leaves the run as it was.
    before = (out_dir / "best.pt").read_bytes()
    assert main(["quickstart", "--epochs", "1", "--dim", "256", "--out", str(out_dir), "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out_dir / "best.pt").read_bytes() == before


def test_quickstart_is_the_first_command_and_rejects_bad_options(capsys):
    help_text = build_parser().format_help()
    assert help_text.index("quickstart") < help_text.index("train")
    assert main(["quickstart", "--dim", "0", "--quiet"]) == 2
    assert "--dim must be >= 1" in capsys.readouterr().err
