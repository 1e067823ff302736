"""The binary (gnet.bnn) and logic (gnet.logic) families in the shared trainer, checkpoints and CLI."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
import torch

from gnet.checkpoint import load_checkpoint, load_model
from gnet.cli import main
from gnet.data import load_dataset
from gnet.models import FAMILIES, build_for_method
from gnet.train import TrainConfig, annealing_progress, train

# Floors on sklearn digits (540 test images), best-validation checkpoint, one thread. Measured: bnn 15 epochs
# 0.9685 (last epoch 0.9704, as docs/bnn.md); difflogic 10 epochs at batch 32 0.9333.
BNN_FLOOR = 0.95
DIFFLOGIC_FLOOR = 0.88


def _accuracy(text: str, label: str) -> float:
    match = re.search(rf"{label} test accuracy ([0-9.]+)", text)
    assert match, text
    return float(match.group(1))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("families")
    argv = {
        "bnn": ["--method", "bnn", "--epochs", "15"],
        "difflogic": ["--method", "difflogic", "--epochs", "10", "--batch-size", "32"],
    }
    for name, extra in argv.items():
        assert main(["train", "--dataset", "digits", "--out", str(root / name), "--quiet", *extra]) == 0
    return {"root": root}


@pytest.mark.parametrize(
    ("name", "family", "label", "floor"),
    [("bnn", "bnn", "packed BNN", BNN_FLOOR), ("difflogic", "difflogic", "logic circuit", DIFFLOGIC_FLOOR)],
)
def test_train_and_eval_packed_equals_torch(runs, capsys, name, family, label, floor):
    best = runs["root"] / name / "best.pt"
    config = load_checkpoint(best)["config"]
    assert config["family"] == family and config["method"] == name
    capsys.readouterr()
    assert main(["eval", str(best)]) == 0
    out = capsys.readouterr().out
    float_acc, packed_acc = _accuracy(out, "digits"), _accuracy(out, label)
    assert float_acc >= floor, out
    assert packed_acc == float_acc, out
    n = re.search(r"agreement with torch predictions (\d+)/(\d+)", out)
    assert n and n.group(1) == n.group(2) == "540", out


def test_difflogic_trains_on_unit_inputs_with_the_dataset_default(runs):
    model, config = load_model(runs["root"] / "difflogic" / "best.pt")
    assert config["scaling"] == "unit" and config["architecture"]["preset"] == "difflogic-digits"
    assert config["train"]["weight_decay"] == 0.0 and config["train"]["lr"] == 0.01
    data = load_dataset("digits", scaling="unit")
    x = data.train.tensors[0]
    assert x.min() >= 0 and x.max() <= 1 and x.max() == 1


def test_unknown_method_is_an_error_naming_the_methods(capsys, tmp_path):
    with pytest.raises(SystemExit) as err:
        main(["train", "--method", "xnor", "--out", str(tmp_path)])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "gnet train: error:" in message and "xnor" in message
    assert all(m in message for m in ("gnet", "bnn++", "pc++", "fda", "difflogic", "binaryconnect"))


def test_method_lists_agree_with_the_families():
    from gnet.bnn import METHODS as BNN_METHODS
    from gnet.bnn.models import progress_for_epoch

    assert FAMILIES["bnn"] == tuple(BNN_METHODS)
    assert all(annealing_progress(e, n) == progress_for_epoch(e, n) for n in (1, 2, 7) for e in range(n))


def test_resume_is_bit_identical_for_bnn_plus_plus(tmp_path):
    data = load_dataset("digits")
    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, plateau_patience=2, plateau_factor=0.3, seed=3)

    def run(out, resume=None, interrupt=False):
        model, model_config = build_for_method("bnn++", data, seed=3)

        def on_epoch(record):
            if interrupt:
                raise KeyboardInterrupt

        with contextlib.suppress(KeyboardInterrupt):  # the interruption after epoch 1 of 2
            train(model, data.train.tensors, data.val.tensors, config, model_config, out, resume, False, on_epoch)
        return model

    straight = run(tmp_path / "a")
    run(tmp_path / "b", interrupt=True)
    assert float(load_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]["anneal_progress"]) == 0.0
    resumed = run(tmp_path / "b", resume=tmp_path / "b" / "last.pt")
    assert float(resumed.anneal_progress) == 1.0
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    last_a = load_checkpoint(tmp_path / "a" / "last.pt")
    last_b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert last_a["config"] == last_b["config"] and last_a["config"]["method"] == "bnn++"
    assert _history(last_a["result"]) == _history(last_b["result"])


def test_cli_resume_with_the_planned_annealing_is_bit_identical(tmp_path):
    """``--epochs 1 --anneal-epochs 2`` then ``--resume last.pt --epochs 2`` == ``--epochs 2`` for bnn++, with a
    cosine rate, whose horizon ``--anneal-epochs`` also sets."""
    common = ["train", "--method", "bnn++", "--dataset", "digits", "--seed", "1", "--quiet", "--lr-schedule", "cosine"]
    assert main([*common, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--epochs", "1", "--anneal-epochs", "2", "--out", str(tmp_path / "b")]) == 0
    first = load_checkpoint(tmp_path / "b" / "last.pt")
    assert float(first["state_dict"]["anneal_progress"]) == 0.0
    resume = ["--epochs", "2", "--resume", str(tmp_path / "b" / "last.pt"), "--out", str(tmp_path / "b")]
    assert main([*common, *resume]) == 0
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert float(b["state_dict"]["anneal_progress"]) == 1.0 and b["config"]["method"] == "bnn++"
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert _history(a["result"]) == _history(b["result"])
    assert a["config"]["train"]["lr_schedule"] == "cosine"
    assert [r["lr"] for r in _history(a["result"])] == pytest.approx([0.01, 0.005])  # 0.01 * (1 + cos(pi e/2)) / 2


def _history(result: str) -> list[dict[str, float]]:
    """The epoch records without their wall-clock seconds."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads(result)["history"]]


def test_ehd_convert_refuses_bnn_and_logic_models():
    from gnet.ehd import convert
    from gnet.logic import build_difflogic, difflogic_spec

    data = load_dataset("digits")
    bnn, _ = build_for_method("bnn", data)
    with pytest.raises(ValueError, match=r"gnet\.bnn\.convert"):
        convert(bnn, dim=256)
    with pytest.raises(ValueError, match=r"gnet\.logic\.convert"):
        convert(build_difflogic(difflogic_spec("difflogic-digits")), dim=256)
