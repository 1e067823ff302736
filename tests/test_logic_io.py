"""The .logic file (gnet.logic.io): round trip, crafted files refused before use, cost = stored bits, bad input."""

from __future__ import annotations

import json
import time
import zipfile

import numpy as np
import pytest
import torch

from gnet.checkpoint import save_checkpoint
from gnet.deployed import DeployedModel, load_deployed
from gnet.logic import LogicCircuit, convert, convert_checkpoint, difflogic_net, gate_id, load_circuit
from gnet.logic.io import FORMAT, VERSION, LogicFileError, _arrays, index_dtype
from hdc.io import load_container, save_container

THERMO = {"kind": "thermometer", "k": 3, "method": "uniform", "value_range": None}


def _random_gates(model, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 3)


@pytest.fixture(scope="module")
def model():
    # 3 x 305 gates: an odd gate count (a tail nibble), layer 0 reads 72 input bits (uint8 indices), later layers
    # read 305 gates (uint16 indices).
    net = difflogic_net(24, 5, 305, 3, tau=3.0, seed=7, connections="random", encoder=THERMO)
    _random_gates(net, 1)
    return net.eval()


@pytest.fixture(scope="module")
def circuit(model):
    return convert(model)


def _x(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 24, generator=torch.Generator().manual_seed(seed))


