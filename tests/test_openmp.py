"""hdc.openmp: the OpenMP wait-policy default and its limits."""

from __future__ import annotations

import os
import subprocess
import sys

from hdc.openmp import prefer_passive_openmp


def test_sets_passive_but_keeps_a_users_choice(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_reports_whether_it_came_before_torch():
    code = ("import sys; from hdc.openmp import prefer_passive_openmp as p; a = p(); import torch; b = p(); "
            "print(a, b)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_gnet_command_sets_it_before_torch_loads():
    code = "import os, sys, gnet.cli; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["PASSIVE", "False"]
