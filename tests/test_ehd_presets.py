"""Named dim allocations (gnet.ehd.DIM_PRESETS): convert(model, dim=NAME) and gnet convert --dim NAME."""

from __future__ import annotations

import pytest
import torch

from gnet.ehd import DIM_PRESETS, DimPreset, convert, dim_preset, parse_dim
from gnet.models import architecture, build_model


def _digits_net() -> torch.nn.Module:
    return build_model(architecture("digits"), seed=0).eval()


def _n_code_layers(model: torch.nn.Module) -> int:
    return len(convert(model, dim=64).dim_per_layer)


def test_preset_sets_dims_and_embeddings(monkeypatch):
    model = _digits_net()
    n = _n_code_layers(model)
    dims = tuple(64 * (i + 1) for i in range(n))
    embeddings = ("gaussian",) + ("hadamard",) * (n - 1)
    tiny = DimPreset("digits-tiny", dims, embeddings, "digits", 0.9, 3, "a test")
    monkeypatch.setitem(DIM_PRESETS, "digits-tiny", tiny)
    ehd = convert(model, dim="digits-tiny")
    assert ehd.dim_per_layer == list(dims)
    assert ehd.meta["embedding"] == ",".join(embeddings) and ehd.meta["dim_preset"] == "digits-tiny"
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    same = convert(model, dim=list(dims), embedding=list(embeddings))
    assert torch.equal(torch.as_tensor(ehd.predict(x)), torch.as_tensor(same.predict(x)))
    own = convert(model, dim="digits-tiny", embedding="rademacher")  # an explicit embedding wins
    assert own.meta["embedding"] == "rademacher" and own.dim_per_layer == list(dims)
    assert parse_dim("digits-tiny") == "digits-tiny"


def test_preset_for_another_network_is_refused(monkeypatch):
    model = _digits_net()
    n = _n_code_layers(model)
    other = DimPreset("other", (64,) * (n + 1), ("gaussian",) * (n + 1), "bigger", 0.9, 1, "a test")
    monkeypatch.setitem(DIM_PRESETS, "other", other)
    with pytest.raises(ValueError, match=f"bigger network's {n + 1} code-carrying layers; this model has {n}"):
        convert(model, dim="other")
    with pytest.raises(ValueError, match="unknown dim preset"):
        dim_preset("cifar-fast")
    with pytest.raises(ValueError, match="preset"):
        parse_dim("cifar-fast")


def test_every_preset_is_consistent():
    for name, preset in DIM_PRESETS.items():
        assert preset.name == name and len(preset.dims) == len(preset.embedding)
        assert all(isinstance(d, int) and d >= 64 for d in preset.dims)
        assert 0.0 < preset.accuracy <= 1.0 and preset.seeds >= 1


def test_mnist_fast_preset_is_smaller_than_the_paper_dims():
    fast, paper = dim_preset("mnist-fast"), dim_preset("mnist-paper")
    assert all(f <= p for f, p in zip(fast.dims, paper.dims, strict=True))
    assert sum(fast.dims) < sum(paper.dims) and fast.embedding[0] == "gaussian" and fast.accuracy >= 0.99


def test_searched_presets_quote_their_result_files():
    """A preset found by benchmarks/ehd_dim_search.py carries the mean its committed search file measured."""
    import json
    from pathlib import Path

    checked = 0
    for preset in DIM_PRESETS.values():
        path = Path(__file__).resolve().parents[1] / preset.source.split()[0]
        if not path.name.startswith("dim_search"):
            continue
        record = json.loads(path.read_text())
        entry = record["evaluations"][",".join(str(d) for d in preset.dims)]
        per_seed = [s["correct"] / record["settings"]["n_test"] for s in entry["per_seed"].values()]
        assert len(per_seed) == preset.seeds
        assert preset.accuracy == pytest.approx(sum(per_seed) / len(per_seed), abs=5e-6)
        checked += 1
    assert checked >= 3
