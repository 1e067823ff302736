"""The settings of one comparison and the training recipes of its presets.

A :class:`CompareConfig` is the identity of a comparison: ``compare.json`` stores it, and a run resumes only a file
made with the same one (``--overwrite`` starts over). The run-time knobs (budget, output folder, progress bars) are
not part of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hdc._validate import check_choice, check_int

__all__ = ["FAMILY_TRAINING", "FAULT_RATES", "PRESETS", "CompareConfig", "recipe_for"]

# The exact-rate bit-flip rates of the robustness columns (hdc.faults.BitFaults: round(p * bits) per code).
FAULT_RATES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2)

# Training recipes by preset and dataset kind. "paper": the recipes of benchmarks/reproduce.py (the CPU recipes of
# the G-Net reproduction; see docs/reproduce.md), shared by every torch-trained method so that they get the same
# epochs and data; DiffLogic keeps its own optimiser (gnet.logic.TRAIN_DEFAULTS: Adam 0.01, batch 100, no decay).
# "tiny": a smoke-test recipe (2 epochs, one small dim) for CI and for checking a setup end to end.
_PAPER: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 15, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-5, "plateau_factor": 0.1,
               "plateau_patience": 10, "val_fraction": 0.1, "dims": [250, 1000, 4000]},
    "mnist": {"epochs": 12, "batch_size": 128, "lr": 1e-3, "weight_decay": 1e-5, "plateau_factor": 0.3,
              "plateau_patience": 1, "val_fraction": 2000 / 60000, "dims": [2000, 5000, 10000]},
    "fashion-mnist": {"epochs": 30, "batch_size": 128, "lr": 1e-3, "weight_decay": 1e-5, "plateau_factor": 0.3,
                      "plateau_patience": 2, "val_fraction": 2000 / 60000, "augment": "flip",
                      "dims": [2000, 5000, 10000]},
    "ucr": {"epochs": 100, "batch_size": 16, "lr": 1e-2, "weight_decay": 1e-3, "plateau_factor": 0.3,
            "plateau_patience": 10, "val_fraction": 0.1, "dims": [1000, 5000, 10000]},
    "other": {"epochs": 30, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-5, "plateau_factor": 0.1,
              "plateau_patience": 10, "val_fraction": 0.1, "dims": [1000, 5000, 10000]},
}  # fmt: skip
_TINY: dict[str, Any] = {
    "epochs": 2, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-5, "plateau_factor": 0.1,
    "plateau_patience": 10, "val_fraction": 0.1, "dims": [128], "hdc_epochs": 2,
}  # fmt: skip
PRESETS = ("tiny", "paper")

# What a family changes in the shared recipe (same epochs, batch, rate and data). The BNN family decays its rate on
# a cosine: its annealed quantizers make the validation loss that ReduceLROnPlateau watches misleading until the
# forward is the sign (BNN++ on MNIST: 41-68 % validation accuracy in the smooth phase, three rate cuts before the
# sign took over at epoch 10), and an STE network's validation accuracy swings by a point between epochs.
FAMILY_TRAINING: dict[str, dict[str, Any]] = {"bnn": {"lr_schedule": "cosine"}}


def recipe_for(preset: str, dataset: str) -> dict[str, Any]:
    """The recipe (TrainConfig fields, ``val_fraction``, default ``dims``, ``hdc_epochs``) of ``preset`` for
    ``dataset``."""
    check_choice(preset, PRESETS, "preset")
    if preset == "tiny":
        return dict(_TINY)
    key = "ucr" if dataset.lower().startswith("ucr:") else dataset.lower()
    return {"hdc_epochs": 10, **_PAPER.get(key, _PAPER["other"])}


@dataclass(frozen=True)
class CompareConfig:
    """What a comparison measures.

    Attributes:
        dataset: an :func:`hdc.datasets.load` name (``digits``, ``mnist``, ``ucr:GunPoint``, ...).
        methods: names from :data:`gnet.compare.METHODS`, in table order.
        seeds: training seeds (each row is repeated per seed; the table shows mean and sd over them).
        preset: the recipe preset, ``"tiny"`` or ``"paper"``.
        dims: code lengths of the EHD and HDC settings (None: the preset's).
        epochs: training epochs of every torch-trained method (None: the preset's).
        limit: evaluate on the first ``limit`` test items only (None: all).
        data_dir: where datasets are looked for (None: the default places); not part of the identity.
        fault_rates: the bit-flip rates of the robustness columns.
        throughput_rounds: timed rounds of the img/s measurement (after one warm-up round).
    """

    dataset: str
    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    preset: str = "paper"
    dims: tuple[int, ...] | None = None
    epochs: int | None = None
    limit: int | None = None
    data_dir: str | None = field(default=None, compare=False)
    fault_rates: tuple[float, ...] = FAULT_RATES
    throughput_rounds: int = 5

    def __post_init__(self) -> None:
        from gnet.compare.methods import METHODS  # the registry imports this module

        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a non-empty name, got {self.dataset!r}")
        if not self.methods:
            raise ValueError("methods is empty; name at least one of " + ", ".join(METHODS))
        for name in self.methods:
            check_choice(name, tuple(METHODS), "method")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a name twice: {list(self.methods)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and non-empty, got {list(self.seeds)}")
        for s in self.seeds:
            check_int(s, "seed", minimum=0)
        check_choice(self.preset, PRESETS, "preset")
        if self.dims is not None:
            if not self.dims:
                raise ValueError("dims is empty")
            for d in self.dims:
                check_int(d, "dim", minimum=1, maximum=2**20)
        if self.epochs is not None:
            check_int(self.epochs, "epochs", minimum=1)
        if self.limit is not None:
            check_int(self.limit, "limit", minimum=1)
        for p in self.fault_rates:
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"fault rates must lie in [0, 1], got {p}")
        check_int(self.throughput_rounds, "throughput_rounds", minimum=1)

    @property
    def recipe(self) -> dict[str, Any]:
        """The preset's recipe for this dataset, with ``epochs`` and ``dims`` overridden where given."""
        recipe = recipe_for(self.preset, self.dataset)
        if self.epochs is not None:
            recipe["epochs"] = self.epochs
        if self.dims is not None:
            recipe["dims"] = list(self.dims)
        return recipe

    def identity(self) -> dict[str, Any]:
        """The JSON form compared on resume (everything but ``data_dir``)."""
        out = dataclasses.asdict(self)
        out.pop("data_dir")
        for key in ("methods", "seeds", "dims", "fault_rates"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out
