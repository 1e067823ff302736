"""Shared fixtures: a small digits G-Net trained once per test session (about 10 s on 2 cores)."""

from __future__ import annotations

import pytest
from hypothesis import settings

from hdc import prefer_passive_openmp  # noqa: I001

# Property tests draw their examples from a fixed derivation (no per-run randomness), so CI runs are reproducible;
# a new input class is explored by raising max_examples locally, not by chance in CI.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.load_profile("deterministic")

prefer_passive_openmp()  # before torch loads: spinning OpenMP workers stall the numba kernels (hdc._kernels.runtime)

from gnet.data import load_dataset  # noqa: E402
from gnet.models import architecture, build_model  # noqa: E402
from gnet.train import TrainConfig, train  # noqa: E402


def train_digits(activation: str, epochs: int = 15, seed: int = 0):
    data = load_dataset("digits", val_fraction=0.1, seed=0)
    specs = architecture("digits", activation=activation)
    model = build_model(specs, seed=seed)
    config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed)
    model_config = {
        "architecture": specs,
        "input_shape": list(data.input_shape),
        "n_classes": data.n_classes,
        "dataset": "digits",
        "val_fraction": 0.1,
        "data_seed": 0,
    }
    train(model, data.train.tensors, data.val.tensors, config, model_config, progress=False)
    model.eval()
    return model, model_config, data


@pytest.fixture(scope="session")
def digits_rasu():
    """(model, config, DataSplits) for a RASU digits conv net."""
    return train_digits("rasu")


@pytest.fixture(scope="session")
def digits_tasu():
    return train_digits("tasu")
