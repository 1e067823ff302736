"""The optional ``profile`` argument of EHD inference: which stage kinds it records, that it only adds time spent
inside the call, and that it leaves the outputs unchanged."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from gnet.ehd import EHDGLayer, convert
from gnet.ehd.layers import PROFILE_KINDS
from gnet.ehd.model import Flatten, Pool
from gnet.layers import RASU, GConv2d, GLinear, NormalizedClassifier

SHAPE = (1, 8, 8)


def small_gnet() -> nn.Sequential:
    """conv -> RASU -> pool -> flatten -> linear -> RASU -> classifier, seeded (untrained: only shapes matter)."""
    gen = torch.Generator().manual_seed(0)
    return nn.Sequential(
        GConv2d(1, 4, 3, padding=1, generator=gen),
        RASU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        GLinear(4 * 4 * 4, 16, generator=gen),
        RASU(),
        NormalizedClassifier(16, 3),
    ).eval()


@pytest.fixture(scope="module")
def models():
    net = small_gnet()
    return {
        "gaussian": convert(net, dim=200, embedding="gaussian", seed=0, precision="float32", input_shape=SHAPE),
        "hadamard": convert(net, dim=200, embedding="hadamard", seed=0, input_shape=SHAPE),
        "per_channel": convert(
            net, dim=130, embedding="gaussian", conv_projection="per_channel", seed=0, input_shape=SHAPE
        ),
    }


def x_batch(n: int = 10) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("name", ["gaussian", "hadamard", "per_channel"])
def test_packed_profile_records_every_stage_and_changes_nothing(models, name):
    model = models[name]
    x = x_batch()
    plain = model.forward(x)
    profile: dict[tuple[int, str], float] = {}
    t0 = time.perf_counter()
    profiled = model.forward(x, profile=profile)
    wall = time.perf_counter() - t0
    assert torch.equal(plain, profiled)
    for index, stage in enumerate(model.stages):
        kinds = {kind for (i, kind) in profile if i == index}
        if isinstance(stage, EHDGLayer):
            # the packed backend without a fault hook goes through exactly these steps
            assert kinds == {"im2col", "encode", "hamming", "layout", "activation"}, (index, kinds)
        else:
            assert kinds == {"pool" if isinstance(stage, Pool) else "flatten"}
            assert isinstance(stage, (Pool, Flatten))
    assert all(kind in PROFILE_KINDS or kind in ("pool", "flatten") for (_, kind) in profile)
    assert all(v >= 0 for v in profile.values())
    # disjoint intervals inside the call: their sum cannot exceed the call's wall time
    assert sum(profile.values()) <= wall


def test_profile_accumulates_over_calls(models):
    model = models["hadamard"]
    x = x_batch()
    profile: dict[tuple[int, str], float] = {}
    model.forward(x, profile=profile)
    first = dict(profile)
    model.forward(x, profile=profile)
    assert profile.keys() == first.keys()
    assert all(profile[k] > first[k] for k in first)


def test_dense_backend_and_data_faults_have_their_own_kinds(models):
    model = models["gaussian"]
    x = x_batch()
    dense: dict[tuple[int, str], float] = {}
    model.forward(x, backend="dense", profile=dense)
    kinds = {kind for (_, kind) in dense}
    assert "dense_dot" in kinds and "encode" not in kinds and "hamming" not in kinds
    faulty = model.with_faults(0.1, "data", seed=0)
    packed: dict[tuple[int, str], float] = {}
    faulty.forward(x, profile=packed)
    layer_indices = [i for i, s in enumerate(faulty.stages) if isinstance(s, EHDGLayer)]
    assert {i for (i, kind) in packed if kind == "data_fault"} == set(layer_indices)


def test_layer_call_profile_matches_the_model_keys(models):
    model = models["gaussian"]
    layer = model.layers[0]
    profile: dict[str, float] = {}
    out = layer(x_batch(), "packed", profile)
    assert torch.equal(out, layer(x_batch()))
    assert set(profile) == {"im2col", "encode", "hamming", "layout", "activation"}
