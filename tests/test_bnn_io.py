"""The .bnn file: bit-identical round trips, and crafted files refused before their data is read."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from gnet.bnn import build_bnn, convert
from gnet.bnn.io import FORMAT, VERSION, BNNFileError, load_packed_bnn, save_packed_bnn
from gnet.bnn.packed import PackedBNN
from gnet.deployed import DeployedModel, load_deployed
from gnet.models import architecture
from hdc.io import save_container

SHAPES = {"digits": (1, 8, 8), "timeseries": (2, 40), "mlp": (64,)}
KWARGS = {"digits": {}, "timeseries": {"in_channels": 2, "length": 40}, "mlp": {"in_features": 64, "hidden": (128, 64)}}


def randomize_bn(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm statistics (negative learned scales included), as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 5 + 0.1)
                if m.weight.requires_grad:  # a fixed scale (bn_scale="fixed") stays 1
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))


def packed_model(arch: str = "digits", method: str = "bnn", seed: int = 3) -> tuple[torch.nn.Module, PackedBNN]:
    model = build_bnn(architecture(arch, **KWARGS[arch]), method, seed=seed)
    randomize_bn(model, seed + 1)
    model.eval()
    return model, convert(model, input_shape=SHAPES[arch], meta={"dataset": "digits"})


def inputs(shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-384, 384, (n, *shape), generator=g).float() / 128  # exact float64 sums


@pytest.mark.parametrize("arch", sorted(SHAPES))
@pytest.mark.parametrize("method", ["bnn", "binaryconnect", "bnn++", "fda"])
def test_round_trip_is_bit_identical(tmp_path, arch, method):
    model, packed = packed_model(arch, method)
    path = packed.save(tmp_path / "model")
    assert path.name == "model.bnn"  # the default extension
    loaded = PackedBNN.load(path)
    x = inputs(SHAPES[arch], 150, seed=5)
    assert torch.equal(loaded.logits(x, batch_size=41), packed.logits(x))
    with torch.no_grad():
        assert torch.equal(loaded.logits(x), model(x))
    assert (loaded.family, loaded.n_classes, loaded.input_shape) == ("bnn", packed.n_classes, SHAPES[arch])
    assert loaded.meta == {"method": method, "dataset": "digits"} and loaded.method == method
    assert loaded.cost() == packed.cost()
    again = load_deployed(path)
    assert isinstance(again, PackedBNN) and isinstance(again, DeployedModel)


def test_convert_defaults_and_bad_arguments():
    model = build_bnn(architecture("mlp", in_features=20), "bnn", seed=0)
    assert convert(model).input_shape == (20,)  # a linear first layer names its input
    assert convert(build_bnn(architecture("digits"), "bnn", seed=0)).input_shape is None
    with pytest.raises(ValueError, match="input_shape"):
        convert(model, input_shape="20")
    with pytest.raises(ValueError, match="meta must be a dict"):
        convert(model, meta=[1])
    packed = convert(model)
    with pytest.raises(ValueError, match=r"items of shape \(21,\).*takes \(20,\)"):
        packed.predict(torch.zeros(2, 21))


def test_a_g_net_is_refused_by_gnet_bnn_convert():
    from gnet.models import build_model

    with pytest.raises(ValueError, match=r"expects a BNN.*got Sequential.*gnet\.ehd\.convert"):
        convert(build_model(architecture("digits"), seed=0))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(header, arrays) of a saved digits BNN, to be altered and saved again with a valid checksum."""
    _, packed = packed_model("digits", "bnn")
    path = packed.save(tmp_path_factory.mktemp("bnn") / "digits.bnn")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    for key in ("format", "version", "sha256"):
        header.pop(key)
    return header, arrays


def _first_sign_conv(header):
    return next(i for i, s in enumerate(header["stages"]) if s["type"] == "layer" and not s["input_binary"])


def _set(path, value):
    def edit(header, arrays):
        target = header
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _edit_array(name, change):
    def edit(header, arrays):
        arrays[name] = change(arrays[name].copy())

    return edit


