"""Float G-Net training: accuracy on digits, checkpoints, exact resume, determinism, bad input, NaN loss."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gnet.checkpoint import load_checkpoint, load_model, save_checkpoint
from gnet.data import load_dataset
from gnet.models import build_model
from gnet.train import NonFiniteLossError, TrainConfig, evaluate, predict, train

# A small net with dropout, so the resume and determinism tests also cover the dropout RNG.
SMALL_SPECS = [
    {"type": "flatten"},
    {"type": "linear", "in": 64, "out": 32},
    {"type": "rasu"},
    {"type": "dropout", "p": 0.3},
    {"type": "classifier", "in": 32, "classes": 10},
]


@pytest.fixture(scope="module")
def digits_small():
    """(train pair of 200 items, val pair, test pair) from the digits splits; small so each epoch takes ms."""
    data = load_dataset("digits", val_fraction=0.1, seed=0)
    x, y = data.train.tensors
    return (x[:200], y[:200]), data.val.tensors, data.test.tensors


def _config(**kw) -> TrainConfig:
    # patience 0 and factor 0.5: the LR scheduler acts within two epochs, so its state must survive a resume too.
    base = dict(epochs=2, batch_size=32, lr=3e-3, plateau_patience=0, plateau_factor=0.5, seed=7)
    return TrainConfig(**{**base, **kw})


def _model_config() -> dict:
    return {"architecture": SMALL_SPECS, "input_shape": [1, 8, 8], "n_classes": 10, "dataset": "digits"}


def _strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in rec.items() if k != "seconds"} for rec in history]


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# --- accuracy (the target: >= 97 % on digits with RASU and with TASU) -------------------------------------
# The fixtures train with a fixed seed, so the result is deterministic; both activations measure about 99 % on
# the 540 test digits, so 97 % leaves a margin of ~11 test images for platform differences in float rounding.


def test_digits_conv_net_rasu_reaches_97_percent(digits_rasu):
    model, _, data = digits_rasu
    _, acc = evaluate(model, *data.test.tensors)
    assert acc >= 0.97


def test_digits_conv_net_tasu_reaches_97_percent(digits_tasu):
    model, _, data = digits_tasu
    _, acc = evaluate(model, *data.test.tensors)
    assert acc >= 0.97


# --- checkpoints ---------------------------------------------------------------------------------------------------


def test_save_load_gives_same_predictions(digits_rasu, tmp_path):
    model, config, data = digits_rasu
    path = save_checkpoint(tmp_path / "m.pt", model, config, epoch=14)
    raw = torch.load(path, weights_only=True)  # plain tensors, strings and numbers only
    assert json.loads(raw["config"]) == config and raw["epoch"] == 14
    loaded, loaded_config = load_model(path)
    assert loaded_config == config and not loaded.training
    x, _ = data.test.tensors
    assert torch.equal(predict(loaded, x), predict(model, x))
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_checkpoint_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="not a readable G-Net checkpoint"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="format tag missing"):
        load_checkpoint(foreign)
    with pytest.raises(ValueError, match="architecture"):
        save_checkpoint(tmp_path / "x.pt", build_model(SMALL_SPECS), {"n_classes": 10})


# --- exact resume and determinism ----------------------------------------------------------------------------------


def test_resume_continues_identically(digits_small, tmp_path):
    train_pair, val_pair, _ = digits_small
    straight = build_model(SMALL_SPECS, seed=0)
    r_straight = train(
        straight,
        train_pair,
        val_pair,
        _config(epochs=2),
        _model_config(),
        out_dir=tmp_path / "straight",
        progress=False,
    )

    first = build_model(SMALL_SPECS, seed=0)
    train(first, train_pair, val_pair, _config(epochs=1), _model_config(), out_dir=tmp_path / "split", progress=False)
    resumed = build_model(SMALL_SPECS, seed=0)  # fresh weights: everything must come from last.pt
    r_resumed = train(
        resumed,
        train_pair,
        val_pair,
        _config(epochs=2),
        _model_config(),
        out_dir=tmp_path / "split",
        resume=tmp_path / "split" / "last.pt",
        progress=False,
    )

    _assert_same_weights(straight, resumed)
    assert _strip_seconds(r_resumed.history) == _strip_seconds(r_straight.history)
    assert [h["epoch"] for h in r_resumed.history] == [1, 2]
    assert (r_resumed.best_epoch, r_resumed.best_val_accuracy) == (r_straight.best_epoch, r_straight.best_val_accuracy)
    on_disk = json.loads((tmp_path / "split" / "history.json").read_text())
    assert _strip_seconds(on_disk["history"]) == _strip_seconds(r_straight.history)
    # last.pt holds the optimizer, scheduler and RNG states, and still loads with weights_only=True.
    payload = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert {"optimizer", "scheduler", "shuffle_rng", "torch_rng", "epoch"} <= payload.keys()
    assert payload["epoch"] == 1


def test_resume_rejects_best_checkpoint_and_foreign_model(digits_small, tmp_path):
    train_pair, val_pair, _ = digits_small
    train(
        build_model(SMALL_SPECS),
        train_pair,
        val_pair,
        _config(epochs=1),
        _model_config(),
        out_dir=tmp_path,
        progress=False,
    )
    with pytest.raises(ValueError, match="not a resumable checkpoint"):
        train(
            build_model(SMALL_SPECS),
            train_pair,
            val_pair,
            _config(),
            _model_config(),
            resume=tmp_path / "best.pt",
            progress=False,
        )
    wider = [
        dict(s, out=48) if s["type"] == "linear" else dict(s, **{"in": 48}) if s["type"] == "classifier" else s
        for s in SMALL_SPECS
    ]
    with pytest.raises(ValueError, match="does not fit this model"):
        train(
            build_model(wider),
            train_pair,
            val_pair,
            _config(),
            _model_config(),
            resume=tmp_path / "last.pt",
            progress=False,
        )


def test_training_is_deterministic_and_leaves_global_rng_alone(digits_small):
    train_pair, val_pair, _ = digits_small
    before = torch.get_rng_state()
    a, b, c = (build_model(SMALL_SPECS, seed=0) for _ in range(3))
    ra = train(a, train_pair, val_pair, _config(seed=7), _model_config(), progress=False)
    rb = train(b, train_pair, val_pair, _config(seed=7), _model_config(), progress=False)
    train(c, train_pair, val_pair, _config(seed=8), _model_config(), progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    _assert_same_weights(a, b)
    assert _strip_seconds(ra.history) == _strip_seconds(rb.history)
    # Another seed shuffles and drops out differently, so the same initial weights end elsewhere.
    assert not torch.equal(a[1].weight, c[1].weight)


# --- bad input and a NaN loss --------------------------------------------------------------------------------------


class NaNAtCall(nn.Module):
    """Identity, except that its ``at``-th call in training mode returns NaN (evaluation calls do not count)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                return x * float("nan")
        return x


