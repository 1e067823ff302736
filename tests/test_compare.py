"""gnet compare: the EHD side of the deployed-model protocol (cost counted by hand), the float and HDC models' costs,
and ``gnet compare`` end to end on digits with tiny settings (columns consistent with the saved files and with hand
counts, resume, refusals)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from torch import nn

from gnet.cli import main
from gnet.compare import CompareConfig, float_cost
from gnet.deployed import DeployedModel, load_deployed
from gnet.ehd import EHDClassifier, EHDGLayer, EHDModel, Geometry
from gnet.ehd.model import Flatten, Pool
from hdc.packed import pack_bits


def _codes(rng: np.random.Generator, units: int, dim: int) -> np.ndarray:
    return pack_bits(rng.integers(0, 2, size=(units, dim)).astype(bool))


def _tiny_model() -> EHDModel:
    """conv2d 1->2 (k3, p1, dim 70, Gaussian G, RASU) on (1, 4, 4) -> pool 2 -> flatten (8) -> classifier 8->3
    (dim 64, Hadamard G)."""
    rng = np.random.default_rng(0)
    conv = EHDGLayer(
        Geometry("conv2d", 1, 2, (3, 3), (1, 1), (1, 1), (1, 1)),
        70,
        _codes(rng, 2, 70),
        0.1,
        embedding="gaussian",
        seed=0,
        index=0,
        activation="rasu",
        alpha=5.0,
        precision="float32",
    )
    clf = EHDClassifier(8, 3, 64, _codes(rng, 3, 64), 0.2, embedding="hadamard", seed=0, index=1)
    return EHDModel([conv, Pool(2, 2), Flatten(), clf], input_shape=(1, 4, 4))


def test_ehd_cost_equals_a_hand_count(tmp_path):
    model = _tiny_model()
    assert isinstance(model, DeployedModel) and model.family == "ehd"
    cost = model.cost()
    # conv: 16 patches (4x4, padding 1), 2 units, 2 words of dim 70; classifier: 1 patch, 3 units, 1 word.
    assert cost.bit_ops_per_image == 16 * 2 * (2 * 128) + 3 * (2 * 64)
    # Gaussian: dim * fan_in per patch; Hadamard, fan_in 8 -> one block of d = 64 rows: 3 * 64 * log2(64) adds.
    assert cost.float_macs_per_image == 16 * 70 * 9 + 3 * 64 * 6
    # codes at 64 bits per word (padding included); b of both layers and the RASU layer's alpha at 64 bits.
    assert cost.bits_by_part == {"codes": 2 * 2 * 64 + 3 * 64, "float64 scalars": 3 * 64}
    assert cost.model_bits == sum(cost.bits_by_part.values())
    # The saved file's arrays are exactly the codes; the scalars are the header's doubles.
    path = model.save(tmp_path / "m.ehd")
    with np.load(path) as npz:
        header = json.loads(npz["header"].tobytes())
        array_bits = sum(npz[k].nbytes * 8 for k in npz.files if k != "header")
    scalars = sum(1 + (s.get("activation") == "rasu") for s in header["stages"] if "bias" in s)
    assert array_bits == cost.bits_by_part["codes"] and cost.model_bits == array_bits + 64 * scalars
    assert load_deployed(path).cost() == cost


def test_ehd_with_faults_flips_exactly_round_p_dim_bits_per_code():
    model = _tiny_model()
    assert model.fault_targets() == ("model", "data")
    faulty = model.with_faults(0.1, "model", seed=3)
    for clean, hit in zip(model.layers, faulty.layers, strict=True):
        flipped = np.unpackbits((clean.codes ^ hit.codes).view(np.uint8), axis=1).sum(axis=1)
        assert (flipped == round(0.1 * clean.dim)).all()
    assert faulty.cost() == model.cost()
    with pytest.raises(ValueError, match="target"):
        model.with_faults(0.1, "both", seed=0)  # the protocol's targets only


def test_float_cost_equals_a_hand_count():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    cost = float_cost(net, (1, 4, 4))
    assert cost.float_macs_per_image == 2 * 16 * 9 + 3 * 32 and cost.bit_ops_per_image == 0
    assert cost.model_bits == 32 * (2 * 9 + 2 + 32 * 3 + 3)


def test_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="method"):
        CompareConfig("digits", ("ehd-papr",))
    with pytest.raises(ValueError, match="seeds"):
        CompareConfig("digits", ("ehd-paper",), seeds=(0, 0))
    with pytest.raises(ValueError, match="dim"):
        CompareConfig("digits", ("ehd-paper",), dims=(0,))


METHODS = "gnet-float,ehd-paper,ehd-fast,centroidhd,hdc-on-ehd-codes,cnn-float,bnn"


def _run(out, *extra: str) -> int:
    argv = ["compare", "--dataset", "digits", "--preset", "tiny", "--seeds", "2", "--dims", "128", "--limit", "120"]
    return main([*argv, "--methods", METHODS, "--out", str(out), "--quiet", *extra])


def _digits_hand_counts(dim: int) -> dict[str, int]:
    """Bit ops and Gaussian-G multiply-adds per image of the EHD digits net (gnet.models.digits_net), by hand:
    conv 1->16 and 16->32 (k3, p1) on 8x8 (64 patches each), pool 2, linear 512->128, classifier 128->10."""
    words = -(-dim // 64)
    products = 64 * 16 + 64 * 32 + 128 + 10  # (unit, patch) Hamming products
    fan_in_patches = 64 * 9 + 64 * 144 + 512 + 128  # sum over projections of fan_in
    return {"bit_ops": products * 2 * 64 * words, "macs": dim * fan_in_patches}


def test_gnet_compare_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    t0 = time.perf_counter()
    assert _run(out) == 0
    first = time.perf_counter() - t0
    result = json.loads((out / "compare.json").read_text())
    rows = {(r["method"], r["seed"]): r for r in result["rows"]}
    assert len(rows) == 14 and all(r["status"] == "done" for r in rows.values()), [r["notes"] for r in rows.values()]
    assert result["machine"]["cpu_flags"] and len(result["checkpoints"]) == 6  # gnet, cnn-float, bnn x 2 seeds
    assert all(len(h) == 64 for h in result["checkpoints"].values())
    hand = _digits_hand_counts(128)
    for (method, seed), r in rows.items():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["n_test"] == 120
        trains = method in ("gnet-float", "centroidhd", "cnn-float", "bnn")  # the others reuse gnet-float's G-Net
        assert r["row_seconds"] >= r["deploy_seconds"] + (r["train_seconds"] if trains else 0.0)
        if method in ("ehd-paper", "ehd-fast", "hdc-on-ehd-codes"):
            assert r["bit_ops_per_image"] == hand["bit_ops"]
            if method != "ehd-fast":  # the Hadamard G needs fewer multiply-adds than the dense one
                assert r["float_macs_per_image"] == hand["macs"]
            assert 0 < rows[("ehd-fast", seed)]["float_macs_per_image"] < hand["macs"]
            assert r["fault_target"] == "model" and all(a is not None for a in r["fault_accuracy"].values())
        if method in ("gnet-float", "cnn-float"):
            assert r["bit_ops_per_image"] == 0 and r["fault_target"] is None
            assert any("no bit-fault model" in n for n in r["notes"])  # n/a with its reason, never silent
        if method == "bnn":  # the packed BNN: cost and weight faults through the deployed-model interface
            assert r["model_bits"] is not None and r["fault_target"] == "weights"
        if r["deployed_file"] and r["deployed_file"]["array_bits"] is not None:  # every seed's file
            _check_file_bits(r, out)
    assert rows[("gnet-float", 0)]["float_macs_per_image"] == (
        64 * 16 * 9 + 64 + 64 * 9 + 64 * 32 * 144 + 16 * 64 + 64 * 9 + 128 * 512 + 512 + 10 * 128 + 128
    )
    assert set(result["throughput"]) == {f"{m}|{'dim=128' if 'hd' in m else '-'}" for m in METHODS.split(",")}
    table = (out / "compare.md").read_text()
    assert "| ehd-paper | dim=128 | 2 |" in table and "no bit-fault model" in table
    for name in ("accuracy_vs_bits.png", "accuracy_vs_speed.png", "accuracy_vs_flips.png"):
        assert (out / name).stat().st_size > 1000
    assert first < 120, f"the tiny comparison took {first:.0f} s"
    _check_resume(out, result, capsys)


def _check_file_bits(row: dict, out) -> None:
    """model_bits = 8 x the saved arrays' bytes, plus (EHD) the header's float64 scalars."""
    path = out / row["deployed_file"]["path"]
    with np.load(path) as npz:
        header = json.loads(npz["header"].tobytes())
        array_bits = sum(npz[k].nbytes * 8 for k in npz.files if k != "header")
    assert row["deployed_file"]["array_bits"] == array_bits
    scalars = 0
    if header["format"] == "gnet-ehd":
        scalars = sum(1 + (s.get("activation") == "rasu") for s in header["stages"] if "bias" in s)
    assert row["model_bits"] == array_bits + 64 * scalars


def _check_resume(out, result: dict, capsys) -> None:
    """The same command skips every finished row; a pending row is redone; other settings are refused."""
    data = json.loads((out / "compare.json").read_text())
    target = next(r for r in data["rows"] if r["method"] == "centroidhd" and r["seed"] == 1)
    target.update(status="pending", accuracy=None)
    stale = next(r for r in data["rows"] if r["method"] == "bnn" and r["seed"] == 1)
    stale.update(recipe="an earlier recipe", accuracy=-1.0)  # a row measured before the BNN recipe changed
    (out / "compare.json").write_text(json.dumps(data))
    assert _run(out) == 0
    again = json.loads((out / "compare.json").read_text())
    before = {(r["method"], r["seed"]): r for r in result["rows"]}
    redo = {("centroidhd", 1), ("bnn", 1)}
    for r in again["rows"]:
        assert r["status"] == "done" and r["recipe"] == before[(r["method"], r["seed"])]["recipe"]
        if (r["method"], r["seed"]) not in redo:
            assert r == before[(r["method"], r["seed"])]  # reused as written, not measured again
    for key in redo:  # seeded, and the unchanged BNN recipe finds its network in the cache: the same value again
        assert next(r for r in again["rows"] if (r["method"], r["seed"]) == key)["accuracy"] == before[key]["accuracy"]
    _check_remeasure(out)
    capsys.readouterr()
    assert _run(out, "--epochs", "3") == 2
    assert "another configuration" in capsys.readouterr().err


def _check_remeasure(out) -> None:
    """A finished table keeps its img/s column when nothing changed, and measures it again on request."""
    data = json.loads((out / "compare.json").read_text())
    marker = {"images_per_second": -1.0, "sd": 0.0, "rounds": 0}
    data["throughput"] = {k: dict(marker) for k in data["throughput"]}
    (out / "compare.json").write_text(json.dumps(data))
    assert _run(out) == 0
    kept = json.loads((out / "compare.json").read_text())
    assert all(v == marker for v in kept["throughput"].values())
    assert kept["machine"]["load_average_throughput"] == data["machine"]["load_average_throughput"]  # the column's
    assert _run(out, "--remeasure-throughput") == 0
    again = json.loads((out / "compare.json").read_text())
    assert again["throughput"].keys() == kept["throughput"].keys()
    assert all(v["images_per_second"] > 0 and v["rounds"] > 0 for v in again["throughput"].values())
    assert again["rows"] == kept["rows"] and again["command"].endswith("--remeasure-throughput")


def test_a_table_may_grow_by_methods_and_seeds_but_not_change(tmp_path):
    """A table filled over several runs gains methods or seeds and keeps its finished rows; any other change (or a
    method or seed taken away, whose rows would be lost) is refused unless --overwrite."""
    from gnet.compare.report import FORMAT, VERSION, load_result

    small = CompareConfig("digits", ("bnn", "fda"), seeds=(0,)).identity()
    row = {"method": "bnn", "setting_label": "-", "seed": 0, "status": "done", "accuracy": 0.97}
    path = tmp_path / "compare.json"
    path.write_text(json.dumps({"format": FORMAT, "version": VERSION, "config": small, "rows": [row]}))
    grown = CompareConfig("digits", ("gnet-float", "bnn", "fda"), seeds=(0, 1, 2)).identity()
    resumed = load_result(path, grown, overwrite=False)
    assert resumed is not None and resumed["rows"] == [row] and resumed["config"] == grown
    for other in (
        CompareConfig("digits", ("bnn",), seeds=(0,)),  # fda's rows would be lost
        CompareConfig("digits", ("bnn", "fda"), seeds=(1,)),  # seed 0's rows would be lost
        CompareConfig("digits", ("bnn", "fda", "cnn-float"), seeds=(0,), epochs=3),  # grown, but another recipe
    ):
        with pytest.raises(ValueError, match="another configuration"):
            load_result(path, other.identity(), overwrite=False)
    assert load_result(path, small, overwrite=True) is None


def test_img_per_s_waits_for_the_last_row(tmp_path):
    """A partial table (a row pending) gets no img/s column: it is one side-by-side measurement of every model, and
    measuring a partial table would rebuild (retrain, on a machine without the cache) every finished method."""
    from types import SimpleNamespace

    from gnet.compare.run import _throughput_stage

    said: list[str] = []
    ctx = SimpleNamespace(config=SimpleNamespace(seeds=(0,)), log=said.append)
    rows = [{"method": "bnn", "setting_label": "-", "seed": 0, "status": "done"},
            {"method": "fda", "setting_label": "-", "seed": 0, "status": "pending"}]  # fmt: skip
    result = {"rows": rows, "machine": {}}
    _throughput_stage(ctx, result, tmp_path, measured_now=1)  # would need ctx.deployed etc. if it measured anything
    assert "throughput" not in result and said == ["1 rows are pending: img/s is measured once every row is done"]


def test_img_per_s_times_a_deployed_file_where_the_cache_is_gone(tmp_path):
    """A table finished on a machine without the earlier runs' checkpoints: the img/s stage times each setting on a
    deployed file that loads and matches its SHA-256 (any seed), and rebuilds (trains) only where none does."""
    import shutil

    from gnet.compare import run_compare

    config = CompareConfig("digits", ("bnn", "centroidhd"), seeds=(0, 1), preset="tiny", limit=60)
    first = run_compare(config, tmp_path, progress=False)
    assert {k: v["seed"] for k, v in first["throughput"].items()} == {"bnn|-": 0, "centroidhd|dim=128": 0}
    assert (tmp_path / "deployed/seed-1/bnn.bnn").is_file()  # every seed's deployed file, not only the first's
    shutil.rmtree(tmp_path / "checkpoints")  # another machine: no training cache
    (tmp_path / "deployed/seed-0/bnn.bnn").unlink()
    said: list[str] = []
    again = run_compare(config, tmp_path, progress=False, remeasure_throughput=True, log=said.append)
    assert again["throughput"]["bnn|-"]["seed"] == 1 and again["throughput"]["bnn|-"]["images_per_second"] > 0
    assert said == ["img/s stage: rebuilding centroidhd dim=128 seed 0"]  # an .hdcz has no loader: refitted
    assert not (tmp_path / "checkpoints").exists()  # the BNN was loaded, not trained again
    seed_1 = tmp_path / "deployed/seed-1/bnn.bnn"
    data = bytearray(seed_1.read_bytes())
    data[-1] ^= 1
    seed_1.write_bytes(bytes(data))  # altered: its SHA-256 no longer matches the row's
    said.clear()
    run_compare(config, tmp_path, progress=False, remeasure_throughput=True, log=said.append)
    assert said == ["img/s stage: rebuilding bnn - seed 0", "img/s stage: rebuilding centroidhd dim=128 seed 0"]


def test_gnet_compare_refuses_bad_method(tmp_path, capsys):
    assert main(["compare", "--dataset", "digits", "--methods", "ehd-paper,nope", "--out", str(tmp_path)]) == 2
    assert "unknown method(s) nope" in capsys.readouterr().err
    assert not (tmp_path / "compare.json").exists()


def test_a_killed_run_leaves_its_table_current(tmp_path):
    """compare.json's summary and compare.md are written after every row, so a run stopped mid-way (here: by its
    log callback, as by Ctrl-C) leaves a table of the rows it finished, which says how many are missing."""
    from gnet.compare import run_compare

    class Stop(Exception):
        pass

    finished: list[str] = []

    def stop_after_two(line: str) -> None:
        finished.append(line)
        if len(finished) == 2:
            raise Stop(line)

    config = CompareConfig("digits", ("centroidhd",), seeds=(0, 1, 2), preset="tiny", limit=60)
    with pytest.raises(Stop):
        run_compare(config, tmp_path, progress=False, log=stop_after_two)
    result = json.loads((tmp_path / "compare.json").read_text())
    assert [r["seed"] for r in result["rows"]] == [0, 1] and result["n_rows_planned"] == 3
    assert result["summary"][0]["seeds"] == [0, 1] and result["complete"] is False
    table = (tmp_path / "compare.md").read_text()
    assert "**2 of 3 rows done**" in table and "| centroidhd | dim=128 | 2 |" in table
    _check_redraw(tmp_path, config, table)
    run_compare(config, tmp_path, progress=False)  # resumed: the third row, img/s, the plots
    result = json.loads((tmp_path / "compare.json").read_text())
    assert result["complete"] is True and result["summary"][0]["seeds"] == [0, 1, 2]
    first, second = result["runs"]  # each run's machine and rows are kept; img/s was measured by the second
    assert first["rows_measured"] == ["centroidhd|dim=128|seed=0", "centroidhd|dim=128|seed=1"]
    assert second["rows_measured"] == ["centroidhd|dim=128|seed=2"] and "load_average_throughput" in second
    assert "load_average_throughput" not in first and first["machine"]["n_cores"] == result["machine"]["n_cores"]
    assert "rows done**" not in (tmp_path / "compare.md").read_text()


def _check_redraw(out, config: CompareConfig, table: str) -> None:
    """--report-only draws the plots of a partial table and rewrites its table as it is: compare.json unchanged
    (no run recorded), nothing measured; a configuration the file does not hold is refused."""
    from gnet.compare import redraw_compare

    before = (out / "compare.json").read_bytes()
    assert not (out / "accuracy_vs_bits.png").exists()  # plots come at the end of a run, which was cut short
    (out / "compare.md").unlink()
    argv = ["compare", "--dataset", "digits", "--preset", "tiny", "--methods", "centroidhd", "--seeds", "3"]
    assert main([*argv, "--limit", "60", "--out", str(out), "--report-only"]) == 0
    assert (out / "compare.json").read_bytes() == before and (out / "compare.md").read_text() == table
    assert (out / "accuracy_vs_bits.png").stat().st_size > 1000
    assert main([*argv, "--limit", "60", "--out", str(out), "--report-only", "--overwrite"]) == 2
    with pytest.raises(ValueError, match="another configuration"):
        redraw_compare(CompareConfig("digits", ("centroidhd",), seeds=(0, 1, 2), preset="tiny"), out)  # no limit
    with pytest.raises(ValueError, match="fewer methods or seeds"):
        redraw_compare(CompareConfig("digits", ("centroidhd",), seeds=(0, 1, 2, 3), preset="tiny", limit=60), out)
    with pytest.raises(ValueError, match="nothing to redraw"):
        redraw_compare(config, out / "elsewhere")
    assert (out / "compare.json").read_bytes() == before


def test_plots_draw_perfect_and_tied_settings(tmp_path):
    """The plots take a setting at 100 % (drawn half a test item below: the logit scale has no 1) and two settings of
    one method at the same x (sorted by x alone), and label dims as 2k / 10k."""
    from gnet.compare.plots import _Accuracy, _short_setting, plot_all

    def entry(method: str, family: str, setting: str, accuracy: float, bits: float) -> dict:
        faults = {"0.01": [accuracy, 0.0], "0.1": [0.5, 0.01]}
        return {"method": method, "family": family, "setting": setting, "seeds": [0, 1], "accuracy": [accuracy, 0.0],
                "model_bits": [bits, 0.0], "throughput": {"images_per_second": bits / 10, "sd": 1.0},
                "fault_accuracy": faults}  # fmt: skip

    summary = [entry("ehd-fast", "ehd", "dim=2000", 1.0, 1e5), entry("ehd-fast", "ehd", "dim=10000", 0.98, 1e5),
               entry("bnn", "bnn", "-", 0.9, 3e4)]  # fmt: skip
    rows = [{"status": "done", "n_test": 40}]
    paths = plot_all({"summary": summary, "rows": rows, "config": {"fault_rates": [0.01, 0.1]}}, tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)
    acc = _Accuracy(40)
    assert acc(1.0) == 1 - 0.5 / 40 and acc.clipped and _Accuracy(40)(0.9) == 0.9
    assert [_short_setting(s) for s in ("dim=2000", "dim=10000", "dim=250", "-")] == ["2k", "10k", "250", "-"]


def test_every_family_has_a_deployed_extension_and_git_keeps_exactly_the_loadable_ones():
    """Every method's family names its deployed file's extension (an unknown one is refused, not saved as .bin), and
    the repository's .gitignore keeps in git exactly the formats ``load_deployed`` reads (the img/s stage times
    those on a machine without the training cache) and leaves out the float and HDC ones."""
    import shutil
    import subprocess
    from pathlib import Path

    from gnet.compare.methods import METHODS
    from gnet.compare.run import FAMILY_EXTENSIONS, _deployed_extension
    from gnet.deployed import DEPLOYED_EXTENSIONS

    assert {m.family for m in METHODS.values()} <= set(FAMILY_EXTENSIONS)
    with pytest.raises(ValueError, match="'quantum' has no deployed-file extension"):
        _deployed_extension("quantum")
    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for extension in FAMILY_EXTENSIONS.values():
        path = f"results/compare/some-table/deployed/seed-0/a-method{extension}"
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=root, check=False)
        assert ignored.returncode == (1 if extension in DEPLOYED_EXTENSIONS else 0), extension
