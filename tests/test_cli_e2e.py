"""End to end through the ``gnet`` command, in process: convert, eval of an .ehd file, sweep, the orthogonal
embedding, the deprecated ``--n`` spelling, and the committed float checkpoints of ``results/models``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from gnet.checkpoint import load_model
from gnet.cli import main
from gnet.data import load_test_split
from gnet.ehd import EHDModel, convert
from gnet.train import evaluate
from hdc import datasets

MODELS = Path(__file__).resolve().parents[1] / "results" / "models"
FAST = ["--dataset", "digits", "--arch", "mlp", "--batch-size", "64", "--lr", "3e-3", "--quiet"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A digits MLP trained 2 epochs by ``gnet train`` (about 3 s): 0.946 test accuracy (seed 0)."""
    run = tmp_path_factory.mktemp("run")
    assert main(["train", *FAST, "--epochs", "2", "--out", str(run)]) == 0
    return run / "best.pt"


def ehd_accuracy(text: str) -> float:
    return float(re.search(r"EHD test accuracy ([0-9.]+)", text).group(1))


def test_convert_then_eval_the_ehd_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "m.ehd"
    assert main(["convert", str(checkpoint), "--dim", "1024", "--seed", "3", "--out", str(out)]) == 0
    assert "dim per layer [1024, 1024]" in capsys.readouterr().out
    model = EHDModel.load(out)
    assert model.dim_per_layer == [1024, 1024] and model.input_shape == (1, 8, 8) and model.n_classes == 10
    assert model.meta["dataset"] == "digits" and model.meta["seed"] == 3

    assert main(["eval", str(out), "--limit", "200", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "on 200 items" in text
    # The float MLP scores 0.946; at dim = 1024 the EHD estimate of each arcsine has std about
    # (pi/2) / sqrt(1024) = 0.05, which costs a few points: measured 0.885 (seed 3). 0.8 is 4 binomial std
    # (0.022 on 200 items) below that and 8x chance (0.1).
    assert ehd_accuracy(text) > 0.8
    # the same predictions as converting in process with the same settings
    float_model, _ = load_model(checkpoint)
    _, x, _ = load_test_split({"dataset": "digits", "val_fraction": 0.1}, limit=200)
    assert torch.equal(model.predict(x), convert(float_model, dim=1024, seed=3).predict(x))


def test_orthogonal_embedding_converts_and_predicts(checkpoint, tmp_path, capsys):
    out = tmp_path / "orth.ehd"
    argv = ["convert", str(checkpoint), "--dim", "512", "--embedding", "orthogonal", "--out", str(out)]
    assert main(argv) == 0
    model = EHDModel.load(out)
    assert [layer.embedding for layer in model.layers] == ["orthogonal", "orthogonal"]
    capsys.readouterr()
    assert main(["eval", str(out), "--limit", "200", "--quiet"]) == 0
    # Orthogonal rows keep the Gaussian expectation with lower variance: at dim = 512 (std of each estimate
    # about 0.07) the MLP measured 0.900 on 200 items; 0.75 is 5 binomial std (0.03) below, far above chance.
    assert ehd_accuracy(capsys.readouterr().out) > 0.75


def test_sweep_writes_dim_keyed_json_and_a_plot(checkpoint, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        str(checkpoint),
        "--dim",
        "128",
        "512",
        "--seeds",
        "2",
        "--limit",
        "150",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    result = json.loads((out / "sweep.json").read_text())
    assert result["dataset"] == "digits" and result["seeds"] == [0, 1] and result["n_test"] == 150
    resolved = result["precision_resolved"].split(",")  # per layer where they differ (small fan-in: float32)
    assert result["precision"] == "auto" and set(resolved) <= {"float32", "bfloat16"}  # gaussian G
    rows = result["rows"]
    assert [r["dim"] for r in rows] == [128, 512]
    assert [r["dim_per_layer"] for r in rows] == [[128, 128], [512, 512]]
    assert all(len(r["accuracies"]) == 2 for r in rows) and "n_per_layer" not in json.dumps(result)
    # Accuracy grows with dim (the estimate's std falls as 1/sqrt(dim)): measured 0.377 +- 0.043 at 128 and
    # 0.857 +- 0.003 at 512 (2 seeds, 150 items, binomial std <= 0.04). A gap of 0.2 and a floor of 0.75 at 512
    # leave about 3 std of room each.
    assert rows[1]["accuracy_mean"] > rows[0]["accuracy_mean"] + 0.2
    assert rows[1]["accuracy_mean"] > 0.75
    assert 0.85 < result["float_accuracy"] <= 1.0
    assert (out / "sweep.png").stat().st_size > 0


def test_deprecated_n_flag_still_works_with_a_warning(checkpoint, tmp_path, capsys):
    out = tmp_path / "old.ehd"
    assert main(["convert", str(checkpoint), "--n", "256", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "--n is deprecated" in err and "--dim" in err
    assert EHDModel.load(out).dim_per_layer == [256, 256]
    assert main(["convert", str(checkpoint), "--n", "256", "--dim", "256", "--out", str(out)]) == 2
    assert "pass --dim only" in capsys.readouterr().err


def _has(name: str) -> bool:
    try:
        datasets.load(name, download=False)
    except datasets.DatasetNotFoundError:
        return False
    return True


# The first 256 test images. Measured: MNIST RASU 0.996, TASU 0.988 (full test sets: 99.37 % and about 99 %);
# Fashion-MNIST RASU scores about 92 % on its full test set. The floors are about 3 binomial std on 256 items
# (0.6 / 0.7 / 1.7 points) below those, with room for an easier or harder start of the test set.
FLOORS = {"mnist_rasu.pt": 0.97, "mnist_tasu.pt": 0.96, "fmnist_rasu.pt": 0.85}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_committed_checkpoint_loads_and_scores(name):
    path = MODELS / name
    if not path.is_file():
        pytest.fail(f"the committed checkpoint {path} is missing")
    model, config = load_model(path)
    assert tuple(config["input_shape"]) == (1, 28, 28) and config["n_classes"] == 10
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    dataset = config["dataset"]
    if not _has(dataset):
        if dataset == "mnist":
            pytest.fail("MNIST IDX files not found (they belong in ../shared/datasets/mnist)")
        pytest.skip(f"{dataset} files not available offline: checked the architecture and output shape only")
    _, x, y = load_test_split(config, limit=256)
    _, acc = evaluate(model, x, y)
    assert acc >= FLOORS[name], acc