def test_nan_loss_stops_training_naming_epoch_and_batch(digits_small, tmp_path):
    train_pair, val_pair, _ = digits_small
    x, y = train_pair[0][:100], train_pair[1][:100]  # 100 items / batch 32 = 4 batches per epoch
    model = nn.Sequential(NaNAtCall(at=7), *build_model(SMALL_SPECS, seed=0))  # call 7 = epoch 2, batch 3
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 3"):
        train(model, (x, y), val_pair, _config(epochs=3), _model_config(), out_dir=tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1]  # epoch 1 was completed and saved, epoch 2 was not


def test_bad_training_input_is_named(digits_small):
    (x, y), val_pair, _ = digits_small
    model, cfg, mc = build_model(SMALL_SPECS), _config(), _model_config()
    with pytest.raises(ValueError, match="training set is empty"):
        train(model, (x[:0], y[:0]), val_pair, cfg, mc, progress=False)
    with pytest.raises(ValueError, match="training set: 200 inputs but 199 labels"):
        train(model, (x, y[:-1]), val_pair, cfg, mc, progress=False)
    bad = x.clone()
    bad[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="training set contains NaN"):
        train(model, (bad, y), val_pair, cfg, mc, progress=False)
    with pytest.raises(ValueError, match="validation set is empty"):
        train(model, (x, y), (val_pair[0][:0], val_pair[1][:0]), cfg, mc, progress=False)
    for field, value in (("epochs", 0), ("batch_size", 0), ("lr", 0.0)):
        with pytest.raises(ValueError, match=field):
            TrainConfig(**{field: value})