def _drop_last(header, arrays):
    """The network cut after its last hidden layer: it ends with a sign."""
    header["stages"].pop()
    for name in [k for k in arrays if k.endswith("_5")]:
        arrays.pop(name)


CRAFTED = {
    "n_classes a string": (_set(["n_classes"], "10"), r"n_classes must be an integer"),
    "n_classes off": (_set(["n_classes"], 9), r"n_classes 9 does not match the last layer's 10"),
    "sign an int": (_set(["stages", 0, "sign"], 1), r"stages\[0\]\.sign must be true or false"),
    "unknown stage": (_set(["stages", 2, "type"], "dropout"), r"stages\[2\]\.type must be one of"),
    "unknown method": (_set(["method"], "xnor"), r"method must be one of"),
    "meta a list": (_set(["meta"], []), r"meta must be an object"),
    "kernel a float": (_set(["stages", 0, "kernel"], [3.0, 3]), r"kernel must be an integer"),
    "in_channels inconsistent": (_set(["stages", 1, "in_channels"], 17), r"in_channels is 17, but the stages"),
    "input_binary inconsistent": (_set(["stages", 1, "input_binary"], False), r"input_binary is False, but"),
    "sign layer with a scale": (_set(["stages", 0, "scale"], True), r"a sign layer stores thresholds only"),
    "hardtanh NaN": (
        lambda h, a: h["stages"].insert(1, {"type": "hardtanh", "min_val": float("nan"), "max_val": 1.0}),
        r"min_val must be a finite number",
    ),
    "input shape that does not fit": (_set(["input_shape"], [1, 4, 4]), r"stages\[4\]\.in_channels is 512, but .* 128"),
    "input too small to pool": (_set(["input_shape"], [1, 1, 1]), r"stages\[2\] leaves no output positions"),
    "absurd input shape": (_set(["input_shape"], [1, 2**20, 2**20]), r"would make the predictor allocate"),
    "absurd units": (_set(["stages", 0, "out_units"], 2**24), r"would make the predictor allocate"),
    "words wrong shape": (_edit_array("words_0", lambda w: w[:-1]), r"words_0 must be uint64 \(16, 9\)"),
    "words wrong dtype": (_edit_array("words_0", lambda w: w.astype(np.int64)), r"words_0 must be uint64"),
    "extra array": (lambda h, a: a.__setitem__("junk", np.zeros(3)), r"unmatched: junk"),
    "missing threshold": (lambda h, a: a.pop("threshold_0"), r"unmatched: threshold_0"),
    "no real logits": (_drop_last, r"must end with a linear layer without sign"),
    "NaN threshold": (_edit_array("threshold_0", lambda t: np.where(np.arange(len(t)) == 3, np.nan, t)), "NaN"),
    "tail bits": (_edit_array("words_0", lambda w: w | np.uint64(1 << 63)), r"words_0 has non-zero tail bits"),
    "threshold out of range": (_edit_array("threshold_1", lambda t: t + 1000), r"threshold_1 lies outside"),
    "inf scale": (_edit_array("bn_inv_5", lambda t: t / 0.0), r"bn_inv_5 holds NaN or inf"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_files_are_refused(tmp_path, saved, case):
    edit, message = CRAFTED[case]
    header, arrays = json.loads(json.dumps(saved[0])), dict(saved[1])
    # digits: 0 conv (real input, sign), 1 conv (binary), 2 pool, 3 flatten, 4 linear (binary), 5 classifier
    assert [s["type"] for s in header["stages"]] == ["layer", "layer", "pool", "flatten", "layer", "layer"]
    assert _first_sign_conv(header) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        edit(header, arrays)
    path = save_container(tmp_path / "crafted.bnn", FORMAT, VERSION, header, arrays)
    t0 = time.perf_counter()
    with pytest.raises(BNNFileError, match=message):
        load_packed_bnn(path)
    assert time.perf_counter() - t0 < 1.0  # refused from the header, nothing large read or allocated


def test_weight_budget_and_other_files(tmp_path, saved):
    header, arrays = saved
    path = save_container(tmp_path / "ok.bnn", FORMAT, VERSION, header, arrays)
    assert sum(a.nbytes for a in arrays.values()) < 50_000
    # without an input shape only the weights are bounded: the linear 512 -> 128 layer's +-1 float64 weights
    unshaped = save_container(tmp_path / "unshaped.bnn", FORMAT, VERSION, {**header, "input_shape": None}, arrays)
    with pytest.raises(BNNFileError, match=r"stages\[4\] would make the predictor allocate 524288 bytes for the"):
        load_packed_bnn(unshaped, max_bytes=100_000)
    assert load_packed_bnn(unshaped, max_bytes=524_288).input_shape is None
    future = save_container(tmp_path / "v2.bnn", FORMAT, VERSION + 1, header, arrays)
    with pytest.raises(BNNFileError, match="version 2 is not supported"):
        load_packed_bnn(future)
    other = save_container(tmp_path / "other.bnn", "gnet-ehd", 2, header, arrays)
    with pytest.raises(BNNFileError, match="format 'gnet-ehd' is not 'gnet-bnn'"):
        load_packed_bnn(other)
    (tmp_path / "junk.bnn").write_bytes(b"not a zip")
    with pytest.raises(BNNFileError, match="not a readable file"):
        load_packed_bnn(tmp_path / "junk.bnn")
    with pytest.raises(FileNotFoundError):
        load_packed_bnn(tmp_path / "missing.bnn")
    raw = bytearray(path.read_bytes())
    at = raw.index(arrays["words_5"].tobytes()[:16])
    raw[at] ^= 1
    (tmp_path / "altered.bnn").write_bytes(bytes(raw))
    with pytest.raises(BNNFileError, match="checksum mismatch|Bad CRC-32"):
        load_packed_bnn(tmp_path / "altered.bnn")


def test_save_refuses_activation_faults_and_other_objects(tmp_path):
    _, packed = packed_model("mlp", "bnn")
    with pytest.raises(ValueError, match="activation faults cannot be saved"):
        packed.with_faults(0.1, "activations", seed=0).save(tmp_path / "f.bnn")
    faulty = packed.with_faults(0.1, "weights", seed=0)  # weight faults are just other sign bits
    loaded = PackedBNN.load(faulty.save(tmp_path / "w.bnn"))
    x = inputs((64,), 50, seed=1)
    assert torch.equal(loaded.logits(x), faulty.logits(x))
    assert loaded.meta["faults"] == [{"target": "weights", "p": 0.1, "kind": "flip", "seed": 0}]
    with pytest.raises(ValueError, match="expects a PackedBNN"):
        save_packed_bnn(object(), tmp_path / "x.bnn")  # type: ignore[arg-type]


def test_cost_model_bits_equal_the_saved_payload(tmp_path):
    """mlp 64 -> 128 -> 64 -> 10: every word row is full (fan-ins 64, 128, 64), so the file stores exactly the
    counted bits: sign weights, int32 / float64 thresholds, the classifier's float64 BatchNorm."""
    _, packed = packed_model("mlp", "bnn")
    path = packed.save(tmp_path / "mlp.bnn")
    with np.load(path) as npz:
        payload = sum(npz[k].nbytes for k in npz.files if k != "header")
    c = packed.cost()
    assert c.model_bits == 8 * payload
    assert c.bits_by_part["sign weight words"] == 64 * 128 + 128 * 64 + 64 * 10
    assert c.bits_by_part["float64 thresholds"] == 64 * 128  # the real first layer
    assert c.bits_by_part["int32 thresholds"] == 32 * 64
    assert c.bit_ops_per_image == 2 * (128 * 64 + 64 * 10)
    assert c.float_macs_per_image == 64 * 128 + 10  # the first layer, and the classifier's BatchNorm
    _, conv = packed_model("digits", "bnn")
    # digits: conv 1->16 k3 pad1 on 8x8 (real), conv 16->32 k3 pad1 on 8x8 (binary), pool, 512 -> 128 -> 10
    c = conv.cost()
    path = conv.save(tmp_path / "digits.bnn")
    with np.load(path) as npz:
        payload = sum(npz[k].nbytes for k in npz.files if k != "header")
    assert c.model_bits == 8 * payload  # conv rows pad each kernel position's 16 (1) channels to a 64-bit word
    assert c.bits_by_part["sign weight words"] == 64 * (16 * 9 + 32 * 9 + 128 * 8 + 10 * 2)
    assert _linear_sizes(conv) == [(512, 128), (128, 10)]
    assert c.bit_ops_per_image == 2 * (16 * 9 * 32 * 64 + 512 * 128 + 128 * 10)
    assert c.float_macs_per_image == 9 * 16 * 64 + 10


def _linear_sizes(packed):
    return [(layer.fan_in, layer.out_units) for layer in packed.layers if layer.kind == "linear"]


# --- the command line: convert and eval ---------------------------------------------------------------------------


def bnn_checkpoint(directory, method: str = "bnn"):
    """A digits BNN checkpoint as gnet train writes it: seeded random weights, BatchNorm statistics recalibrated on
    the training images (a few seconds instead of a training run)."""
    from gnet.checkpoint import save_checkpoint
    from gnet.data import load_dataset
    from gnet.models import build_for_method, input_scaling

    data = load_dataset("digits", val_fraction=0.1, seed=0)
    model, config = build_for_method(method, data, seed=0)
    model.recalibrate_batchnorm(data.train.tensors[0])
    model.eval()
    config.update(
        {
            "input_shape": list(data.input_shape),
            "n_classes": data.n_classes,
            "dataset": "digits",
            "val_fraction": 0.1,
            "data_seed": 0,
            "scaling": input_scaling(method),
        }
    )
    return save_checkpoint(directory / f"{method}.pt", model, config), model, data


def test_cli_convert_and_eval_a_bnn(tmp_path, capsys):
    from gnet.cli import main

    ckpt, model, data = bnn_checkpoint(tmp_path)
    assert main(["convert", str(ckpt), "--out", str(tmp_path / "m.ehd")]) == 2
    assert "is a BNN checkpoint (method 'bnn'): it converts to a packed BNN" in capsys.readouterr().err
    assert main(["convert", str(ckpt), "--out", str(tmp_path / "m.bnn")]) == 0
    assert "packed bnn, 4 binary layers" in capsys.readouterr().out
    packed = load_packed_bnn(tmp_path / "m.bnn")
    assert packed.input_shape == (1, 8, 8) and packed.meta["dataset"] == "digits"
    x, y = data.test.tensors
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).double().mean())
    assert np.array_equal(packed.predict(x), model(x).argmax(1).numpy())
    assert main(["eval", str(tmp_path / "m.bnn"), "--batch-size", "100"]) == 0
    out = capsys.readouterr().out
    assert f"digits BNN test accuracy {accuracy:.4f} on 540 items" in out and "method bnn" in out
    # a G-Net checkpoint does not become a .bnn file, and a damaged .bnn file is named as such
    from gnet.checkpoint import save_checkpoint
    from gnet.models import build_model

    specs = architecture("digits")
    gnet_ckpt = save_checkpoint(tmp_path / "g.pt", build_model(specs, seed=0), {"architecture": specs})
    assert main(["convert", str(gnet_ckpt), "--out", str(tmp_path / "g.bnn")]) == 2
    assert "is a float G-Net checkpoint: it converts to an EHD model" in capsys.readouterr().err
    (tmp_path / "bad.bnn").write_bytes(b"junk")
    assert main(["eval", str(tmp_path / "bad.bnn")]) == 2
    assert "bad.bnn: not a readable file" in capsys.readouterr().err
