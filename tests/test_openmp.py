"""hdc._kernels.runtime: the OpenMP wait-policy default and its limits, the numba cache fallback, and the light
``import hdc`` (no torch, a version string)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hdc
from hdc import prefer_passive_openmp

ROOT = Path(__file__).resolve().parents[1]


def test_sets_passive_but_keeps_a_users_choice(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_reports_whether_it_came_before_torch():
    code = (
        "import sys; from hdc import prefer_passive_openmp as p; a = p(); import torch; b = p(); "
        "print(a, b, 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "False", "True"]


def test_import_hdc_does_not_import_torch():
    code = "import sys, hdc; print('torch' in sys.modules, hdc.prefer_passive_openmp.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "hdc._kernels.runtime"]


def test_version_is_the_package_version():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.match(r"^\d+\.\d+\.\d+", hdc.__version__)
    assert f'version = "{hdc.__version__}"' in pyproject


def test_gnet_command_sets_it_before_torch_loads():
    code = "import os, sys, gnet.cli; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["PASSIVE", "False"]


# ------------------------------------------------------------------------------ numba cache fallback
# Run in a child on a read-only copy of the package. The package dir and $HOME are read-only, so numba's own
# locators (in-tree __pycache__, its user-wide dir) find no place to cache and numba.njit(cache=True) would raise
# at import. root ignores file modes, so when the test runs as root the child also makes those two locators report
# "no place", which is what they do for a read-only tree. Mode "none" also has no writable user cache: the check of
# hdc._kernels.runtime is replaced (a writable temp dir always exists otherwise), so kernels compile uncached.
CHILD = r"""
import json, os, sys, warnings
mode = sys.argv[1]
import numba.core.caching as caching
if os.geteuid() == 0:
    for name in ("InTreeCacheLocator", "_InTreeCacheLocator", "UserWideCacheLocator", "_UserWideCacheLocator"):
        if hasattr(caching, name):
            getattr(caching, name).from_function = classmethod(lambda cls, py_func, py_file: None)
if mode == "none":
    import hdc._kernels.runtime as runtime
    runtime._writable = lambda path: False
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import hdc
    from hdc.hamming import choose_method
    vectors = hdc.random(3, 100, seed=0)
    bundled = hdc.bundle(vectors, 100, seed=1)
    method = choose_method(3, 3, 2)
    distances = hdc.hamming_distance(vectors, vectors, method="numba")
print(json.dumps({
    "file": hdc.__file__, "method": method, "diagonal": distances.diagonal().tolist(), "bundle": bundled.tolist(),
    "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
}))
"""


def _read_only_copy(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(ROOT / "hdc", site / "hdc", ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return site


def _run_child(tmp_path: Path, site: Path, mode: str, cache_home: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    home.chmod(0o555)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE") and k != "PYTHONPATH"}
    env.update(
        PYTHONPATH=str(site),
        HOME=str(home),
        XDG_CACHE_HOME=str(cache_home),
        PYTHONDONTWRITEBYTECODE="1",
        NUMBA_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def read_only_site(tmp_path):
    site = _read_only_copy(tmp_path)
    yield site
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)  # so pytest can clean tmp_path


def test_kernels_cache_in_the_user_cache_when_the_package_is_read_only(tmp_path, read_only_site):
    cache_home = tmp_path / "cache"
    got = _run_child(tmp_path, read_only_site, "user", cache_home)
    assert Path(got["file"]).parent == read_only_site / "hdc"  # the read-only copy ran, not the source tree
    assert got["method"] == "numba" and got["diagonal"] == [0, 0, 0]
    assert not got["warnings"]
    assert list((cache_home / "gnet-hdc" / "numba").rglob("*.nbi"))  # the kernels were cached there
    assert not list(read_only_site.rglob("*.nbi"))


def test_kernels_compile_uncached_when_nothing_is_writable(tmp_path, read_only_site):
    cache_home = tmp_path / "cache"
    cache_home.mkdir()
    cache_home.chmod(0o555)
    got = _run_child(tmp_path, read_only_site, "none", cache_home)
    assert got["method"] == "numba" and got["diagonal"] == [0, 0, 0]
    assert len(got["warnings"]) == 1 and "no writable numba cache" in got["warnings"][0]
    reference = hdc.bundle(hdc.random(3, 100, seed=0), 100, seed=1)
    assert got["bundle"] == reference.tolist()
    assert not list(read_only_site.rglob("*.nbi")) and not list(cache_home.rglob("*.nbi"))
