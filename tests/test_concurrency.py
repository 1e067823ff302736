"""Concurrent writers of one ``.ehd`` path never crash, and a reader at the same time always sees a complete file.

:func:`hdc.io.atomic_write` gives every write its own temporary name (``mkstemp`` in the target's directory) and
publishes it with ``os.replace``, so writers never share a temporary file and a reader opens the old or the new file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gnet.ehd import load_ehd

ROOT = Path(__file__).resolve().parents[1]
WRITERS, ROUNDS = 4, 10

# Each writer saves ROUNDS models whose codes are a function of (writer, round), recorded in meta, so a reader can
# tell a complete file from a mix of two.
_WRITER = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
from test_crafted_files import _valid_model

import pathlib, time
writer, path, sync = int(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[5])
model = _valid_model()
(sync / f"ready{writer}").touch()  # imported: start together, so the writes overlap each other and the reads
while not (sync / "go").exists():
    time.sleep(0.001)
for r in range(int(sys.argv[4])):
    model.meta.update(writer=writer, round=r)
    for layer in model.layers:
        layer.codes = np.full_like(layer.codes, 1000 * writer + r)
        layer.codes[:, -1] &= np.uint64((1 << 36) - 1)
    model.save(path)
print("done", writer)
"""


def _expected(layer_codes: np.ndarray, writer: int, rnd: int) -> np.ndarray:
    want = np.full_like(layer_codes, 1000 * writer + rnd)
    want[:, -1] &= np.uint64((1 << 36) - 1)
    return want


def test_concurrent_writers_and_a_reader(tmp_path):
    from test_crafted_files import _valid_model

    path = tmp_path / "shared.ehd"
    _valid_model().save(path)  # the reader always finds a file
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    tests = str(Path(__file__).parent)
    sync = tmp_path.parent / f"{tmp_path.name}-sync"
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(k), str(path), tests, str(ROUNDS), str(sync)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(WRITERS)
    ]
    deadline = time.monotonic() + 300
    while len(list(sync.glob("ready*"))) < WRITERS and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    (sync / "go").touch()
    seen: set[tuple[int, int]] = set()
    reads = 0
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        model = load_ehd(path)  # raises EHDFileError on a damaged or mixed file
        reads += 1
        if "writer" in model.meta:
            key = (model.meta["writer"], model.meta["round"])
            for layer in model.layers:
                np.testing.assert_array_equal(layer.codes, _expected(layer.codes, *key))
            seen.add(key)
    results = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert out.startswith("done"), out
    final = load_ehd(path)
    assert (final.meta["writer"], final.meta["round"]) in {(k, ROUNDS - 1) for k in range(WRITERS)}
    assert reads > 0
    print(f"{reads} complete reads during the writes; {len(seen)} of {WRITERS * ROUNDS} versions seen")
    # no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.ehd"]