def test_augmented_training_resumes_identically(digits_small, tmp_path):
    """The augmentation draws come from their own generator, saved in last.pt: a resumed run sees the same shifted
    batches as a straight one, and they differ from the unaugmented run."""
    train_pair, val_pair, _ = digits_small
    assert train_pair[0].ndim == 4  # (N, 1, 8, 8) images
    straight = build_model(SMALL_SPECS, seed=0)
    train(straight, train_pair, val_pair, _config(epochs=2, augment="shift"), _model_config(), progress=False)
    first = build_model(SMALL_SPECS, seed=0)
    train(
        first,
        train_pair,
        val_pair,
        _config(epochs=1, augment="shift"),
        _model_config(),
        out_dir=tmp_path,
        progress=False,
    )
    resumed = build_model(SMALL_SPECS, seed=0)
    train(
        resumed,
        train_pair,
        val_pair,
        _config(epochs=2, augment="shift"),
        _model_config(),
        out_dir=tmp_path,
        resume=tmp_path / "last.pt",
        progress=False,
    )
    _assert_same_weights(straight, resumed)
    plain = build_model(SMALL_SPECS, seed=0)
    train(plain, train_pair, val_pair, _config(epochs=2), _model_config(), progress=False)
    assert not torch.equal(plain.state_dict()["1.weight"], straight.state_dict()["1.weight"])


def test_augment_batch_moves_items_by_at_most_two_pixels():
    from gnet.augment import augment_batch

    x = torch.zeros(64, 1, 12, 12)
    x[:, 0, 6, 5] = 1.0  # one lit pixel per item, away from the border
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(x, "shift", gen)
    lit = out[:, 0].flatten(1).argmax(1)
    rows, cols = lit // 12, lit % 12
    assert out.sum().item() == 64 and (rows - 6).abs().max() <= 2 and (cols - 5).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=False))) > 10  # shifts vary over the 25 offsets
    flipped = augment_batch(x, "flip+shift", torch.Generator().manual_seed(0))
    # Column 8 is reachable only by mirroring (5 -> 6) and then shifting by +2.
    assert ((flipped[:, 0].flatten(1).argmax(1) % 12) == 8).any()
    again = augment_batch(x, "flip+shift", torch.Generator().manual_seed(0))
    assert torch.equal(flipped, again)
    assert augment_batch(x, None, gen) is x
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        augment_batch(x, "rotate", gen)
    with pytest.raises(ValueError, match="needs image batches"):
        augment_batch(torch.zeros(4, 10), "shift", gen)
    with pytest.raises(ValueError, match="unknown augment"):
        TrainConfig(augment="rotate")


def test_cosine_schedule_follows_its_formula_and_resumes_identically(digits_small, tmp_path):
    import math

    train_pair, val_pair, _ = digits_small
    cosine = dict(lr_schedule="cosine", lr=4e-3)
    straight = build_model(SMALL_SPECS, seed=0)
    r_straight = train(straight, train_pair, val_pair, _config(epochs=3, **cosine), _model_config(), progress=False)
    # Each epoch's record carries the rate it trained with: lr * (1 + cos(pi * epoch / epochs)) / 2.
    expected = [4e-3 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert [h["lr"] for h in r_straight.history] == pytest.approx(expected, rel=1e-12)

    # Stopped after one epoch of a 3-epoch plan (anneal_epochs=3 keeps the horizon), then resumed: same weights.
    split = tmp_path / "split"
    first = build_model(SMALL_SPECS, seed=0)
    train(first, train_pair, val_pair, _config(epochs=1, anneal_epochs=3, **cosine), _model_config(), out_dir=split,
          progress=False)  # fmt: skip
    resumed = build_model(SMALL_SPECS, seed=0)
    r_resumed = train(resumed, train_pair, val_pair, _config(epochs=3, **cosine), _model_config(), out_dir=split,
                      resume=split / "last.pt", progress=False)  # fmt: skip
    _assert_same_weights(straight, resumed)
    assert _strip_seconds(r_resumed.history) == _strip_seconds(r_straight.history)


def test_unknown_lr_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule"):
        _config(lr_schedule="step")
