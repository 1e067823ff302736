"""The architecture rule: hdc/ is the general core and never imports gnet/."""

from __future__ import annotations

import ast
from pathlib import Path

HDC = Path(__file__).resolve().parents[1] / "hdc"


def test_hdc_never_imports_gnet():
    offenders = []
    for path in HDC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n == "gnet" or n.startswith("gnet.")]
    assert not offenders, offenders
