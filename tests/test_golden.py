"""Bit-identity guard: codes, predictions and trained weights recorded before the restructuring.

The values in ``tests/golden/golden.json`` were written by ``python3 tests/golden/compute.py --write`` on the code
before the house was rearranged; every later change must reproduce them exactly (the float logits to 2e-4, since
oneDNN may sum in another order with another thread count).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent / "golden"
spec = importlib.util.spec_from_file_location("golden_compute", HERE / "compute.py")
compute = importlib.util.module_from_spec(spec)
sys.modules["golden_compute"] = compute
spec.loader.exec_module(compute)
GOLDEN = json.loads((HERE / "golden.json").read_text())


@pytest.mark.parametrize("section", ["hdc_core", "projections", "classifiers", "training"])
def test_golden_section(section):
    assert compute.SECTIONS[section]() == GOLDEN[section]


def test_golden_mnist_float_and_ehd():
    if not compute.MNIST_CHECKPOINT.exists():
        pytest.fail(f"the committed checkpoint {compute.MNIST_CHECKPOINT} is missing")
    got = compute.mnist_models()
    want = GOLDEN["mnist"]
    np.testing.assert_allclose(got.pop("float_logits"), want["float_logits"], atol=2e-4)
    assert got == {k: v for k, v in want.items() if k != "float_logits"}