def test_round_trip_is_bit_identical(tmp_path, model, circuit):
    path = circuit.save(tmp_path / "m")
    assert path.name == "m.logic" and path.is_file()
    again = LogicCircuit.load(path)
    x = _x(200)
    np.testing.assert_array_equal(again.counts(x), circuit.counts(x))
    np.testing.assert_array_equal(again.predict(x), model(x).argmax(1).numpy())
    for a, b in zip(
        again.ids + again.index_a + again.index_b, circuit.ids + circuit.index_a + circuit.index_b, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert again.tau == circuit.tau and again.input_shape == (24,) and again.meta == circuit.meta
    deployed = load_deployed(path)
    assert isinstance(deployed, LogicCircuit) and isinstance(deployed, DeployedModel)
    assert deployed.family == "logic" and deployed.n_classes == 5


def test_cost_model_bits_equal_the_saved_payload(tmp_path, circuit):
    _, arrays = load_container(circuit.save(tmp_path / "c.logic"), FORMAT, (VERSION,))
    cost = circuit.cost()
    assert cost.model_bits == 8 * sum(a.nbytes for a in arrays.values()) == sum(cost.bits_by_part.values())
    # 915 gates: 458 bytes of nibbles; layer 0 (fan-in 72) uint8, layers 1-2 (fan-in 305) uint16 indices
    assert cost.bits_by_part["gate ids"] == 8 * 458
    assert cost.bits_by_part["gate input indices"] == 2 * 305 * (8 + 16 + 16)
    assert cost.bit_ops_per_image == 915 + 305 and cost.float_macs_per_image == 72
    assert arrays["index_0"].dtype == np.uint8 and arrays["index_1"].dtype == np.uint16
    assert index_dtype(256) == np.uint8 and index_dtype(257) == np.uint16 and index_dtype(65537) == np.uint32


def test_convert_checkpoint(tmp_path, model):
    spec = model.spec
    ckpt = save_checkpoint(tmp_path / "m.pt", model, {"architecture": spec, "family": "difflogic", "dataset": "x"})
    path, circuit = convert_checkpoint(ckpt, tmp_path / "m")
    assert path.suffix == ".logic" and circuit.meta["dataset"] == "x" and circuit.meta["checkpoint"] == str(ckpt)
    x = _x(70, 3)
    np.testing.assert_array_equal(load_circuit(path).predict(x), model(x).argmax(1).numpy())
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_checkpoint(ckpt, path)
    convert_checkpoint(ckpt, path, overwrite=True)
    with pytest.raises(LogicFileError, match=r"\.pt checkpoint\? convert it"):
        load_circuit(ckpt)


def _write(path, header: dict, arrays: dict):
    return save_container(path, FORMAT, VERSION, header, arrays)  # a valid checksum: the schema must refuse it


def _parts(circuit):
    header = {
        "n_classes": 5,
        "raw_features": 24,
        "strict_range": True,
        "input_shape": [24],
        "widths": [305, 305, 305],
        "n_input_bits": 72,
        "meta": {},
    }
    return header, _arrays(circuit)


def _crafted():
    """(name, header changes, array changes, expected message) of files that must be refused."""
    bad_ids = np.full(915, 3, np.uint8)
    bad_ids[7] = 16  # a writer storing one byte per gate, with an id that does not exist
    return [
        ("gate id 16 (byte per gate)", {}, {"gate_ids": bad_ids}, "gate_ids must be uint8 \\(458,\\)"),
        ("index out of range", {}, {"index_1": "oob"}, "layer 1 input index 305 out of range"),
        ("NaN tau", {}, {"tau": np.array([np.nan])}, "tau must be finite"),
        ("negative tau", {}, {"tau": np.array([-1.0])}, "tau must be finite and > 0"),
        ("inf threshold", {}, {"input_threshold": "inf"}, "thresholds finite"),
        ("tail nibble", {}, {"gate_ids": "tail"}, "tail nibble"),
        ("absurd widths", {"widths": [2**30, 305, 305]}, {}, "would allocate"),
        ("absurd inputs", {"raw_features": 2**31, "input_shape": [2**31]}, {}, "would allocate"),
        ("widths of text", {"widths": "305"}, {}, "widths must be a list"),
        ("bool n_classes", {"n_classes": True}, {}, "n_classes must be an integer"),
        ("float raw_features", {"raw_features": 24.0}, {}, "raw_features must be an integer"),
        ("strict_range int", {"strict_range": 1}, {}, "strict_range must be true or false"),
        ("shape mismatch", {"input_shape": [5, 5]}, {}, "does not hold raw_features"),
        ("groups", {"n_classes": 7}, {}, "not a multiple of n_classes"),
        ("meta list", {"meta": []}, {}, "meta must be an object"),
        ("wide index dtype", {}, {"index_0": "int64"}, "index_0 must be uint8"),
        ("missing layer", {"widths": [305, 305, 305, 305]}, {}, "do not match the header"),
        ("extra array", {}, {"payload": np.zeros(3)}, "do not match the header"),
        ("source out of range", {}, {"input_source": "oob"}, "input_source out of range"),
    ]


@pytest.mark.parametrize("case", _crafted(), ids=lambda c: c[0])
def test_crafted_files_are_refused_quickly(tmp_path, circuit, case):
    _, header_changes, array_changes, message = case
    header, arrays = _parts(circuit)
    header.update(header_changes)
    for name, value in array_changes.items():
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif value == "oob":
            arrays[name] = arrays[name].copy()
            arrays[name].flat[-1] = 305 if name.startswith("index") else 24
        elif value == "inf":
            arrays[name] = arrays[name].copy()
            arrays[name][3] = np.inf
        elif value == "tail":
            arrays[name] = arrays[name].copy()
            arrays[name][-1] |= 0x50
        elif value == "int64":
            arrays[name] = arrays[name].astype(np.int64)
    path = _write(tmp_path / "bad.logic", header, arrays)
    t0 = time.perf_counter()
    with pytest.raises(LogicFileError, match=message):
        load_circuit(path)
    assert time.perf_counter() - t0 < 2.0  # refused from the headers or one vectorised pass, never by allocating


def test_files_of_other_families_and_damaged_files(tmp_path, circuit):
    ehd = save_container(tmp_path / "m.ehd", "gnet-ehd", 2, {"stages": []}, {"codes_0": np.zeros((2, 1), np.uint64)})
    with pytest.raises(LogicFileError, match="a 'gnet-ehd' file, not a logic circuit"):
        load_circuit(ehd)
    (tmp_path / "text.logic").write_text("hello")
    with pytest.raises(LogicFileError, match="not a readable file"):
        load_circuit(tmp_path / "text.logic")
    with pytest.raises(FileNotFoundError):
        load_circuit(tmp_path / "missing.logic")
    # one flipped byte in an array: the checksum catches what the schema cannot
    path = circuit.save(tmp_path / "ok.logic")
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    data = bytearray(members["input_threshold.npy"])
    data[-1] ^= 1
    members["input_threshold.npy"] = bytes(data)
    with zipfile.ZipFile(tmp_path / "altered.logic", "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    with pytest.raises(LogicFileError, match="checksum"):
        load_circuit(tmp_path / "altered.logic")
    with pytest.raises(LogicFileError, match="max_bytes"):
        load_circuit(path, max_bytes=1000)
    header = json.loads(bytes(np.load(path)["header"]).decode())
    assert header["format"] == "gnet-logic" and header["widths"] == [305, 305, 305]


def test_in_memory_circuits_are_checked(circuit):
    ids = [g.copy() for g in circuit.ids]
    ids[1] = ids[1].astype(np.int64)
    ids[1][4] = 16
    with pytest.raises(ValueError, match=r"gate ids must lie in \[0, 16\)"):
        LogicCircuit(ids, circuit.index_a, circuit.index_b, 5, 3.0, circuit.input_source, circuit.input_threshold, 24)
    with pytest.raises(ValueError, match="tau must be a finite"):
        LogicCircuit(circuit.ids, circuit.index_a, circuit.index_b, 5, float("nan"), circuit.input_source,
                     circuit.input_threshold, 24)  # fmt: skip
    with pytest.raises(ValueError, match="input_shape"):
        LogicCircuit(circuit.ids, circuit.index_a, circuit.index_b, 5, 3.0, circuit.input_source,
                     circuit.input_threshold, 24, input_shape=(5, 5))  # fmt: skip


def test_bad_input(circuit):
    with pytest.raises(ValueError, match="unknown gate 'nand3'"):
        gate_id("nand3")
    with pytest.raises(ValueError, match="unknown connections 'ring'"):
        difflogic_net(24, 5, 300, 2, tau=3.0, connections="ring")
    plain = convert(difflogic_net(24, 5, 300, 2, tau=3.0, seed=1, connections="random").eval())
    assert plain.strict_range
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        plain.predict(np.full((4, 24), 1.5, np.float32))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        circuit.predict(_x(3), batch_size=0)
    with pytest.raises(ValueError, match="expected 24 input features"):
        circuit.predict(np.zeros((2, 23), np.float32))
    with pytest.raises(ValueError, match=r"x must be a batch \(B, 24\)"):
        circuit.predict(np.zeros(24, np.float32))
    assert circuit.predict(np.zeros((0, 24), np.float32)).shape == (0,)
    with pytest.raises(TypeError, match="LogicCircuit"):
        from gnet.logic import save_circuit

        save_circuit(object(), "x.logic")  # type: ignore[arg-type]
